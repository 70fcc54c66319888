"""Batched Jacobian log-determinants against brute force, closed forms and finite differences."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from skinfo.nn import jacobian as jacobian_module
from skinfo.nn.encoders import MLP
from skinfo.nn.gmm import ClassConditionalGMM, MASSNetwork
from skinfo.nn.jacobian import (
    MLPChain,
    _gram_is_cheaper,
    activation_derivative,
    activation_derivatives,
    batched_jacobian,
    log_jacobian,
    log_volume,
    mlp_forward,
    mlp_jacobian,
    mlp_log_volume,
)


def _brute_force_log_volume(f, x):
    """Per-sample torch.autograd.functional.jacobian, then numpy singular values."""
    out = []
    for row in x:
        jac = torch.autograd.functional.jacobian(lambda r: f(r.unsqueeze(0)).squeeze(0), row)
        s = np.linalg.svd(jac.detach().numpy(), compute_uv=False)
        out.append(np.log(s).sum())
    return np.array(out)


def _random_mlp(in_dim, hidden, out_dim, activation="elu", seed=0):
    torch.manual_seed(seed)
    layers = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), _act(activation)]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return MLPChain(layers).double()


def _act(name):
    return {
        "elu": nn.ELU(),
        "elu_alpha": nn.ELU(alpha=0.7),
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(0.1),
        "tanh": nn.Tanh(),
        "softplus": nn.Softplus(),
        "gelu": nn.GELU(),
    }[name]


SHAPES = [
    (8, (16,), 3),  # d < D
    (5, (7, 6), 5),  # d = D
    (20, (30, 10), 7),
    (64, (40, 20), 10),
    (100, (12,), 6),  # wide input, narrow first layer
]


@pytest.mark.parametrize("in_dim,hidden,out_dim", SHAPES)
@pytest.mark.parametrize("activation", ["elu", "tanh", "softplus", "gelu"])
def test_log_jacobian_matches_brute_force(in_dim, hidden, out_dim, activation):
    net = _random_mlp(in_dim, hidden, out_dim, activation)
    x = torch.randn(6, in_dim, dtype=torch.float64)
    expected = _brute_force_log_volume(net, x)
    analytic = net.log_jacobian(x).detach().numpy()
    generic_rev = log_jacobian(net, x, mode="rev").detach().numpy()
    generic_fwd = log_jacobian(net, x, mode="fwd").detach().numpy()
    np.testing.assert_allclose(analytic, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(generic_rev, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(generic_fwd, expected, rtol=0, atol=1e-5)


def test_analytic_jacobian_equals_torch_func_jacobian():
    net = _random_mlp(12, (9, 11), 4)
    x = torch.randn(5, 12, dtype=torch.float64)
    np.testing.assert_allclose(
        net.jacobian(x).detach().numpy(), batched_jacobian(net, x).detach().numpy(), atol=1e-12
    )


def test_wider_output_uses_volume_of_the_image():
    """d > D: log J = 0.5 log det(Df^T Df), the sum of the D log singular values."""
    net = _random_mlp(2, (8,), 10)
    x = torch.randn(4, 2, dtype=torch.float64)
    jac = net.jacobian(x).detach().numpy()
    expected = [0.5 * np.linalg.slogdet(j.T @ j)[1] for j in jac]
    np.testing.assert_allclose(net.log_jacobian(x).detach().numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(_brute_force_log_volume(net, x), expected, atol=1e-10)


def test_invertible_linear_map_gives_log_abs_det():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(6, 6))
    A_t = torch.from_numpy(A)
    x = torch.randn(5, 6, dtype=torch.float64)
    expected = np.log(abs(np.linalg.det(A)))
    np.testing.assert_allclose(log_jacobian(lambda v: v @ A_t.T, x).numpy(), expected, atol=1e-10)
    linear = nn.Linear(6, 6).double()
    with torch.no_grad():
        linear.weight.copy_(A_t)
    chain = MLPChain([linear])
    np.testing.assert_allclose(chain.log_jacobian(x).detach().numpy(), expected, atol=1e-10)


def test_singular_map_gives_minus_infinity():
    A = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=torch.float64)
    out = log_jacobian(lambda v: v @ A.T, torch.randn(3, 2, dtype=torch.float64))
    assert torch.isneginf(out).all()


def test_figure1_conserved_differential_information():
    """Paper, Figure 1: X ~ U(0, 1), f(X) = X / 2, g(X) = |X - 1/2|.

    f(X) and g(X) have the same distribution U(0, 1/2), but C(X, f(X)) = H(X) = 0
    (f is invertible) while C(X, g(X)) = -log 2 (g folds the interval).
    C = H(out) - E[log J]; H(out) is estimated here from a histogram of samples.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(40_000, 1, generator=gen, dtype=torch.float64)

    def f(v):
        return v / 2

    def g(v):
        return (v - 0.5).abs()

    def entropy_hist(values):
        counts, edges = np.histogram(values, bins=50)
        p = counts / counts.sum()
        width = np.diff(edges)
        nz = p > 0
        return float(-(p[nz] * np.log(p[nz] / width[nz])).sum())

    cdi = {}
    for name, fn in {"f": f, "g": g}.items():
        log_j = log_jacobian(fn, x[:2000]).numpy()
        cdi[name] = entropy_hist(fn(x).numpy().ravel()) - log_j.mean()
    np.testing.assert_allclose(log_jacobian(f, x[:10]).numpy(), -math.log(2), atol=1e-12)
    np.testing.assert_allclose(log_jacobian(g, x[:10]).numpy(), 0.0, atol=1e-12)
    assert abs(cdi["f"] - 0.0) < 0.01  # = H(X) = 0: invertible maps conserve it
    assert abs(cdi["g"] + math.log(2)) < 0.01
    assert cdi["g"] < cdi["f"]  # the data processing inequality (Theorem 1), strict


def test_gradcheck_analytic_log_jacobian():
    torch.manual_seed(1)
    lin1, lin2 = nn.Linear(4, 5).double(), nn.Linear(5, 3).double()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)

    def fn(inp, w1, w2):
        with torch.no_grad():
            lin1.weight.copy_(w1)
            lin2.weight.copy_(w2)
        layers = [lin1, nn.ELU(), lin2]
        # functional re-creation so gradcheck sees the weights as inputs
        h = inp @ w1.T + lin1.bias
        jac = (w2.expand(len(inp), -1, -1) * activation_derivative(layers[1], h).unsqueeze(1)) @ w1
        return log_volume(jac)

    w1 = lin1.weight.detach().clone().requires_grad_(True)
    w2 = lin2.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x, w1, w2))


def test_gradcheck_module_log_jacobian_through_parameters():
    """The gradient of the mean log J of a network matches finite differences."""
    torch.manual_seed(2)
    net = _random_mlp(6, (5,), 3, "tanh")
    x = torch.randn(4, 6, dtype=torch.float64)
    params = dict(net.named_parameters())

    def loss(*values):
        new = dict(zip(params, values, strict=True))

        def f(v):
            return torch.func.functional_call(net, new, (v,))

        return log_jacobian(f, x, mode="rev").mean()

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params.values())
    assert torch.autograd.gradcheck(loss, inputs)


def test_analytic_and_generic_parameter_gradients_agree():
    torch.manual_seed(3)
    net = MASSNetwork(MLP(7, (9, 8)), 8, ClassConditionalGMM(3, 2, 2)).double()
    assert net.analytic
    x = torch.randn(5, 7, dtype=torch.float64)
    rows = torch.tensor([0, 2, 4])
    out = net(x)
    analytic = net.log_jacobian(x, rows, out.hidden).mean()
    grads_a = torch.autograd.grad(analytic, list(net.parameters()), allow_unused=True)
    net.analytic = False
    generic = net.log_jacobian(x, rows).mean()
    grads_g = torch.autograd.grad(generic, list(net.parameters()), allow_unused=True)
    assert float(abs(analytic - generic).detach()) < 1e-10
    for a, g in zip(grads_a, grads_g, strict=True):
        if a is None:
            assert g is None or float(g.abs().max()) == 0
        else:
            torch.testing.assert_close(a, g, atol=1e-10, rtol=1e-8)


def test_mlp_forward_returns_preactivations():
    net = _random_mlp(4, (6, 5), 2)
    x = torch.randn(3, 4, dtype=torch.float64)
    out, hidden = mlp_forward(list(net.layers), x)
    assert [h.shape[1] for h in hidden] == [6, 5]
    torch.testing.assert_close(hidden[0], net.layers[0](x))
    torch.testing.assert_close(out, net(x))
    jac = mlp_jacobian(list(net.layers), hidden, torch.tensor([1]))
    assert jac.shape == (1, 2, 4)


@pytest.mark.parametrize("name", ["elu", "relu", "leaky_relu", "tanh", "softplus", "gelu"])
def test_activation_derivatives(name):
    from skinfo.nn.encoders import get_activation

    act = get_activation(name).double()
    h = torch.linspace(-3, 3, 41, dtype=torch.float64) + 0.013  # avoid the kinks at 0
    expected = torch.func.vmap(torch.func.grad(act))(h)
    torch.testing.assert_close(activation_derivative(act, h), expected)


def test_network_jacobian_of_cnn_uses_eval_mode_batch_norm():
    from skinfo.nn.resnet import ResNet

    torch.manual_seed(0)
    enc = ResNet((1, 6, 6), blocks_per_stage=1, widths=(4, 6, 8)).double()
    net = MASSNetwork(enc, 8, ClassConditionalGMM(3, 2, 2)).double()
    assert not net.analytic
    net.train()
    net(torch.randn(16, 36, dtype=torch.float64))  # move the running statistics
    x = torch.randn(3, 36, dtype=torch.float64)
    got = net.log_jacobian(x, torch.arange(3))
    assert net.training  # restored
    net.eval()
    expected = _brute_force_log_volume(net.embed, x)
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-8)
    with pytest.raises(ValueError, match="analytic"):
        MASSNetwork(enc, 8, ClassConditionalGMM(3, 2, 2), jacobian="analytic")


@pytest.mark.parametrize("shape", [(3, 2, 5), (3, 4, 4), (3, 5, 2)])
def test_gradcheck_log_volume(shape):
    """d < D (custom closed-form backward), d = D (slogdet) and d > D (image volume)."""
    jac = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(log_volume, (jac,))


def _second_derivative(fn, x, v):
    """``d/dx <d fn(x).sum() / dx, v>`` (a Hessian-vector product) through create_graph=True."""
    (grad,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    return torch.autograd.grad((grad * v).sum(), x)[0]


@pytest.mark.parametrize("shape", [(1, 2, 4), (1, 4, 2)])
def test_log_volume_second_derivatives_are_refused_or_exact(shape):
    """``create_graph=True`` through the closed-form backward: a clear error or autograd's values.

    Never silently wrong: a backward that builds no graph, or builds one
    without the dependence of ``(J J^T)^-1`` on ``J``, gives second
    derivatives of the wrong size or sign.
    """
    torch.manual_seed(0)
    jac = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    v = torch.randn(*shape, dtype=torch.float64)

    def reference(j):  # plain autograd of 0.5 log det over the smaller Gram matrix
        gram = j @ j.mT if shape[1] < shape[2] else j.mT @ j
        return 0.5 * torch.logdet(gram)

    expected = _second_derivative(reference, jac, v)
    try:
        got = _second_derivative(log_volume, jac, v)
    except RuntimeError as error:
        assert "differentiable once" in str(error)
    else:
        torch.testing.assert_close(got, expected)
    # first derivatives are exact either way
    (grad,) = torch.autograd.grad(log_volume(jac).sum(), jac)
    (grad_ref,) = torch.autograd.grad(reference(jac).sum(), jac)
    torch.testing.assert_close(grad, grad_ref)


@pytest.mark.parametrize("gram", [False, True])
def test_chain_log_volume_refuses_second_derivatives(gram):
    chain = _random_mlp(12, (7,), 3, "tanh")
    x = torch.randn(4, 12, dtype=torch.float64, requires_grad=True)
    layers = list(chain.layers)
    _, hidden = mlp_forward(layers, x)
    out = mlp_log_volume(layers, hidden, torch.arange(4), gram=gram)
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.grad(out.sum(), x, create_graph=True)


class _ChainMethod(nn.Module):
    """``x -> chain.<method>(x)`` of an MLPChain as a module, for functional_call."""

    def __init__(self, chain, method):
        super().__init__()
        self.chain, self.method = chain, method

    def forward(self, x):
        return getattr(self.chain, self.method)(x)


@pytest.mark.parametrize(
    "activation", ["elu", "elu_alpha", "relu", "leaky_relu", "tanh", "softplus", "gelu"]
)
@pytest.mark.parametrize("path", ["log_volume(jacobian)", "fused log-volume"])
def test_gradcheck_analytic_chain_through_weights_and_inputs(activation, path):
    """The analytic MLP chain (as used in training) against finite differences.

    Covers the Jacobian chain (autograd) followed by the closed-form
    log-volume, and the chain plus log-volume in one node with its
    written-out backward pass, including the gradient through the
    pre-activations (second derivatives of the activation), and GELU (no
    closed form: autograd throughout).
    """
    chain = _random_mlp(12, (7, 5), 3, activation, seed=4)
    log_j, jacobian = _ChainMethod(chain, "log_jacobian"), _ChainMethod(chain, "jacobian")
    names = [name for name, _ in log_j.named_parameters()]

    def fn(x, *values):
        params = dict(zip(names, values, strict=True))
        if path == "fused log-volume":  # MLPChain.log_jacobian: one node
            return torch.func.functional_call(log_j, params, (x,))
        # the Jacobian chain, then log_volume
        return log_volume(torch.func.functional_call(jacobian, params, (x,)))

    x = torch.randn(4, 12, dtype=torch.float64, requires_grad=True)
    values = tuple(p.detach().clone().requires_grad_(True) for p in log_j.parameters())
    assert torch.autograd.gradcheck(fn, (x, *values))


@pytest.mark.parametrize("name", ["elu", "elu_alpha", "relu", "leaky_relu", "tanh", "softplus"])
def test_closed_form_activation_derivatives_match_autograd(name):
    """act' and act'' against autograd's first and second derivatives (float64)."""
    act = _act(name)
    h = torch.cat([torch.linspace(-4, 4, 41), torch.tensor([25.0, -30.0])]).double()
    h = h[h != 0]  # the kinks of ReLU-like activations
    first, second = activation_derivatives(act, h)
    x = h.clone().requires_grad_(True)
    (d1,) = torch.autograd.grad(act(x).sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x, allow_unused=True)
    torch.testing.assert_close(first, d1.detach())
    if second is None:  # piecewise linear
        assert d2 is None or float(d2.abs().max()) == 0
    else:
        torch.testing.assert_close(second, d2)
    assert activation_derivatives(nn.GELU(), h) is None  # no closed form: autograd fallback


class _GramLogVolume(nn.Module):
    """``log J`` of an MLPChain by ``mlp_log_volume`` with the route forced (functional_call)."""

    def __init__(self, chain, gram):
        super().__init__()
        self.chain, self.gram = chain, gram

    def forward(self, x):
        layers = list(self.chain.layers)
        _, hidden = mlp_forward(layers, x)
        return mlp_log_volume(layers, hidden, torch.arange(len(x)), gram=self.gram)


@pytest.fixture
def gram_calls(monkeypatch):
    """Count the batches that take the Gram route (and keep it)."""
    calls = []
    route = jacobian_module._gram_route

    def spy(weights, c1):
        result = route(weights, c1)
        calls.append(result[-1])
        return result

    monkeypatch.setattr(jacobian_module, "_gram_route", spy)
    return calls


@pytest.mark.parametrize("in_dim,hidden,out_dim", [s for s in SHAPES if s[2] < s[0]])
@pytest.mark.parametrize("activation", ["elu", "tanh"])
def test_gram_route_matches_brute_force(in_dim, hidden, out_dim, activation, gram_calls):
    """``Df Df^T = C_1 (W_1 W_1^T) C_1^T`` gives the brute-force log-volume (float64)."""
    net = _random_mlp(in_dim, hidden, out_dim, activation)
    x = torch.randn(6, in_dim, dtype=torch.float64)
    got = _GramLogVolume(net, gram=True)(x).detach().numpy()
    assert gram_calls == [True]
    np.testing.assert_allclose(got, _brute_force_log_volume(net, x), rtol=0, atol=1e-8)
    direct = _GramLogVolume(net, gram=False)(x).detach().numpy()
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-10)
    assert gram_calls == [True]  # the direct route does not go through it


@pytest.mark.parametrize("activation", ["elu", "leaky_relu", "tanh", "softplus"])
@pytest.mark.parametrize("hidden", [(9,), (9, 6), (9, 7, 6)])
def test_gram_route_gradients_match_direct_chain_and_finite_differences(
    activation, hidden, gram_calls
):
    """The Gram route's written-out backward: gradcheck, and equal to the direct chain's."""
    chain = _random_mlp(12, hidden, 3, activation, seed=5)
    params = dict(_GramLogVolume(chain, True).named_parameters())
    # log J does not depend on the output layer's bias; with a piecewise-linear
    # activation (act'' = 0) it is locally constant in x and in every bias
    linear = activation == "leaky_relu"
    names = [n for n in list(params)[:-1] if not linear or n.endswith("weight")]

    def fn(gram):
        module = _GramLogVolume(chain, gram)

        def call(x, *values):
            return torch.func.functional_call(module, dict(zip(names, values)), (x,))

        return call

    x = torch.randn(4, 12, dtype=torch.float64, requires_grad=not linear)
    values = tuple(params[name].detach().clone().requires_grad_(True) for name in names)
    assert torch.autograd.gradcheck(fn(True), (x, *values))
    assert gram_calls and all(gram_calls)
    weights = torch.randn(4, dtype=torch.float64)
    grads = [
        torch.autograd.grad((fn(gram)(x, *values) * weights).sum(), values)
        for gram in (True, False)
    ]
    for got, expected in zip(*grads, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-8)
    # a frozen first layer: no gradient for W_1, the same gradients for the rest
    frozen = (values[0].detach(), *values[1:])
    got = torch.autograd.grad((fn(True)(x, *frozen) * weights).sum(), frozen[1:])
    for g, expected in zip(got, grads[1][1:], strict=True):
        torch.testing.assert_close(g, expected, atol=1e-10, rtol=1e-8)


def test_gram_route_is_chosen_by_multiply_adds(gram_calls):
    """26 rows of d = 15 Jacobians, first layer 400 wide: the Gram route pays at 3072 inputs."""
    assert _gram_is_cheaper(26 * 15, 400, 3072)
    assert not _gram_is_cheaper(26 * 10, 400, 3072)  # 2 w^2 D + 2 n d w^2 > 3 n d w D
    assert not _gram_is_cheaper(26 * 15, 400, 64)  # narrow input: never
    # the MASS network asks for no route: 4 rows x d = 8 through a 20-wide layer from
    # 200 inputs take the Gram route, 1 row the direct one
    torch.manual_seed(0)
    net = MASSNetwork(MLP(200, (20,)), 20, ClassConditionalGMM(8, 2, 2))
    x = torch.randn(6, 200)
    net.log_jacobian(x, torch.arange(4))
    assert gram_calls == [True]
    net.log_jacobian(x, torch.arange(1))
    assert gram_calls == [True]


def _misaligned_mlp(condition, seed=2):
    """float32 MLP whose output rows lie along the smallest singular directions of ``W_1``.

    ``Df`` is well conditioned, but ``C_1 (W_1 W_1^T) C_1^T`` is a small difference
    of large float32 terms when ``W_1`` is ill-conditioned.
    """
    torch.manual_seed(seed)
    layers = [nn.Linear(400, 64), nn.Tanh(), nn.Linear(64, 3)]
    with torch.no_grad():
        u, _, vh = torch.linalg.svd(torch.randn(64, 400), full_matrices=False)
        spectrum = torch.logspace(0, -math.log10(condition), 64)
        layers[0].weight.copy_(u @ torch.diag(spectrum) @ vh)
        layers[0].bias.zero_()
        layers[2].weight.copy_(torch.randn(3, 3) @ u[:, -3:].T + 1e-3 * torch.randn(3, 64))
    return layers


@pytest.mark.parametrize("condition", [1.0, 1e3])
def test_gram_route_falls_back_to_the_direct_chain_when_rounding_would_show(condition, gram_calls):
    """float32: the Gram route is kept where it is accurate, else the batch forms Df."""
    layers = _misaligned_mlp(condition)
    x, rows = 0.01 * torch.randn(8, 400), torch.arange(8)
    reference = copy.deepcopy(layers)
    for layer in reference:
        layer.double()
    _, hidden = mlp_forward(reference, x.double())
    expected = mlp_log_volume(reference, hidden, rows, gram=False)
    (expected_grad,) = torch.autograd.grad(expected.sum(), reference[2].weight)
    values = {}
    for gram in (True, False):
        _, hidden = mlp_forward(layers, x)
        value = mlp_log_volume(layers, hidden, rows, gram=gram)
        values[gram] = value, torch.autograd.grad(value.sum(), layers[2].weight)[0]
    assert gram_calls == [condition == 1.0]  # kept when benign, refused when not
    for value, grad in values.values():
        torch.testing.assert_close(value.double(), expected, rtol=0, atol=1e-4)
        torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-3, atol=1e-4)
    if condition != 1.0:  # the fallback computes exactly what the direct route does
        assert torch.equal(values[True][1], values[False][1])
    # what the fallback avoids: the Gram route forced through is visibly off
    if condition != 1.0:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(jacobian_module, "GRAM_MAX_ERROR", float("inf"))
            _, hidden = mlp_forward(layers, x)
            forced = mlp_log_volume(layers, hidden, rows, gram=True)
        assert float((forced.double() - expected).detach().abs().max()) > 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gram_route_of_a_map_without_volume_is_minus_infinity(dtype, gram_calls):
    """Every hidden unit dead: Df = 0, the Cholesky factorization fails, log J = -inf on
    both routes (no LinAlgError from the rounding-error estimate)."""
    layers = [nn.Linear(30, 8), nn.ReLU(), nn.Linear(8, 3)]
    with torch.no_grad():
        layers[0].bias.fill_(-100.0)
    layers = [layer.to(dtype) for layer in layers]
    x, rows = torch.randn(5, 30, dtype=dtype), torch.arange(5)
    _, hidden = mlp_forward(layers, x)
    for gram in (True, False):
        value = mlp_log_volume(layers, hidden, rows, gram=gram)
        minus_inf = torch.full((5,), -torch.inf, dtype=dtype)
        assert value.dtype == dtype and torch.equal(value, minus_inf)
    # float32: the estimate calls the failed batch inaccurate, so it forms Df after all
    assert gram_calls == [dtype == torch.float64]
