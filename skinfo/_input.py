"""Input checks: sklearn validation of X (and y), then float32 arrays for torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import validate_data

#: Sparse input with at most this many values (rows x features) is densified.
MAX_DENSIFIED_SIZE = 50_000_000

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_float32(X: np.ndarray) -> np.ndarray:
    """Cast validated input to float32, refusing values that float32 cannot hold."""
    X = np.asarray(X)
    if X.size and max(X.max(), -X.min()) > _FLOAT32_MAX:  # no temporary copy of X
        raise ValueError(
            "Input contains values too large for float32 (|x| > 3.4e38); rescale the "
            "features, e.g. with sklearn.preprocessing.StandardScaler."
        )
    return X.astype(np.float32, copy=False)


def check_input(estimator: Any, X, y: Any = "no_validation", *, reset: bool):
    """sklearn validation of X (and y), then float32; sparse X is densified if small.

    Returns ``X``, or ``(X, y)`` when ``y`` is passed (``None`` included, so
    that a missing target gets sklearn's error).
    """
    kwargs = dict(reset=reset, dtype=[np.float64, np.float32], accept_sparse=("csr", "csc"))
    no_y = isinstance(y, str) and y == "no_validation"
    if no_y:
        X = validate_data(estimator, X, **kwargs)
    else:
        X, y = validate_data(estimator, X, y, **kwargs)
    if sp.issparse(X):
        if X.shape[0] * X.shape[1] > MAX_DENSIFIED_SIZE:
            raise ValueError(
                f"Sparse input of shape {X.shape} is too large to densify "
                f"(> {MAX_DENSIFIED_SIZE:.0e} values); the networks need dense input. "
                "Reduce it first, e.g. with sklearn.decomposition.TruncatedSVD."
            )
        X = X.toarray()
    X = as_float32(X)
    return X if no_y else (X, y)
