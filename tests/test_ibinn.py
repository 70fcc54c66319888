"""Tests of IBINNClassifier, its INN, latent GMM and loss."""

import math
import pickle

import numpy as np
import pytest
import torch
from estimator_zoo import expected_failed_checks
from FrEIA.framework import SequenceINN
from scipy.special import log_softmax, logsumexp
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback

import skinfo
from skinfo import IBINNClassifier
from skinfo.ibinn import HEAD_LR_FACTOR, IMAGE_BETA
from skinfo.nn.flow_blocks import CouplingBlock, Flow
from skinfo.nn.inn import SOFT_PERMUTATION_MAX, IBINNNetwork, conv_inn, dense_inn
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


@parametrize_with_checks([IBINNClassifier(**FAST)], expected_failed_checks=expected_failed_checks)
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
        # the paper's [8, down, 25, down, 25] on CIFAR-shaped images (the dense
        # blocks after it are left out: drawing 3,072-dim rotations takes ~10 s each)
        "conv_paper": (conv_inn((3, 32, 32), "paper", 0, (32,), 8), (3072,)),
    }


def _perturb(flow, scale):
    """Move the parameters away from their near-identity initialization."""
    with torch.no_grad():
        for p in flow.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("name", ["dense", "conv_small", "conv_rgb", "conv_paper"])
def test_inverse_of_forward_is_identity(name):
    flow, shape = _flows()[name]
    _perturb(flow, 0.05).eval()
    x = torch.rand(4, *shape)
    z, log_det = flow(x)
    assert (z - x).abs().max() > 0.1 and log_det.abs().max() > 0.1
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
    assert isinstance(clone.inn[0], CouplingBlock)
    assert torch.equal(clone(x)[0], flow(x)[0])
    assert torch.equal(clone(x)[1], flow(x)[1])


def test_soft_clamp_is_tanh_over_clamp():
    torch.manual_seed(0)
    block = dense_inn(4, 1, (8,), clamp=1.5).inn[0]
    a = torch.tensor([[30.0, -30.0, 0.0, 0.0]])  # scaled by 0.1 inside: s = +-3
    _, log_det = block._affine(torch.ones(1, 2), a)
    assert float(log_det) == pytest.approx(1.5 * math.tanh(2.0) - 1.5 * math.tanh(2.0))
    y, _ = block._affine(torch.ones(1, 2), a)
    assert float(y[0, 0]) == pytest.approx(math.exp(1.5 * math.tanh(3.0 / 1.5)), rel=1e-6)


def test_permutation_is_seeded_by_torch_and_leaves_numpy_alone():
    np.random.seed(5)  # noqa: NPY002 (FrEIA draws from the global RNG)
    before = np.random.get_state()[1].copy()  # noqa: NPY002 (FrEIA draws from the global RNG)
    torch.manual_seed(3)
    a = dense_inn(8, 1, (4,)).inn[0].w_perm
    torch.manual_seed(3)
    b = dense_inn(8, 1, (4,)).inn[0].w_perm
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


@pytest.mark.parametrize("beta_ib", [0.0, 1.0, 64.0])
def test_unbalanced_loss_matches_numpy_eq8(beta_ib):
    module, z, log_det, y = _batch(seed=2)
    ib = IBINNLoss(beta_ib, n_dims=4, label_smoothing=0.05, rebalance=False)
    loss = float(ib((z, log_det), y, module=module)["loss"].detach())
    l_x, l_y, _, _ = _numpy_terms(module, z, log_det, y, 0.05)
    assert loss == pytest.approx(l_x - beta_ib * l_y, rel=1e-10)


def _numpy_log_det(flow, x):
    """log|det J| per row from the full autograd Jacobian (no use of the flow's log-det)."""
    out = []
    for row in x:
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], row)
        out.append(np.linalg.slogdet(jac.numpy())[1])
    return np.array(out)


@pytest.mark.parametrize("beta", [0.5, np.inf])
def test_loss_of_a_fixed_batch_through_the_network_matches_numpy(beta):
    # z = g(x) and log|det J_g(x)| of a real (perturbed) INN in float64, the
    # GMM terms and Eq. 9 evaluated in numpy/scipy from the Jacobian itself
    torch.manual_seed(4)
    d, k = 6, 3
    flow = _perturb(dense_inn(d, 3, (8,)).double(), 0.3)
    gmm = LatentGMM(k, d, torch.tensor([0.5, 0.3, 0.2])).double()
    net = IBINNNetwork(flow, gmm, noise_sigma=0.0).eval()
    x = torch.randn(5, d, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 0])
    terms = IBINNLoss(beta, n_dims=d, label_smoothing=0.05)(net(x), y, module=net)
    z = flow(x)[0].detach().numpy()
    log_det = _numpy_log_det(flow, x)
    mu, log_w = gmm.means.detach().numpy(), gmm.log_weights().detach().numpy()
    np.testing.assert_allclose(np.exp(log_w), [0.5, 0.3, 0.2], rtol=1e-6)
    log_joint = log_w - 0.5 * ((z[:, None] - mu[None]) ** 2).sum(-1) - 0.5 * d * np.log(2 * np.pi)
    l_x = np.mean(-logsumexp(log_joint, axis=1) - log_det)  # Eq. 4
    t = np.full((5, k), 0.05 / k)
    t[np.arange(5), y.numpy()] += 0.95
    l_y = np.mean((t * log_softmax(log_joint, axis=1)).sum(1))  # Eq. 7, smoothed
    expected = -2 * l_y if np.isinf(beta) else 2 / (1 + beta) * (l_x / d - beta * l_y)
    assert float(terms["L_X"]) == pytest.approx(l_x, rel=1e-6)
    assert float(terms["L_Y"]) == pytest.approx(l_y, rel=1e-9)
    assert float(terms["loss"].detach()) == pytest.approx(expected, rel=1e-6)


def test_beta_inf_is_the_limit_of_large_beta():
    module, z, log_det, y = _batch()
    inf = IBINNLoss(np.inf, n_dims=4)((z, log_det), y, module=module)["loss"]
    big = IBINNLoss(1e9, n_dims=4)((z, log_det), y, module=module)["loss"]
    assert float(big.detach()) == pytest.approx(float(inf.detach()), rel=1e-6)


def test_beta_one_without_rebalancing_is_class_nll_up_to_constant():
    module, z, log_det, y = _batch(seed=3)
    ib = IBINNLoss(1.0, n_dims=4, label_smoothing=0.0, rebalance=False)
    nll = IBINNLoss(n_dims=4, loss="class_nll")
    ib_loss = float(ib((z, log_det), y, module=module)["loss"].detach())
    nll_terms = nll((z, log_det), y, module=module)
    _, _, log_n, log_w = _numpy_terms(module, z, log_det, y, 0.0)
    class_nll = np.mean(-log_n[np.arange(len(y)), y.numpy()] - log_det.numpy())
    assert float(nll_terms["class_nll"]) == pytest.approx(class_nll, rel=1e-10)
    assert float(nll_terms["loss"].detach()) == pytest.approx(class_nll / 4, rel=1e-10)
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


def test_learned_prior_converges_to_the_class_frequencies():
    # appendix B: phi learned from L_X alone (starting at equal weights) recovers
    # the class weights; the L_Y term (beta > 0) must not pull it anywhere else
    torch.manual_seed(0)
    module = torch.nn.Module()
    module.gmm = LatentGMM(3, 4, torch.ones(3) / 3, distance=8.0, learn_prior=True)
    assert torch.equal(module.gmm.phi.detach(), torch.zeros(3))
    y = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    z = module.gmm.means.detach()[y] + torch.randn(100, 4)
    opt = torch.optim.Adam([module.gmm.phi], lr=0.05)
    loss = IBINNLoss(1.0, n_dims=4)
    for _ in range(400):
        opt.zero_grad()
        loss((z, torch.zeros(100)), y, module=module)["loss"].backward()
        opt.step()
    w = torch.softmax(module.gmm.phi.detach(), 0).numpy()
    np.testing.assert_allclose(w, [0.7, 0.2, 0.1], atol=0.02)


def test_noise_has_standard_deviation_sigma():
    identity = Flow(SequenceINN(3))
    net = IBINNNetwork(identity, LatentGMM(2, 3, torch.ones(2) / 2), 0.25).train()
    torch.manual_seed(0)
    x = torch.rand(20000, 3)
    z, log_det = net(x)
    assert float((z - x).mean()) == pytest.approx(0.0, abs=0.01)
    assert float((z - x).std()) == pytest.approx(0.25, rel=0.02)
    assert torch.equal(log_det, torch.zeros(20000))


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


def test_means_learning_rate_is_head_lr(fitted):
    groups = fitted.net_.optimizer_.param_groups
    means = fitted.net_.module_.gmm.means
    lrs = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert fitted.head_lr is None
    assert lrs[id(means)] == pytest.approx(HEAD_LR_FACTOR * 1e-2)
    assert min(lrs.values()) == pytest.approx(1e-2)
    X, y = make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)
    refit = IBINNClassifier(n_blocks=1, hidden_layer_sizes=(8,), head_lr=0.5, max_epochs=1).fit(
        X, y
    )
    groups = refit.net_.optimizer_.param_groups
    lrs = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lrs[id(refit.net_.module_.gmm.means)] == pytest.approx(0.5)


class _RecordInitialParameters(Callback):
    def on_train_begin(self, net, **kwargs):
        self.initial_ = [p.detach().clone() for p in net.module_.parameters()]


@pytest.mark.parametrize("clip", [1e-3, None])
def test_clip_grad_norm_bounds_every_sgd_step(clip, digits):
    # plain SGD moves the parameters by lr_group * grad per step; with clipping
    # the whole displacement is at most n_steps * max(lr_group) * clip
    X, y = digits
    clf = IBINNClassifier(
        n_blocks=2,
        hidden_layer_sizes=(16,),
        optimizer="sgd",
        lr=1e-2,
        max_epochs=1,
        batch_size=50,
        clip_grad_norm=clip,
        callbacks=[("record", _RecordInitialParameters())],
        random_state=0,
    ).fit(X[:200], y[:200])
    record = dict(clf.net_.callbacks_)["record"]  # the fitted copy
    moved = torch.sqrt(
        sum(
            ((p.detach() - p0) ** 2).sum()
            for p, p0 in zip(clf.net_.module_.parameters(), record.initial_)
        )
    )
    bound = 4 * clf.lr * HEAD_LR_FACTOR * 1e-3  # 4 steps, the means' learning rate
    if clip is None:
        assert float(moved) > 10 * bound
    else:
        assert 0 < float(moved) <= bound * (1 + 1e-4)


def test_sample_generates_the_requested_class(fitted):
    X_new, y_new = fitted.sample(50, y=4, random_state=0)
    assert X_new.shape == (50, 64) and set(y_new) == {4}
    assert np.mean(fitted.predict(X_new) == 4) > 0.8
    # inverting the flow: the samples map back onto N(mu_4, I) in latent space
    mu = fitted.net_.module_.gmm.means.detach().double().numpy()
    z = fitted.transform(X_new)
    assert np.linalg.norm(z.mean(0) - mu[4]) < 2.0  # ~ sqrt(64 / 50) = 1.1 expected
    assert z.var(0).mean() == pytest.approx(1.0, abs=0.2)
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


def test_learn_prior_estimator_learns_imbalanced_class_weights(digits):
    X, y = digits
    idx = np.r_[np.flatnonzero(y == 0)[:150], np.flatnonzero(y == 1)[:30]]  # 5:1
    clf = IBINNClassifier(
        learn_prior=True,
        n_blocks=2,
        hidden_layer_sizes=(32,),
        max_epochs=30,
        batch_size=30,
        random_state=0,
    ).fit(X[idx], y[idx])
    w = torch.softmax(clf.net_.module_.gmm.phi.detach(), 0).numpy()
    np.testing.assert_allclose(w, [150 / 180, 30 / 180], atol=0.05)  # started at [0.5, 0.5]
    _, drawn = clf.sample(600, random_state=0)
    assert np.mean(drawn == 0) == pytest.approx(w[0], abs=0.05)


def test_one_feature_uses_elementwise_affine():
    X, y = make_blobs(60, n_features=1, centers=[[-3.0], [3.0]], random_state=0)
    clf = IBINNClassifier(max_epochs=30, lr=5e-2, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.95
    assert type(clf.net_.module_.flow.inn[0]).__name__ == "ElementwiseAffine"


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


def test_convolutional_variant_saves_and_loads(digits, tmp_path):
    # skinfo.load rebuilds the INN from the parameters (soft permutations included)
    X, y = digits
    clf = IBINNClassifier(
        input_shape=(1, 8, 8),
        inn_architecture=("down", 1, "down", 1),
        n_fc_blocks=1,
        hidden_layer_sizes=(8,),
        conv_width=4,
        max_epochs=1,
        random_state=0,
    ).fit(X[:200], y[:200])
    clf.save(tmp_path / "inn.skinfo")
    again = skinfo.load(tmp_path / "inn.skinfo")
    np.testing.assert_array_equal(again.predict_proba(X[:50]), clf.predict_proba(X[:50]))
    np.testing.assert_array_equal(again.transform(X[:50]), clf.transform(X[:50]))


def test_paper_preset_estimator_on_rgb_images():
    # [8, down, 25, down, 25] on 3x8x8 images: 58 convolutional blocks, 2 dense ones
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (40, 192))
    y = np.repeat([0, 1], 20)
    X[y == 1, :64] *= 0.5  # class 1: darker red channel
    clf = IBINNClassifier(
        input_shape=(3, 8, 8),
        inn_architecture="paper",
        conv_width=4,
        hidden_layer_sizes=(8,),
        max_epochs=1,
        batch_size=40,
        random_state=0,
    ).fit(X, y)
    blocks = clf.net_.module_.flow.inn
    assert sum(isinstance(b, CouplingBlock) for b in blocks) == 8 + 25 + 25 + 2
    assert clf.predict_proba(X).shape == (40, 2)
    z = torch.from_numpy(clf.transform(X[:5]).astype(np.float32))
    back = clf.net_.module_.flow.inverse(z).detach().numpy()
    np.testing.assert_allclose(back, X[:5], atol=1e-4)


def _rates(clf):
    groups = clf.net_.optimizer_.param_groups
    means = clf.net_.module_.gmm.means
    lrs = {id(p): g["lr"] for g in groups for p in g["params"]}
    return min(lrs.values()), lrs[id(means)]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("image_shaped_X", [True, False])
def test_image_input_gets_the_image_defaults(shape, image_shaped_X):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (16, *shape)).astype(np.float32)
    y = np.repeat([0, 1], 8)
    if image_shaped_X:
        clf = IBINNClassifier(max_epochs=1, random_state=0).fit(X, y)
    else:
        clf = IBINNClassifier(input_shape=shape, max_epochs=1, random_state=0)
        clf.fit(X.reshape(16, -1), y)
        X = X.reshape(16, -1)
    assert clf.lr == "auto" and clf.beta == "auto"
    assert _rates(clf) == pytest.approx((1e-3, HEAD_LR_FACTOR * 1e-3))
    assert clf.net_.criterion_.beta == IMAGE_BETA
    # 'auto' architecture: 'small' (down, 4, down, 4) and the two dense blocks
    blocks = list(clf.net_.module_.flow.inn)
    assert sum(isinstance(b, CouplingBlock) for b in blocks) == 4 + 4 + 2
    assert blocks[-1].w_perm.shape[0] == int(np.prod(shape))
    proba = clf.predict_proba(X)
    assert proba.shape == (16, 2) and np.allclose(proba.sum(1), 1)


def test_flat_rows_keep_the_flat_defaults(digits):
    X, y = digits
    clf = IBINNClassifier(n_blocks=1, hidden_layer_sizes=(8,), max_epochs=1).fit(X[:100], y[:100])
    assert _rates(clf) == pytest.approx((1e-2, HEAD_LR_FACTOR * 1e-2))
    assert clf.net_.criterion_.beta == 1.0
    explicit = IBINNClassifier(input_shape=(1, 8, 8), lr=3e-3, beta=2.0, max_epochs=1)
    explicit.fit(X[:100], y[:100])
    assert _rates(explicit) == pytest.approx((3e-3, HEAD_LR_FACTOR * 3e-3))
    assert explicit.net_.criterion_.beta == 2.0


def test_wide_blocks_get_a_seeded_rotation():
    # above SOFT_PERMUTATION_MAX channels the rotation comes from a QR decomposition
    d = SOFT_PERMUTATION_MAX + 8
    torch.manual_seed(3)
    flow = dense_inn(d, 1, (4,))
    w = flow.inn[0].w_perm.double()
    np.testing.assert_allclose((w @ w.T).numpy(), np.eye(d), atol=1e-6)
    assert float(torch.linalg.det(w)) == pytest.approx(1.0, abs=1e-4)
    assert not np.allclose(np.abs(w.numpy()).max(1), 1)  # not a hard permutation
    torch.manual_seed(3)
    assert torch.equal(dense_inn(d, 1, (4,)).inn[0].w_perm, flow.inn[0].w_perm)
    x = torch.randn(3, d)
    z, log_det = flow(x)
    np.testing.assert_allclose(flow.inverse(z).detach().numpy(), x.numpy(), atol=1e-4)


def test_max_proba_score_is_the_top_probability(fitted, digits):
    X, _ = digits
    clf = pickle.loads(pickle.dumps(fitted)).set_params(ood_score="max_proba")
    np.testing.assert_allclose(
        clf.score_samples(X[:20]), clf.predict_proba(X[:20]).max(1), rtol=1e-5
    )


def test_class_nll_loss_option_trains_a_weaker_generative_classifier(digits):
    # the standard GC of the paper's Table 1: it learns (its NLL falls, accuracy is
    # far above chance) but without L_Y's repulsion it is less accurate than IB-INN
    X, y = digits
    common = dict(n_blocks=2, hidden_layer_sizes=(32,), max_epochs=10, random_state=0)
    nll = IBINNClassifier(loss="class_nll", **common).fit(X[:600], y[:600])
    ib = IBINNClassifier(loss="ib", beta=1.0, **common).fit(X[:600], y[:600])
    hist = nll.history_
    np.testing.assert_allclose(
        hist[:, "train_loss"], np.array(hist[:, "train_class_nll"]) / 64, rtol=1e-5
    )
    assert hist[-1, "train_class_nll"] < hist[0, "train_class_nll"] - 20
    acc_nll, acc_ib = nll.score(X[1000:], y[1000:]), ib.score(X[1000:], y[1000:])
    assert 0.5 < acc_nll < acc_ib - 0.03


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
        (dict(clip_grad_norm=0.0), "clip_grad_norm"),
        (dict(clip_grad_norm="8"), "clip_grad_norm"),
        (dict(inn_architecture="huge", input_shape=(1, 8, 8)), "inn_architecture"),
        (
            dict(encoder=torch.nn.Linear(4, 4)),
            "'encoder' parameter of IBINNClassifier must be None",
        ),
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
