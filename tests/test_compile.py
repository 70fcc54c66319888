"""``compile=True``: the training objective through ``torch.compile``, and its fallback."""

import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from estimator_zoo import fast_classifiers
from sklearn.base import clone
from sklearn.datasets import make_blobs

from skinfo import MASSClassifier, SoftmaxClassifier
from skinfo.objectives import SoftmaxCrossEntropy

FAST = dict(hidden_layer_sizes=(16,), max_epochs=3, lr=1e-2, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


class _SpyCompile:
    """Stands in for ``torch.compile``: counts the calls of the "compiled" criterion."""

    def __init__(self, fail: bool = False):
        self.compiled, self.calls, self.fail = 0, 0, fail

    def __call__(self, criterion, **options):
        self.compiled += 1

        def run(*args, **kwargs):
            self.calls += 1
            if self.fail:
                raise RuntimeError("no C++ compiler\nlong details")
            return criterion(*args, **kwargs)

        return run


def test_compile_must_be_a_bool(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="'compile' parameter .*must be a bool"):
        SoftmaxClassifier(compile="yes", **FAST).fit(X, y)


def test_training_batches_go_through_the_compiled_objective(blobs, monkeypatch):
    X, y = blobs
    spy = _SpyCompile()
    monkeypatch.setattr(torch, "compile", spy)
    est = MASSClassifier(
        compile=True, validation_fraction=0.2, latent_dim=2, n_components=2, batch_size=32, **FAST
    ).fit(X, y)
    # 120 training rows in batches of 32: 4 batches per epoch, compiled once per fit;
    # the validation batches run eagerly
    assert spy.compiled == 1 and spy.calls == 3 * 4
    eager = clone(est).set_params(compile=False).fit(X, y)
    for name in ("train_loss", "valid_loss", "train_log_jacobian"):
        np.testing.assert_allclose(est.history_[:, name], eager.history_[:, name], rtol=1e-6)
    # the compiled callable is not pickled and is rebuilt when training goes on
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    restored.partial_fit(X, y)
    assert spy.compiled == 2 and spy.calls == 3 * 4 + 4


def test_compiler_failure_falls_back_to_eager_training(blobs, monkeypatch):
    X, y = blobs
    spy = _SpyCompile(fail=True)
    monkeypatch.setattr(torch, "compile", spy)
    with pytest.warns(RuntimeWarning, match="objective failed .RuntimeError: no C.. compiler."):
        est = SoftmaxClassifier(compile=True, **FAST).fit(X, y)
    assert spy.calls == 1  # one failed attempt, then eager for the rest of the fit
    assert est.net_.compile_objective is False
    eager = SoftmaxClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), eager.predict_proba(X))


def test_an_error_of_the_objective_itself_is_not_hidden(blobs, monkeypatch):
    X, y = blobs
    monkeypatch.setattr(torch, "compile", _SpyCompile(fail=True))

    def broken(self, *args, **kwargs):
        raise ValueError("broken objective")

    monkeypatch.setattr(SoftmaxCrossEntropy, "forward", broken)
    with pytest.raises(ValueError, match="broken objective"):
        SoftmaxClassifier(compile=True, **FAST).fit(X, y)


needs_compiler = pytest.mark.skipif(
    not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")),
    reason="torch.compile on CPU needs a C++ compiler",
)


ZOO = fast_classifiers()  # ApproxMassFlowDetector takes no compile (double backward)


@pytest.mark.slow
@needs_compiler
@pytest.mark.parametrize("est", ZOO, ids=lambda e: type(e).__name__)
def test_every_estimator_trains_the_same_with_torch_compile(est, blobs):
    """The real compiler: the same losses as eager training, to float32 rounding."""
    X, y = blobs
    eager = clone(est).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager training warns
        compiled = clone(est).set_params(compile=True).fit(X, y)
    assert compiled.net_.compile_objective
    np.testing.assert_allclose(
        compiled.history_[:, "train_loss"], eager.history_[:, "train_loss"], rtol=1e-4, atol=1e-5
    )
    restored = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_allclose(restored.score_samples(X), compiled.score_samples(X), rtol=1e-6)


@pytest.mark.slow
@needs_compiler
def test_a_compiler_failure_in_the_backward_graph_also_falls_back(blobs, monkeypatch):
    """A failure compiling the backward graph (at ``loss.backward()``) is caught too."""
    graph = pytest.importorskip("torch._inductor.graph")
    import torch
    import torch._functorch.config
    import torch._inductor.config

    torch._dynamo.reset()  # no graph of an earlier test may be reused
    codegen = graph.GraphLowering.codegen

    def failing_backward(self):
        if self.is_backward:
            raise RuntimeError("simulated failure compiling the backward graph")
        return codegen(self)

    monkeypatch.setattr(graph.GraphLowering, "codegen", failing_backward)
    X, y = blobs
    # no cached kernels either (torch's config objects are patched with their own helper)
    no_caches = (
        torch._inductor.config.patch(fx_graph_cache=False),
        torch._functorch.config.patch(enable_autograd_cache=False),
    )
    with no_caches[0], no_caches[1]:
        with pytest.warns(RuntimeWarning, match="RuntimeError: simulated failure"):
            est = SoftmaxClassifier(compile=True, **FAST).fit(X, y)
    assert len(est.history_) == FAST["max_epochs"] and est.net_.compile_objective is False
    eager = SoftmaxClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), eager.predict_proba(X))


@pytest.mark.slow
@needs_compiler
def test_changing_configurations_in_one_process_keep_compiling(recwarn):
    """Other class counts (so other Jacobian subsample fractions) and widths compile anew,
    with no symbolic-float failure."""
    for centers, width in [(3, 8), (4, 8), (3, 12), (5, 8), (4, 16), (3, 8)]:
        X, y = make_blobs(n_samples=90, centers=centers, n_features=6, random_state=0)
        est = MASSClassifier(
            latent_dim=2,
            n_components=2,
            batch_size=32,
            compile=True,
            **{**FAST, "max_epochs": 1, "hidden_layer_sizes": (width,)},
        ).fit(X.astype(np.float32), y)
        fell_back = [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
        assert not fell_back, (centers, width, fell_back)
        assert est.net_.compile_objective
