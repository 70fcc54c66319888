"""Habits users bring from sklearn and skorch: weights, routed optimizer options, image-shaped
X, partial_fit."""

import numpy as np
import pytest
import torch
from estimator_zoo import fast_classifiers, fast_detectors
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import GridSearchCV
from torch import nn

import skinfo
from skinfo import ApproxMassFlowDetector, SoftmaxClassifier

FAST = dict(hidden_layer_sizes=(16,), max_epochs=3, lr=1e-2, device="cpu", random_state=0)


def ids(est):
    return repr(est)[:60]


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).reshape(-1, 1, 8, 8).astype(np.float32), y[:300]


# ------------------------------------------------------------------ routed optimizer options
def test_optimizer_options_are_routed_everywhere(blobs, tmp_path):
    X, y = blobs
    clf = SoftmaxClassifier(optimizer="sgd", optimizer__momentum=0.9, **FAST)
    assert clf.get_params()["optimizer__momentum"] == 0.9
    assert clone(clf).get_params()["optimizer__momentum"] == 0.9
    clf.set_params(optimizer__nesterov=True).fit(X, y)
    defaults = clf.net_.optimizer_.defaults
    assert defaults["momentum"] == 0.9 and defaults["nesterov"] is True
    clf.save(tmp_path / "m.skinfo")
    assert skinfo.load(tmp_path / "m.skinfo").optimizer__momentum == 0.9
    search = GridSearchCV(
        SoftmaxClassifier(optimizer="sgd", **FAST), {"optimizer__momentum": [0.0, 0.9]}, cv=2
    ).fit(X, y)
    assert search.best_params_["optimizer__momentum"] in (0.0, 0.9)
    assert search.best_estimator_.net_.optimizer_.defaults["momentum"] in (0.0, 0.9)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(optimizer__bogus=1), "takes no option 'bogus'"),
        (dict(optimizer__lr=0.1), "use lr"),
        (dict(optimizer__weight_decay=0.1, weight_decay=0.1), "not both"),
        (dict(lrr=0.1), "unexpected parameter 'lrr'"),
    ],
)
def test_bad_routed_options_are_value_errors_at_fit(params, match, blobs):
    X, y = blobs
    clf = SoftmaxClassifier(**{**FAST, **params})  # the constructor never validates
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


# ------------------------------------------------------------------ image-shaped input
@pytest.mark.parametrize("est", [*fast_classifiers(), *fast_detectors()], ids=ids)
def test_every_estimator_takes_image_shaped_x(est, images):
    X, y = images
    y = None if not hasattr(est, "predict_proba") else y
    fitted = clone(est).fit(X, y)
    assert fitted.image_shape_ == (1, 8, 8) and fitted.n_features_in_ == 64
    scores = fitted.score_samples(X[:20])
    assert scores.shape == (20,) and np.isfinite(scores).all()
    with pytest.raises(ValueError, match="fitted on images of shape"):
        fitted.score_samples(X[:20].reshape(20, -1))
    with pytest.raises(ValueError, match="shape"):
        fitted.score_samples(X[:20].reshape(20, 1, 4, 16))


def test_image_x_defaults_to_a_convolutional_encoder(images):
    X, y = images
    clf = SoftmaxClassifier(**FAST).fit(X, y)
    assert any(isinstance(m, nn.Conv2d) for m in clf.net_.module_.modules())
    X3 = X[:, 0]  # (n, H, W): one channel
    assert SoftmaxClassifier(**FAST).fit(X3, y).image_shape_ == (1, 8, 8)
    flat = SoftmaxClassifier(**FAST).fit(X.reshape(len(X), -1), y)
    assert not any(isinstance(m, nn.Conv2d) for m in flat.net_.module_.modules())


class _MyCNN(nn.Module):
    """A user's module: no constructor argument, expects (B, C, H, W)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.out = nn.Linear(4 * 6 * 6, 10)
        self.seen = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[1:]))
        return self.out(torch.flatten(torch.relu(self.conv(x)), 1))


@pytest.mark.parametrize("encoder", [_MyCNN, _MyCNN()], ids=["class", "instance"])
def test_a_users_module_sees_images(encoder, images):
    X, y = images
    clf = SoftmaxClassifier(encoder=encoder, **FAST).fit(X, y)
    user = [m for m in clf.net_.module_.modules() if isinstance(m, _MyCNN)][0]
    assert set(user.seen) == {(1, 8, 8)}
    assert clf.predict(X[:5]).shape == (5,)
    flat = SoftmaxClassifier(encoder=encoder, input_shape=(1, 8, 8), **FAST)
    flat.fit(X.reshape(len(X), -1), y)  # input_shape with flat rows: the same images
    user = [m for m in flat.net_.module_.modules() if isinstance(m, _MyCNN)][0]
    assert set(user.seen) == {(1, 8, 8)}


# ------------------------------------------------------------------ partial_fit
@pytest.mark.parametrize("est", fast_classifiers(), ids=ids)
def test_partial_fit_trains_one_epoch_per_call(est, blobs):
    X, y = blobs
    labels = np.array(["a", "b", "c"])[y]
    clf = clone(est).set_params(max_epochs=7)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:40], labels[:40])
    clf.partial_fit(X[:40], labels[:40], classes=["a", "b", "c"])
    assert clf.n_iter_ == 1 and list(clf.classes_) == ["a", "b", "c"]
    weights = [p.detach().clone() for p in clf.net_.module_.parameters()]
    clf.partial_fit(X[40:80], labels[40:80])
    assert clf.n_iter_ == 2
    assert any(not torch.equal(a, b) for a, b in zip(weights, clf.net_.module_.parameters()))
    with pytest.raises(ValueError, match="labels not in classes"):
        clf.partial_fit(X[:5], np.array(["a", "b", "z", "a", "b"]))
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X[:5], labels[:5], classes=["a", "b"])
    assert clf.n_iter_ == 2  # failed calls changed nothing
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(1), 1)


def test_partial_fit_with_a_class_missing_from_the_first_batch(blobs):
    X, y = blobs
    for est in fast_classifiers():
        clf = clone(est).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
        clf.partial_fit(X, y)
        assert np.isfinite(clf.predict_proba(X)).all(), type(clf).__name__


# ------------------------------------------------------------------ weights
def test_class_weight_balanced_favours_the_minority_class():
    X, y = make_blobs(n_samples=[300, 30], centers=[[0, 0], [1.2, 1.2]], random_state=0)
    plain = SoftmaxClassifier(**{**FAST, "max_epochs": 30}).fit(X, y)
    balanced = SoftmaxClassifier(class_weight="balanced", **{**FAST, "max_epochs": 30}).fit(X, y)
    assert (balanced.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    by_dict = SoftmaxClassifier(class_weight={0: 1.0, 1: 10.0}, **{**FAST, "max_epochs": 30})
    assert (by_dict.fit(X, y).predict(X) == 1).sum() > (plain.predict(X) == 1).sum()


@pytest.mark.parametrize("est", [*fast_classifiers(), *fast_detectors()], ids=ids)
def test_zero_weight_rows_do_not_count(est, blobs):
    """One full batch: rows of weight 0 change nothing (up to float32 summation order)."""
    X, y = blobs
    y = None if not hasattr(est, "predict_proba") else y
    params = dict(batch_size=1000, max_epochs=3)
    keep = np.arange(len(X)) % 4 != 0
    outlier = X.copy()
    outlier[~keep] = 50.0  # what the weight-0 rows hold must not matter
    weights = keep.astype(float)
    if type(est).__name__ in ("VIBClassifier", "IBINNClassifier", "MASSClassifier"):
        pytest.skip("rows draw training noise by position in the batch")
    if isinstance(est, ApproxMassFlowDetector):
        pytest.skip("rows draw dequantization noise by position in the batch")
    a = clone(est).set_params(**params).fit(X[keep], None if y is None else y[keep])
    b = clone(est).set_params(**params)
    b.fit(outlier, y, sample_weight=weights)
    np.testing.assert_allclose(a.score_samples(X), b.score_samples(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.ones(3), "expected"),
        (-np.ones(120), "non-negative"),
        (np.zeros(120), "all zero"),
        (np.full(120, np.nan), "finite"),
        (np.array(["a"] * 120), "numeric"),
    ],
)
def test_bad_sample_weight_is_a_value_error(weights, match, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        SoftmaxClassifier(**FAST).fit(X, y, sample_weight=weights)


def test_class_weight_balanced_is_refused_by_partial_fit(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="partial_fit"):
        SoftmaxClassifier(class_weight="balanced", **FAST).partial_fit(X, y, classes=[0, 1, 2])


# ------------------------------------------------------------------ training feedback
def test_validation_accuracy_and_skorch_scoring_with_sklearn_names(blobs):
    from skorch.callbacks import EpochScoring

    X, y = blobs
    scoring = EpochScoring("accuracy", name="skorch_acc", lower_is_better=False)
    clf = SoftmaxClassifier(validation_fraction=0.25, callbacks=[scoring], **FAST).fit(X, y)
    acc = clf.history_[:, "valid_acc"]
    assert len(acc) == FAST["max_epochs"] and all(0 <= a <= 1 for a in acc)
    assert acc == clf.history_[:, "skorch_acc"]  # the same rows, the same predictions
    assert clf.net_.predict(X).tolist() == np.searchsorted(clf.classes_, clf.predict(X)).tolist()


def test_verbose_output_to_a_log_has_no_colour_codes_and_one_line_per_epoch(blobs, capsys):
    X, y = blobs
    SoftmaxClassifier(verbose=1, **FAST).fit(X, y)
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == FAST["max_epochs"]


def test_ctrl_c_keeps_a_usable_model_and_warns_at_which_epoch(blobs):
    from skorch.callbacks import Callback

    class Interrupt(Callback):
        def on_epoch_begin(self, net, **kwargs):
            if len(net.history) == 3:
                raise KeyboardInterrupt

    X, y = blobs
    clf = SoftmaxClassifier(callbacks=[Interrupt()], **{**FAST, "max_epochs": 6})
    with pytest.warns(UserWarning, match="interrupted .* after 2 completed epoch"):
        clf.fit(X, y)
    assert len(clf.history_) == 2 == clf.n_iter_
    assert clf.score(X, y) > 0.5  # the model of the completed epochs is usable
