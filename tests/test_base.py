"""The shared estimator base, exercised through SoftmaxClassifier and OVAClassifier."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from estimator_zoo import fast_classifiers, fast_detectors
from sklearn.base import clone
from sklearn.datasets import make_blobs
from torch import nn

from skinfo import OVAClassifier, SoftmaxClassifier, TrainingDivergedError
from skinfo._inference import INFERENCE_BATCH_SIZE
from skinfo._training import update_kernel_options
from skinfo.nn.encoders import MLP

FAST = dict(hidden_layer_sizes=(16,), max_epochs=5, lr=1e-2, device="cpu")


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=200, centers=3, n_features=4, random_state=0)
    return X, y


@pytest.mark.parametrize("Est", [SoftmaxClassifier, OVAClassifier])
def test_same_seed_same_predictions_and_global_rng_untouched(Est, blobs):
    X, y = blobs
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    p1 = Est(random_state=7, **FAST).fit(X, y).predict_proba(X)
    assert torch.equal(torch.rand(1), expected_next)  # fit/predict fork the RNG
    p2 = Est(random_state=7, **FAST).fit(X, y).predict_proba(X)
    p3 = Est(random_state=8, **FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_string_labels_and_proba_columns(blobs):
    X, y = blobs
    names = np.array(["cat", "dog", "emu"])[y]
    clf = SoftmaxClassifier(random_state=0, **FAST).fit(X, names)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-12)
    assert clf.score(X, names) > 0.9


def test_history_has_every_loss_component_per_epoch(blobs):
    X, y = blobs
    clf = OVAClassifier(random_state=0, validation_fraction=0.2, **FAST).fit(X, y)
    assert len(clf.history_) == clf.n_iter_ == FAST["max_epochs"]
    for key in ("train_loss", "train_positive", "train_negative", "valid_loss", "valid_positive"):
        assert len(clf.history_[:, key]) == FAST["max_epochs"]
    # components add up to the total, epoch by epoch (sample-weighted means)
    total = np.add(clf.history_[:, "train_positive"], clf.history_[:, "train_negative"])
    np.testing.assert_allclose(total, clf.history_[:, "train_loss"], rtol=1e-5)


def test_early_stopping_restores_and_stops(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping early is not an interruption
        clf = SoftmaxClassifier(
            random_state=0,
            hidden_layer_sizes=(16,),
            max_epochs=200,
            lr=5e-2,
            validation_fraction=0.3,
            early_stopping=True,
            n_iter_no_change=3,
            device="cpu",
        ).fit(X, y)
    assert clf.n_iter_ < 200


class _NaNAfter(nn.Module):
    """Identity that starts returning NaN after `k` training forward passes."""

    def __init__(self, k):
        super().__init__()
        self.k, self.calls = k, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls > self.k:
                return x * float("nan")
        return x


def test_nan_loss_stops_with_clear_error(blobs):
    X, y = blobs

    def encoder(shape):
        return nn.Sequential(MLP(shape, (8,)), _NaNAfter(4))

    clf = SoftmaxClassifier(encoder=encoder, max_epochs=5, batch_size=50, device="cpu")
    with pytest.raises(TrainingDivergedError, match=r"epoch 2.*'ce'") as info:
        clf.fit(X, y)
    assert isinstance(info.value, ValueError)
    assert len(info.value.history) == 1  # the completed epochs travel with the error
    assert np.isfinite(info.value.history[:, "train_loss"]).all()
    assert not hasattr(clf, "net_") and not hasattr(clf, "history_")  # left unfitted


def test_on_nan_restore_keeps_best_weights_and_warns(blobs):
    from skinfo import TrainingDivergedWarning

    X, y = blobs

    def encoder(shape):
        return nn.Sequential(MLP(shape, (8,)), _NaNAfter(9))

    clf = SoftmaxClassifier(
        encoder=encoder, max_epochs=6, batch_size=50, on_nan="restore", random_state=0
    )
    with pytest.warns(TrainingDivergedWarning, match="epoch 2"):
        clf.fit(X, y)  # 4 batches per epoch: the 10th forward pass (epoch 3) gives NaN
    assert len(clf.history_) == 2
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    best = int(np.argmin(clf.history_[:, "train_loss"]))
    assert clf.history_[best, "epoch"] == 2


def test_warm_start_continues_training(blobs):
    X, y = blobs
    clf = SoftmaxClassifier(warm_start=True, random_state=0, **FAST).fit(X, y)
    first = clf.history_[-1, "train_loss"]
    weights = [p.detach().clone() for p in clf.net_.module_.parameters()]
    clf.fit(X, y)
    assert len(clf.history_) == 2 * FAST["max_epochs"]
    assert clf.history_[-1, "train_loss"] < first
    changed = [not torch.equal(a, b) for a, b in zip(weights, clf.net_.module_.parameters())]
    assert any(changed)
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="features"):
        clf.fit(X[:, :3], y)
    cold = SoftmaxClassifier(random_state=0, **FAST).fit(X, y).fit(X, y)
    assert len(cold.history_) == FAST["max_epochs"]


def test_warm_start_uses_the_current_epochs_batch_size_and_learning_rates(blobs):
    """set_params between warm fits takes effect, as in a fresh fit (optimizer state kept)."""
    X, y = blobs
    clf = OVAClassifier(warm_start=True, random_state=0, **FAST).fit(X, y)
    assert len(clf.history_) == FAST["max_epochs"]
    clf.set_params(max_epochs=2, batch_size=50, lr=1e-3).fit(X, y)
    assert len(clf.history_) == FAST["max_epochs"] + 2
    assert [len(row["batches"]) for row in clf.net_.history[-2:]] == [4, 4]  # 200 rows / 50
    # the head's group follows head_lr=None (10 x lr), the encoder's follows lr
    assert _group_rates(clf) == {"head": pytest.approx(1e-2), "rest": pytest.approx(1e-3)}
    assert clf.net_.optimizer_.state  # Adam's moments survived
    clf.set_params(head_lr=0.5).fit(X, y)
    assert _group_rates(clf) == {"head": pytest.approx(0.5), "rest": pytest.approx(1e-3)}


def _group_rates(clf) -> dict:
    """The learning rate of each optimizer group: ``'head'`` (only ``head.*`` parameters) or
    ``'rest'`` (the group holding the encoder's)."""
    names = {id(p): name for name, p in clf.net_.module_.named_parameters()}
    rates = {}
    for group in clf.net_.optimizer_.param_groups:
        in_head = {names[id(p)].startswith("head.") for p in group["params"]}
        key = "head" if in_head == {True} else "rest"
        assert key not in rates
        rates[key] = group["lr"]
    return rates


def test_warm_start_lets_a_learning_rate_schedule_go_on(blobs):
    """Without set_params, a warm fit keeps the rates a scheduler left, and the schedule
    continues; a new lr restarts it from there."""
    from skorch.callbacks import LRScheduler

    X, y = blobs
    schedule = LRScheduler(policy="ExponentialLR", gamma=0.5)
    params = {**FAST, "max_epochs": 3, "lr": 1e-2}
    clf = SoftmaxClassifier(warm_start=True, callbacks=[schedule], random_state=0, **params)
    clf.fit(X, y)
    assert _group_rates(clf)["rest"] == pytest.approx(1e-2 * 0.5**3)
    clf.fit(X, y)
    assert _group_rates(clf)["rest"] == pytest.approx(1e-2 * 0.5**6)
    clf.set_params(lr=4e-3).fit(X, y)
    assert _group_rates(clf)["rest"] == pytest.approx(4e-3 * 0.5**3)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), y), "NaN"),
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), y), "inf"),
        (lambda X, y: (X[:, 0], y), "2D array"),
        (lambda X, y: (X[:0], y[:0]), "0 sample"),
        (lambda X, y: (X, np.zeros_like(y)), "class"),
        (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
        (lambda X, y: (X * 1e39, y), "too large"),
    ],
    ids=["nan", "inf", "1d", "empty", "one-class", "mismatch", "huge"],
)
def test_bad_input_gives_clear_value_error(bad, match, blobs):
    X, y = bad(*blobs)
    with pytest.raises(ValueError, match=match):
        SoftmaxClassifier(**FAST).fit(X, y)


def test_wrong_n_features_at_predict(blobs):
    X, y = blobs
    clf = OVAClassifier(random_state=0, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but OVAClassifier is expecting 4"):
        clf.predict_proba(X[:, :3])


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(max_epochs=0), "max_epochs"),
        (dict(lr=-1.0), "lr"),
        (dict(optimizer="nope"), "optimizer"),
        (dict(validation_fraction=1.5), "validation_fraction"),
        (dict(early_stopping=True), "validation_fraction"),
        (dict(activation="nope"), "activation"),
        (dict(input_shape=(2, 3)), "input_shape"),
        (dict(logits="cosine"), "logits"),
        (dict(head_lr=0.0), "head_lr"),
        (dict(head_lr=True), "head_lr"),
        (dict(head_lr=float("nan")), "head_lr"),
    ],
)
def test_bad_parameters_raise_at_fit(params, match, blobs):
    X, y = blobs
    clf = OVAClassifier(**{**FAST, **params})  # __init__ never validates
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_inference_is_batched_and_memory_bounded():
    """predict_proba on 200k rows never runs more than INFERENCE_BATCH_SIZE rows at once."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = SoftmaxClassifier(hidden_layer_sizes=(8,), max_epochs=2, random_state=0, device="cpu")
    clf.fit(X, y)
    big = rng.normal(size=(200_000, 3)).astype(np.float32)
    seen = []
    hook = clf.net_.module_.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    try:
        proba = clf.predict_proba(big)
    finally:
        hook.remove()
    assert proba.shape == (200_000, 2)
    assert max(seen) == INFERENCE_BATCH_SIZE
    assert len(seen) == -(-200_000 // INFERENCE_BATCH_SIZE)
    # same values as one direct forward pass on a few rows
    with torch.no_grad():
        direct = torch.softmax(clf.net_.module_(torch.from_numpy(big[:5])), -1).double().numpy()
    np.testing.assert_allclose(proba[:5], direct, rtol=1e-5)


@pytest.mark.parametrize("Est", [SoftmaxClassifier, OVAClassifier])
def test_pickle_and_joblib_round_trip(Est, blobs, tmp_path):
    X, y = blobs
    clf = Est(random_state=0, **FAST).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.score_samples(X), clf.score_samples(X))


def test_encoder_factory_instance_and_input_shape():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 16))
    y = np.repeat([0, 1], 30)
    X[y == 1] += 1.0
    from skinfo.nn.encoders import SmallCNN

    cnn = SoftmaxClassifier(encoder=SmallCNN, input_shape=(1, 4, 4), **FAST).fit(X, y)
    assert cnn.transform(X).shape == (60, 128)
    instance = MLP(16, (6,))
    est = SoftmaxClassifier(encoder=instance, **FAST).fit(X, y)
    assert est.transform(X).shape == (60, 6)
    assert est.encoder is instance  # the parameter is deep-copied, never trained in place
    assert not any(p.grad is not None for p in instance.parameters())


def test_feature_names_out_and_transform(blobs):
    X, y = blobs
    clf = SoftmaxClassifier(random_state=0, **FAST).fit(X, y)
    Z = clf.transform(X)
    assert Z.shape == (len(X), 16)
    assert list(clf.get_feature_names_out())[:2] == ["softmaxclassifier0", "softmaxclassifier1"]


def test_checkpoint_and_resume_with_skorch_checkpoint(blobs, tmp_path):
    """Long runs: skorch's Checkpoint saves the best weights; a new estimator resumes from them."""
    from skorch.callbacks import Checkpoint

    X, y = blobs
    checkpoint = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path), load_best=False)
    first = SoftmaxClassifier(callbacks=[checkpoint], random_state=0, **FAST).fit(X, y)
    assert (tmp_path / "params.pt").exists()
    best_epoch = int(np.argmin(first.history_[:, "train_loss"])) + 1
    assert best_epoch == FAST["max_epochs"]  # the loss fell every epoch here
    resumed = SoftmaxClassifier(warm_start=True, random_state=1, **{**FAST, "max_epochs": 1}).fit(
        X, y
    )
    resumed.net_.load_params(checkpoint=Checkpoint(dirname=str(tmp_path)))
    np.testing.assert_array_equal(resumed.predict_proba(X), first.predict_proba(X))
    resumed.fit(X, y)  # warm_start: training goes on from the checkpoint
    assert resumed.history_[-1, "train_loss"] < first.history_[-1, "train_loss"]


ZOO = [*fast_classifiers(), *fast_detectors()]
zoo_ids = [repr(e)[:50] for e in ZOO]


@pytest.mark.parametrize("est", ZOO, ids=zoo_ids)
def test_every_estimator_is_reproducible_with_random_state(est, blobs):
    X, y = blobs
    target = None if not hasattr(est, "predict_proba") else y
    first = clone(est).fit(X, target).score_samples(X)
    again = clone(est).fit(X, target).score_samples(X)
    other = clone(est).set_params(random_state=1).fit(X, target).score_samples(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("est", ZOO, ids=zoo_ids)
def test_every_estimator_infers_in_fixed_size_batches(est):
    """No submodule ever sees more than INFERENCE_BATCH_SIZE rows, however large X is."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = None if not hasattr(est, "predict_proba") else (X[:, 0] > 0).astype(int)
    fitted = clone(est).fit(X, y)
    big = rng.normal(size=(20_000, 3)).astype(np.float32)
    seen = []

    def record(module, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].ndim:
            seen.append(len(inputs[0]))

    hooks = [m.register_forward_hook(record) for m in fitted.net_.module_.modules()]
    try:
        scores = fitted.score_samples(big)
        outputs = [fitted.predict_proba(big)] if y is not None else []
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and max(seen) == INFERENCE_BATCH_SIZE
    assert len(scores) == len(big) and all(len(out) == len(big) for out in outputs)
    # the batched result equals predicting a slice on its own
    np.testing.assert_allclose(fitted.score_samples(big[:7]), scores[:7], rtol=1e-5, atol=1e-6)


def test_verbose_prints_per_epoch_table_and_silent_prints_nothing(blobs, capsys):
    X, y = blobs
    OVAClassifier(random_state=0, **{**FAST, "max_epochs": 2}).fit(X, y)
    silent = capsys.readouterr()
    assert silent.out == "" and silent.err == ""
    OVAClassifier(random_state=0, verbose=1, **{**FAST, "max_epochs": 2}).fit(X, y)
    shown = capsys.readouterr()
    lines = [line for line in shown.out.splitlines() if line.strip()]
    assert "epoch" in lines[0] and "train_loss" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2"]  # one row per epoch


def test_auto_device_resolves_to_what_this_machine_has(blobs):
    X, y = blobs
    clf = SoftmaxClassifier(random_state=0, **{**FAST, "device": "auto"}).fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert clf.device_ == expected
    assert next(clf.net_.module_.parameters()).device.type == expected


class _PlainSGD(torch.optim.Optimizer):
    """An optimizer with neither ``fused`` nor ``foreach``."""

    def __init__(self, params, lr=1e-3, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"])
        return loss


def test_update_kernel_options_prefer_fused_and_fall_back():
    for opt in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
        assert update_kernel_options(opt, "cpu") == {"fused": True}
        assert update_kernel_options(opt, None) == {"foreach": True}  # accelerate places it
        # a device without the fused kernel (here torch's "meta" device, whose fused
        # step fails) gets the multi-tensor update
        assert update_kernel_options(opt, "meta") == {"foreach": True}
    assert update_kernel_options(torch.optim.RMSprop, "cpu") == {"foreach": True}
    assert update_kernel_options(_PlainSGD, "cpu") == {}


# the update each optimizer gets, and the options that train it with the plain loop instead
KERNELS = {
    "adam": ("fused", dict(optimizer__fused=False, optimizer__foreach=True)),
    "sgd": ("fused", dict(optimizer__fused=False, optimizer__foreach=True)),
    "rmsprop": ("foreach", dict(optimizer__foreach=False)),
    _PlainSGD: (None, {}),
}


@pytest.mark.parametrize("optimizer", list(KERNELS), ids=lambda o: getattr(o, "__name__", o))
def test_fast_update_trains_like_the_plain_update(optimizer, blobs):
    """The fitted optimizer uses the fast kernel, and training matches the plainer update."""
    X, y = blobs
    params = dict(random_state=0, optimizer=optimizer, **FAST)
    fast = SoftmaxClassifier(**params).fit(X, y)
    kernel, plain = KERNELS[optimizer]
    defaults = fast.net_.optimizer_.defaults
    if kernel is None:
        assert not defaults.get("fused") and not defaults.get("foreach")
    else:
        assert defaults[kernel] is True
    reference = SoftmaxClassifier(**params, **plain).fit(X, y)
    assert not reference.net_.optimizer_.defaults.get(kernel)
    np.testing.assert_allclose(fast.predict_proba(X), reference.predict_proba(X), atol=1e-5)
