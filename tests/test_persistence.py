"""Safe persistence (JSON parameters + torch state dict) and its refusal to run code."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from estimator_zoo import fast_classifiers, fast_detectors
from sklearn.datasets import make_blobs

import skinfo
from skinfo import OVAClassifier, SoftmaxClassifier, VIBClassifier
from skinfo.nn.encoders import SmallCNN
from skinfo.persistence import InconsistentVersionWarning

FAST = dict(hidden_layer_sizes=(16,), max_epochs=3, lr=1e-2, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    return X, np.array(["a", "b", "c"])[y]


@pytest.mark.parametrize(
    "est",
    [*fast_classifiers(), OVAClassifier(logits="affine", ood_score="max_proba", **FAST)],
    ids=lambda e: repr(e)[:50],
)
def test_round_trip_identical_outputs(est, data, tmp_path):
    X, y = data
    est.fit(X, y)
    path = tmp_path / "model.skinfo"
    est.save(path)
    again = skinfo.load(path)
    assert type(again) is type(est)
    assert again.get_params() == est.get_params()
    np.testing.assert_array_equal(again.classes_, est.classes_)
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(again.score_samples(X), est.score_samples(X))
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    assert again.history_[:, "train_loss"] == est.history_[:, "train_loss"]
    unpickled = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(unpickled.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(unpickled.score_samples(X), est.score_samples(X))


def test_skinfo_encoder_factory_is_stored_and_others_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 16))
    y = np.repeat([0, 1], 20)
    cnn = SoftmaxClassifier(encoder=SmallCNN, input_shape=(1, 4, 4), **FAST).fit(X, y)
    cnn.save(tmp_path / "cnn.skinfo")
    again = skinfo.load(tmp_path / "cnn.skinfo")
    assert again.encoder is SmallCNN
    np.testing.assert_array_equal(again.predict_proba(X), cnn.predict_proba(X))

    def my_encoder(shape):
        return torch.nn.Linear(16, 4)

    custom = SoftmaxClassifier(encoder=my_encoder, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="cannot be stored in the safe format"):
        custom.save(tmp_path / "custom.skinfo")


def test_unfitted_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        SoftmaxClassifier().save(tmp_path / "x.skinfo")


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_Exploit.marker}",))


def test_tampered_file_does_not_run_code(tmp_path):
    marker = tmp_path / "pwned"
    _Exploit.marker = marker
    path = tmp_path / "evil.skinfo"
    with open(path, "wb") as f:
        pickle.dump({"format": "skinfo-estimator", "payload": _Exploit()}, f)
    with pytest.raises(ValueError, match="cannot be loaded safely|not a skinfo"):
        skinfo.load(path)
    assert not marker.exists()
    torch.save({"format": "skinfo-estimator", "format_version": 1, "payload": _Exploit()}, path)
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        skinfo.load(path)
    assert not marker.exists()


def test_foreign_and_other_version_files(data, tmp_path):
    X, y = data
    est = SoftmaxClassifier(**FAST).fit(X, y)
    path = tmp_path / "m.skinfo"
    est.save(path)
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "skinfo_version": "0.0.1"}, path)
    with pytest.warns(InconsistentVersionWarning, match="0.0.1"):
        skinfo.load(path)
    torch.save({**payload, "format_version": 99}, path)
    with pytest.raises(ValueError, match="format 99"):
        skinfo.load(path)
    torch.save({**payload, "estimator": "os"}, path)
    with pytest.raises(ValueError, match="unknown estimator"):
        skinfo.load(path)
    torch.save({"some": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a skinfo estimator file"):
        skinfo.load(path)


def test_overrides_that_change_the_fitted_model_are_refused(data, tmp_path):
    X, y = data
    vib = VIBClassifier(latent_dim=4, n_samples=12, **FAST).fit(X, y)
    path = tmp_path / "vib.skinfo"
    vib.save(path)
    # the 12 stored prediction draws cannot serve n_samples=40: refused, not kept silently
    with pytest.raises(ValueError, match=r"n_samples=40\) change the fitted model"):
        skinfo.load(path, n_samples=40)
    with pytest.raises(ValueError, match="do not fit.*stored.*hidden_layer_sizes"):
        skinfo.load(path, hidden_layer_sizes=(8,))
    # an override that leaves the weights alone is honoured
    again = skinfo.load(path, ood_score="max_proba")
    assert again.ood_score == "max_proba"
    np.testing.assert_allclose(again.score_samples(X), vib.predict_proba(X).max(1), rtol=1e-12)
    # a file whose weights do not fit its own parameters
    payload = torch.load(path, weights_only=True)
    payload["module"]["pred_noise"] = torch.zeros(3, 4)
    torch.save(payload, path)
    with pytest.raises(ValueError, match="do not fit the network rebuilt here"):
        skinfo.load(path)


def test_cuda_trained_model_loads_on_cpu(data, tmp_path):
    """A file whose training device is CUDA loads on a machine without it."""
    X, y = data
    est = SoftmaxClassifier(**FAST).fit(X, y)
    est.device_ = "cuda"  # as if trained on GPU; weights are stored on CPU either way
    path = tmp_path / "gpu.skinfo"
    est.save(path)
    est.device_ = "cpu"
    if torch.cuda.is_available():
        pytest.skip("this check is about machines without CUDA")
    again = skinfo.load(path)
    assert again.device_ == "cpu"
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("det", fast_detectors(), ids=lambda e: repr(e)[:50])
def test_detector_round_trip(det, data, tmp_path):
    X, _ = data
    det.fit(X)
    det.save(tmp_path / "det.skinfo")
    again = skinfo.load(tmp_path / "det.skinfo")
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    np.testing.assert_array_equal(again.predict(X), det.predict(X))
    assert again.offset_ == det.offset_
    unpickled = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(unpickled.decision_function(X), det.decision_function(X))


@pytest.mark.parametrize(
    "est", [*fast_classifiers(), *fast_detectors()], ids=lambda e: repr(e)[:50]
)
def test_pickle_of_a_cuda_trained_model_loads_on_a_machine_without_cuda(est, data):
    """skorch maps the weights to the CPU; the estimator then predicts there too."""
    if torch.cuda.is_available():
        pytest.skip("this check is about machines without CUDA")
    X, y = data
    est.fit(X, None if not hasattr(est, "predict_proba") else y)
    expected = est.score_samples(X)
    est.device_, est.net_.device = "cuda", "cuda"  # as pickled by a GPU machine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = pickle.loads(pickle.dumps(est))
    assert any("no CUDA devices are available" in str(w.message) for w in caught)
    assert again.device_ == "cpu" and str(again.net_.device) == "cpu"
    np.testing.assert_array_equal(again.score_samples(X), expected)
