"""SoftmaxClassifier: label smoothing of the cross-entropy."""

import numpy as np
import pytest
import torch

from skinfo import SoftmaxClassifier
from skinfo.objectives import SoftmaxCrossEntropy


def _numpy_smoothed_ce(logits, y, s):
    """Cross-entropy against the targets (1 - s) onehot(y) + s / K, in float64 numpy."""
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    k = logits.shape[1]
    targets = np.full(logits.shape, s / k)
    targets[np.arange(len(y)), y] += 1.0 - s
    return float(-(targets * log_p).sum(1).mean()), float(-log_p[np.arange(len(y)), y].mean())


@pytest.mark.parametrize("s", [0.0, 0.05, 0.3, 0.9])
def test_smoothed_cross_entropy_matches_numpy(s):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(9, 5)) * 3
    y = rng.integers(0, 5, size=9)
    terms = SoftmaxCrossEntropy(label_smoothing=s)(torch.from_numpy(logits), torch.from_numpy(y))
    smoothed, nll = _numpy_smoothed_ce(logits, y, s)
    np.testing.assert_allclose(float(terms["loss"]), smoothed, rtol=1e-12)
    np.testing.assert_allclose(float(terms["ce"]), smoothed, rtol=1e-12)
    if s > 0:
        np.testing.assert_allclose(float(terms["nll"]), nll, rtol=1e-12)
        assert float(terms["loss"]) != pytest.approx(nll)
    else:
        assert "nll" not in terms


def test_label_smoothing_is_trained_and_caps_confidence():
    """The smoothed loss is minimized at p_y = 1 - s + s / K: confidences stop short of 1."""
    from skinfo.datasets import load_digits_split

    X, _, y, _ = load_digits_split(random_state=0)
    common = dict(hidden_layer_sizes=(64,), max_epochs=40, lr=1e-2, random_state=0)
    plain = SoftmaxClassifier(**common).fit(X, y)
    smoothed = SoftmaxClassifier(label_smoothing=0.2, **common).fit(X, y)
    optimum = 1 - 0.2 + 0.2 / 10  # 0.82
    confidence = smoothed.predict_proba(X).max(1)
    assert smoothed.score(X, y) > 0.95
    assert abs(np.median(confidence) - optimum) < 0.04
    assert np.median(plain.predict_proba(X).max(1)) > 0.98
    # the logged loss is the smoothed one, the unsmoothed NLL comes alongside
    history = smoothed.history_
    assert history[-1, "train_loss"] == pytest.approx(history[-1, "train_ce"])
    assert history[-1, "train_nll"] < history[-1, "train_loss"]
    # the last epoch's loss agrees with the formula on the fitted logits (up to the
    # weight updates within that epoch)
    smoothed_now, _ = _numpy_smoothed_ce(
        smoothed.decision_logits(X), np.searchsorted(smoothed.classes_, y), 0.2
    )
    assert smoothed_now == pytest.approx(history[-1, "train_loss"], rel=0.05)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, np.nan, True, "0.1", None])
def test_bad_label_smoothing_raises_at_fit(bad):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.repeat([0, 1], 10)
    clf = SoftmaxClassifier(label_smoothing=bad, max_epochs=1)
    with pytest.raises(ValueError, match="'label_smoothing' parameter .*must be a float in"):
        clf.fit(X, y)


def _bright_images(shape, n=48, seed=0):
    """Images whose class is which half of the image is brighter: needs the spatial layout."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.5, size=(n, *shape)).astype(np.float32)
    y = np.arange(n) % 2
    half = shape[-1] // 2
    X[y == 0, ..., :half] += 0.5
    X[y == 1, ..., half:] += 0.5
    return X, y


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("as_images", [True, False])
def test_image_defaults_train_a_small_cnn(shape, as_images):
    from skinfo.nn.encoders import SmallCNN

    X, y = _bright_images(shape)
    kw = {} if as_images else {"input_shape": shape}
    X_fit = X if as_images else X.reshape(len(X), -1)
    clf = SoftmaxClassifier(max_epochs=5, random_state=0, device="cpu", **kw).fit(X_fit, y)
    assert isinstance(clf.net_.module_.encoder, SmallCNN)
    assert clf.score(X_fit, y) > 0.9
    assert np.isfinite(clf.score_samples(X_fit)).all()


@pytest.mark.parametrize("name", ["SoftmaxClassifier", "MASSClassifier", "VIBClassifier"])
def test_auto_epochs_are_shorter_on_images(name):
    import importlib

    import skinfo

    module = importlib.import_module(f"skinfo.{name[: -len('Classifier')].lower()}")
    cls = getattr(skinfo, name)
    assert cls().max_epochs == "auto" and module.IMAGE_EPOCHS < 50
    X, y = _bright_images((1, 8, 8), n=16)
    small = {"hidden_layer_sizes": (16,), "batch_size": 16, "random_state": 0, "device": "cpu"}
    images = cls(**small).fit(X, y)
    assert images.n_iter_ == module.IMAGE_EPOCHS
    flat = cls(**small).fit(X.reshape(len(X), -1), y)
    assert flat.n_iter_ == 50
