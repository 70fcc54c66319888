"""Inference batching: small inputs run small forward passes, rows keep their values.

On the CPU a forward pass runs on the input rows zero-padded to the smallest of
``CPU_BATCH_SIZES`` that holds them (at most ``INFERENCE_BATCH_SIZE``). These
tests check that a row's outputs do not depend on the other rows of the call,
bitwise, for every estimator and every inference method, and that the sizes of
the forward passes are the ones documented.
"""

from functools import partial

import numpy as np
import pytest
import torch
from estimator_zoo import FAST, fast_classifiers, fast_detectors
from sklearn.base import clone
from sklearn.datasets import load_digits

from skinfo import (
    ApproxMassFlowDetector,
    IBINNClassifier,
    MASSClassifier,
    SoftmaxClassifier,
    VIBClassifier,
    _inference,
)
from skinfo._inference import CPU_BATCH_SIZES, INFERENCE_BATCH_SIZE, batch_sizes
from skinfo.nn.encoders import SmallCNN

#: Every public method that runs the fitted network on rows of X.
METHODS = (
    "predict_proba",
    "predict_log_proba",
    "transform",
    "score_samples",
    "decision_function",
    "decision_logits",
    "predict_ova_proba",
    "log_class_density",
    "log_jacobian",
    "rate",
    "marginal_rate",
    "log_likelihood",
    "approximate_mass",
)

IMAGE = (1, 8, 8)
IMAGE_ESTIMATORS = [
    SoftmaxClassifier(encoder=SmallCNN, input_shape=IMAGE, **FAST),
    VIBClassifier(encoder=SmallCNN, input_shape=IMAGE, latent_dim=4, **FAST),
    MASSClassifier(
        encoder=partial(SmallCNN, channels=(8, 16), out_features=16),
        input_shape=IMAGE,
        latent_dim=4,
        **FAST,
    ),
    IBINNClassifier(
        input_shape=IMAGE,
        inn_architecture=("down", 1, "down", 1),
        n_fc_blocks=1,
        hidden_layer_sizes=(8,),
        conv_width=4,
        **FAST,
    ),
    ApproxMassFlowDetector(input_shape=IMAGE, n_scales=2, n_blocks=1, hidden_width=4, **FAST),
]
TABULAR_ESTIMATORS = [*fast_classifiers(), *fast_detectors()]


def _ids(estimators):
    return [repr(est)[:60] for est in estimators]


def _data(est):
    """1100 rows: a full batch of 1024 and a remainder padded to 128."""
    if est.get_params().get("input_shape") is not None:
        X, y = load_digits(return_X_y=True)
        X = np.tile(X / 16, (2, 1))[:1100]
        y = np.tile(y, 2)[:1100]
    else:
        rng = np.random.default_rng(0)
        X = 3 * rng.uniform(size=(1100, 3))
        y = (X[:, 0] > 1.5).astype(int) + (X[:, 1] > 1.5)
    return X, (y if hasattr(est, "predict_proba") else None)


def _methods(est):
    methods = [name for name in METHODS if hasattr(est, name)]
    if getattr(est, "regularizer", "kl") != "kl":
        methods.remove("rate")  # only for the KL regularizer
    return methods


#: (rows, why): each subset runs in its own call.
SUBSETS = [
    ([0], "first row alone"),
    ([19], "a row alone"),
    ([700], "a row from the middle of the full batch"),
    ([1050], "a row of the remainder alone"),
    (list(range(20)), "sklearn's subset check: 20 rows"),
    (list(range(19, -1, -1)), "the same rows reversed"),
    (list(range(40)), "a 64-row pass"),
    (list(range(300, 600)), "a 512-row pass"),
    (list(range(1030, 1040)), "remainder rows together"),
]


ALL_ESTIMATORS = TABULAR_ESTIMATORS + IMAGE_ESTIMATORS


@pytest.mark.parametrize("est", ALL_ESTIMATORS, ids=_ids(ALL_ESTIMATORS))
def test_a_row_has_the_same_output_whatever_the_other_rows(est):
    """Bitwise: each method's output for a row alone, or among a few rows, equals its row
    in a call on 1100 rows (a full 1024-row pass and a padded remainder)."""
    X, y = _data(est)
    fitted = clone(est).fit(X, y)
    for name in _methods(fitted):
        method = getattr(fitted, name)
        full = method(X)
        for rows, why in SUBSETS:
            np.testing.assert_array_equal(method(X[rows]), full[rows], err_msg=f"{name}: {why}")


def _forward_sizes(fitted, method, X):
    """Row counts of every tensor entering any submodule during ``method(X)``."""
    seen = []

    def record(module, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].ndim:
            seen.append(len(inputs[0]))

    hooks = [m.register_forward_hook(record) for m in fitted.net_.module_.modules()]
    try:
        method(X)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.mark.parametrize("est", TABULAR_ESTIMATORS, ids=_ids(TABULAR_ESTIMATORS))
def test_forward_passes_are_as_small_as_the_input_allows(est):
    """A row runs a CPU_BATCH_SIZES[0]-row pass; no pass ever sees more than 1024 rows."""
    X, y = _data(est)
    fitted = clone(est).fit(X, y)
    small = CPU_BATCH_SIZES[0]
    for name in _methods(fitted):
        method = getattr(fitted, name)
        one = _forward_sizes(fitted, method, X[:1])
        assert one and max(one) == small, (name, one)
        hundred = _forward_sizes(fitted, method, X[:100])
        assert max(hundred) == 128, (name, hundred)
        many = _forward_sizes(fitted, method, np.tile(X, (3, 1)))  # 3300 rows
        assert max(many) == INFERENCE_BATCH_SIZE, (name, many)


def test_batch_sizes_of_each_call():
    """The root module sees one pass per 1024 rows, the last padded to the next size."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    clf = SoftmaxClassifier(hidden_layer_sizes=(8,), **FAST).fit(X, (X[:, 0] > 0).astype(int))
    seen = []
    hook = clf.net_.module_.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    try:
        for n in (1, 31, 32, 33, 1024, 1025, 2600):
            seen.clear()
            clf.predict_proba(rng.normal(size=(n, 3)))
            full, rest = divmod(n, INFERENCE_BATCH_SIZE)
            expected = [INFERENCE_BATCH_SIZE] * full
            if rest:
                expected.append(min(s for s in CPU_BATCH_SIZES if s >= rest))
            assert seen == expected, n
    finally:
        hook.remove()


def test_sizes_are_sorted_multiples_of_32_up_to_the_batch_size():
    assert list(CPU_BATCH_SIZES) == sorted(set(CPU_BATCH_SIZES))
    assert all(size % 32 == 0 for size in CPU_BATCH_SIZES)
    assert CPU_BATCH_SIZES[-1] == INFERENCE_BATCH_SIZE
    assert batch_sizes("cpu") == batch_sizes(torch.device("cpu")) == CPU_BATCH_SIZES
    # elsewhere every pass is a full batch, as the GPU libraries pick kernels by size
    assert batch_sizes("cuda") == batch_sizes("cuda:1") == (INFERENCE_BATCH_SIZE,)


def test_full_padding_gives_the_same_values(monkeypatch):
    """Padding every pass to 1024 rows (the sizes on a GPU) changes no value on the CPU."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    clf = SoftmaxClassifier(hidden_layer_sizes=(8,), **FAST).fit(X, (X[:, 0] > 0).astype(int))
    small = [clf.predict_proba(X[:1]), clf.predict_proba(X[:40]), clf.score_samples(X)]
    monkeypatch.setattr(_inference, "CPU_BATCH_SIZES", (INFERENCE_BATCH_SIZE,))
    padded = [clf.predict_proba(X[:1]), clf.predict_proba(X[:40]), clf.score_samples(X)]
    for a, b in zip(small, padded):
        np.testing.assert_array_equal(a, b)


def test_latency_benchmark_runs_on_tiny_settings():
    from benchmarks import speed

    rows, data = speed.latency(repeats=2, n_large=3000, max_epochs=1)
    names = [row[0] for row in rows]
    assert names[0] == "MLPClassifier (sklearn)" and "SoftmaxClassifier" in names
    assert all(row[1] > 0 for row in rows)
    assert data["large"]["new_s"] > 0 and data["large"]["old_s"] > 0
