"""Corruptions of image rows at five intensities, for calibration under dataset shift."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from sklearn.utils import check_random_state

from ._images import _as_images, _check_images, _check_range

# Parameter of each kind at intensities 1..5.
_CORRUPTION_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # noise std / (high - low)
    "blur": (0.5, 0.7, 0.9, 1.2, 1.5),  # Gaussian filter std, pixels
    "rotation": (15.0, 30.0, 45.0, 60.0, 75.0),  # degrees counterclockwise
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # contrast factor c
    "pixel_dropout": (0.05, 0.1, 0.2, 0.3, 0.45),  # fraction of pixels dropped
}

#: Kinds accepted by :func:`corrupt_digits`.
CORRUPTION_KINDS: tuple[str, ...] = tuple(_CORRUPTION_LEVELS)


def corrupt_digits(
    X,
    kind: str,
    intensity: int | None,
    *,
    random_state=None,
    value_range: tuple[float, float] = (0.0, 1.0),
    image_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Corrupt images at one of five intensities, for calibration under dataset shift.

    Generated on the fly from the clean images (in the spirit of CIFAR-10-C),
    nothing is downloaded. Intensity 0 or None returns a copy of the clean
    images; intensities 1 to 5 use these parameters (``low, high`` are
    ``value_range``, every result is clipped to it):

    ==================  ========================================  ============================
    kind                corruption                                parameter at intensity 1..5
    ==================  ========================================  ============================
    ``gaussian_noise``  add N(0, s^2) noise to each pixel         s / (high - low):
                                                                  0.08, 0.12, 0.18, 0.26, 0.38
    ``blur``            ``scipy.ndimage.gaussian_filter`` on      std in pixels:
                        each image plane (``mode="nearest"``)     0.5, 0.7, 0.9, 1.2, 1.5
    ``rotation``        ``scipy.ndimage.rotate``                  angle in degrees:
                        counterclockwise, bilinear, same size,    15, 30, 45, 60, 75
                        ``low`` fills the corners
    ``contrast``        ``m + c (x - m)``, ``m`` the mean of      factor c:
                        each image (pulled toward its mean)       0.75, 0.5, 0.4, 0.3, 0.15
    ``pixel_dropout``   set a random fraction p of the pixels     p:
                        to ``low``                                0.05, 0.1, 0.2, 0.3, 0.45
    ==================  ========================================  ============================

    For a given ``random_state`` the random kinds draw the same random numbers
    at every intensity (one standard-normal draw scaled by s; one uniform
    draw thresholded at p, so the dropped pixels of a level include those of
    the levels below), and so every pixel's distance from its clean value is
    non-decreasing with the intensity.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Clean images, one flattened image per row, with values in
        ``value_range``.
    kind : str
        One of :data:`CORRUPTION_KINDS`.
    intensity : {0, 1, 2, 3, 4, 5} or None
        Severity; 0 and None mean no corruption.
    random_state : int, RandomState instance or None, default=None
        Seed for ``gaussian_noise`` and ``pixel_dropout``.
    value_range : tuple of float, default=(0.0, 1.0)
        ``(low, high)`` of the pixel scale, e.g. ``(0, 16)`` for unscaled
        digits.
    image_shape : tuple of int, optional
        ``(H, W)`` or ``(C, H, W)``; None means single-channel square images
        (8x8 for the digits). Used by ``blur`` and ``rotation``.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        The corrupted images, dtype of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import corrupt_digits, load_digits_split
    >>> _, X_test, _, _ = load_digits_split()
    >>> X_blur = corrupt_digits(X_test, "blur", 3)
    >>> X_blur.shape
    (450, 64)
    >>> [round(float(np.abs(corrupt_digits(X_test, "contrast", s) - X_test).mean()), 3)
    ...  for s in (0, 1, 5)]
    [0.0, 0.083, 0.284]
    """
    if kind not in _CORRUPTION_LEVELS:
        raise ValueError(
            f"Unknown corruption kind {kind!r}; valid kinds are {list(CORRUPTION_KINDS)}."
        )
    if intensity is not None and (
        isinstance(intensity, bool) or not isinstance(intensity, int | np.integer)
    ):
        raise ValueError(f"intensity must be an integer 0..5 or None, got {intensity!r}.")
    if intensity is not None and not 0 <= intensity <= 5:
        raise ValueError(f"intensity must be in 0..5 or None, got {intensity}.")
    X = _check_images(X)
    low, high = _check_range(X, value_range)
    if not intensity:
        return X.copy()
    level = _CORRUPTION_LEVELS[kind][int(intensity) - 1]
    rng = check_random_state(random_state)

    if kind == "gaussian_noise":
        noise = rng.standard_normal(X.shape) * (level * (high - low))
        out = X + noise
    elif kind == "pixel_dropout":
        out = np.where(rng.uniform(size=X.shape) < level, low, X)
    elif kind == "contrast":
        mean = X.mean(axis=1, keepdims=True)
        out = mean + level * (X - mean)
    else:
        images = _as_images(X, image_shape).astype(np.float64)
        if kind == "blur":
            # no smoothing across samples or channels, only over H and W
            out = ndimage.gaussian_filter(images, sigma=(0, 0, level, level), mode="nearest")
        else:
            out = ndimage.rotate(
                images,
                level,
                axes=(-2, -1),
                reshape=False,
                order=1,
                mode="constant",
                cval=low,
            )
        out = out.reshape(X.shape)
    return np.clip(out, low, high).astype(X.dtype, copy=False)
