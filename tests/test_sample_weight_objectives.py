"""Per-sample weights in every objective: weighted means of the per-sample terms, weighted batch
statistics for the VIB variance surrogates, and ``sample_weight=None`` unchanged."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skinfo.nn.encoders import MLP
from skinfo.nn.gmm import ClassConditionalGMM, MASSNetwork
from skinfo.nn.inn import IBINNNetwork, dense_inn
from skinfo.nn.latent_gmm import LatentGMM
from skinfo.nn.realnvp import FlowTrainingModule, RealNVP
from skinfo.nn.vib import VIBNetwork, gaussian_kl_standard
from skinfo.objectives import (
    ApproxMassLoss,
    IBINNLoss,
    MASSLoss,
    OneVsAllLoss,
    SoftmaxCrossEntropy,
    VIBLoss,
)
from skinfo.objectives._weights import weighted_group_variance, weighted_mean
from skinfo.objectives.vib import cond_logvar_regularizer, logvar_regularizer

N_ROWS, N_FEATURES, N_CLASSES = 9, 6, 3
LOG_2PIE = math.log(2 * math.pi * math.e)


# ------------------------------------------------------------------ the helpers
def test_weighted_mean_matches_numpy_and_none_is_the_plain_mean():
    rng = np.random.default_rng(0)
    v, w = rng.normal(size=7), rng.uniform(0, 3, size=7)
    got = weighted_mean(torch.from_numpy(v), torch.from_numpy(w))
    assert float(got) == pytest.approx(np.average(v, weights=w), rel=1e-14)
    t = torch.from_numpy(v)
    assert torch.equal(weighted_mean(t), t.mean())


def test_weighted_mean_of_all_zero_weights_is_zero_with_zero_gradient():
    v = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    out = weighted_mean(v, torch.zeros(3, dtype=torch.float64))
    out.backward()
    assert float(out.detach()) == 0.0 and torch.equal(v.grad, torch.zeros(3, dtype=torch.float64))


def test_weights_take_the_dtype_and_are_checked_for_shape():
    v = torch.tensor([1.0, 3.0], dtype=torch.float64)
    out = weighted_mean(v, torch.tensor([1.0, 3.0], dtype=torch.float32))
    assert out.dtype == torch.float64 and float(out) == 2.5
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        weighted_mean(v, torch.ones(3))
    with pytest.raises(ValueError, match="sample_weight"):
        weighted_mean(v, torch.ones(2, 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_group_variance_matches_numpy_aweights(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(12, 3))
    groups = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 3])  # group 3 has a single row
    w = rng.uniform(0.1, 4.0, size=12)
    w[[1, 2]] = 0.0  # group 2 keeps 2 rows of positive weight
    w[[4, 7]] = 0.0  # group 1 keeps 1 row of positive weight: invalid
    var, total, valid = weighted_group_variance(
        torch.from_numpy(z), torch.from_numpy(groups), 5, torch.from_numpy(w)
    )
    assert valid.tolist() == [True, False, True, False, False]
    for c in (0, 2):
        rows = groups == c
        expected = np.diag(np.cov(z[rows].T, aweights=w[rows], ddof=1))
        np.testing.assert_allclose(var[c].numpy(), expected, rtol=1e-12)
        assert float(total[c]) == pytest.approx(w[rows].sum(), rel=1e-14)
    assert torch.isfinite(var).all()


def _unweighted_cond_logvar(z, y, n_classes, eps=1e-12):
    """The unweighted conditional log-variance, written out with the same operations."""
    onehot = F.one_hot(y, n_classes).to(z.dtype)
    counts = onehot.sum(0)
    means = onehot.T @ z / counts.clamp(min=1.0).unsqueeze(1)
    sq = onehot.T @ (z - means[y]).pow(2)
    var = sq / (counts - 1.0).clamp(min=1.0).unsqueeze(1)
    per_class = 0.5 * (LOG_2PIE + torch.log(var + eps)).sum(-1)
    per_class = torch.where(counts >= 2, per_class, torch.zeros_like(per_class))
    return (counts / z.shape[0] * per_class).sum()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_weights_is_bitwise_the_unweighted_computation(dtype):
    torch.manual_seed(0)
    logits = torch.randn(11, 4, dtype=dtype)
    z = torch.randn(11, 5, dtype=dtype)
    y = torch.arange(11) % 4
    for s in (0.0, 0.1):
        ce = SoftmaxCrossEntropy(s)(logits, y)["loss"]
        assert torch.equal(ce, F.cross_entropy(logits, y, label_smoothing=s))
    assert torch.equal(
        VIBLoss("l2", 0.5, 4)((z, logits, None), y)["ce"], F.cross_entropy(logits, y)
    )
    assert torch.equal(logvar_regularizer(z), 0.5 * (LOG_2PIE + torch.log(z.var(0) + 1e-12)).sum())
    assert torch.equal(cond_logvar_regularizer(z, y, 4), _unweighted_cond_logvar(z, y, 4))
    y_small = torch.tensor([0, 0, 1, 2, 2, 2, 0, 0, 1, 2, 0])  # class 1: 2 rows, class 3: none
    assert torch.equal(
        cond_logvar_regularizer(z, y_small, 4), _unweighted_cond_logvar(z, y_small, 4)
    )
    assert torch.equal(logvar_regularizer(z[:1]), torch.zeros((), dtype=dtype))


# ------------------------------------------------------------------ the criteria
def _vib_output(module, x, rate_per_row=False):
    """A deterministic stand-in for ``VIBNetwork.forward``: Z = the encoder mean."""
    mean, std = module.distribution(x)
    logits = module.decoder(mean)
    if not module.stochastic:
        return mean, logits, None
    rates = gaussian_kl_standard(mean, std)
    return mean, logits, rates if rate_per_row else rates.mean()


def _distance_logits(lin):
    return lambda x: -lin(x).abs() - 0.1


def _case(name):
    """(criterion, module, output function of the batch) for one configuration, in float64."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(N_FEATURES, N_CLASSES).double()
    if name == "softmax":
        return SoftmaxCrossEntropy(), lin, lin
    if name == "softmax_smoothed":
        return SoftmaxCrossEntropy(label_smoothing=0.1), lin, lin
    if name == "ova_affine":
        return OneVsAllLoss(distance=False), lin, lin
    if name == "ova_distance":
        return OneVsAllLoss(distance=True), lin, _distance_logits(lin)
    if name.startswith("vib_"):
        regularizer = name.split("_", 1)[1].removesuffix("_rows")
        net = VIBNetwork(
            MLP(N_FEATURES, (8,)),
            8,
            4,
            N_CLASSES,
            stochastic=regularizer == "kl",
            n_samples=3,
        ).double()
        loss = VIBLoss(regularizer, 0.7, N_CLASSES, track_information=True)
        per_row = name.endswith("_rows")
        return loss, net, lambda x: _vib_output(net, x, rate_per_row=per_row)
    if name.startswith("mass"):
        net = MASSNetwork(MLP(N_FEATURES, (8,)), 8, ClassConditionalGMM(3, N_CLASSES, 2)).double()
        beta = 0.0 if name == "mass_beta0" else 0.3
        return MASSLoss(beta=beta, jacobian_fraction=1.0), net, net
    if name.startswith("ibinn"):
        flow = dense_inn(N_FEATURES, 2, (8,)).double()
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.2 * torch.randn_like(p))
        gmm = LatentGMM(N_CLASSES, N_FEATURES, torch.tensor([0.5, 0.3, 0.2])).double()
        net = IBINNNetwork(flow, gmm, noise_sigma=0.0).eval()
        kwargs = {
            "ibinn": dict(beta=1.0),
            "ibinn_inf": dict(beta=np.inf),
            "ibinn_eq8": dict(beta=2.0, rebalance=False),
            "ibinn_class_nll": dict(loss="class_nll"),
        }[name]
        return IBINNLoss(n_dims=N_FEATURES, label_smoothing=0.05, **kwargs), net, net
    if name.startswith("approx_mass"):
        flow = RealNVP((N_FEATURES,), n_blocks=2, hidden_width=8, seed=0).double()
        with torch.no_grad():
            for p in flow.parameters():
                p.normal_(0, 0.2)
        module = FlowTrainingModule(flow).eval()
        alpha = 0.0 if name == "approx_mass_ml" else 1.5
        return ApproxMassLoss(alpha=alpha, noise=0.0), module, module
    raise AssertionError(name)


#: Criteria whose every term is a mean of per-sample values.
PER_SAMPLE = [
    "softmax",
    "softmax_smoothed",
    "ova_affine",
    "ova_distance",
    "vib_kl",
    "vib_kl_rows",
    "vib_l2",
    "mass_beta0",
    "mass",
    "ibinn",
    "ibinn_inf",
    "ibinn_eq8",
    "ibinn_class_nll",
    "approx_mass_ml",
    "approx_mass",
]
#: Criteria with a batch-statistics term (weighted variances).
BATCH_STATISTICS = ["vib_logvar", "vib_cond_logvar"]
#: The terms that are batch statistics (``izx`` of the deterministic VIB encoders is the
#: ``'logvar'`` bound, whatever the regularizer), not means of per-sample values.
BATCH_TERMS = {
    "vib_l2": {"izx"},
    "vib_logvar": {"loss", "reg", "izx"},
    "vib_cond_logvar": {"loss", "reg", "izx"},
}


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N_ROWS, N_FEATURES, generator=g, dtype=torch.float64)
    y = torch.arange(N_ROWS) % N_CLASSES
    return x, y


def _evaluate(case, x, y, sample_weight=None):
    """Every term (detached) and the gradient of the loss for each module parameter."""
    criterion, module, output_of = case
    terms = criterion(output_of(x), y, X=x, module=module, sample_weight=sample_weight)
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(terms["loss"], params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return {k: v.detach() for k, v in terms.items()}, grads


def _assert_same(a, b, skip=()):
    """Same terms (but those in ``skip``) and same parameter gradients."""
    terms_a, grads_a = a
    terms_b, grads_b = b
    assert terms_a.keys() == terms_b.keys()
    for name in terms_a.keys() - set(skip):
        torch.testing.assert_close(terms_a[name], terms_b[name], rtol=1e-10, atol=1e-12)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)


def _dup_weights():
    w = torch.ones(N_ROWS, dtype=torch.float64)
    w[0] = 2.0
    return w


def _duplicated(x, y):
    return torch.cat([x, x[:1]]), torch.cat([y, y[:1]])


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_integer_weight_equals_repeating_the_row(name):
    case = _case(name)
    x, y = _batch()
    weighted = _evaluate(case, x, y, _dup_weights())
    repeated = _evaluate(case, *_duplicated(x, y))
    _assert_same(weighted, repeated, skip=BATCH_TERMS.get(name, ()))


@pytest.mark.parametrize("name", PER_SAMPLE + BATCH_STATISTICS)
@pytest.mark.parametrize("c", [1.0, 0.37, 5.0])
def test_constant_weights_equal_no_weights(name, c):
    case = _case(name)
    x, y = _batch()
    _assert_same(
        _evaluate(case, x, y, torch.full((N_ROWS,), c, dtype=torch.float64)), _evaluate(case, x, y)
    )


@pytest.mark.parametrize("name", PER_SAMPLE + BATCH_STATISTICS)
@pytest.mark.parametrize("row", [0, 4])
def test_zero_weight_removes_the_row(name, row):
    case = _case(name)
    x, y = _batch()
    w = torch.linspace(0.5, 2.0, N_ROWS, dtype=torch.float64)
    w[row] = 0.0
    keep = torch.arange(N_ROWS) != row
    _assert_same(_evaluate(case, x, y, w), _evaluate(case, x[keep], y[keep], w[keep]))


@pytest.mark.parametrize("name", PER_SAMPLE + BATCH_STATISTICS)
def test_components_are_weighted_means_of_their_per_sample_values(name):
    # reweighting changes the components; each one equals its weighted mean over the rows
    case = _case(name)
    x, y = _batch()
    w = torch.linspace(0.2, 3.0, N_ROWS, dtype=torch.float64)
    weighted, _ = _evaluate(case, x, y, w)
    plain, _ = _evaluate(case, x, y)
    assert not torch.allclose(weighted["loss"], plain["loss"])
    singles = [_evaluate(case, x[i : i + 1], y[i : i + 1])[0] for i in range(N_ROWS)]
    for name_ in weighted:
        if name_ in BATCH_TERMS.get(name, ()):
            continue  # batch statistics: not a mean of per-row values (tested against numpy)
        per_row = torch.stack([s[name_] for s in singles])
        expected = (w * per_row).sum() / w.sum()
        torch.testing.assert_close(weighted[name_], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("regularizer", ["logvar", "cond_logvar"])
def test_vib_batch_statistics_use_numpy_weighted_formulas(regularizer):
    criterion, module, output_of = _case(f"vib_{regularizer}")
    x, y = _batch()
    w = _dup_weights()
    w[5] = 0.0
    terms, _ = _evaluate((criterion, module, output_of), x, y, w)
    z, logits, _ = output_of(x)
    z, logits, yn, wn = z.detach().numpy(), logits.detach().numpy(), y.numpy(), w.numpy()

    def logvar(rows):
        if (wn[rows] > 0).sum() < 2:
            return 0.0
        var = np.diag(np.cov(z[rows].T, aweights=wn[rows], ddof=1))
        return float(np.sum(0.5 * (LOG_2PIE + np.log(var + 1e-12))))

    everything = np.ones(N_ROWS, dtype=bool)
    if regularizer == "logvar":
        reg = logvar(everything)
    else:
        reg = sum(wn[yn == c].sum() / wn.sum() * logvar(yn == c) for c in range(N_CLASSES))
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = np.average(-log_p[np.arange(N_ROWS), yn], weights=wn)
    assert float(terms["reg"]) == pytest.approx(reg, rel=1e-12)
    assert float(terms["izx"]) == pytest.approx(logvar(everything), rel=1e-12)
    assert float(terms["ce"]) == pytest.approx(ce, rel=1e-12)
    assert float(terms["loss"]) == pytest.approx(ce + 0.7 * reg, rel=1e-12)
    # integer weights are reliability weights here, not repeated rows: the per-sample
    # cross-entropy still equals the repeated batch's, the variance term does not
    repeated, _ = _evaluate((criterion, module, output_of), *_duplicated(x, y))
    weighted, _ = _evaluate((criterion, module, output_of), x, y, _dup_weights())
    torch.testing.assert_close(weighted["ce"], repeated["ce"], rtol=1e-10, atol=0)


def test_cond_logvar_class_with_one_weighted_row_contributes_nothing_and_stays_finite():
    torch.manual_seed(0)
    z = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 0.0, 3.0], dtype=torch.float64)
    value = cond_logvar_regularizer(z, y, 3, sample_weight=w)
    value.backward()
    value = value.detach()
    assert torch.isfinite(z.grad).all() and torch.all(z.grad[3:] == 0)
    zn, wn = z.detach().numpy()[:3], w.numpy()[:3]
    var = np.diag(np.cov(zn.T, aweights=wn, ddof=1))
    expected = wn.sum() / w.sum().item() * np.sum(0.5 * (LOG_2PIE + np.log(var + 1e-12)))
    assert float(value) == pytest.approx(expected, rel=1e-12)
    # and fewer than two rows of positive weight in the whole batch: 0, not NaN
    one = torch.tensor([0.0, 0.0, 4.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    for value in (
        logvar_regularizer(z, sample_weight=one),
        cond_logvar_regularizer(z, y, 3, sample_weight=one),
    ):
        (grad,) = torch.autograd.grad(value, z)
        assert float(value.detach()) == 0.0 and torch.equal(grad, torch.zeros_like(z))


def test_vib_per_row_rate_and_recomputed_rate_agree():
    x, y = _batch()
    w = torch.linspace(0.2, 3.0, N_ROWS, dtype=torch.float64)
    from_batch_mean = _evaluate(_case("vib_kl"), x, y, w)
    from_rows = _evaluate(_case("vib_kl_rows"), x, y, w)
    _assert_same(from_batch_mean, from_rows)
    criterion, module, output_of = _case("vib_kl")
    with pytest.raises(ValueError, match="per-row rates"):
        criterion(output_of(x), y, sample_weight=w)
    # without weights the batch-mean rate is used as it is (no second encoder pass)
    criterion(output_of(x), y)


def test_mass_jacobian_subsample_is_weighted_and_drawn_as_without_weights(monkeypatch):
    criterion, net, _ = _case("mass")
    criterion.jacobian_fraction = 1 / 3
    x = torch.randn(10, N_FEATURES, dtype=torch.float64)
    y = torch.arange(10) % N_CLASSES
    w = torch.linspace(0.1, 2.0, 10, dtype=torch.float64)
    seen = []
    original = net.log_jacobian

    def spy(inp, rows, hidden=()):
        seen.append(rows.clone())
        return original(inp, rows, hidden)

    monkeypatch.setattr(net, "log_jacobian", spy)
    torch.manual_seed(3)
    weighted = criterion(net(x), y, X=x, module=net, sample_weight=w)
    torch.manual_seed(3)
    criterion(net(x), y, X=x, module=net)
    rows = seen[0]
    assert torch.equal(seen[0], seen[1])  # the weights do not change the subsample
    assert len(rows) == math.ceil(10 / 3)
    per_row = original(x, torch.arange(10)).detach()
    expected = (w[rows] * per_row[rows]).sum() / w[rows].sum()
    torch.testing.assert_close(weighted["log_jacobian"], expected, rtol=1e-10, atol=1e-12)
    # weights all zero on the subsample: the term is 0, the loss stays finite
    w_zero = w.clone()
    w_zero[rows] = 0.0
    torch.manual_seed(3)
    terms = criterion(net(x), y, X=x, module=net, sample_weight=w_zero)
    assert torch.equal(seen[2], rows)
    assert float(terms["log_jacobian"]) == 0.0 and torch.isfinite(terms["loss"])


def test_approx_mass_weights_the_penalty_not_the_input_gradient():
    criterion, module, _ = _case("approx_mass")
    x, _ = _batch()
    w = torch.linspace(0.2, 3.0, N_ROWS, dtype=torch.float64)
    terms = criterion(x, None, X=x, module=module, sample_weight=w)
    flow = module.flow
    xg = x.clone().requires_grad_(True)
    log_p = flow.log_prob(xg)
    (grad,) = torch.autograd.grad(log_p.sum(), xg)
    mass = grad.norm(dim=1)
    torch.testing.assert_close(terms["nll"], -(w * log_p.detach()).sum() / w.sum())
    torch.testing.assert_close(terms["mass"], (w * mass).sum() / w.sum())
    with torch.no_grad():  # the validation path: same values, no graph
        valid = criterion(x, None, X=x, module=module, sample_weight=w)
    torch.testing.assert_close(valid["loss"], terms["loss"].detach())


@pytest.mark.parametrize("name", PER_SAMPLE + BATCH_STATISTICS)
def test_float32_weights_on_a_float32_batch(name):
    criterion, module, output_of = _case(name)
    module.float()
    x, y = _batch()
    x = x.float()
    w = torch.linspace(0.5, 2.0, N_ROWS)
    terms = criterion(output_of(x), y, X=x, module=module, sample_weight=w)
    assert terms["loss"].dtype == torch.float32 and torch.isfinite(terms["loss"])
