"""Tests of IBINNClassifier, its INN, latent GMM and loss."""

import math
import pickle

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, logsumexp
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfo import IBINNClassifier
from skinfo.nn.inn import CouplingBlock, IBINNNetwork, conv_inn, dense_inn
from skinfo.nn.latent_gmm import LatentGMM
from skinfo.objectives.ibinn import IBINNLoss

FAST = dict(
    n_blocks=2,
    hidden_layer_sizes=(16,),
    max_epochs=15,
    batch_size=32,
    lr=1e-2,
    random_state=0,
    device="cpu",
)


@parametrize_with_checks([IBINNClassifier(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float64), y


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    clf = IBINNClassifier(
        n_blocks=3, hidden_layer_sizes=(64,), max_epochs=8, lr=1e-2, random_state=0
    )
    return clf.fit(X[:1000], y[:1000])


# ------------------------------------------------------------------ the INN
def _flows():
    torch.manual_seed(0)
    return {
        "dense": (dense_inn(64, 4, (32,)), (64,)),
        "conv_small": (conv_inn((1, 8, 8), "small", 2, (32,), 8), (64,)),
        "conv_rgb": (conv_inn((3, 8, 8), (2, "down", 2), 1, (32,), 8), (192,)),
    }


@pytest.mark.parametrize("name", ["dense", "conv_small", "conv_rgb"])
def test_inverse_of_forward_is_identity(name):
    flow, shape = _flows()[name]
    flow.eval()
    x = torch.rand(16, *shape)
    z, _ = flow(x)
    assert not torch.allclose(z, x, atol=1e-2)
    assert torch.allclose(flow.inverse(z), x, atol=1e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda: dense_inn(5, 3, (8,)),
        lambda: dense_inn(1),
        lambda: conv_inn((2, 4, 4), (1, "down", 1), 1, (8,), 4),
    ],
)
def test_log_det_matches_autograd_jacobian(make):
    torch.manual_seed(1)
    flow = make().double()
    d = flow.input_shape and int(np.prod(flow.input_shape))
    with torch.no_grad():  # non-trivial parameters (subnets end near zero otherwise)
        for p in flow.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(3, d, dtype=torch.float64)
    _, log_det = flow(x)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], x[i])
        expected = torch.linalg.slogdet(jac).logabsdet
        # 1e-6, not 1e-8: the soft permutations are float32-rounded rotations whose
        # |det| differs from 1 by ~1e-8 per block; the flow counts them as exactly 0
        assert float(log_det[i].detach()) == pytest.approx(float(expected), abs=1e-6)


def test_coupling_block_pickles_with_identical_outputs():
    torch.manual_seed(0)
    flow = dense_inn(6, 2, (8,))
    x = torch.randn(4, 6)
    clone = pickle.loads(pickle.dumps(flow))
    assert isinstance(clone.blocks[0], CouplingBlock)
    assert torch.equal(clone(x)[0], flow(x)[0])
    assert torch.equal(clone(x)[1], flow(x)[1])


def test_soft_clamp_is_tanh_over_clamp():
    torch.manual_seed(0)
    block = dense_inn(4, 1, (8,), clamp=1.5).blocks[0]
    a = torch.tensor([[30.0, -30.0, 0.0, 0.0]])  # scaled by 0.1 inside: s = +-3
    _, log_det = block._affine(torch.ones(1, 2), a)
    assert float(log_det) == pytest.approx(1.5 * math.tanh(2.0) - 1.5 * math.tanh(2.0))
    y, _ = block._affine(torch.ones(1, 2), a)
    assert float(y[0, 0]) == pytest.approx(math.exp(1.5 * math.tanh(3.0 / 1.5)), rel=1e-6)


def test_permutation_is_seeded_by_torch_and_leaves_numpy_alone():
    np.random.seed(5)  # noqa: NPY002 (FrEIA draws from the global RNG)
    before = np.random.get_state()[1].copy()  # noqa: NPY002 (FrEIA draws from the global RNG)
    torch.manual_seed(3)
    a = dense_inn(8, 1, (4,)).blocks[0].w_perm
    torch.manual_seed(3)
    b = dense_inn(8, 1, (4,)).blocks[0].w_perm
    assert torch.equal(a, b)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002 (FrEIA draws from the global RNG)


def test_single_channel_conv_level_is_refused():
    with pytest.raises(ValueError, match="start the architecture with 'down'"):
        conv_inn((1, 8, 8), "paper")


# ------------------------------------------------------------ GMM and loss
def test_means_are_spread_at_distance():
    torch.manual_seed(0)
    gmm = LatentGMM(4, 10, torch.ones(4) / 4, distance=5.0)
    dist = torch.cdist(gmm.means, gmm.means)
    off = dist[~torch.eye(4, dtype=bool)]
    assert torch.allclose(off, torch.full_like(off, 5.0), atol=1e-5)


def _batch(seed=0, k=3, d=4, b=7):
    torch.manual_seed(seed)
    gmm_module = torch.nn.Module()
    gmm_module.gmm = LatentGMM(k, d, torch.tensor([0.5, 0.3, 0.2][:k])).double()
    z = torch.randn(b, d, dtype=torch.float64) * 3
    log_det = torch.randn(b, dtype=torch.float64)
    y = torch.randint(0, k, (b,))
    return gmm_module, z, log_det, y


def _numpy_terms(module, z, log_det, y, smoothing):
    mu = module.gmm.means.detach().double().numpy()
    log_w = log_softmax(module.gmm.phi.double().numpy())
    np.testing.assert_allclose(np.exp(log_w), [0.5, 0.3, 0.2], rtol=1e-6)
    z, log_det, y = z.numpy(), log_det.numpy(), y.numpy()
    d, k = z.shape[1], mu.shape[0]
    log_n = -0.5 * ((z[:, None, :] - mu[None]) ** 2).sum(-1) - 0.5 * d * np.log(2 * np.pi)
    log_qz = logsumexp(log_n + log_w, axis=1)
    l_x = np.mean(-log_qz - log_det)
    log_post = log_n + log_w - log_qz[:, None]
    t = np.full((len(y), k), smoothing / k)
    t[np.arange(len(y)), y] += 1 - smoothing
    l_y = np.mean((t * log_post).sum(1))
    return l_x, l_y, log_n, log_w


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 10.0, np.inf])
@pytest.mark.parametrize("smoothing", [0.0, 0.05])
def test_loss_matches_numpy_eq9(beta, smoothing):
    module, z, log_det, y = _batch()
    terms = IBINNLoss(beta, n_dims=4, label_smoothing=smoothing)((z, log_det), y, module=module)
    l_x, l_y, _, _ = _numpy_terms(module, z, log_det, y, smoothing)
    expected = -2 * l_y if np.isinf(beta) else 2 / (1 + beta) * (l_x / 4 - beta * l_y)
    assert float(terms["L_X"]) == pytest.approx(l_x, rel=1e-10)
    assert float(terms["L_Y"]) == pytest.approx(l_y, rel=1e-10)
    assert float(terms["loss"].detach()) == pytest.approx(expected, rel=1e-10)
    assert float(terms["bits_per_dim"]) == pytest.approx(l_x / (4 * np.log(2)), rel=1e-10)


def test_beta_inf_is_the_limit_of_large_beta():
    module, z, log_det, y = _batch()
    inf = IBINNLoss(np.inf, n_dims=4)((z, log_det), y, module=module)["loss"]
    big = IBINNLoss(1e9, n_dims=4)((z, log_det), y, module=module)["loss"]
    assert float(big.detach()) == pytest.approx(float(inf.detach()), rel=1e-6)


def test_beta_one_without_rebalancing_is_class_nll_up_to_constant():
    module, z, log_det, y = _batch(seed=3)
    ib = IBINNLoss(1.0, n_dims=4, label_smoothing=0.0, rebalance=False)
    nll = IBINNLoss(n_dims=4, loss="class_nll")
    ib_loss = float(ib((z, log_det), y, module=module)["loss"])
    nll_terms = nll((z, log_det), y, module=module)
    _, _, log_n, log_w = _numpy_terms(module, z, log_det, y, 0.0)
    class_nll = np.mean(-log_n[np.arange(len(y)), y.numpy()] - log_det.numpy())
    assert float(nll_terms["class_nll"]) == pytest.approx(class_nll, rel=1e-10)
    assert float(nll_terms["loss"]) == pytest.approx(class_nll / 4, rel=1e-10)
    # the constant is -E[log w_y] (fixed class prior)
    assert ib_loss == pytest.approx(class_nll - np.mean(log_w[y.numpy()]), rel=1e-10)


def test_learned_prior_gets_gradients_from_L_X_only():
    torch.manual_seed(0)
    module = torch.nn.Module()
    module.gmm = LatentGMM(3, 4, torch.ones(3) / 3, learn_prior=True)
    z, y = torch.randn(6, 4), torch.tensor([0, 0, 0, 0, 1, 2])
    IBINNLoss(np.inf, n_dims=4)((z, torch.zeros(6)), y, module=module)["loss"].backward()
    assert module.gmm.phi.grad is None or torch.all(module.gmm.phi.grad == 0)
    IBINNLoss(0.0, n_dims=4)((z, torch.zeros(6)), y, module=module)["loss"].backward()
    assert torch.any(module.gmm.phi.grad != 0)


# ---------------------------------------------------------------- estimator
def test_predict_proba_is_bayes_rule_in_latent_space(fitted, digits):
    X = digits[0][1000:1050]
    module = fitted.net_.module_
    z = fitted.transform(X)
    mu = module.gmm.means.detach().double().numpy()
    log_w = module.gmm.log_weights().detach().double().numpy()
    logits = log_w - 0.5 * ((z[:, None] - mu[None]) ** 2).sum(-1)
    expected = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    np.testing.assert_allclose(fitted.predict_proba(X), expected, atol=1e-4)
    counts = np.bincount(digits[1][:1000]) / 1000
    np.testing.assert_allclose(np.exp(log_w), counts, rtol=1e-5)


def test_digits_accuracy_and_history(fitted, digits):
    X, y = digits
    assert fitted.score(X[1000:], y[1000:]) > 0.85
    for key in ("train_L_X", "train_L_Y", "train_bits_per_dim"):
        assert len(fitted.history_[:, key]) == 8
    lx = fitted.history_[:, "train_L_X"]
    assert lx[-1] < lx[0]


def test_scores_and_bits_per_dim(fitted, digits):
    X = digits[0]
    ll = fitted.log_likelihood(X[1000:1100])
    assert fitted.train_log_likelihood_mean_ == pytest.approx(
        fitted.log_likelihood(X[:1000]).mean(), rel=1e-6
    )
    typ = fitted.score_samples(X[1000:1100])
    np.testing.assert_allclose(typ, -np.abs(ll - fitted.train_log_likelihood_mean_), rtol=1e-6)
    assert fitted.bits_per_dim(X[1000:1100]) == pytest.approx(-ll.mean() / (64 * np.log(2)))
    noise = np.random.default_rng(0).uniform(0, 1, (100, 64))
    assert np.median(fitted.score_samples(noise)) < np.median(typ)


def test_means_learning_rate_is_three_times_lr(fitted):
    groups = fitted.net_.optimizer_.param_groups
    means = fitted.net_.module_.gmm.means
    lrs = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lrs[id(means)] == pytest.approx(3 * fitted.lr)
    assert min(lrs.values()) == pytest.approx(fitted.lr)


def test_sample_generates_the_requested_class(fitted):
    X_new, y_new = fitted.sample(50, y=4, random_state=0)
    assert X_new.shape == (50, 64) and set(y_new) == {4}
    assert np.mean(fitted.predict(X_new) == 4) > 0.9
    again, _ = fitted.sample(50, y=4, random_state=0)
    np.testing.assert_array_equal(X_new, again)
    _, drawn = fitted.sample(200, random_state=1)
    assert len(set(drawn)) > 5
    with pytest.raises(ValueError, match="not in classes_"):
        fitted.sample(2, y=11)


def test_pickle_round_trip_identical_predictions(fitted, digits):
    X = digits[0][:100]
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(clone.score_samples(X), fitted.score_samples(X))


def test_one_feature_uses_elementwise_affine():
    X, y = make_blobs(60, n_features=1, centers=[[-3.0], [3.0]], random_state=0)
    clf = IBINNClassifier(max_epochs=30, lr=5e-2, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.95
    assert type(clf.net_.module_.flow.blocks[0]).__name__ == "ElementwiseAffine"


def test_convolutional_variant_on_images(digits):
    X, y = digits
    clf = IBINNClassifier(
        input_shape=(1, 8, 8),
        inn_architecture="small",
        hidden_layer_sizes=(32,),
        conv_width=8,
        max_epochs=6,
        lr=1e-2,
        random_state=0,
    ).fit(X[:500], y[:500])
    assert clf.score(X[500:800], y[500:800]) > 0.5
    z = torch.from_numpy(clf.transform(X[:10]).astype(np.float32))
    back = clf.net_.module_.flow.inverse(z).detach().numpy()
    np.testing.assert_allclose(back, X[:10], atol=1e-4)


def test_class_nll_loss_option(digits):
    X, y = digits
    clf = IBINNClassifier(loss="class_nll", n_blocks=2, max_epochs=2, random_state=0)
    clf.fit(X[:300], y[:300])
    assert "train_class_nll" in clf.history_[-1]


def test_grid_search_over_beta_in_pipeline(digits):
    X, y = digits
    pipe = make_pipeline(
        MinMaxScaler(),
        IBINNClassifier(n_blocks=2, hidden_layer_sizes=(32,), lr=1e-2, random_state=0),
    )
    grid = GridSearchCV(
        pipe, {"ibinnclassifier__beta": [0.0, 1.0], "ibinnclassifier__max_epochs": [5]}, cv=2
    )
    grid.fit(X[:400], y[:400])
    scores = grid.cv_results_["mean_test_score"]
    assert scores[1] > scores[0]  # beta=0 ignores the labels beyond the prior
    assert grid.best_params_["ibinnclassifier__beta"] == 1.0


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(beta=-1.0), "beta"),
        (dict(beta=float("nan")), "beta"),
        (dict(noise_sigma=-1e-3), "noise_sigma"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(loss="nll"), "loss"),
        (dict(ood_score="max"), "ood_score"),
        (dict(n_blocks=0), "n_blocks"),
        (dict(clamp=0.0), "clamp"),
        (dict(inn_architecture="huge", input_shape=(1, 8, 8)), "inn_architecture"),
        (dict(encoder=torch.nn.Linear(4, 4)), "encoder must be None"),
    ],
)
def test_bad_parameters_raise_in_fit(params, match):
    X, y = make_blobs(40, n_features=64, centers=2, random_state=0)
    clf = IBINNClassifier(max_epochs=1, **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_network_adds_noise_only_in_training():
    torch.manual_seed(0)
    net = IBINNNetwork(dense_inn(4, 1, (4,)), LatentGMM(2, 4, torch.ones(2) / 2), 0.1)
    x = torch.zeros(3, 4)
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])
    net.train()
    assert not torch.equal(net(x)[0], net(x)[0])
