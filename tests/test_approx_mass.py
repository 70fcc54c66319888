import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfo.approx_mass import ApproxMassFlowDetector, ApproxMassMonitor
from skinfo.nn.realnvp import FlowTrainingModule, RealNVP, approximate_mass
from skinfo.objectives.approx_mass import ApproxMassLoss

FAST = dict(max_epochs=2, n_blocks=2, hidden_width=8, batch_size=32, random_state=0)


def _trained_flow(dim, seed=0):
    torch.manual_seed(seed)
    flow = RealNVP(dim, n_blocks=4, hidden_width=16, seed=seed).double()
    for p in flow.parameters():  # non-trivial weights (the last layers start at zero)
        p.data.normal_(0, 0.3)
    return flow


def test_invertible():
    flow = _trained_flow(5)
    x = torch.randn(50, 5, dtype=torch.float64)
    z, _ = flow(x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-4)
    assert not torch.allclose(z, x, atol=1e-2)


def test_log_likelihood_brute_force_jacobian():
    flow = _trained_flow(3)
    x = torch.randn(6, 3, dtype=torch.float64)
    lp = flow.log_prob(x)
    for i in range(6):
        J = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], x[i])
        z = flow(x[i : i + 1])[0][0]
        ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum() + torch.slogdet(J)[1]
        assert torch.allclose(lp[i], ref, atol=1e-8)


def test_one_feature_is_elementwise_affine():
    flow = RealNVP(1, n_blocks=3)
    assert len(flow.layers) == 1


def test_approximate_mass_matches_per_row_autograd():
    flow = _trained_flow(4)
    x = torch.randn(7, 4, dtype=torch.float64)
    _, mass = approximate_mass(flow, x)
    for i in range(7):
        xi = x[i].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(flow.log_prob(xi[None])[0], xi)
        assert torch.allclose(mass[i], g.norm(), atol=1e-10)


def test_loss_alpha_zero_is_nll_and_penalty_adds():
    flow = _trained_flow(4)
    module = FlowTrainingModule(flow).eval()
    x = torch.randn(9, 4, dtype=torch.float64)
    t0 = ApproxMassLoss(alpha=0.0)(x, None, X=x, module=module)
    t2 = ApproxMassLoss(alpha=2.0)(x, None, X=x, module=module)
    nll = -flow.log_prob(x).mean()
    assert torch.allclose(t0["loss"], nll)
    mass = approximate_mass(flow, x)[1].mean()
    assert torch.allclose(t2["loss"], nll + 2.0 * mass)
    t2["loss"].backward()  # double backprop reaches the parameters
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_estimator_api_contamination_and_pickle():
    X = np.random.RandomState(0).normal(size=(300, 3))
    det = ApproxMassFlowDetector(contamination=0.1, **FAST).fit(X)
    pred = det.predict(X)
    assert pred.dtype.kind == "i" and set(np.unique(pred)) <= {-1, 1}
    assert abs(np.mean(pred == -1) - 0.1) < 0.02
    np.testing.assert_allclose(det.decision_function(X), det.score_samples(X) - det.offset_)
    np.testing.assert_allclose(det.score_samples(X), -det.approximate_mass(X))
    assert det.score(X) == pytest.approx(np.mean(det.log_likelihood(X)))
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    s = det.sample(5, random_state=0)
    assert s.shape == (5, 3)
    np.testing.assert_array_equal(s, det.sample(5, random_state=0))


@pytest.mark.parametrize(
    "params", [{"alpha": -1.0}, {"ood_score": "x"}, {"contamination": 0.7}, {"n_blocks": 0}]
)
def test_bad_params(params):
    with pytest.raises(ValueError):
        ApproxMassFlowDetector(**{**FAST, **params}).fit(np.zeros((10, 2)))


def test_monitor_records_mass_and_auroc():
    X = np.random.RandomState(0).normal(size=(100, 2))
    cb = ApproxMassMonitor(X_ood=X * 5 + 3)
    det = ApproxMassFlowDetector(callbacks=[cb], **FAST).fit(X)
    assert len(det.history_[:, "mass_in"]) == 2
    assert det.history_[-1, "mass_in"] == pytest.approx(det.approximate_mass(X).mean(), rel=1e-4)
    assert 0 <= det.history_[-1, "mass_auroc"] <= 1


@pytest.mark.slow
def test_pipeline_digits_and_gridsearch():
    from skinfo.scorers import make_ood_scorer

    X, y = load_digits(return_X_y=True)
    X_in, X_out = X[y < 5][:400], X[y >= 5][:200]
    pipe = Pipeline([("scale", StandardScaler()), ("det", ApproxMassFlowDetector(**FAST))])
    pipe.fit(X_in)  # dequantization noise keeps the constant pixels finite
    assert np.isfinite(pipe.score_samples(X_out)).all()
    grid = GridSearchCV(pipe, {"det__alpha": [0.0, 1.0]}, scoring=make_ood_scorer(X_out), cv=2)
    grid.fit(X_in)
    assert set(grid.cv_results_["param_det__alpha"]) == {0.0, 1.0}


@pytest.mark.slow
@parametrize_with_checks([ApproxMassFlowDetector(**FAST)])
def test_sklearn_checks(estimator, check):
    check(estimator)
