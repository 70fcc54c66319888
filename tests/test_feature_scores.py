"""Feature-space OOD scores of every classifier (``ood_score="knn"`` etc.).

Each score is recomputed here with plain numpy from ``transform`` on the
training rows (brute-force distances, the tied covariance by hand), so the
statistics fitted at ``fit`` and the scoring code are both checked.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import normalize

import skinfo
from skinfo import (
    IBINNClassifier,
    MASSClassifier,
    OVAClassifier,
    SoftmaxClassifier,
    VIBClassifier,
)
from skinfo.metrics import ood_auroc

FAST = dict(max_epochs=3, random_state=0, device="cpu")
ENCODED = dict(hidden_layer_sizes=(16,), **FAST)

#: Every classifier, small enough to fit in a second.
CLASSIFIERS = {
    "softmax": lambda **kw: SoftmaxClassifier(**ENCODED, **kw),
    "vib": lambda **kw: VIBClassifier(**ENCODED, latent_dim=8, **kw),
    "mass": lambda **kw: MASSClassifier(**ENCODED, **kw),
    "ova": lambda **kw: OVAClassifier(**ENCODED, **kw),
    "ibinn": lambda **kw: IBINNClassifier(**FAST, **kw),
}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    known = y < 5
    rng = np.random.RandomState(0)
    rows = rng.permutation(np.flatnonzero(known))
    return X[rows[:300]], y[rows[:300]], X[rows[300:400]], X[~known][:100]


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_knn_is_the_distance_to_the_kth_normalized_training_representation(digits, name):
    X, y, X_in, X_out = digits
    clf = CLASSIFIERS[name](ood_score="knn").fit(X, y)
    X_new = np.vstack([X_in, X_out])
    bank = normalize(clf.transform(X))
    query = normalize(clf.transform(X_new))
    distances = np.sqrt(((query[:, None, :] - bank[None]) ** 2).sum(-1))
    k = clf.feature_statistics_["n_neighbors"]
    assert k == 1  # one per 1,000 training rows, at least one
    expected = -np.sort(distances, axis=1)[:, k - 1]
    np.testing.assert_allclose(clf.score_samples(X_new), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(CLASSIFIERS))
@pytest.mark.parametrize("kind", ["mahalanobis", "relative_mahalanobis"])
def test_mahalanobis_scores_match_a_direct_computation(digits, name, kind):
    X, y, X_in, X_out = digits
    clf = CLASSIFIERS[name](ood_score=kind).fit(X, y)
    X_new = np.vstack([X_in, X_out])
    Z, Z_new = clf.transform(X).astype(np.float64), clf.transform(X_new).astype(np.float64)
    classes = np.unique(y)
    means = np.stack([Z[y == c].mean(0) for c in classes])
    centered = Z - means[np.searchsorted(classes, y)]
    precision = np.linalg.pinv(centered.T @ centered / len(Z), hermitian=True)
    diff = Z_new[:, None, :] - means[None]
    distances = np.einsum("nci,ij,ncj->nc", diff, precision, diff)
    expected = -distances.min(axis=1)
    if kind == "relative_mahalanobis":
        background = Z - Z.mean(0)
        precision0 = np.linalg.pinv(background.T @ background / len(Z), hermitian=True)
        shifted = Z_new - Z.mean(0)
        expected += np.einsum("ni,ij,nj->n", shifted, precision0, shifted)
    scores = clf.score_samples(X_new)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-6 * scale)


def test_vim_matches_the_formula_on_the_softmax_head(digits):
    X, y, X_in, X_out = digits
    clf = SoftmaxClassifier(**ENCODED, ood_score="vim").fit(X, y)
    head = clf.net_.module_.head
    W = head.weight.detach().double().numpy()
    b = head.bias.detach().double().numpy()
    Z = clf.transform(X).astype(np.float64)
    origin = -np.linalg.pinv(W) @ b
    eigenvalues, eigenvectors = np.linalg.eigh((Z - origin).T @ (Z - origin) / len(Z))
    null_space = eigenvectors[:, np.argsort(eigenvalues)[::-1][8:]]  # half of width 16
    logits = Z @ W.T + b
    alpha = logits.max(1).mean() / np.linalg.norm((Z - origin) @ null_space, axis=1).mean()
    Z_new = clf.transform(np.vstack([X_in, X_out])).astype(np.float64)
    virtual = np.linalg.norm((Z_new - origin) @ null_space, axis=1)
    lse = np.log(np.exp(Z_new @ W.T + b).sum(1))
    expected = lse - alpha * virtual
    scores = clf.score_samples(np.vstack([X_in, X_out]))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_vim_needs_a_linear_softmax_head(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="vim"):
        OVAClassifier(**ENCODED, logits="distance", ood_score="vim").fit(X, y)


def test_feature_scores_separate_held_out_classes(digits):
    X, y, X_in, X_out = digits
    clf = SoftmaxClassifier(hidden_layer_sizes=(32,), max_epochs=20, random_state=0)
    for kind in ("knn", "mahalanobis"):
        clf.set_params(ood_score=kind).fit(X, y)
        auroc = ood_auroc(clf.score_samples(X_in), clf.score_samples(X_out))
        assert auroc > 0.8, (kind, auroc)


def test_another_ood_score_after_fit_asks_for_a_refit(digits):
    X, y, X_in, _ = digits
    clf = SoftmaxClassifier(**ENCODED).fit(X, y)
    assert not hasattr(clf, "feature_statistics_")
    clf.set_params(ood_score="knn")
    with pytest.raises(ValueError, match="Fit it again"):
        clf.score_samples(X_in)
    clf.fit(X, y)
    assert clf.feature_statistics_["score"] == "knn"
    clf.set_params(ood_score="mahalanobis")
    with pytest.raises(ValueError, match="Fit it again"):
        clf.score_samples(X_in)
    clf.set_params(ood_score="max_proba").fit(X, y)
    assert not hasattr(clf, "feature_statistics_")


def test_knn_keeps_a_bounded_random_subset(digits, monkeypatch):
    X, y, X_in, _ = digits
    monkeypatch.setattr(SoftmaxClassifier, "knn_max_samples", 50)
    clf = SoftmaxClassifier(**ENCODED, ood_score="knn").fit(X, y)
    bank = clf.feature_statistics_["bank"]
    assert bank.shape == (50, clf.transform(X[:1]).shape[1])
    # the kept rows are training rows, normalized
    full = normalize(clf.transform(X))
    nearest = np.abs(bank[:, None, :] - full[None]).max(-1).min(1)
    assert nearest.max() < 1e-6
    # the subset follows random_state
    again = SoftmaxClassifier(**ENCODED, ood_score="knn").fit(X, y)
    np.testing.assert_array_equal(again.feature_statistics_["bank"], bank)


@pytest.mark.parametrize("kind", ["knn", "relative_mahalanobis", "vim"])
def test_saved_and_loaded_statistics_score_the_same(digits, tmp_path, kind):
    X, y, X_in, X_out = digits
    clf = SoftmaxClassifier(**ENCODED, ood_score=kind).fit(X, y)
    path = tmp_path / "clf.skinfo"
    skinfo.save(clf, path)
    again = skinfo.load(path)
    X_new = np.vstack([X_in, X_out])
    np.testing.assert_array_equal(again.score_samples(X_new), clf.score_samples(X_new))


def test_a_file_with_malformed_statistics_is_refused(digits, tmp_path):
    X, y, _, _ = digits
    clf = SoftmaxClassifier(**ENCODED, ood_score="knn").fit(X, y)
    clf.feature_statistics_ = {"score": "os.system"}
    path = tmp_path / "bad.skinfo"
    skinfo.save(clf, path)
    with pytest.raises(ValueError, match="feature_statistics_"):
        skinfo.load(path)


@pytest.mark.parametrize(("n_rows", "k"), [(10, 1), (1499, 1), (2600, 3), (50_000, 50)])
def test_knn_uses_one_neighbour_per_thousand_rows(n_rows, k):
    from skinfo._feature_scores import fit_feature_statistics

    Z = np.random.RandomState(0).normal(size=(n_rows, 3))
    assert fit_feature_statistics("knn", Z, n_neighbors=None)["n_neighbors"] == k
