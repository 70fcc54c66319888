"""OVAClassifier: the one-vs-all loss, the distance logits and the "none of the above" behaviour."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skinfo import OVAClassifier, SoftmaxClassifier
from skinfo.nn.heads import DistanceLogits, ova_log_complement, ova_log_proba
from skinfo.objectives import OneVsAllLoss


def _numpy_ova_loss(z, y, distance):
    """Eq. 7 of Padhy et al. written naively in float64 numpy."""
    sig = 1.0 / (1.0 + np.exp(-z))
    p = 2.0 * sig if distance else sig
    total = 0.0
    for i, label in enumerate(y):
        total += -np.log(p[i, label])
        total += -sum(np.log(1.0 - p[i, k]) for k in range(z.shape[1]) if k != label)
    return total / len(y)


@pytest.mark.parametrize("distance", [False, True])
def test_ova_loss_matches_numpy(distance):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 4)) * 2
    if distance:
        z = -np.abs(z) - 0.05  # distance logits are <= 0
    y = rng.integers(0, 4, size=7)
    terms = OneVsAllLoss(distance=distance)(torch.from_numpy(z), torch.from_numpy(y))
    np.testing.assert_allclose(float(terms["loss"]), _numpy_ova_loss(z, y, distance), rtol=1e-10)
    np.testing.assert_allclose(
        float(terms["positive"] + terms["negative"]), float(terms["loss"]), rtol=1e-12
    )


def test_stable_log_probabilities_at_extremes():
    d = torch.tensor([1e-8, 1e-3, 1.0, 50.0, 800.0], dtype=torch.float64)
    log_p = ova_log_proba(-d, distance=True)
    log_q = ova_log_complement(-d, distance=True)
    with np.errstate(over="ignore"):
        p = 2.0 / (1.0 + np.exp(d.numpy()))
    np.testing.assert_allclose(log_p.exp().numpy(), p, rtol=1e-12)
    assert torch.isfinite(log_q).all()
    # log(1 - p) = log tanh(d / 2) exactly
    np.testing.assert_allclose(
        log_q.numpy(), np.log(np.tanh(d.numpy() / 2)), rtol=1e-10, atol=1e-15
    )


def test_distance_logits_closed_form_and_finite_gradient_at_center():
    head = DistanceLogits(3, 2).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]]))
    h = torch.tensor([[1.0, 2.0, 2.0]], dtype=torch.float64, requires_grad=True)
    z = head(h)
    np.testing.assert_allclose(z.detach().numpy(), [[-3.0, 0.0]], atol=1e-6)
    z[0, 1].backward()  # at h == w_1: the plain norm has no gradient there
    assert torch.isfinite(h.grad).all()


def test_distance_logits_float32_match_the_plain_norm():
    """The matrix-product expansion agrees with ||h - w|| computed directly in float64."""
    rng = np.random.default_rng(0)
    head = DistanceLogits(50, 7)
    w = rng.normal(size=(7, 50)) * 3
    h = rng.normal(size=(64, 50)) * 3
    h[:7] = w  # exactly on a center: the distance that cancellation hurts most
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w))
    h_t = torch.tensor(h, dtype=torch.float32, requires_grad=True)
    z = head(h_t)
    exact = np.linalg.norm(h[:, None] - w[None], axis=-1)
    norm_h = np.linalg.norm(h, axis=1, keepdims=True)
    off_center = exact > 1e-2 * norm_h
    np.testing.assert_allclose(-z.detach().numpy()[off_center], exact[off_center], rtol=1e-5)
    assert np.all(
        -z.detach().numpy()[~off_center] <= 1e-3 * np.broadcast_to(norm_h, exact.shape)[~off_center]
    )
    # gradient of the sum of distances vs the plain norm's (h - w) / ||h - w||, off-center rows
    (-z[7:]).sum().backward()
    unit = (h[7:, None] - w[None]) / exact[7:, :, None]
    np.testing.assert_allclose(h_t.grad[7:].numpy(), unit.sum(1), rtol=1e-4, atol=1e-5)


def test_predict_proba_is_normalized_ova_proba():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    y = np.repeat([0, 1, 2], 30)
    X += y[:, None]
    clf = OVAClassifier(hidden_layer_sizes=(16,), max_epochs=10, lr=1e-2, random_state=0)
    clf.fit(X, y)
    ova = clf.predict_ova_proba(X)
    assert ova.min() >= 0 and ova.max() <= 1
    assert not np.allclose(ova.sum(1), 1.0)  # "none of the above": no simplex constraint
    # closed-world posterior: P(k | exactly one event) = p_k prod_{j != k} (1 - p_j) / Z
    exactly_one = np.array(
        [[ova[i, k] * np.prod(np.delete(1 - ova[i], k)) for k in range(3)] for i in range(90)]
    )
    np.testing.assert_allclose(
        clf.predict_proba(X), exactly_one / exactly_one.sum(1, keepdims=True), rtol=1e-4
    )
    np.testing.assert_allclose(clf.score_samples(X), ova.max(1), rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[ova.argmax(1)])


@pytest.mark.slow
def test_toy_confidence_falls_far_from_data_for_distance_ova_only():
    """The OVA paper's Figure 1: far from the data, distance-OVA confidence falls, softmax stays."""
    from skinfo.datasets import make_ova_toy

    X, y = make_ova_toy(200, random_state=0)
    common = dict(hidden_layer_sizes=(16, 16), max_epochs=60, lr=1e-2, random_state=0)
    ova = OVAClassifier(logits="distance", **common).fit(X, y)
    softmax = SoftmaxClassifier(**common).fit(X, y)
    assert ova.score(X, y) > 0.95 and softmax.score(X, y) > 0.95
    # 64 directions at radius 100 (5x the radius of the data). Along the few rays that
    # follow a decision boundary, softmax is split between two classes (~0.5-0.8), and a
    # ray along which every hidden unit saturates keeps a constant embedding; the claim
    # is about the typical far-away point, hence medians and means over directions.
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    far = 100.0 * np.c_[np.cos(angles), np.sin(angles)]
    ova_conf = ova.predict_ova_proba(far).max(axis=1)
    softmax_conf = softmax.predict_proba(far).max(axis=1)
    assert np.median(ova_conf) < 0.5 and ova_conf.mean() < 0.5
    assert np.median(softmax_conf) > 0.95
    # on the data itself the OVA confidence is high
    assert np.median(ova.predict_ova_proba(X).max(axis=1)) > 0.8


@pytest.mark.slow
def test_grid_search_pipeline_with_ece_scorer_on_digits():
    from skinfo.datasets import load_digits_split
    from skinfo.metrics import expected_calibration_error
    from skinfo.scorers import neg_expected_calibration_error

    X_train, X_test, y_train, y_test = load_digits_split(random_state=0)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", OVAClassifier(hidden_layer_sizes=(64,), max_epochs=8, random_state=0)),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"clf__logits": ["distance", "affine"]},
        scoring=neg_expected_calibration_error,
        cv=2,
        n_jobs=2,
    ).fit(X_train, y_train)
    assert search.best_params_["clf__logits"] in ("distance", "affine")
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores <= 0) and np.all(np.isfinite(scores))
    best = search.best_estimator_
    ece = expected_calibration_error(y_test, best.predict_proba(X_test))
    assert search.score(X_test, y_test) == pytest.approx(-ece)
    assert best.score(X_test, y_test) > 0.85


def test_defaults_train_well_within_the_default_epochs_on_digits():
    """Default OVAClassifier on digits: accurate, calibrated and detecting unseen classes.

    Guards the defaults (ReLU encoder, head at 10x lr) against a return of the
    undertrained distance head: with the ELU encoder and the centers at ``lr``
    the ECE after the default 50 epochs was 0.19 (docs/ova.md).
    """
    from skinfo.datasets import load_digits_held_out, load_digits_split
    from skinfo.metrics import expected_calibration_error, ood_auroc

    X_train, X_test, y_train, y_test = load_digits_split(random_state=0)
    for logits, max_ece in (("distance", 0.1), ("affine", 0.05)):
        clf = OVAClassifier(logits=logits, random_state=0).fit(X_train, y_train)
        proba = clf.predict_proba(X_test)
        assert clf.score(X_test, y_test) >= 0.95, logits
        assert expected_calibration_error(y_test, proba, labels=clf.classes_) < max_ece, logits
    X_in_train, y_in_train, X_in, _, X_out = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)
    detector = OVAClassifier(random_state=0).fit(X_in_train, y_in_train)
    auroc = ood_auroc(detector.score_samples(X_in), detector.score_samples(X_out))
    assert auroc > 0.9


def test_head_learning_rate_reaches_the_optimizer():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.repeat([0, 1], 20)
    for head_lr, expected in ((None, 10 * 2e-3), (0.05, 0.05)):
        clf = OVAClassifier(hidden_layer_sizes=(8,), max_epochs=1, lr=2e-3, head_lr=head_lr)
        groups = clf.fit(X, y).net_.optimizer_.param_groups
        head = [g for g in groups if any(p is clf.net_.module_.head.weight for p in g["params"])]
        other = [g for g in groups if all(g is not h for h in head)]
        assert [g["lr"] for g in head] == [pytest.approx(expected)]
        assert all(g["lr"] == pytest.approx(2e-3) for g in other)


def test_scaled_distance_probabilities_match_the_closed_form():
    """p_k = 2 sigmoid(-s ||f(x) - w_k||), recomputed in float64 numpy from the fitted parts."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)) + np.repeat(np.eye(3, 4) * 3, 30, axis=0)
    y = np.repeat([0, 1, 2], 30)
    clf = OVAClassifier(logits="scaled_distance", hidden_layer_sizes=(16,), max_epochs=20,
                        lr=1e-2, random_state=0).fit(X, y)  # fmt: skip
    head = clf.net_.module_.head
    scale = float(head.log_scale.detach().exp())
    centers = head.weight.detach().double().numpy()
    h = clf.transform(X).astype(np.float64)
    distances = np.linalg.norm(h[:, None] - centers[None], axis=-1)
    expected = 2.0 / (1.0 + np.exp(scale * distances))
    np.testing.assert_allclose(clf.predict_ova_proba(X), expected, rtol=1e-4, atol=1e-6)
    log_odds = np.log(expected) - np.log1p(-expected)
    softmax = np.exp(log_odds - log_odds.max(1, keepdims=True))
    np.testing.assert_allclose(
        clf.predict_proba(X), softmax / softmax.sum(1, keepdims=True), rtol=1e-3, atol=1e-6
    )


def test_learned_scale_is_trained_with_the_head():
    """The scale starts at 1 (the paper's logits), gets the head's learning rate and moves."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2)) + np.repeat([[0, 0], [6, 0], [0, 6]], 40, axis=0)
    y = np.repeat([0, 1, 2], 40)
    clf = OVAClassifier(logits="scaled_distance", hidden_layer_sizes=(16,), max_epochs=1,
                        lr=1e-3, head_lr=1e-2, random_state=0).fit(X, y)  # fmt: skip
    head = clf.net_.module_.head
    groups = clf.net_.optimizer_.param_groups
    assert [g["lr"] for g in groups if any(p is head.log_scale for p in g["params"])] == [1e-2]
    clf.set_params(max_epochs=40).fit(X, y)
    scale = float(clf.net_.module_.head.log_scale.detach().exp())
    assert abs(np.log(scale)) > 0.05  # moved from 1
    assert OVAClassifier(max_epochs=1).fit(X, y).net_.module_.head.log_scale is None


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_auto_picks_affine_logits_and_image_epochs_for_images(shape):
    from skinfo.ova import IMAGE_EPOCHS

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    X = rng.random((20, *shape)).astype(np.float32) + y[:, None, None, None]
    clf = OVAClassifier(max_epochs=1, batch_size=10, random_state=0).fit(X, y)
    assert isinstance(clf.net_.module_.head, torch.nn.Linear)  # affine logits on images
    assert clf.predict_proba(X).shape == (20, 2)
    clf.set_params(max_epochs="auto")
    assert clf._value("logits") == "affine" and clf._value("max_epochs") == IMAGE_EPOCHS
    flat = OVAClassifier(max_epochs=1, random_state=0).fit(X.reshape(20, -1), y)
    assert isinstance(flat.net_.module_.head, DistanceLogits)  # the paper's logits on rows
    assert flat.set_params(max_epochs="auto")._value("max_epochs") == 50
    with pytest.raises(ValueError, match="logits"):
        OVAClassifier(logits="cosine").fit(X, y)


@pytest.mark.parametrize("logits", ["distance", "scaled_distance", "affine"])
def test_calibrated_on_a_separable_toy_problem(logits):
    """Ten well-separated blobs: every logit type ends accurate and confident, hence calibrated."""
    from skinfo.datasets import make_ova_toy
    from skinfo.metrics import expected_calibration_error

    X, y = make_ova_toy(100, random_state=0)
    X_test, y_test = make_ova_toy(50, random_state=1)
    clf = OVAClassifier(logits=logits, hidden_layer_sizes=(32, 32), max_epochs=40, lr=1e-2,
                        random_state=0).fit(X, y)  # fmt: skip
    proba = clf.predict_proba(X_test)
    assert clf.score(X_test, y_test) > 0.97
    assert proba.max(1).mean() > 0.95  # not underconfident
    assert expected_calibration_error(y_test, proba, labels=clf.classes_) < 0.03


def test_learned_scale_survives_save_and_load(tmp_path):
    import skinfo

    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3)) + np.repeat(np.eye(3) * 4, 20, axis=0)
    y = np.repeat([0, 1, 2], 20)
    clf = OVAClassifier(logits="scaled_distance", hidden_layer_sizes=(8,), max_epochs=15,
                        lr=1e-2, random_state=0).fit(X, y)  # fmt: skip
    clf.save(tmp_path / "ova.skinfo")
    again = skinfo.load(tmp_path / "ova.skinfo")
    scales = [float(e.net_.module_.head.log_scale.detach()) for e in (clf, again)]
    assert scales[0] == scales[1] != 0
    np.testing.assert_array_equal(again.predict_ova_proba(X), clf.predict_ova_proba(X))
