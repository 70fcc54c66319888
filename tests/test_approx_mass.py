import pickle

import joblib
import numpy as np
import pytest
import torch
from estimator_zoo import expected_failed_checks
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import skinfo
from skinfo.approx_mass import ApproxMassFlowDetector, ApproxMassMonitor, _weighted_quantile
from skinfo.nn.realnvp import FlowTrainingModule, RealNVP, approximate_mass
from skinfo.objectives.approx_mass import ApproxMassLoss

FAST = dict(max_epochs=2, n_blocks=2, hidden_width=8, batch_size=32, random_state=0, device="cpu")
FAST_IMAGE = dict(
    max_epochs=2, n_blocks=1, hidden_width=4, batch_size=64, random_state=0, device="cpu"
)

SHAPES = [
    ((1,), {}),
    ((2,), {}),
    ((3,), {}),
    ((5,), {}),
    ((1, 4, 4), dict(n_blocks=1, hidden_width=4, n_scales=2)),
    ((2, 4, 4), dict(n_blocks=1, hidden_width=4, n_scales=1)),
    ((1, 8, 8), dict(n_blocks=1, hidden_width=4, n_scales=3)),
    ((3, 4, 4), dict(n_blocks=2, hidden_width=4, n_scales=2)),
]


def _flow(shape, seed=0, scale=0.1, **kwargs):
    """A float64 flow with random, non-trivial weights (the last layers start at zero)."""
    torch.manual_seed(seed)
    params = dict(n_blocks=4, hidden_width=16) if len(shape) == 1 else {}
    flow = RealNVP(shape, seed=seed, **{**params, **kwargs}).double()
    for p in flow.parameters():
        if p.requires_grad:
            p.data.normal_(0, scale)
    return flow


def _dim(shape):
    return int(np.prod(shape))


@pytest.mark.parametrize(("shape", "kwargs"), SHAPES, ids=str)
def test_invertible(shape, kwargs):
    flow = _flow(shape, **kwargs)
    x = torch.randn(20, _dim(shape), dtype=torch.float64)
    z, _ = flow(x)
    assert z.shape == x.shape
    assert torch.allclose(flow.inverse(z), x, atol=1e-4)
    assert not torch.allclose(z, x, atol=1e-2)  # not the identity


@pytest.mark.parametrize(("shape", "kwargs"), SHAPES, ids=str)
def test_log_likelihood_is_brute_force_change_of_variables(shape, kwargs):
    flow = _flow(shape, **kwargs)
    x = torch.randn(4, _dim(shape), dtype=torch.float64)
    log_p = flow.log_prob(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], x[i])
        z = flow(x[i : i + 1])[0][0].detach().numpy()
        expected = norm.logpdf(z).sum() + np.linalg.slogdet(jac.numpy())[1]
        assert log_p[i].item() == pytest.approx(expected, abs=1e-8)


def test_one_feature_flow_is_a_gaussian():
    flow = _flow((1,), scale=0.5)
    (layer,) = list(flow.inn)  # the elementwise affine layer alone
    s, t = layer.log_scale.item(), layer.shift.item()
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    # y = x exp(s) + t standard normal  <=>  x ~ N(-t exp(-s), exp(-s)^2)
    expected = norm.logpdf(x[:, 0].numpy(), loc=-t * np.exp(-s), scale=np.exp(-s))
    np.testing.assert_allclose(flow.log_prob(x).detach().numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize(("shape", "kwargs"), SHAPES, ids=str)
def test_flow_starts_volume_preserving(shape, kwargs):
    # the last layer of every st-network starts at zero: every coupling starts as the
    # identity, and the permutations, squeezes and factoring-out preserve volume
    torch.manual_seed(0)
    flow = RealNVP(shape, **kwargs)
    x = torch.randn(6, _dim(shape))
    z, log_det = flow(x)
    assert torch.equal(log_det, torch.zeros(6))
    assert torch.equal(torch.sort(z, dim=1).values, torch.sort(x, dim=1).values)


def test_image_flow_shape_errors():
    with pytest.raises(ValueError, match="n_scales"):
        RealNVP((1, 6, 6), n_scales=3)
    with pytest.raises(ValueError, match="input_shape"):
        RealNVP((2, 3))


def test_flow_pickles():
    flow = _flow((1, 8, 8), n_blocks=1, hidden_width=4)
    x = torch.randn(3, 64, dtype=torch.float64)
    again = pickle.loads(pickle.dumps(flow))
    assert torch.equal(again.log_prob(x), flow.log_prob(x))


@pytest.mark.parametrize("shape", [(4,), (1, 4, 4)], ids=["dense", "image"])
def test_approximate_mass_is_per_sample_input_gradient_norm(shape):
    flow = _flow(shape, n_blocks=1, hidden_width=4) if len(shape) == 3 else _flow(shape)
    x = torch.randn(7, _dim(shape), dtype=torch.float64)
    log_p, mass = approximate_mass(flow, x)
    torch.testing.assert_close(log_p, flow.log_prob(x))
    for i in range(len(x)):  # each row alone: d log p(x_i) / d x_i
        xi = x[i].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(flow.log_prob(xi[None])[0], xi)
        assert mass[i].item() == pytest.approx(g.norm().item(), rel=1e-10)
    # not the gradient of the batch mean, which scales each norm by 1 / batch size
    xb = x.clone().requires_grad_(True)
    (g_mean,) = torch.autograd.grad(flow.log_prob(xb).mean(), xb)
    torch.testing.assert_close(g_mean.norm(dim=1) * len(x), mass)


def test_loss_is_nll_plus_alpha_mass_and_differentiable():
    flow = _flow((4,))
    module = FlowTrainingModule(flow).eval()
    x = torch.randn(9, 4, dtype=torch.float64)
    t0 = ApproxMassLoss(alpha=0.0)(x, None, X=x, module=module)
    t2 = ApproxMassLoss(alpha=2.0)(x, None, X=x, module=module)
    nll = -flow.log_prob(x).mean()
    torch.testing.assert_close(t0["loss"], nll)
    assert "mass" not in t0
    mass = approximate_mass(flow, x)[1].mean()
    torch.testing.assert_close(t2["loss"], nll + 2.0 * mass)
    torch.testing.assert_close(t2["mass"], mass)


def test_validation_loss_builds_no_second_order_graph(monkeypatch):
    # skorch evaluates the validation loss under no_grad: same values, no double-backward graph
    import skinfo.objectives.approx_mass as objective

    flags = []

    def spy(flow, x, *, create_graph=False):
        flags.append(create_graph)
        return approximate_mass(flow, x, create_graph=create_graph)

    monkeypatch.setattr(objective, "approximate_mass", spy)
    flow = _flow((4,))
    module = FlowTrainingModule(flow).eval()
    x = torch.randn(9, 4, dtype=torch.float64)
    loss_fn = ApproxMassLoss(alpha=2.0)
    with torch.no_grad():
        valid = loss_fn(x, None, X=x, module=module)
    train = loss_fn(x, None, X=x, module=module)
    assert flags == [False, True]
    assert valid["loss"].grad_fn is None and not valid["loss"].requires_grad
    assert train["loss"].requires_grad
    torch.testing.assert_close(valid["loss"], train["loss"].detach())
    torch.testing.assert_close(valid["mass"], train["mass"])


def test_double_backprop_gradient_matches_finite_differences():
    # d loss / d theta through the input gradient (the second backward pass),
    # checked against finite differences of the loss itself
    flow = _flow((3,), scale=0.3)
    module = FlowTrainingModule(flow).eval()
    x = torch.randn(5, 3, dtype=torch.float64)
    param = flow.inn[1].subnet[0].weight  # first layer of the first coupling's subnet
    loss_fn = ApproxMassLoss(alpha=1.5)

    def loss_of(w):
        with torch.no_grad():
            param.copy_(w)
        return loss_fn(x, None, X=x, module=module)["loss"]

    w0 = param.detach().clone()
    loss_of(w0).backward()
    grad = param.grad.clone()
    direction = torch.randn_like(w0)
    eps = 1e-6
    numeric = (loss_of(w0 + eps * direction) - loss_of(w0 - eps * direction)) / (2 * eps)
    assert (grad * direction).sum().item() == pytest.approx(numeric.item(), rel=1e-5)
    # and the penalty really contributes a gradient (not just the likelihood's)
    flow.zero_grad()
    with torch.no_grad():
        param.copy_(w0)
    ApproxMassLoss(alpha=0.0)(x, None, X=x, module=module)["loss"].backward()
    assert not torch.allclose(param.grad, grad)


def test_dequantization_noise_only_in_training():
    flow = _flow((3,))
    module = FlowTrainingModule(flow)
    x = torch.randn(6, 3, dtype=torch.float64)
    loss = ApproxMassLoss(alpha=0.0, noise=0.5)
    torch.manual_seed(0)
    train = loss(x, None, X=x, module=module.train())["loss"]
    torch.manual_seed(0)
    noisy = x + 0.5 * torch.randn_like(x)
    torch.testing.assert_close(train, -flow.log_prob(noisy).mean())
    evaluated = loss(x, None, X=x, module=module.eval())["loss"]
    torch.testing.assert_close(evaluated, -flow.log_prob(x).mean())


def test_estimator_api_contamination_and_pickle():
    X = np.random.RandomState(0).normal(size=(300, 3))
    det = ApproxMassFlowDetector(contamination=0.1, **FAST).fit(X)
    pred = det.predict(X)
    assert pred.dtype.kind == "i" and set(np.unique(pred)) <= {-1, 1}
    assert abs(np.mean(pred == -1) - 0.1) < 0.02
    np.testing.assert_allclose(det.decision_function(X), det.score_samples(X) - det.offset_)
    np.testing.assert_allclose(det.score_samples(X), -det.approximate_mass(X))
    assert det.score(X) == pytest.approx(np.mean(det.log_likelihood(X)))
    ll = ApproxMassFlowDetector(ood_score="log_likelihood", **FAST).fit(X)
    np.testing.assert_allclose(ll.score_samples(X), ll.log_likelihood(X))
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    s = det.sample(5, random_state=0)
    assert s.shape == (5, 3)
    np.testing.assert_array_equal(s, det.sample(5, random_state=0))


def test_fitted_approximate_mass_matches_autograd_on_the_fitted_flow():
    X = np.random.RandomState(1).normal(size=(120, 4))
    det = ApproxMassFlowDetector(**FAST).fit(X)
    flow = det.net_.module_.flow
    for i in range(5):
        xi = torch.tensor(X[i], dtype=torch.float32, requires_grad=True)
        (g,) = torch.autograd.grad(flow.log_prob(xi[None])[0], xi)
        assert det.approximate_mass(X[i : i + 1])[0] == pytest.approx(g.norm().item(), rel=1e-4)


def test_default_contamination_is_the_five_percent_quantile_of_training_scores():
    X = np.random.RandomState(2).normal(size=(200, 3))
    det = ApproxMassFlowDetector(**FAST)
    assert det.contamination == 0.05
    det.fit(X)
    assert det.offset_ == np.quantile(det.score_samples(X), 0.05)
    assert np.mean(det.predict(X) == -1) == pytest.approx(0.05, abs=0.005)


def test_contamination_flags_ten_percent_of_digits():
    X = load_digits().data[:600]
    pipe = Pipeline(
        [("scale", StandardScaler()), ("det", ApproxMassFlowDetector(contamination=0.1, **FAST))]
    ).fit(X)
    assert np.mean(pipe.predict(X) == -1) == pytest.approx(0.1, abs=0.01)


def test_image_flow_estimator_digits(tmp_path):
    X = load_digits().data[:300] / 16
    det = ApproxMassFlowDetector(
        architecture="multiscale", input_shape=(1, 8, 8), n_scales=2, **FAST_IMAGE
    ).fit(X)
    flow = det.net_.module_.flow
    assert flow.input_shape == (1, 8, 8)
    names = {type(m).__name__ for m in flow.modules()}
    assert {"CheckerboardCoupling", "IRevNetDownsampling", "AffineCouplingOneSided"} <= names
    scores = det.score_samples(X)
    assert scores.shape == (300,) and np.isfinite(scores).all()
    joblib.dump(det, tmp_path / "det.joblib")
    again = joblib.load(tmp_path / "det.joblib")
    np.testing.assert_array_equal(again.score_samples(X), scores)
    det.save(tmp_path / "det.skinfo")  # the safe format rebuilds the flow from the parameters
    np.testing.assert_array_equal(skinfo.load(tmp_path / "det.skinfo").score_samples(X), scores)
    assert det.sample(3, random_state=0).shape == (3, 64)


def _layer_names(det):
    return {type(m).__name__ for m in det.net_.module_.flow.modules()}


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (28, 28)], ids=str)
def test_images_get_the_dense_flow_by_default(shape):
    X = np.random.RandomState(0).uniform(size=(40, *shape)).astype(np.float32)
    det = ApproxMassFlowDetector(random_state=0, device="cpu").fit(X)
    assert det.max_epochs == "auto" and det.n_iter_ == 25  # the image budget
    n_features = int(np.prod(shape))
    assert det.n_features_in_ == n_features
    assert det.net_.module_.flow.input_shape == (n_features,)
    assert "CheckerboardCoupling" not in _layer_names(det)
    assert det.score_samples(X).shape == (40,)
    with pytest.raises(ValueError, match="shape"):
        det.score_samples(X.reshape(40, -1))  # fitted on images


def test_flat_rows_train_fifty_epochs_by_default():
    X = np.random.RandomState(0).normal(size=(40, 2))
    det = ApproxMassFlowDetector(hidden_width=4, random_state=0, device="cpu").fit(X)
    assert det.n_iter_ == 50
    assert ApproxMassFlowDetector(**{**FAST, "max_epochs": 3}).fit(X).n_iter_ == 3


def test_multiscale_flow_from_image_shaped_X():
    X = load_digits().data[:100].reshape(-1, 1, 8, 8) / 16
    det = ApproxMassFlowDetector(architecture="multiscale", **FAST_IMAGE).fit(X)
    assert det.net_.module_.flow.input_shape == (1, 8, 8)
    assert "CheckerboardCoupling" in _layer_names(det)
    flat = ApproxMassFlowDetector(architecture="multiscale", input_shape=(1, 8, 8), **FAST_IMAGE)
    flat.fit(X.reshape(100, 64))  # the same flow from rows and input_shape
    np.testing.assert_allclose(flat.score_samples(X.reshape(100, 64)), det.score_samples(X))


def test_weighted_quantile_is_the_quantile_of_repeated_values():
    rng = np.random.RandomState(0)
    for n in (1, 2, 7, 50):
        values, weights = rng.normal(size=n), rng.randint(0, 4, size=n).astype(float)
        weights[0] = 1.0  # not all zero
        for q in (0.0, 0.05, 0.1, 0.37, 0.5, 1.0):
            expected = np.quantile(np.repeat(values, weights.astype(int)), q)
            assert _weighted_quantile(values, q, weights) == pytest.approx(expected, abs=1e-12)
    values = rng.normal(size=30)
    assert _weighted_quantile(values, 0.05, None) == np.quantile(values, 0.05)
    assert _weighted_quantile(values, 0.05, np.ones(30)) == pytest.approx(
        np.quantile(values, 0.05), abs=1e-12
    )


def test_offset_weighted_equals_repeated_rows_and_ignores_zero_weights():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(120, 3))
    weights = rng.randint(1, 4, size=120).astype(float)
    # one full batch, no dequantization noise: the weighted loss is the repeated rows' loss
    params = {**FAST, "batch_size": 1000, "noise": 0.0, "contamination": 0.1}
    weighted = ApproxMassFlowDetector(**params).fit(X, sample_weight=weights)
    repeated = ApproxMassFlowDetector(**params).fit(np.repeat(X, weights.astype(int), axis=0))
    scores = weighted.score_samples(X)
    np.testing.assert_allclose(scores, repeated.score_samples(X), rtol=1e-4, atol=1e-5)
    assert weighted.offset_ == pytest.approx(repeated.offset_, rel=1e-4, abs=1e-5)
    expected = np.quantile(np.repeat(scores, weights.astype(int)), 0.1)
    assert weighted.offset_ == pytest.approx(expected, abs=1e-12)
    assert weighted.offset_ != pytest.approx(np.quantile(scores, 0.1), abs=1e-6)
    # a row of weight 0, far out, moves neither the flow nor the offset
    X_far = np.r_[X, np.full((10, 3), 8.0)]
    ones = np.r_[np.ones(120), np.zeros(10)]
    with_far = ApproxMassFlowDetector(**params).fit(X_far, sample_weight=ones)
    without = ApproxMassFlowDetector(**params).fit(X)
    assert with_far.offset_ == pytest.approx(without.offset_, rel=1e-4, abs=1e-5)
    unweighted = np.quantile(with_far.score_samples(X_far), 0.1)
    assert unweighted < with_far.offset_ - 1e-3  # the far rows would have pulled it down


@pytest.mark.parametrize(
    "params",
    [
        {"alpha": -1.0},
        {"alpha": float("nan")},
        {"noise": -0.1},
        {"ood_score": "x"},
        {"contamination": 0.7},
        {"contamination": 0.0},
        {"contamination": "auto"},  # no score-defined threshold: a float only
        {"n_blocks": 0},
        {"n_scales": 0},
        {"clamp": 0.0},
        {"input_shape": (2, 2, 2, 1)},
        {"input_shape": (1, 4, 2)},  # 8 values, X has 16 features
        {"input_shape": (1, 4, 4), "n_scales": 3, "architecture": "multiscale"},  # 1x1 last
        {"architecture": "conv"},
        {"max_epochs": "max"},
        {"architecture": "multiscale"},  # flat rows: no image shape
    ],
)
def test_bad_params(params):
    with pytest.raises(ValueError):
        ApproxMassFlowDetector(**{**FAST, **params}).fit(np.zeros((10, 16)))


def test_monitor_records_mass_and_auroc():
    rng = np.random.RandomState(0)
    X, X_ood = rng.normal(size=(100, 2)), rng.normal(size=(40, 2)) * 5 + 3
    det = ApproxMassFlowDetector(callbacks=[ApproxMassMonitor(X_ood=X_ood)], **FAST).fit(X)
    assert len(det.history_[:, "mass_in"]) == 2
    mass_in, mass_out = det.approximate_mass(X), det.approximate_mass(X_ood)
    assert det.history_[-1, "mass_in"] == pytest.approx(mass_in.mean(), rel=1e-4)
    assert det.history_[-1, "mass_ood"] == pytest.approx(mass_out.mean(), rel=1e-4)
    assert det.history_[-1, "mass_in_median"] == pytest.approx(np.median(mass_in), rel=1e-4)
    assert det.history_[-1, "mass_ood_median"] == pytest.approx(np.median(mass_out), rel=1e-4)
    labels = np.r_[np.ones(100), np.zeros(40)]
    assert det.history_[-1, "mass_auroc"] == pytest.approx(
        roc_auc_score(labels, -np.r_[mass_in, mass_out])
    )
    ll = np.r_[det.log_likelihood(X), det.log_likelihood(X_ood)]
    assert det.history_[-1, "loglik_auroc"] == pytest.approx(roc_auc_score(labels, ll))


def test_monitor_uses_training_rows_of_a_validation_split():
    X = np.random.RandomState(0).normal(size=(100, 3))
    det = ApproxMassFlowDetector(
        callbacks=[ApproxMassMonitor(max_rows=30)], validation_fraction=0.2, **FAST
    ).fit(X)
    assert np.isfinite(det.history_[:, "mass_in"]).all()
    assert "mass_auroc" not in det.history_[-1]


def test_pipeline_digits_with_scaler_no_nan():
    X, y = load_digits(return_X_y=True)  # raw pixels 0..16, constant corner pixels
    pipe = Pipeline(
        [("scale", StandardScaler()), ("det", ApproxMassFlowDetector(**{**FAST, "max_epochs": 5}))]
    )
    pipe.fit(X[y < 5])
    assert np.isfinite(pipe[-1].history_[:, "train_loss"]).all()
    for out in (pipe.score_samples(X[y >= 5]), pipe.decision_function(X), pipe.score(X)):
        assert np.isfinite(out).all()


@pytest.mark.slow
def test_gridsearch_over_alpha_with_ood_auroc_scorer():
    from skinfo.scorers import make_ood_scorer

    X, y = load_digits(return_X_y=True)
    X_in, X_ood = X[y < 5][:400], X[y >= 5][:200]  # the OOD set is held out of training
    pipe = Pipeline(
        [("scale", StandardScaler()), ("det", ApproxMassFlowDetector(**{**FAST, "max_epochs": 4}))]
    )
    scorer = make_ood_scorer(X_ood, balance=True, random_state=0)
    grid = GridSearchCV(pipe, {"det__alpha": [0.0, 1.0]}, scoring=scorer, cv=2).fit(X_in)
    assert sorted(grid.cv_results_["param_det__alpha"]) == [0.0, 1.0]
    assert grid.best_params_["det__alpha"] in (0.0, 1.0)
    # the score of the refitted best model is the balanced AUROC computed by hand
    X_test = X[y < 5][400:550]  # fewer than X_ood: the OOD scores are subsampled
    s_in, s_out = grid.best_estimator_.score_samples(X_test), grid.score_samples(X_ood)
    rng = np.random.RandomState(0)
    s_out = s_out[rng.choice(len(s_out), len(s_in), replace=False)]
    expected = roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_in))], np.r_[s_in, s_out])
    assert grid.score(X_test) == pytest.approx(expected)


@pytest.mark.slow
@parametrize_with_checks(
    [ApproxMassFlowDetector(**FAST)], expected_failed_checks=expected_failed_checks
)
def test_sklearn_checks(estimator, check):
    check(estimator)
