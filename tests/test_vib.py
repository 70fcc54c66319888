"""Tests of VIBClassifier, its objective and its modules."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from estimator_zoo import expected_failed_checks
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfo import VIBClassifier
from skinfo.datasets import load_digits_held_out, make_digits_ood
from skinfo.metrics import ood_auroc
from skinfo.nn.vib import (
    ZERO_ENTROPY_VAR,
    VIBNetwork,
    ZeroEntropyNoise,
    gaussian_kl_standard,
    gaussian_kl_to_mixture_bound,
    sample_with_rate,
)
from skinfo.objectives.vib import (
    VIBLoss,
    cond_logvar_regularizer,
    l2_regularizer,
    logvar_regularizer,
)

FAST = dict(
    hidden_layer_sizes=(32,),
    latent_dim=8,
    n_samples=4,
    max_epochs=20,
    lr=1e-2,
    random_state=0,
    device="cpu",
)
LOG_2PIE = math.log(2 * math.pi * math.e)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)


# ---------------------------------------------------------------- objective math
def test_kl_matches_closed_form():
    rng = np.random.default_rng(0)
    mu, sd = rng.normal(size=(5, 3)), rng.uniform(0.1, 2.0, size=(5, 3))
    expected = np.sum(-np.log(sd) + (sd**2 + mu**2) / 2 - 0.5, axis=1)
    got = gaussian_kl_standard(torch.tensor(mu), torch.tensor(sd)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Monte-Carlo check of the KL definition itself
    eps = rng.normal(size=(200_000, 3))
    z = mu[0] + sd[0] * eps
    log_q = -0.5 * np.sum(eps**2 + np.log(2 * np.pi * sd[0] ** 2), 1)
    log_p = -0.5 * np.sum(z**2 + np.log(2 * np.pi), 1)
    assert abs(np.mean(log_q - log_p) - expected[0]) < 0.02


def _batch():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(9, 4)) * rng.uniform(0.5, 3, size=4)
    y = np.array([0, 0, 0, 1, 1, 2, 0, 1, 1])  # class 2 has a single sample, class 3 none
    return z, y


def test_surrogate_regularizers_match_numpy():
    z, y = _batch()
    zt, yt = torch.tensor(z), torch.tensor(y)
    np.testing.assert_allclose(float(l2_regularizer(zt)), np.mean(np.sum(z**2, 1)), rtol=1e-12)
    expected_lv = np.sum(0.5 * (LOG_2PIE + np.log(np.var(z, axis=0, ddof=1))))
    np.testing.assert_allclose(float(logvar_regularizer(zt)), expected_lv, rtol=1e-10)
    expected_c = 0.0
    for c in range(4):
        zc = z[y == c]
        if len(zc) >= 2:
            expected_c += (
                len(zc) / len(z) * np.sum(0.5 * (LOG_2PIE + np.log(np.var(zc, axis=0, ddof=1))))
            )
    got = cond_logvar_regularizer(zt, yt, 4)
    np.testing.assert_allclose(float(got), expected_c, rtol=1e-10)


def test_cond_logvar_single_samples_no_nan_and_gradient_finite():
    z = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    reg = cond_logvar_regularizer(z, torch.tensor([0, 1, 2]), 3)
    assert float(reg.detach()) == 0.0
    reg.backward()
    assert torch.isfinite(z.grad).all()
    assert float(logvar_regularizer(z[:1]).detach()) == 0.0


def test_zero_entropy_noise():
    assert 0.5 * math.log(2 * math.pi * math.e * ZERO_ENTROPY_VAR) == pytest.approx(0, abs=1e-15)
    torch.manual_seed(0)
    noise = ZeroEntropyNoise().train()
    eps = noise(torch.zeros(200_000, 2, dtype=torch.float64))
    np.testing.assert_allclose(eps.var(0).numpy(), ZERO_ENTROPY_VAR, rtol=0.02)
    # part of the objective: added in evaluation mode (skorch's validation) too
    eps = noise.eval()(torch.zeros(200_000, 2, dtype=torch.float64))
    np.testing.assert_allclose(eps.var(0).numpy(), ZERO_ENTROPY_VAR, rtol=0.02)


def test_sample_with_rate_matches_autograd():
    # values and gradients against plain autograd of the textbook formulas
    torch.manual_seed(0)
    h = (4 * torch.randn(7, 6, dtype=torch.float64)).requires_grad_()
    eps = torch.randn(7, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda h: sample_with_rate(h, eps), (h,))
    z, rate = sample_with_rate(h, eps)
    mean, rho = h.chunk(2, dim=-1)
    std = torch.log1p(torch.exp(rho - 5.0))
    kl_rows = 0.5 * (std**2 + mean**2 - 1.0 - torch.log(std**2)).sum(-1)
    z_ref, rate_ref = mean + std * eps, kl_rows.mean()
    torch.testing.assert_close(z, z_ref)
    torch.testing.assert_close(rate, rate_ref)
    w = torch.randn(7, 3, dtype=torch.float64)
    grad = torch.autograd.grad((z * w).sum() + 3 * rate, h)[0]
    grad_ref = torch.autograd.grad((z_ref * w).sum() + 3 * rate_ref, h)[0]
    torch.testing.assert_close(grad, grad_ref)
    # plain tensor operations: second derivatives are available and correct too
    assert torch.autograd.gradgradcheck(lambda h: sample_with_rate(h, eps), (h,))


def test_sample_with_rate_underflowing_std():
    # std = softplus(rho - 5) is a float32 subnormal for rho - 5 in (-104, -87.3) and 0 below:
    # the rate stays finite, then becomes +inf (a diverging loss, never a silent NaN)
    for t, finite in [(-95.0, True), (-103.0, True), (-110.0, False)]:
        h = torch.tensor([[0.0, t + 5.0]])
        rate = sample_with_rate(h, torch.ones(1, 1))[1]
        assert bool(torch.isfinite(rate)) == finite
        if t == -95.0:  # e^-95 still has 12 significant bits as a subnormal
            assert float(rate) == pytest.approx(-t - 0.5, rel=1e-4)  # -log std = -t


def test_rate_accurate_near_collapse():
    # mean ~ 0, std ~ 1: the float32 rate is a small sum of terms close to 0, not a small
    # difference of large sums
    gen = torch.Generator().manual_seed(4)
    k = 1024
    rho = math.log(math.expm1(1.0)) + 5.0 + 1e-3 * torch.randn(32, k, generator=gen)
    h = torch.cat([1e-3 * torch.randn(32, k, generator=gen), rho], dim=1)
    eps = torch.zeros(32, k)
    rate = float(sample_with_rate(h, eps)[1])
    rate64 = float(sample_with_rate(h.double(), eps.double())[1])
    assert abs(rate - rate64) < 1e-3 * abs(rate64)
    h64 = h.double()
    kl = gaussian_kl_standard(h64[:, :k], F.softplus(h64[:, k:] - 5.0))
    assert rate64 == pytest.approx(float(kl.mean()), rel=1e-9)


def test_network_forward_calls_the_decoder_module():
    # hooks on the decoder run, and a decoder without bias is used as it is
    net = VIBNetwork(torch.nn.Identity(), 6, 3, 2, stochastic=True, n_samples=2)
    calls = []
    handle = net.decoder.register_forward_hook(lambda module, args, out: calls.append(out))
    z, logits, _ = net(torch.randn(4, 6))
    handle.remove()
    assert len(calls) == 1 and calls[0] is logits
    net.decoder = torch.nn.Linear(3, 2, bias=False)
    z, logits, _ = net(torch.randn(4, 6))
    torch.testing.assert_close(logits, net.decoder(z))


def test_network_training_forward():
    x = torch.randn(5, 4, dtype=torch.float64)
    net = VIBNetwork(torch.nn.Identity(), 4, 3, 2, stochastic=True, n_samples=2).double().train()
    torch.manual_seed(3)
    z, logits, rate = net(x)
    torch.manual_seed(3)
    eps = torch.randn(5, 3, dtype=torch.float64)
    mean, std = net.distribution(x)
    torch.testing.assert_close(z, mean + std * eps)
    torch.testing.assert_close(logits, net.decoder(z))
    torch.testing.assert_close(rate, gaussian_kl_standard(mean, std).mean())
    # deterministic encoder: Z = h + zero-entropy noise, no rate, in training and in
    # evaluation mode (skorch's validation loss uses the same objective)
    det = VIBNetwork(torch.nn.Identity(), 4, 3, 2, stochastic=False, n_samples=2).double()
    x = torch.zeros(100_000, 4, dtype=torch.float64)
    for mode in (True, False):
        z, _, rate = det.train(mode)(x)
        assert rate is None
        noise = (z - det.to_latent(x)).detach().numpy()
        np.testing.assert_allclose(noise.var(0), ZERO_ENTROPY_VAR, rtol=0.03)
        h = 0.5 * np.log(2 * np.pi * np.e * noise.var(0))  # Gaussian entropy
        np.testing.assert_allclose(h, 0.0, atol=0.02)


def test_loss_combines_terms():
    rng = np.random.default_rng(0)
    z, logits = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    y = np.array([0, 1, 2, 3, 0, 1])
    ce = np.mean(logsumexp(logits, axis=1) - logits[np.arange(6), y])  # numpy cross-entropy
    out = (torch.tensor(z), torch.tensor(logits), torch.tensor(1.7, dtype=torch.float64))
    yt = torch.tensor(y)
    terms = VIBLoss("kl", 0.5, 4, track_information=True)(out, yt)
    assert float(terms["loss"]) == pytest.approx(ce + 0.5 * 1.7, rel=1e-12)
    assert float(terms["ce"]) == pytest.approx(ce, rel=1e-12)
    assert float(terms["rate"]) == float(terms["izx"]) == pytest.approx(1.7)
    terms = VIBLoss("l2", 2.0, 4)((out[0], out[1], None), yt)
    assert float(terms["loss"]) == pytest.approx(ce + 2.0 * np.mean(np.sum(z**2, 1)), rel=1e-12)
    assert "izx" not in terms
    terms = VIBLoss("cond_logvar", 0.1, 4, track_information=True)((out[0], out[1], None), yt)
    # classes 0 and 1 have 2 rows each (weight 2/6), classes 2 and 3 one row (weight 0)
    cond = sum(
        2 / 6 * np.sum(0.5 * (LOG_2PIE + np.log(np.var(z[y == c], axis=0, ddof=1) + 1e-12)))
        for c in (0, 1)
    )
    assert float(terms["reg"]) == pytest.approx(cond, rel=1e-10)
    assert float(terms["loss"]) == pytest.approx(ce + 0.1 * cond, rel=1e-10)
    izx = np.sum(0.5 * (LOG_2PIE + np.log(np.var(z, axis=0, ddof=1) + 1e-12)))  # bound on H[Z]
    assert float(terms["izx"]) == pytest.approx(izx, rel=1e-10)


def test_network_log_proba_is_mc_average():
    torch.manual_seed(0)
    net = VIBNetwork(torch.nn.Identity(), 5, 3, 4, stochastic=True, n_samples=7).eval()
    x = torch.randn(2, 5)
    mean, std = net.distribution(x)
    probs = torch.stack(
        [torch.softmax(net.decoder(mean + std * e), -1) for e in net.pred_noise]
    ).mean(0)
    torch.testing.assert_close(net.log_proba(x).exp(), probs)
    det = VIBNetwork(torch.nn.Identity(), 5, 3, 4, stochastic=False, n_samples=2)
    assert torch.allclose(det.distribution(x)[1], torch.tensor(ZERO_ENTROPY_VAR).sqrt())


def _kl_diag(mu, sd, m, v):
    """numpy KL(N(mu, sd^2) || N(m, v)) summed over the last axis."""
    return 0.5 * np.sum(sd**2 / v + (mu - m) ** 2 / v - 1 + np.log(v) - np.log(sd**2), -1)


def test_mixture_bound_matches_numpy_and_bounds_the_kl():
    rng = np.random.default_rng(0)
    mu, sd = rng.normal(size=(6, 3)), rng.uniform(0.2, 1.5, size=(6, 3))
    m, v = rng.normal(size=(4, 3)) * 2, rng.uniform(0.3, 2.0, size=(4, 3))
    w = np.array([0.1, 0.2, 0.3, 0.4])
    got = gaussian_kl_to_mixture_bound(*map(torch.tensor, (mu, sd, m, v, np.log(w)))).numpy()
    per_comp = np.stack([_kl_diag(mu, sd, m[c], v[c]) - np.log(w[c]) for c in range(4)], -1)
    np.testing.assert_allclose(got, per_comp.min(-1), rtol=1e-10)
    # Monte-Carlo KL(q || sum_c w_c N(m_c, v_c)) <= the bound
    eps = rng.normal(size=(100_000, 1, 3))
    z = mu + sd * eps  # (S, 6, 3)
    log_q = np.sum(-0.5 * eps**2 - np.log(sd) - 0.5 * np.log(2 * np.pi), -1)
    log_comp = [
        np.sum(-0.5 * (z - m[c]) ** 2 / v[c] - 0.5 * np.log(2 * np.pi * v[c]), -1) + np.log(w[c])
        for c in range(4)
    ]
    kl_mc = np.mean(log_q - logsumexp(np.stack(log_comp), axis=0), axis=0)
    assert np.all(kl_mc <= got + 0.02)
    # a single component of weight 1 gives the exact KL
    one = gaussian_kl_to_mixture_bound(*map(torch.tensor, (mu, sd, m[:1], v[:1], np.zeros(1))))
    np.testing.assert_allclose(one.numpy(), _kl_diag(mu, sd, m[0], v[0]), rtol=1e-10)


# ------------------------------------------------------------------- estimator
@pytest.mark.parametrize("regularizer", ["kl", "l2", "logvar", "cond_logvar"])
def test_fit_history_and_invariance(digits, regularizer):
    Xtr, Xte, ytr, yte = digits
    clf = VIBClassifier(regularizer=regularizer, beta=1e-3, **FAST).fit(Xtr, ytr)
    assert clf.score(Xte, yte) > 0.85
    row = clf.history_[-1]
    reg_key = "train_rate" if regularizer == "kl" else "train_reg"
    for key in ("train_ce", reg_key, "train_izx", "info_izx", "info_hyz"):
        assert np.isfinite(row[key])
    expected = row["train_ce"] + 1e-3 * row[reg_key]
    assert row["train_loss"] == pytest.approx(expected, rel=1e-4)
    # information plane: I(X;Z) bound = the rate ('kl') or the log-variance bound on H[Z]
    assert row["info_izx"] == row["train_izx"] and row["info_hyz"] == row["train_ce"]
    if regularizer in ("kl", "logvar"):
        assert row["train_izx"] == pytest.approx(row[reg_key], rel=1e-6)
    p = clf.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(1), 1)
    np.testing.assert_array_equal(p, clf.predict_proba(Xte))
    np.testing.assert_allclose(clf.predict_proba(Xte[5:9]), p[5:9], rtol=1e-6, atol=1e-9)
    assert clf.transform(Xte).shape == (len(Xte), 8)
    np.testing.assert_allclose(clf.score_samples(Xte), -clf.marginal_rate(Xte), rtol=1e-12)
    if regularizer == "kl":
        clf.set_params(ood_score="neg_rate")
        np.testing.assert_allclose(clf.score_samples(Xte), -clf.rate(Xte), rtol=1e-12)
    else:
        with pytest.raises(ValueError, match="regularizer='kl'"):
            clf.rate(Xte)
    clf.set_params(ood_score="max_proba")
    np.testing.assert_allclose(clf.score_samples(Xte), p.max(1), rtol=1e-6)
    clf.set_params(ood_score="neg_entropy")
    np.testing.assert_allclose(clf.score_samples(Xte), np.sum(p * np.log(p), 1), atol=1e-6)


@pytest.mark.parametrize("regularizer", ["logvar", "cond_logvar"])
def test_validation_loss_has_the_training_distribution(digits, regularizer):
    # skorch computes valid_* in evaluation mode: the zero-entropy noise must be in Z there
    # too, else the log-variance of the collapsed Z (beta=1) drops far below the training one
    Xtr, _, ytr, _ = digits
    clf = VIBClassifier(regularizer=regularizer, beta=1.0, validation_fraction=0.2, **FAST)
    row = clf.fit(Xtr, ytr).history_[-1]
    assert abs(row["valid_reg"] - row["train_reg"]) < 1.0
    assert abs(row["valid_izx"] - row["train_izx"]) < 1.0
    assert row["valid_izx"] > -1.0  # H[noise] = 0 bounds the population value below


@pytest.mark.parametrize("regularizer", ["kl", "cond_logvar"])
def test_marginal_is_moment_matched_to_training_encodings(digits, regularizer):
    Xtr, _, ytr, _ = digits
    clf = VIBClassifier(regularizer=regularizer, **{**FAST, "max_epochs": 3}).fit(Xtr, ytr)
    module = clf.net_.module_.eval()
    with torch.no_grad():
        mu, sd = (t.double().numpy() for t in module.distribution(torch.tensor(Xtr).float()))
    for c in range(10):
        rows = ytr == c
        mean_c = mu[rows].mean(0)
        var_c = mu[rows].var(0) + np.mean(sd[rows] ** 2, 0)  # law of total variance
        np.testing.assert_allclose(module.marginal_mean[c].numpy(), mean_c, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(module.marginal_var[c].numpy(), var_c, rtol=1e-4, atol=1e-6)
    weights = module.marginal_log_weight.exp().numpy()
    np.testing.assert_allclose(weights, np.bincount(ytr) / len(ytr), rtol=1e-6)
    # the score is the numpy bound min_c [KL(p(z|x) || N(m_c, v_c)) - log w_c]
    m, v = module.marginal_mean.double().numpy(), module.marginal_var.double().numpy()
    log_w = module.marginal_log_weight.double().numpy()
    bound = np.min([_kl_diag(mu, sd, m[c], v[c]) - log_w[c] for c in range(10)], axis=0)
    np.testing.assert_allclose(clf.marginal_rate(Xtr), bound, rtol=1e-3, atol=1e-3)


def _marginal(clf):
    module = clf.net_.module_
    return [b.double().numpy().copy() for b in (module.marginal_mean, module.marginal_var,
                                                 module.marginal_log_weight)]  # fmt: skip


def test_weighted_marginal_equals_repeated_rows(digits):
    # the marginal fitted at the end of fit(sample_weight=w) is the one of the rows repeated
    # w times (zero weights drop rows), computed on the same trained encoder
    Xtr, _, ytr, _ = digits
    w = np.random.default_rng(0).integers(0, 4, size=len(ytr))
    clf = VIBClassifier(**{**FAST, "max_epochs": 2}).fit(Xtr, ytr, sample_weight=w)
    weighted = _marginal(clf)
    X32 = np.asarray(Xtr, np.float32)
    clf._after_fit(np.repeat(X32, w, axis=0), np.repeat(ytr, w))
    repeated = _marginal(clf)
    for got, expected in zip(weighted, repeated):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        np.exp(weighted[2]), np.bincount(ytr, weights=w) / w.sum(), rtol=1e-6
    )
    clf._after_fit(X32, ytr)  # unweighted: a different marginal, so the weights were used
    assert not np.allclose(_marginal(clf)[0], weighted[0], rtol=1e-3)


def test_rate_is_the_trained_quantity(digits):
    # rate() at inference must be the rate the objective minimizes (same mode, same formula)
    Xtr, _, ytr, _ = digits
    clf = VIBClassifier(**{**FAST, "max_epochs": 3}).fit(Xtr, ytr)
    module = clf.net_.module_.train()
    x = torch.tensor(Xtr[:256]).float()
    with torch.no_grad():
        _, _, rate = module(x)
        terms = clf.net_.criterion_(module(x), torch.tensor(ytr[:256]))
    np.testing.assert_allclose(clf.rate(Xtr[:256]).mean(), float(rate), rtol=1e-4)
    np.testing.assert_allclose(float(terms["rate"]), float(rate), rtol=1e-6)
    assert np.all(clf.rate(Xtr) > 0)


def test_ood_scores_on_digits():
    """Held-out classes and noise: the marginal rate detects them, the prior rate does not."""
    X_tr, y_tr, X_in, _, X_ho = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)
    X_noise = make_digits_ood(X_in, "gaussian_noise", random_state=0)
    clf = VIBClassifier(**FAST).fit(X_tr, y_tr)
    s_in = clf.score_samples(X_in)
    assert ood_auroc(s_in, clf.score_samples(X_ho)) > 0.8
    assert ood_auroc(s_in, clf.score_samples(X_noise)) > 0.85
    # documented property: with the N(0, I) prior, noise gets a *smaller* rate than digits
    clf.set_params(ood_score="neg_rate")
    assert ood_auroc(clf.score_samples(X_in), clf.score_samples(X_noise)) < 0.3


def test_information_plane_figure_from_history(digits):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfo.plotting import information_plane

    Xtr, _, ytr, _ = digits
    clf = VIBClassifier(**{**FAST, "max_epochs": 4}).fit(Xtr, ytr)
    ax = information_plane(clf.history_, x_key="info_izx", y_key="info_hyz")
    xs, ys = ax.lines[0].get_data()
    np.testing.assert_allclose(xs, clf.history_[:, "train_rate"])
    np.testing.assert_allclose(ys, clf.history_[:, "train_ce"])
    no_tracking = VIBClassifier(**{**FAST, "max_epochs": 1, "track_information": False})
    assert "info_izx" not in no_tracking.fit(Xtr, ytr).history_[-1]
    plt.close("all")


@pytest.mark.parametrize(
    "params",
    [
        dict(beta=-1.0),
        dict(beta=float("nan")),
        dict(regularizer="x"),
        dict(latent_dim=0),
        dict(n_samples=1.5),
        dict(ood_score="energy"),
        dict(regularizer="l2", ood_score="neg_rate"),
    ],
)
def test_bad_params(params):
    X, y = np.random.default_rng(0).random((20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError):
        VIBClassifier(max_epochs=1, **params).fit(X, y)


@pytest.mark.slow  # ~7-10 s on 2 cores: starting the two worker processes; the fits take 0.1 s
def test_pipeline_and_grid_search_ece(digits):
    from skinfo.metrics import expected_calibration_error
    from skinfo.scorers import neg_expected_calibration_error

    Xtr, _, ytr, _ = digits
    X, y = Xtr[:400], ytr[:400]
    pipe = make_pipeline(StandardScaler(), VIBClassifier(**{**FAST, "max_epochs": 5}))
    cv = list(StratifiedKFold(2, shuffle=True, random_state=0).split(X, y))
    grid = GridSearchCV(
        pipe,
        {"vibclassifier__beta": [1e-3, 1.0]},
        cv=cv,
        n_jobs=2,
        scoring=neg_expected_calibration_error,
    ).fit(X, y)
    # each cell equals minus the ECE of the same fit done here, in this process
    for i, beta in enumerate(grid.cv_results_["param_vibclassifier__beta"]):
        for k, (train, test) in enumerate(cv):
            model = clone(pipe).set_params(vibclassifier__beta=beta).fit(X[train], y[train])
            ece = expected_calibration_error(y[test], model.predict_proba(X[test]))
            assert grid.cv_results_[f"split{k}_test_score"][i] == pytest.approx(-ece, abs=1e-12)
    best = int(np.argmax(grid.cv_results_["mean_test_score"]))
    assert grid.best_params_ == grid.cv_results_["params"][best]


@pytest.mark.parametrize("regularizer", ["kl", "l2", "logvar", "cond_logvar"])
def test_beta_trades_rate_for_accuracy(digits, regularizer):
    Xtr, Xte, ytr, yte = digits
    key = "train_rate" if regularizer == "kl" else "train_reg"
    rates, accs = [], []
    for beta in (1e-4, 1e-1, 3.0):
        clf = VIBClassifier(regularizer=regularizer, beta=beta, **FAST).fit(Xtr, ytr)
        rates.append(clf.history_[-1, key])
        accs.append(clf.score(Xte, yte))
    assert rates[0] > rates[1] > rates[2]
    assert accs[0] > accs[2] + 0.05


ESTIMATORS = [
    VIBClassifier(regularizer=r, **{**FAST, "latent_dim": 4})
    for r in ("kl", "l2", "logvar", "cond_logvar")
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("as_images", [True, False])
def test_image_defaults_train_a_small_cnn(shape, as_images):
    # the class is which half of the image is brighter: only the spatial layout tells
    from skinfo.nn.encoders import SmallCNN

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 0.5, size=(48, *shape)).astype(np.float32)
    y = np.arange(48) % 2
    X[y == 0, ..., : shape[-1] // 2] += 0.5
    X[y == 1, ..., shape[-1] // 2 :] += 0.5
    kw = {} if as_images else {"input_shape": shape}
    X_fit = X if as_images else X.reshape(len(X), -1)
    clf = VIBClassifier(max_epochs=5, random_state=0, device="cpu", **kw).fit(X_fit, y)
    assert isinstance(clf.net_.module_.encoder, SmallCNN)
    assert clf.score(X_fit, y) > 0.9
    for score in ("neg_marginal_rate", "max_proba", "neg_rate"):
        assert np.isfinite(clf.set_params(ood_score=score).score_samples(X_fit)).all()
