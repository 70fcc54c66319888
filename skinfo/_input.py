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


def _flatten_images(estimator: Any, X, *, reset: bool):
    """Flatten image-shaped ``X`` ((n, C, H, W) or (n, H, W)) to rows, recording its shape.

    At fit (``reset``) the shape of one image becomes ``image_shape_`` (``(1,
    H, W)`` for 3-D input); at prediction X must have the fitted shape.
    """
    ndim = getattr(X, "ndim", None)
    shape = None
    if ndim in (3, 4) and not sp.issparse(X):
        X = np.asarray(X)
        shape = (1, *X.shape[1:]) if ndim == 3 else tuple(X.shape[1:])
        X = X.reshape(len(X), -1)
    fitted = getattr(estimator, "image_shape_", None)
    if reset:
        if shape is None:
            vars(estimator).pop("image_shape_", None)
        else:
            estimator.image_shape_ = tuple(int(s) for s in shape)
    elif shape != fitted and (shape is not None or fitted is not None):
        seen = "flat rows" if fitted is None else f"images of shape {fitted}"
        got = "flat rows" if shape is None else f"images of shape {shape}"
        raise ValueError(
            f"X holds {got}, but {type(estimator).__name__} was fitted on {seen}; pass X in "
            "the shape it was fitted with."
        )
    return X


def check_input(estimator: Any, X, y: Any = "no_validation", *, reset: bool):
    """sklearn validation of X (and y), then float32; sparse X is densified if small.

    Image-shaped X, ``(n, C, H, W)`` or ``(n, H, W)``, is flattened to rows
    and its shape kept in ``image_shape_`` (see :func:`_flatten_images`).
    Returns ``X``, or ``(X, y)`` when ``y`` is passed (``None`` included, so
    that a missing target gets sklearn's error).
    """
    X = _flatten_images(estimator, X, reset=reset)
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


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Validate ``sample_weight``: None, a scalar, or one finite weight >= 0 per row.

    Returns None (unweighted) or a float64 array of shape (n_samples,) whose
    sum is positive.
    """
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight)
    if weights.ndim == 0:
        weights = np.full(n_samples, weights)
    if weights.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {weights.dtype}.")
    weights = weights.astype(np.float64)
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight.shape == {weights.shape}, expected ({n_samples},): one weight per row."
        )
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sample_weight must hold finite, non-negative values.")
    if not weights.sum() > 0:
        raise ValueError("sample_weight must not be all zero.")
    return weights
