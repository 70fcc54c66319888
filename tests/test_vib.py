"""Tests of VIBClassifier, its objective and its modules."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfo import VIBClassifier
from skinfo.nn.vib import ZERO_ENTROPY_VAR, VIBNetwork, ZeroEntropyNoise
from skinfo.objectives.vib import (
    VIBLoss,
    cond_logvar_regularizer,
    gaussian_kl_standard,
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
    assert float(logvar_regularizer(z[:1])) == 0.0


def test_zero_entropy_noise():
    assert 0.5 * math.log(2 * math.pi * math.e * ZERO_ENTROPY_VAR) == pytest.approx(0, abs=1e-15)
    torch.manual_seed(0)
    noise = ZeroEntropyNoise().train()
    eps = noise(torch.zeros(200_000, 2, dtype=torch.float64))
    np.testing.assert_allclose(eps.var(0).numpy(), ZERO_ENTROPY_VAR, rtol=0.02)
    assert torch.equal(noise.eval()(eps), eps)


def test_loss_combines_terms():
    torch.manual_seed(0)
    mean, std = torch.randn(6, 3), torch.rand(6, 3) + 0.1
    z, logits = torch.randn(6, 3), torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    ce = torch.nn.functional.cross_entropy(logits, y)
    terms = VIBLoss("kl", 0.5, 4, track_information=True)((mean, std, z, logits), y)
    kl = gaussian_kl_standard(mean, std).mean()
    assert torch.allclose(terms["loss"], ce + 0.5 * kl)
    assert torch.allclose(terms["izx"], kl)
    terms = VIBLoss("l2", 2.0, 4)((mean, std, z, logits), y)
    assert torch.allclose(terms["loss"], ce + 2.0 * z.pow(2).sum(1).mean())
    assert "izx" not in terms


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
    p = clf.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(1), 1)
    np.testing.assert_array_equal(p, clf.predict_proba(Xte))
    np.testing.assert_allclose(clf.predict_proba(Xte[5:9]), p[5:9], rtol=1e-6, atol=1e-9)
    assert clf.transform(Xte).shape == (len(Xte), 8)
    s = clf.score_samples(Xte)
    if regularizer == "kl":
        np.testing.assert_allclose(s, -clf.rate(Xte), rtol=1e-12)
    else:
        np.testing.assert_allclose(s, p.max(1), rtol=1e-6)


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


def test_pipeline_and_grid_search_ece(digits):
    from skinfo.scorers import neg_expected_calibration_error

    Xtr, _, ytr, _ = digits
    pipe = make_pipeline(StandardScaler(), VIBClassifier(**{**FAST, "max_epochs": 5}))
    grid = GridSearchCV(
        pipe,
        {"vibclassifier__beta": [1e-3, 1.0]},
        cv=2,
        n_jobs=2,
        scoring=neg_expected_calibration_error,
    ).fit(Xtr[:400], ytr[:400])
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_params_["vibclassifier__beta"] in (1e-3, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("regularizer", ["kl", "l2"])
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


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
