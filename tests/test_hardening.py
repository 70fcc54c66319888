"""Files from others, failed fits, divergence, non-finite outputs, devices and threads."""

import copy
import json
import threading
import zipfile

import numpy as np
import pytest
import torch
from estimator_zoo import fast_classifiers, fast_detectors
from sklearn.base import clone
from sklearn.datasets import make_blobs
from skorch.callbacks import Callback

import skinfo
from skinfo import SoftmaxClassifier, TrainingDivergedError, TrainingDivergedWarning

FAST = dict(hidden_layer_sizes=(8,), max_epochs=2, lr=1e-2, device="cpu", random_state=0)
ALL = [*fast_classifiers(), *fast_detectors()]


def ids(est):
    return repr(est)[:60]


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=90, centers=3, n_features=4, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    """A real file and its payload, to tamper with."""
    X, y = data
    path = tmp_path_factory.mktemp("saved") / "model.skinfo"
    SoftmaxClassifier(**FAST).fit(X, y).save(path)
    return torch.load(path, weights_only=True)


def _write(tmp_path, payload, name="crafted.skinfo"):
    path = tmp_path / name
    torch.save(payload, path)
    return path


def _with(payload, key, **changes):
    entries = json.loads(payload[key])
    entries.update(changes)
    return {**payload, key: json.dumps(entries)}


# ------------------------------------------------------------------ files from others
@pytest.mark.parametrize(
    "target",
    [
        "skinfo.nn.native:subprocess.run",
        "skinfo.persistence:os.system",
        "skinfo.__main__:main",
        "subprocess:run",
        "torch.optim:os.system",
        "skinfo.nn.encoders:torch.load",
    ],
)
def test_callable_outside_the_allowlist_is_refused_and_runs_nothing(saved, tmp_path, target):
    marker = tmp_path / "marker"
    crafted = _with(
        saved,
        "params",
        encoder={"__callable__": target},
        input_shape={"__tuple__": ["sh", "-c", f"touch {marker}"]},
    )
    path = _write(tmp_path, crafted)
    with pytest.raises(ValueError, match=f"{path}.*not one the safe format allows"):
        skinfo.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(hidden_layer_sizes={"__tuple__": [200_000_000]}), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes={"__tuple__": [60_000, 60_000]}), "do not fit"),
        (dict(max_epochs=-1), "max_epochs"),
        (dict(activation="os.system"), "activation"),
        (dict(device="cuda:99"), None),  # the device parameter is only used by a new fit
        (dict(no_such_parameter=1), "no parameter"),
    ],
)
def test_parameters_from_a_file_get_the_constructor_checks(saved, tmp_path, changes, match):
    path = _write(tmp_path, _with(saved, "params", **changes))
    if match is None:
        assert skinfo.load(path).device == "cuda:99"
        return
    with pytest.raises(ValueError, match=match):
        skinfo.load(path)


def test_array_dtype_bomb_is_refused(saved, tmp_path):
    bomb = {"__ndarray__": [0], "dtype": "(260000000,)f8"}
    path = _write(tmp_path, _with(saved, "fitted", classes_=bomb))
    with pytest.raises(ValueError, match="dtype"):
        skinfo.load(path)


@pytest.mark.parametrize(
    "attr, value",
    [
        ("predict", 1),
        ("__class__", "x"),
        ("net_", 1),
        ("n_features_in_", -3),
        ("classes_", {"__ndarray__": [1], "dtype": "<i8"}),
        ("history_", 5),
        ("device_", 7),
    ],
)
def test_only_declared_fitted_attributes_of_the_right_kind_are_set(saved, tmp_path, attr, value):
    path = _write(tmp_path, _with(saved, "fitted", **{attr: value}))
    with pytest.raises(ValueError, match=str(path)):
        skinfo.load(path)


def _deep(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "make",
    [
        lambda p, s: p.write_bytes(b""),
        lambda p, s: p.write_text("just some text\n"),
        lambda p, s: p.write_bytes(_zip_bytes(p, s)[: len(_zip_bytes(p, s)) // 2]),
        lambda p, s: torch.save({k: v for k, v in s.items() if k != "params"}, p),
        lambda p, s: torch.save({k: v for k, v in s.items() if k != "module"}, p),
        lambda p, s: torch.save({**s, "params": "{not json"}, p),
        lambda p, s: torch.save({**s, "params": "[1, 2]"}, p),
        lambda p, s: torch.save({**s, "fitted": json.dumps({"history_": _deep(50)})}, p),
        lambda p, s: torch.save({**s, "params": "[" * 100_000 + "]" * 100_000}, p),
        lambda p, s: torch.save({**s, "estimator": "NeuralEstimator"}, p),
        lambda p, s: torch.save({**s, "estimator": "load"}, p),
        lambda p, s: torch.save({**s, "estimator": "ApproxMassFlowDetector"}, p),
        lambda p, s: torch.save({**s, "module": {"w": 1}}, p),
        lambda p, s: torch.save([1, 2, 3], p),
    ],
    ids=[
        "empty",
        "text",
        "truncated-zip",
        "no-params",
        "no-weights",
        "bad-json",
        "params-not-a-mapping",
        "deep-nesting",
        "json-recursion",
        "base-class",
        "a-function",
        "wrong-estimator",
        "weights-not-tensors",
        "not-a-dict",
    ],
)
def test_malformed_files_give_a_value_error_naming_the_file(saved, tmp_path, make):
    path = tmp_path / "broken.skinfo"
    make(path, saved)
    with pytest.raises(ValueError, match=str(path)):
        skinfo.load(path)


def _zip_bytes(path, payload):
    torch.save(payload, path)
    data = path.read_bytes()
    assert zipfile.is_zipfile(path)
    return data


# ------------------------------------------------------------------ failed fits
class _FailAt(Callback):
    """Raise at the given (1-based) training batch of a fit."""

    def __init__(self, batch=2, error=TrainingDivergedError):
        self.batch = batch
        self.error = error

    def initialize(self):
        self.seen = 0
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.seen += 1
            if self.seen == self.batch:
                with torch.no_grad():
                    for p in net.module_.parameters():
                        p.fill_(float("nan"))
                raise self.error("failing on purpose")


def _outputs(est, X):
    out = [est.score_samples(X)]
    if hasattr(est, "predict_proba"):
        out.append(est.predict_proba(X))
    return out


@pytest.mark.parametrize("est", ALL, ids=ids)
def test_a_failed_refit_leaves_the_previous_model(est, data):
    X, y = data
    y = None if not hasattr(est, "predict_proba") else y
    fitted = clone(est).fit(X, y)
    before = _outputs(fitted, X)
    state = dict(vars(fitted))
    with pytest.raises(TrainingDivergedError):
        fitted.set_params(callbacks=[_FailAt()], max_epochs=4).fit(X, y)
    assert set(vars(fitted)) == set(state)
    for a, b in zip(before, _outputs(fitted, X)):
        np.testing.assert_array_equal(a, b)
    assert fitted.n_iter_ == state["n_iter_"]
    # a failed first fit leaves it unfitted
    fresh = clone(est).set_params(callbacks=[_FailAt()])
    with pytest.raises(TrainingDivergedError):
        fresh.fit(X, y)
    assert not any(name.endswith("_") and not name.startswith("__") for name in vars(fresh))


@pytest.mark.parametrize("est", fast_classifiers()[:2], ids=ids)
def test_a_failed_warm_start_restores_the_weights_and_optimizer(est, data):
    X, y = data
    # one batch per epoch: the callback fails in the second fit's second epoch
    epochs = est.max_epochs
    failing = _FailAt(batch=epochs + 2, error=KeyError)
    fitted = clone(est).set_params(warm_start=True, callbacks=[failing]).fit(X, y)
    before = _outputs(fitted, X)
    optimizer_state = copy.deepcopy(fitted.net_.optimizer_.state_dict()["state"])
    with pytest.raises(KeyError):
        fitted.fit(X, y)
    for a, b in zip(before, _outputs(fitted, X)):
        np.testing.assert_array_equal(a, b)
    assert len(fitted.net_.history) == len(fitted.history_) == epochs
    after = fitted.net_.optimizer_.state_dict()["state"]
    assert all(torch.equal(after[k]["exp_avg"], v["exp_avg"]) for k, v in optimizer_state.items())
    for _, callback in fitted.net_.callbacks_:  # the restored net holds the restored callback
        if isinstance(callback, _FailAt):
            callback.batch = -1
    fitted.fit(X, y)  # and it can go on training
    assert len(fitted.history_) == 2 * epochs


# ------------------------------------------------------------------ divergence
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_exploding_finite_loss_raises_or_restores(optimizer, data):
    X, y = data
    params = dict(optimizer=optimizer, lr=1e6, max_epochs=5, hidden_layer_sizes=(16,))
    clf = SoftmaxClassifier(device="cpu", random_state=0, **params)
    with pytest.raises(TrainingDivergedError, match="diverged"):
        clf.fit(X, y)
    restoring = SoftmaxClassifier(device="cpu", random_state=0, on_nan="restore", **params)
    try:
        with pytest.warns(TrainingDivergedWarning):
            restoring.fit(X, y)
    except TrainingDivergedError:
        pass  # diverged in its first epoch: no earlier weights to restore


def test_a_normal_fit_does_not_trip_the_divergence_check(data):
    X, y = data
    clf = SoftmaxClassifier(lr=1e-3, max_epochs=20, device="cpu", random_state=0)
    clf.fit(X * 1000, y)  # unscaled input: large first losses, then falling ones
    assert clf.n_iter_ == 20


def test_nan_output_from_nan_weights_names_the_weights(data):
    X, y = data
    clf = SoftmaxClassifier(**FAST).fit(X, y)
    with torch.no_grad():
        next(clf.net_.module_.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="weights are not finite"):
        clf.predict_proba(X)


# ------------------------------------------------------------------ non-finite outputs
@pytest.mark.parametrize("est", ALL, ids=ids)
def test_infinite_outputs_never_leave_silently(est, data):
    X, y = data
    y = None if not hasattr(est, "predict_proba") else y
    fitted = clone(est).fit(X, y)
    X_bad = X.copy()
    X_bad[3, 1] = 1e30
    methods = ["score_samples", "predict_proba", "transform", "decision_function"]
    for name in methods:
        if not hasattr(fitted, name):
            continue
        try:
            out = getattr(fitted, name)(X_bad)
        except ValueError as error:
            assert "row" in str(error)
            continue
        assert np.isfinite(out).all(), name


# ------------------------------------------------------------------ devices
@pytest.mark.parametrize("device", ["gpu", "bogus", "cuda:99", "cpu:3", "", "mps:7"])
def test_bad_device_names_give_a_value_error(device, data):
    X, y = data
    with pytest.raises(ValueError, match="'device' parameter.*available here: 'auto', 'cpu'"):
        SoftmaxClassifier(**{**FAST, "device": device}).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_cuda_is_a_value_error(data):
    X, y = data
    with pytest.raises(ValueError, match="no CUDA"):
        SoftmaxClassifier(**{**FAST, "device": "cuda"}).fit(X, y)


# ------------------------------------------------------------------ threads
@pytest.mark.parametrize("est", ALL, ids=ids)
def test_predicting_from_threads_leaves_the_callers_random_stream_alone(est, data):
    X, y = data
    y = None if not hasattr(est, "predict_proba") else y
    fitted = clone(est).fit(X, y)
    expected = fitted.score_samples(X)
    torch.manual_seed(7)
    reference = torch.rand(2000)
    stop = threading.Event()
    results, errors = [], []

    def work():
        try:
            while not stop.is_set():
                results.append(fitted.score_samples(X))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        torch.manual_seed(7)
        drawn = torch.cat([torch.rand(1) for _ in range(2000)])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert torch.equal(drawn, reference)
    assert results and all(np.array_equal(r, expected) for r in results)
