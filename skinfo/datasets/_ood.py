"""Out-of-distribution variants of image rows: rotations, flips, inversions, noise images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.utils import check_random_state

from ._images import _as_images, _check_images, _check_range


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
        The images turned by ``k`` quarter turns, flattened in the same layout.

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
        The mirrored images, flattened in the same layout.

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
        The inverted images, in the scale of ``X``.

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


def _noise_setup(X, n_samples, value_range, random_state):
    """Checked images, the pixel range, the number of noise images and the generator."""
    X = _check_images(X)
    low, high = _check_range(X, value_range)
    n = X.shape[0] if n_samples is None else int(n_samples)
    return X, low, high, n, check_random_state(random_state)


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
        The noise images, in ``value_range`` and the dtype of ``X``.

    Examples
    --------
    >>> from skinfo.datasets import gaussian_noise_like, load_digits_split
    >>> X_train, _, _, _ = load_digits_split()
    >>> noise = gaussian_noise_like(X_train, 5, random_state=0)
    >>> noise.shape, bool(noise.min() >= 0.0 and noise.max() <= 1.0)
    ((5, 64), True)
    """
    X, low, high, n, rng = _noise_setup(X, n_samples, value_range, random_state)
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
        The noise images, in ``value_range`` and the dtype of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfo.datasets import uniform_noise_like
    >>> uniform_noise_like(np.zeros((3, 64)), random_state=0).shape
    (3, 64)
    """
    X, low, high, n, rng = _noise_setup(X, n_samples, value_range, random_state)
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
        The OOD images, in the dtype and scale of ``X``.

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
