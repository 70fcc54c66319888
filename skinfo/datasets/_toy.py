"""The 2-D toy of Gaussian blobs on a circle (Padhy et al., 2020, appendix E.1)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import check_random_state


def make_ova_toy(
    n_per_class: int = 1000,
    *,
    n_classes: int = 10,
    radius: float = 20.0,
    variance: float = 2.0,
    shuffle: bool = True,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs on a circle: the 2-D toy of Padhy et al. (2020), appendix E.1.

    Class ``j`` (``j = 0 .. n_classes - 1``) is drawn from
    ``N((radius cos(2 pi j / n_classes), radius sin(2 pi j / n_classes)),
    variance * I)``. The defaults are the paper's: 10 classes of 1,000 points,
    radius 20, covariance 2I. Far from the circle a softmax classifier stays
    confident while distance-based one-vs-all confidence falls.

    Parameters
    ----------
    n_per_class : int, default=1000
        Points per class.
    n_classes : int, default=10
        Number of blobs, evenly spaced on the circle.
    radius : float, default=20.0
        Distance of the blob centres from the origin.
    variance : float, default=2.0
        Variance of each coordinate (covariance ``variance * I``; standard
        deviation ``sqrt(variance)``).
    shuffle : bool, default=True
        Shuffle the rows; with False they come class by class.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_per_class * n_classes, 2), dtype float64
        The 2-D points.
    y : ndarray of shape (n_per_class * n_classes,), dtype int64
        Class labels ``0 .. n_classes - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import make_ova_toy
    >>> X, y = make_ova_toy(random_state=0)
    >>> X.shape, np.bincount(y).tolist() == [1000] * 10
    ((10000, 2), True)
    >>> np.round(X[y == 0].mean(axis=0))
    array([20., -0.])
    """
    if int(n_per_class) < 1 or int(n_classes) < 1:
        raise ValueError("n_per_class and n_classes must be positive.")
    if variance < 0:
        raise ValueError(f"variance must be non-negative, got {variance}.")
    n_per_class, n_classes = int(n_per_class), int(n_classes)
    rng = check_random_state(random_state)
    angles = 2.0 * np.pi * np.arange(n_classes) / n_classes
    centres = radius * np.column_stack([np.cos(angles), np.sin(angles)])
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    X = centres[y] + math.sqrt(variance) * rng.standard_normal((y.size, 2))
    if shuffle:
        order = rng.permutation(y.size)
        X, y = X[order], y[order]
    return X, y
