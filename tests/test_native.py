"""Tests of the compiled CPU kernels (skinfo.nn.native) and their use by VIB."""

import os
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import skinfo.nn.native as native
import skinfo.nn.vib as vib
from skinfo import VIBClassifier
from skinfo.nn.vib import STD_SHIFT, VIBNetwork, sample_decode_with_rate, sample_with_rate

HAVE_COMPILER = native._compiler() is not None
needs_compiler = pytest.mark.skipif(not HAVE_COMPILER, reason="no C compiler on this machine")


def reference(h, eps, grad_z, grad_rate, weight=None, bias=None, grad_logits=None):
    """z, rate, logits and the gradients of
    <grad_z, z> + <grad_logits, logits> + grad_rate * rate in float64 autograd."""
    leaves = [h.detach().double().requires_grad_()]
    if weight is not None:
        leaves += [
            weight.detach().double().requires_grad_(),
            bias.detach().double().requires_grad_(),
        ]
    mean, rho = leaves[0].chunk(2, dim=-1)
    std = F.softplus(rho - STD_SHIFT)
    z = mean + std * eps.double()
    rate = (0.5 * (mean**2 + std**2 - 1.0) - torch.log(std)).sum(-1).mean()
    objective = grad_rate * rate
    if grad_z is not None:
        objective = objective + (z * grad_z.double()).sum()
    logits = None
    if weight is not None:
        logits = F.linear(z, *leaves[1:])
        if grad_logits is not None:
            objective = objective + (logits * grad_logits.double()).sum()
    grads = torch.autograd.grad(objective, leaves, allow_unused=True)
    return z.detach(), rate.detach(), (None if logits is None else logits.detach()), grads


def kernel_call(kernels, h, eps, grad_z, grad_rate, weight=None, bias=None, grad_logits=None):
    """Call the kernels directly: z, rate, logits, grad_h, grad_W, grad_bias."""
    b, k = eps.shape
    c = 0 if weight is None else weight.shape[0]
    z, rate, logits = torch.empty(b, k), torch.empty(()), torch.empty(b, c)
    aux = torch.empty(2, b, k)
    grad_h, grad_w, grad_b = torch.empty(b, 2 * k), torch.full((c, k), 7.0), torch.full((c,), 7.0)

    def ptr(t):
        return None if t is None else t.data_ptr()

    status = kernels.forward(
        *(ptr(h), ptr(eps), STD_SHIFT, ptr(weight), ptr(bias)),
        *(ptr(z), ptr(logits), ptr(rate), ptr(aux), b, k, c),
    )
    assert status == 0
    grad_rate = torch.tensor(float(grad_rate))  # kept alive during the call
    kernels.backward(
        *(ptr(h), ptr(aux), ptr(weight), ptr(z), ptr(grad_z), ptr(grad_logits)),
        *(ptr(grad_rate), ptr(grad_h), ptr(grad_w), ptr(grad_b), b, k, c),
    )
    return z, rate, logits, grad_h, grad_w, grad_b


@pytest.fixture(scope="module")
def kernels():
    if not HAVE_COMPILER:
        pytest.skip("no C compiler on this machine")
    loaded = native.vib_kernels()
    assert loaded is not None, native.native_status()
    return loaded


@needs_compiler
def test_status_says_loaded():
    if os.environ.get("SKINFO_NATIVE", "1") == "0":
        assert native.native_status().startswith("disabled")
    else:
        assert native.native_status().startswith("loaded: ")


@pytest.mark.parametrize("b,k", [(1, 1), (3, 19), (128, 32), (5, 40), (2, 7)])
@pytest.mark.parametrize("with_grad_z", [True, False])
@pytest.mark.parametrize("n_classes", [0, 1, 10, 17, 40])
def test_kernels_match_float64_autograd(kernels, b, k, with_grad_z, n_classes):
    gen = torch.Generator().manual_seed(b * 100 + k)
    h = 3 * torch.randn(b, 2 * k, generator=gen)
    # rho - 5 over every branch of softplus: linear (> 20), log1p and e^t (< -20)
    h[:, k:] = torch.linspace(-40.0, 40.0, b * k).reshape(b, k)[torch.randperm(b, generator=gen)]
    eps = torch.randn(b, k, generator=gen)
    grad_z = torch.randn(b, k, generator=gen) if with_grad_z else None
    weight = bias = grad_logits = None
    if n_classes:
        weight = torch.randn(n_classes, k, generator=gen)
        bias = torch.randn(n_classes, generator=gen)
        grad_logits = torch.randn(b, n_classes, generator=gen)
    got = kernel_call(kernels, h, eps, grad_z, 0.37, weight, bias, grad_logits)
    z64, rate64, logits64, grads64 = reference(h, eps, grad_z, 0.37, weight, bias, grad_logits)
    z, rate, logits, grad_h, grad_w, grad_b = got
    torch.testing.assert_close(z.double(), z64, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(rate.double(), rate64, rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(grad_h.double(), grads64[0], rtol=2e-5, atol=2e-6)
    if n_classes:
        scale = float(logits64.abs().max())
        torch.testing.assert_close(logits.double(), logits64, rtol=1e-5, atol=1e-6 * scale)
        # sums over the batch: float32 rounding relative to the largest entry
        for got_grad, want in ((grad_w, grads64[1]), (grad_b, grads64[2])):
            scale = float(want.abs().max())
            torch.testing.assert_close(got_grad.double(), want, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("with_grad_z", [True, False])
def test_kernels_without_logit_gradient_leave_decoder_gradients_alone(kernels, with_grad_z):
    # only z and the rate used downstream: grad_W and grad_bias are not written
    gen = torch.Generator().manual_seed(3)
    h, eps = torch.randn(4, 10, generator=gen), torch.randn(4, 5, generator=gen)
    weight, bias = torch.randn(2, 5, generator=gen), torch.randn(2, generator=gen)
    grad_z = torch.randn(4, 5, generator=gen) if with_grad_z else None
    z, rate, logits, grad_h, grad_w, grad_b = kernel_call(
        kernels, h, eps, grad_z, 1.5, weight, bias, None
    )
    assert (grad_w == 7.0).all() and (grad_b == 7.0).all()
    z64, rate64, logits64, grads64 = reference(h, eps, grad_z, 1.5, weight, bias, None)
    torch.testing.assert_close(logits.double(), logits64, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_h.double(), grads64[0], rtol=2e-5, atol=2e-6)


def test_softplus_and_log_accuracy(kernels):
    # z = std and 2 * rate = sum of (std^2 - 1 - 2 log std) with mean = 0, eps = 1, one row
    t = torch.linspace(-80.0, 40.0, 20001)
    k = t.numel()
    h = torch.cat([torch.zeros(k), t + STD_SHIFT]).reshape(1, 2 * k)
    z = kernel_call(kernels, h, torch.ones(1, k), None, 1.0)[0]
    exact = F.softplus(t.double())
    rel = ((z[0].double() - exact).abs() / exact).max()
    assert rel < 4e-7  # ~3 ulp, as close as torch's float32 softplus (1e-7) up to 2 ulp
    for lo, hi in [(-80.0, -20.0), (-20.0, 20.0), (20.0, 40.0)]:
        t = torch.linspace(lo, hi, 4001)
        k = t.numel()
        h = torch.cat([torch.zeros(k), t + STD_SHIFT]).reshape(1, 2 * k)
        rate = kernel_call(kernels, h, torch.ones(1, k), None, 1.0)[1]
        std = F.softplus(t.double())
        exact = (0.5 * (std**2 - 1.0) - torch.log(std)).sum()
        assert float(rate) == pytest.approx(float(exact), rel=1e-6, abs=1e-3)


def test_nan_and_inf_propagate(kernels):
    h = torch.zeros(2, 6)
    h[0, 3] = float("nan")  # rho of row 0, first dimension
    z, rate, _, grad, _, _ = kernel_call(kernels, h, torch.ones(2, 3), torch.ones(2, 3), 1.0)
    assert torch.isnan(z[0, 0]) and torch.isfinite(z[1]).all() and torch.isnan(rate)
    assert torch.isnan(grad[0, 3])
    h = torch.zeros(2, 6)
    h[1, 4] = -float("inf")  # std -> 0: the rate (-log std) is +inf, as in PyTorch
    rate = kernel_call(kernels, h, torch.ones(2, 3), None, 1.0)[1]
    assert rate == float("inf")


def test_sample_with_rate_uses_kernels_for_float32_cpu(kernels):
    h = torch.randn(6, 8, requires_grad=True)
    z, rate = sample_with_rate(h, torch.randn(6, 4))
    assert type(z.grad_fn).__name__ == "_NativeVIBHeadBackward"
    h64 = h.detach().double().requires_grad_()
    z, rate = sample_with_rate(h64, torch.randn(6, 4, dtype=torch.float64))
    assert type(z.grad_fn).__name__ == "_SampleWithRateBackward"  # float64: PyTorch path


def test_native_and_torch_paths_agree(kernels, monkeypatch):
    gen = torch.Generator().manual_seed(1)
    h = (2 * torch.randn(64, 40, generator=gen)).requires_grad_()
    eps = torch.randn(64, 20, generator=gen)
    w = torch.randn(64, 20, generator=gen)
    outputs = {}
    for name, kernels_or_none in (("native", kernels), ("torch", None)):
        monkeypatch.setattr(vib, "vib_kernels", lambda k=kernels_or_none: k)
        z, rate = sample_with_rate(h, eps)
        grad = torch.autograd.grad((z * w).sum() + 0.3 * rate, h)[0]
        outputs[name] = (z, rate, grad)
    for a, b in zip(outputs["native"], outputs["torch"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # only the rate used (z's gradient is None inside the node): same gradient
    monkeypatch.setattr(vib, "vib_kernels", lambda: kernels)
    grad = torch.autograd.grad(sample_with_rate(h, eps)[1], h)[0]
    monkeypatch.setattr(vib, "vib_kernels", lambda: None)
    torch.testing.assert_close(grad, torch.autograd.grad(sample_with_rate(h, eps)[1], h)[0])


def test_sample_decode_paths_agree(kernels, monkeypatch):
    gen = torch.Generator().manual_seed(2)
    h = (2 * torch.randn(32, 16, generator=gen)).requires_grad_()
    eps = torch.randn(32, 8, generator=gen)
    decoder = torch.nn.Linear(8, 5)
    w_z, w_logits = torch.randn(32, 8, generator=gen), torch.randn(32, 5, generator=gen)
    outputs = {}
    for name, kernels_or_none in (("native", kernels), ("torch", None)):
        monkeypatch.setattr(vib, "vib_kernels", lambda k=kernels_or_none: k)
        z, logits, rate = sample_decode_with_rate(h, eps, decoder.weight, decoder.bias)
        node = type(z.grad_fn).__name__
        assert node == ("_NativeVIBHeadBackward" if name == "native" else "_SampleWithRateBackward")
        objective = (z * w_z).sum() + (logits * w_logits).sum() + 0.3 * rate
        grads = torch.autograd.grad(objective, [h, decoder.weight, decoder.bias])
        outputs[name] = (z, logits, rate, *grads)
    for a, b in zip(outputs["native"], outputs["torch"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_network_forward_keeps_decoder_hooks(kernels):
    # a hooked decoder is called as a module (the hook runs); a plain one is fused
    net = VIBNetwork(torch.nn.Identity(), 6, 3, 2, stochastic=True, n_samples=2)
    x = torch.randn(4, 6)
    assert type(net(x)[1].grad_fn).__name__ == "_NativeVIBHeadBackward"
    calls = []
    handle = net.decoder.register_forward_hook(lambda module, args, out: calls.append(out))
    torch.manual_seed(0)
    z, logits, _ = net(x)
    handle.remove()
    assert len(calls) == 1 and calls[0] is logits
    torch.manual_seed(0)
    z_fused, logits_fused, _ = net(x)
    torch.testing.assert_close(z_fused, z)
    torch.testing.assert_close(logits_fused, logits, rtol=1e-5, atol=1e-6)


def test_non_contiguous_inputs(kernels):
    base = torch.randn(12, 10)
    h = base.t()[:, :8].requires_grad_()  # (10, 8), not contiguous
    eps = torch.randn(4, 10).t()
    z, rate = sample_with_rate(h, eps)
    grad = torch.autograd.grad((z * torch.arange(40.0).reshape(10, 4)).sum() + rate, h)[0]
    z64, rate64, _, (grad64,) = reference(h, eps, torch.arange(40.0).reshape(10, 4), 1.0)
    torch.testing.assert_close(z.double(), z64, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), grad64, rtol=1e-5, atol=1e-5)


def test_native_path_is_first_order_only(kernels):
    h = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.grad(sample_with_rate(h, torch.randn(3, 2))[1], h, create_graph=True)


def test_fit_agrees_with_torch_path(kernels, monkeypatch):
    # same seed -> same eps draws: the two paths train the same model up to rounding
    rng = np.random.RandomState(0)
    X = rng.randn(120, 6).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    params = dict(hidden_layer_sizes=(16,), latent_dim=4, max_epochs=5, random_state=0)
    proba = {}
    for name, kernels_or_none in (("native", kernels), ("torch", None)):
        monkeypatch.setattr(vib, "vib_kernels", lambda k=kernels_or_none: k)
        clf = VIBClassifier(**params).fit(X, y)
        proba[name] = clf.predict_proba(X)
        assert clf.history_[-1, "train_rate"] > 0
    np.testing.assert_allclose(proba["native"], proba["torch"], atol=1e-4)


@needs_compiler
def test_build_is_cached_and_safe_to_run_concurrently(tmp_path):
    paths, errors = [], []

    def build():
        try:
            paths.append(native.build_library("vib_kernels", cache_dir=tmp_path))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(paths)) == 1
    built = paths[0]
    assert built.parent == tmp_path and built.exists()
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no partial files left
    mtime = built.stat().st_mtime_ns
    assert native.build_library("vib_kernels", cache_dir=tmp_path) == built
    assert built.stat().st_mtime_ns == mtime  # reused, not rebuilt
    kernels = native.load_vib_kernels(cache_dir=tmp_path)
    assert kernels.path == built


def test_missing_compiler_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match="compiling vib_kernels.c failed"):
        native.build_library("vib_kernels", cache_dir=tmp_path, compiler=str(tmp_path / "no-cc"))


@needs_compiler
def test_failing_compilation_is_reported(tmp_path, monkeypatch):
    (tmp_path / "broken.c").write_text("this is not C;\n")
    monkeypatch.setattr(native, "SOURCE_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="compiling broken.c failed"):
        native.build_library("broken", cache_dir=tmp_path / "cache")


def test_no_compiler_falls_back(monkeypatch):
    monkeypatch.setattr(native, "_compiler", lambda: None)
    native._loaded_vib_kernels.cache_clear()
    try:
        assert native.vib_kernels() is None
        assert native.native_status() == "unavailable: no C compiler found ($CC, cc, gcc or clang)"
        # the estimator trains through PyTorch operations
        h = torch.randn(4, 6, requires_grad=True)
        z, _ = sample_with_rate(h, torch.randn(4, 3))
        assert type(z.grad_fn).__name__ == "_SampleWithRateBackward"
    finally:
        native._loaded_vib_kernels.cache_clear()


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("SKINFO_NATIVE", "0")
    native._loaded_vib_kernels.cache_clear()
    try:
        assert native.vib_kernels() is None
        assert native.native_status() == "disabled: SKINFO_NATIVE=0"
    finally:
        native._loaded_vib_kernels.cache_clear()


@needs_compiler
def test_self_test_rejects_a_wrong_kernel(tmp_path, monkeypatch):
    real = native.VIBKernels.__init__

    def broken_init(self, library, path):
        real(self, library, path)
        forward = self.forward

        def wrong_forward(*args):
            return forward(*args[:2], args[2] + 0.01, *args[3:])  # a slightly wrong shift

        self.forward = wrong_forward

    monkeypatch.setattr(native.VIBKernels, "__init__", broken_init)
    with pytest.raises(RuntimeError, match="self-test failed: z"):
        native.load_vib_kernels(cache_dir=tmp_path)


def test_use_native_switches_to_pytorch(kernels):
    h = torch.randn(4, 6, requires_grad=True)
    with native.use_native(False):
        assert native.native_status() == "disabled: inside use_native(False)"
        z, _ = sample_with_rate(h, torch.randn(4, 3))
        assert type(z.grad_fn).__name__ == "_SampleWithRateBackward"
    z, _ = sample_with_rate(h, torch.randn(4, 3))
    assert type(z.grad_fn).__name__ == "_NativeVIBHeadBackward"


def test_far_negative_std_underflows_like_pytorch(kernels):
    # e^t is subnormal for t in (-104, -87.3) and 0 below: the rate is finite, then +inf
    for t, finite in [(-95.0, True), (-103.0, True), (-110.0, False)]:
        h = torch.tensor([[0.0, t + STD_SHIFT]])
        rate = kernel_call(kernels, h, torch.ones(1, 1), None, 1.0)[1]
        _, reference_rate = vib._SampleWithRate.apply(h, torch.ones(1, 1))
        assert bool(torch.isfinite(rate)) == finite == bool(torch.isfinite(reference_rate))
        if t == -95.0:  # e^-95 still has 12 significant bits as a subnormal
            assert float(rate) == pytest.approx(float(reference_rate), rel=1e-5)


def test_rate_accurate_near_collapse(kernels):
    # mean ~ 0, std ~ 1: the rate is a small difference of large sums
    gen = torch.Generator().manual_seed(4)
    k = 1024
    rho = math_log_expm1(1.0) + STD_SHIFT + 1e-3 * torch.randn(32, k, generator=gen)
    h = torch.cat([1e-3 * torch.randn(32, k, generator=gen), rho], dim=1)
    rate = kernel_call(kernels, h, torch.zeros(32, k), None, 1.0)[1]
    rate64 = reference(h, torch.zeros(32, k), None, 1.0)[1]
    assert abs(float(rate) - float(rate64)) < 1e-5 + 1e-3 * abs(float(rate64))


def math_log_expm1(x):
    return float(torch.log(torch.expm1(torch.tensor(x, dtype=torch.float64))))


def test_tensors_the_kernels_cannot_take_use_pytorch(kernels):
    h, eps = torch.randn(4, 6), torch.randn(4, 3)
    weight = torch.randn(2, 3)
    assert vib._native_kernels(h, eps, weight, torch.randn(2)) is not None
    assert vib._native_kernels(h, torch.empty(4, 3, device="meta")) is None
    assert vib._native_kernels(torch.randn(0, 6), torch.randn(0, 3)) is None
    assert vib._native_kernels(h, eps, weight, None) is None
    assert vib._native_kernels(h, eps, weight, torch.randn(1)) is None  # broadcast bias
    assert vib._native_kernels(h, eps, weight, torch.randn(2, dtype=torch.float64)) is None
    # a broadcast bias or no bias: the PyTorch path, same results as F.linear
    for bias in (torch.randn(1), None):
        z, logits, _ = sample_decode_with_rate(h, eps, weight, bias)
        torch.testing.assert_close(logits, F.linear(z, weight, bias))


def test_decoder_hooks_and_bias_free_decoder_are_respected(kernels):
    net = VIBNetwork(torch.nn.Identity(), 6, 3, 2, stochastic=True, n_samples=2)
    calls = []
    handle = net.decoder.register_full_backward_hook(lambda *args: calls.append(1))
    net(torch.randn(4, 6))[1].sum().backward()
    handle.remove()
    assert calls == [1]
    net.decoder = torch.nn.Linear(3, 2, bias=False)
    z, logits, _ = net(torch.randn(4, 6))
    torch.testing.assert_close(logits, net.decoder(z))


def test_in_place_use_of_z_without_decoder(kernels):
    # z is not saved for the backward pass unless the decoder's gradients need it
    h = torch.randn(5, 8, requires_grad=True)
    z, rate = sample_with_rate(h, torch.randn(5, 4))
    z.relu_()
    (z.sum() + rate).backward()
    assert torch.isfinite(h.grad).all()
