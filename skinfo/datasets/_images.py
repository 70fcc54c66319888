"""Checks and reshaping of image rows shared by the OOD variants and the corruptions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.utils import check_array


def _check_images(X) -> np.ndarray:
    """Validate a 2-D float array of flattened images (a copy is never promised)."""
    return check_array(X, dtype=[np.float64, np.float32])


def _image_shape(n_features: int, image_shape: Sequence[int] | None) -> tuple[int, ...]:
    """Return ``(C, H, W)``; None means one channel, square images."""
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"Cannot infer a square image from {n_features} features; pass image_shape=(H, W) "
                "or (C, H, W)."
            )
        return (1, side, side)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} does not match {n_features} features per row; "
            "expected (H, W) or (C, H, W) with C*H*W equal to the number of features."
        )
    return shape


def _as_images(X: np.ndarray, image_shape: Sequence[int] | None) -> np.ndarray:
    """Reshape rows to ``(n, C, H, W)``."""
    return X.reshape(X.shape[0], *_image_shape(X.shape[1], image_shape))


def _check_range(X: np.ndarray, value_range: tuple[float, float]) -> tuple[float, float]:
    """Validate ``value_range`` and that ``X`` lies inside it."""
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}.")
    if X.size and (X.min() < low or X.max() > high):
        raise ValueError(
            f"X has values in [{X.min():g}, {X.max():g}], outside value_range=({low:g}, {high:g}). "
            "Pass the range of your data, e.g. value_range=(0, 16) for unscaled digits."
        )
    return low, high
