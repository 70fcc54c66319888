"""OODDetector: a classifier as an sklearn outlier detector, and its feature-space scores.

Each score is compared with an independent numpy computation from the
classifier's outputs (``transform``, ``predict_proba``, ``decision_logits``, the
output layer's weights).
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import shuffle
from sklearn.utils.estimator_checks import (
    check_outliers_fit_predict,
    check_outliers_train,
    parametrize_with_checks,
)

import skinfo
from skinfo import IBINNClassifier, OODDetector, OVAClassifier, SoftmaxClassifier
from skinfo.ood import OOD_SCORES
from skinfo.scorers import make_ood_scorer

FAST = dict(hidden_layer_sizes=(16,), max_epochs=10, lr=1e-2, random_state=0, device="cpu")
CHECK_FAST = dict(hidden_layer_sizes=(8,), max_epochs=3, lr=1e-2, random_state=0, device="cpu")

#: sklearn's outlier checks call ``fit(X)`` without labels, but a detector that trains a
#: classifier needs them (the classifier raises sklearn's "requires y" error, as
#: check_requires_y_none expects). test_sklearn_outlier_checks_with_a_prefit_classifier
#: runs the same three checks unchanged on a classifier fitted on the checks' own data.
NEEDS_LABELS = (
    "the detector trains a classifier, which needs y; sklearn's outlier checks fit without "
    "labels (run with a prefit classifier in test_sklearn_outlier_checks_with_a_prefit_classifier)"
)


def _expected_failures(estimator):
    return {"check_outliers_train": NEEDS_LABELS, "check_outliers_fit_predict": NEEDS_LABELS}


@parametrize_with_checks(
    [
        OODDetector(SoftmaxClassifier(**CHECK_FAST)),
        OODDetector(SoftmaxClassifier(**CHECK_FAST), ood_score="vim"),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    [
        OODDetector(SoftmaxClassifier(**CHECK_FAST), ood_score="knn"),
        OODDetector(SoftmaxClassifier(**CHECK_FAST), ood_score="relative_mahalanobis"),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible_feature_scores(estimator, check):
    check(estimator)


def _blobs():
    """The data of sklearn's outlier checks (make_blobs, then shuffled), with its labels."""
    X, y = make_blobs(n_samples=300, random_state=0)
    return shuffle(X, y, random_state=7)


@pytest.mark.parametrize("ood_score", OOD_SCORES)
def test_sklearn_outlier_checks_with_a_prefit_classifier(ood_score):
    X, y = _blobs()
    clf = SoftmaxClassifier(**CHECK_FAST).fit(X, y)
    det = OODDetector(FrozenEstimator(clf), ood_score=ood_score, prefit=True)
    check_outliers_train("OODDetector", det)
    check_outliers_train("OODDetector", det, readonly_memmap=False)
    check_outliers_fit_predict("OODDetector", det)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def digits():
    """Digits 0-4 for training and testing, 5-9 as OOD (standardized)."""
    X, y = load_digits(return_X_y=True)
    known = y < 5
    X_train, X_test, y_train, y_test = train_test_split(
        X[known], y[known], test_size=0.3, random_state=0, stratify=y[known]
    )
    scaler = StandardScaler().fit(X_train)
    return (
        scaler.transform(X_train),
        y_train,
        scaler.transform(X_test),
        scaler.transform(X[~known][:300]),
    )


@pytest.fixture(scope="module")
def fitted(digits):
    X_train, y_train, _, _ = digits
    return SoftmaxClassifier(**FAST).fit(X_train, y_train)


def _prefit(clf, X, y, **params):
    return OODDetector(clf, prefit=True, **params).fit(X, y)


# ------------------------------------------------ scores against numpy formulas
@pytest.mark.parametrize("k", [1, 7, 50])
def test_knn_score_matches_brute_force(digits, fitted, k):
    X_train, y_train, X_test, X_ood = digits
    det = _prefit(fitted, X_train, y_train, ood_score="knn", n_neighbors=k)
    bank = fitted.transform(X_train).astype(np.float64)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    X = np.vstack([X_test, X_ood])
    z = fitted.transform(X).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    distances = np.sqrt(((z[:, None, :] - bank[None, :, :]) ** 2).sum(-1))
    expected = -np.sort(distances, axis=1)[:, k - 1]
    np.testing.assert_allclose(det.score_samples(X), expected, rtol=1e-6, atol=1e-7)
    assert det.feature_statistics_["n_neighbors"] == k


def test_knn_neighbors_capped_at_the_number_of_training_rows(digits, fitted):
    X_train, y_train, X_test, _ = digits
    det = _prefit(fitted, X_train[:30], y_train[:30], ood_score="knn", n_neighbors=50)
    assert det.feature_statistics_["n_neighbors"] == 30
    assert len(det.feature_statistics_["bank"]) == 30
    assert np.isfinite(det.score_samples(X_test)).all()


def _mahalanobis_closed_form(Z_train, y_train, Z):
    """Squared Mahalanobis distances to the class means with the tied MLE covariance."""
    classes = np.unique(y_train)
    means = np.stack([Z_train[y_train == c].mean(0) for c in classes])
    centered = Z_train - means[np.searchsorted(classes, y_train)]
    precision = np.linalg.pinv(centered.T @ centered / len(Z_train), hermitian=True)
    diff = Z[:, None, :] - means[None, :, :]
    return np.einsum("nkd,de,nke->nk", diff, precision, diff), means


def test_mahalanobis_matches_closed_form(digits, fitted):
    X_train, y_train, X_test, X_ood = digits
    det = _prefit(fitted, X_train, y_train, ood_score="mahalanobis")
    X = np.vstack([X_test, X_ood])
    Z_train = fitted.transform(X_train).astype(np.float64)
    d2, means = _mahalanobis_closed_form(Z_train, y_train, fitted.transform(X).astype(np.float64))
    np.testing.assert_allclose(
        det.feature_statistics_["class_means"], means, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(det.score_samples(X), -d2.min(1), rtol=1e-6)


def test_relative_mahalanobis_matches_closed_form(digits, fitted):
    X_train, y_train, X_test, X_ood = digits
    det = _prefit(fitted, X_train, y_train, ood_score="relative_mahalanobis")
    X = np.vstack([X_test, X_ood])
    Z_train = fitted.transform(X_train).astype(np.float64)
    Z = fitted.transform(X).astype(np.float64)
    d2, _ = _mahalanobis_closed_form(Z_train, y_train, Z)
    mu0 = Z_train.mean(0)
    precision0 = np.linalg.pinv(np.cov(Z_train.T, bias=True), hermitian=True)
    d0 = np.einsum("nd,de,ne->n", Z - mu0, precision0, Z - mu0)
    np.testing.assert_allclose(det.score_samples(X), -(d2 - d0[:, None]).min(1), rtol=1e-5)


def test_ledoit_wolf_covariance_is_the_shrunk_estimate(digits, fitted):
    from sklearn.covariance import ledoit_wolf

    X_train, y_train, X_test, _ = digits
    det = _prefit(fitted, X_train, y_train, ood_score="mahalanobis", covariance="ledoit_wolf")
    Z_train = fitted.transform(X_train).astype(np.float64)
    centered = Z_train - det.feature_statistics_["class_means"][y_train]
    shrunk, _ = ledoit_wolf(centered, assume_centered=True)
    np.testing.assert_allclose(det.feature_statistics_["covariance"], shrunk, rtol=1e-10)
    Z = fitted.transform(X_test).astype(np.float64)
    diff = Z[:, None, :] - det.feature_statistics_["class_means"][None]
    d2 = np.einsum("nkd,de,nke->nk", diff, np.linalg.inv(shrunk), diff)
    np.testing.assert_allclose(det.score_samples(X_test), -d2.min(1), rtol=1e-6)


def test_vim_matches_the_reference_formula(digits, fitted):
    X_train, y_train, X_test, X_ood = digits
    det = _prefit(fitted, X_train, y_train, ood_score="vim", vim_dim=6)
    head = fitted.net_.module_.head
    W = head.weight.detach().double().numpy()
    b = head.bias.detach().double().numpy()
    Z_train = fitted.transform(X_train).astype(np.float64)
    o = -np.linalg.pinv(W) @ b
    cov = (Z_train - o).T @ (Z_train - o) / len(Z_train)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    R = eigenvectors[:, np.argsort(-eigenvalues)[6:]]
    alpha = (Z_train @ W.T + b).max(1).mean() / np.linalg.norm((Z_train - o) @ R, axis=1).mean()
    X = np.vstack([X_test, X_ood])
    Z = fitted.transform(X).astype(np.float64)
    expected = logsumexp(Z @ W.T + b, axis=1) - alpha * np.linalg.norm((Z - o) @ R, axis=1)
    np.testing.assert_allclose(det.score_samples(X), expected, rtol=1e-6, atol=1e-6)
    assert det.feature_statistics_["alpha"] == pytest.approx(alpha)
    assert det.feature_statistics_["null_space"].shape == (16, 10)
    vim = _prefit(fitted, X_train, y_train, ood_score="vim")
    assert vim.feature_statistics_["dim"] == 8  # half the width


def test_probability_and_logit_scores(digits, fitted):
    X_train, y_train, X_test, _ = digits
    proba = fitted.predict_proba(X_test)
    logits = fitted.decision_logits(X_test).astype(np.float64)
    expected = {
        "max_proba": proba.max(1),
        "neg_entropy": np.sum(np.where(proba > 0, proba * np.log(proba), 0.0), axis=1),
        "energy": logsumexp(logits, axis=1),
        "score_samples": fitted.score_samples(X_test),
    }
    for name, value in expected.items():
        det = _prefit(fitted, X_train, y_train, ood_score=name)
        np.testing.assert_allclose(det.score_samples(X_test), value, rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("ood_score", OOD_SCORES)
def test_scores_separate_held_out_digits(digits, fitted, ood_score):
    from skinfo.metrics import ood_auroc

    X_train, y_train, X_test, X_ood = digits
    det = _prefit(fitted, X_train, y_train, ood_score=ood_score)
    assert ood_auroc(det.score_samples(X_test), det.score_samples(X_ood)) > 0.8


# --------------------------------------------------------- offset, contamination
@pytest.mark.parametrize("ood_score", OOD_SCORES)
@pytest.mark.parametrize("contamination", [0.05, 0.2])
def test_offset_is_the_contamination_quantile_of_training_scores(
    digits, fitted, ood_score, contamination
):
    X_train, y_train, _, _ = digits
    det = _prefit(fitted, X_train, y_train, ood_score=ood_score, contamination=contamination)
    scores = det.score_samples(X_train)
    assert det.offset_ == np.quantile(scores, contamination)
    np.testing.assert_array_equal(det.decision_function(X_train), scores - det.offset_)
    assert np.mean(det.predict(X_train) == -1) == pytest.approx(contamination, abs=0.01)


def test_default_contamination_is_five_percent(digits, fitted):
    X_train, y_train, _, _ = digits
    det = OODDetector(fitted, prefit=True)
    assert det.contamination == 0.05
    det.fit(X_train, y_train)
    assert det.offset_ == np.quantile(det.score_samples(X_train), 0.05)


@pytest.mark.parametrize("ood_score", ["knn", "mahalanobis"])
def test_holdout_fraction_sets_the_offset_on_held_out_rows(digits, ood_score):
    X_train, y_train, _, _ = digits
    clf = SoftmaxClassifier(**FAST)
    det = OODDetector(
        clf, ood_score=ood_score, holdout_fraction=0.25, contamination=0.1, random_state=3
    ).fit(X_train, y_train)
    X_fit, X_cal, y_fit, _ = train_test_split(
        X_train, y_train, test_size=0.25, stratify=y_train, random_state=3
    )
    # the classifier and the statistics see only the fitting rows
    reference = clone(clf).fit(X_fit, y_fit)
    np.testing.assert_array_equal(det.classifier_.transform(X_cal), reference.transform(X_cal))
    if ood_score == "knn":
        assert len(det.feature_statistics_["bank"]) == len(X_fit)
    else:
        Z_fit = reference.transform(X_fit).astype(np.float64)
        means = np.stack([Z_fit[y_fit == c].mean(0) for c in range(5)])
        np.testing.assert_allclose(det.feature_statistics_["class_means"], means, rtol=1e-10)
    assert det.offset_ == np.quantile(det.score_samples(X_cal), 0.1)


def test_holdout_without_labels_with_a_prefit_classifier(digits, fitted):
    X_train, _, _, _ = digits
    det = OODDetector(fitted, prefit=True, holdout_fraction=0.5, random_state=0).fit(X_train)
    _, X_cal = train_test_split(X_train, test_size=0.5, random_state=0)
    assert det.offset_ == np.quantile(det.score_samples(X_cal), 0.05)


# ------------------------------------------------------------- meta-estimator
def _weights(clf):
    return {k: v.clone() for k, v in clf.net_.module_.state_dict().items()}


def test_prefit_classifier_is_used_as_is_and_not_refit(digits, fitted):
    X_train, y_train, X_test, _ = digits
    before = _weights(fitted)
    for y in (y_train[:200], None):
        det = OODDetector(fitted, ood_score="mahalanobis", prefit=True).fit(X_train[:200], y)
        assert det.classifier_ is fitted
    after = _weights(fitted)
    assert before.keys() == after.keys()
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0)
    assert fitted.n_iter_ == FAST["max_epochs"]


def test_prefit_without_labels_uses_predicted_classes(digits, fitted):
    X_train, _, _, _ = digits
    det = OODDetector(fitted, ood_score="mahalanobis", prefit=True).fit(X_train)
    Z = fitted.transform(X_train).astype(np.float64)
    predicted = fitted.predict(X_train)
    means = np.stack([Z[predicted == c].mean(0) for c in np.unique(predicted)])
    np.testing.assert_allclose(det.feature_statistics_["class_means"], means, rtol=1e-10)


def test_prefit_needs_a_fitted_classifier():
    with pytest.raises(NotFittedError):
        OODDetector(SoftmaxClassifier(**FAST), prefit=True).fit(np.zeros((10, 3)))


def test_the_classifier_passed_in_is_never_fitted(digits):
    X_train, y_train, _, _ = digits
    clf = SoftmaxClassifier(**FAST)
    det = OODDetector(clf).fit(X_train, y_train)
    assert not hasattr(clf, "net_")
    assert det.classifier_ is not clf and hasattr(det.classifier_, "net_")
    with pytest.raises(ValueError, match="requires y"):
        OODDetector(clf).fit(X_train)


def test_fit_predict_passes_the_labels_on(digits):
    X_train, y_train, _, _ = digits
    det = OODDetector(SoftmaxClassifier(**FAST), ood_score="knn", contamination=0.1)
    labels = det.fit_predict(X_train, y_train)
    np.testing.assert_array_equal(labels, det.predict(X_train))
    assert set(np.unique(labels)) == {-1, 1}


def test_sklearn_classifier_with_probability_scores(digits):
    X_train, y_train, X_test, X_ood = digits
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0)
    det = OODDetector(mlp, ood_score="max_proba").fit(X_train, y_train)
    fitted_mlp = clone(mlp).fit(X_train, y_train)
    np.testing.assert_allclose(det.score_samples(X_ood), fitted_mlp.predict_proba(X_ood).max(1))
    for score, method in (("knn", "transform"), ("score_samples", "score_samples")):
        with pytest.raises(ValueError, match=f"needs a classifier with a {method} method"):
            OODDetector(mlp, ood_score=score).fit(X_train, y_train)


def test_feature_scores_of_a_pipeline_classifier(digits):
    X_train, y_train, X_test, _ = digits
    pipe = make_pipeline(StandardScaler(), SoftmaxClassifier(**FAST))
    det = OODDetector(pipe, ood_score="vim").fit(X_train, y_train)
    clf = det.classifier_[-1]
    Z = clf.transform(det.classifier_[0].transform(X_test)).astype(np.float64)
    W = clf.net_.module_.head.weight.detach().double().numpy()
    np.testing.assert_allclose(det.feature_statistics_["head_weight"], W)
    assert det.score_samples(X_test).shape == (len(Z),)


@pytest.mark.parametrize(
    "clf",
    [
        OVAClassifier(logits="distance", **FAST),  # distance logits: no linear layer
        IBINNClassifier(n_blocks=2, **FAST),  # Gaussian-mixture logits
    ],
    ids=["ova-distance", "ibinn"],
)
def test_vim_needs_a_linear_softmax_head(digits, clf):
    X_train, y_train, _, _ = digits
    with pytest.raises(ValueError, match="softmax of a linear output layer"):
        OODDetector(clf, ood_score="vim").fit(X_train[:200], y_train[:200])


def test_vim_with_affine_one_vs_all_logits(digits):
    # OVAClassifier(logits='affine') normalizes its probabilities as the softmax of the logits
    X_train, y_train, X_test, _ = digits
    det = OODDetector(OVAClassifier(logits="affine", **FAST), ood_score="vim")
    assert np.isfinite(det.fit(X_train, y_train).score_samples(X_test)).all()


def test_pipeline_and_grid_search_select_a_score(digits):
    X_train, y_train, X_test, X_ood = digits
    pipe = make_pipeline(StandardScaler(), OODDetector(SoftmaxClassifier(**FAST)))
    grid = {
        "ooddetector__ood_score": ["max_proba", "knn", "mahalanobis"],
        "ooddetector__classifier__hidden_layer_sizes": [(8,), (16,)],
    }
    search = GridSearchCV(pipe, grid, scoring=make_ood_scorer(X_ood), cv=2)
    search.fit(X_train, y_train)
    means = search.cv_results_["mean_test_score"]
    assert np.isfinite(means).all() and len(means) == 6
    assert search.best_score_ == means.max()
    best = search.best_estimator_[-1]
    assert best.ood_score == search.best_params_["ooddetector__ood_score"]
    assert (
        best.classifier_.hidden_layer_sizes
        == (search.best_params_["ooddetector__classifier__hidden_layer_sizes"])
    )
    assert search.predict(X_test).shape == (len(X_test),)


def test_grid_search_over_scores_of_a_frozen_classifier_never_retrains(digits, fitted):
    X_train, y_train, X_test, X_ood = digits
    before = _weights(fitted)
    det = OODDetector(FrozenEstimator(fitted), prefit=True)
    search = GridSearchCV(
        det, {"ood_score": list(OOD_SCORES)}, scoring=make_ood_scorer(X_ood), cv=2
    ).fit(X_train, y_train)
    assert search.best_estimator_.classifier_.estimator is fitted
    for name, value in _weights(fitted).items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_refit_with_another_score_drops_the_old_statistics(digits, fitted):
    X_train, y_train, _, _ = digits
    det = _prefit(fitted, X_train, y_train, ood_score="knn")
    knn_scores = det.score_samples(X_train)
    det.set_params(ood_score="mahalanobis")  # the fitted score stays until the next fit
    np.testing.assert_array_equal(det.score_samples(X_train), knn_scores)
    det.fit(X_train, y_train)
    assert "bank" not in det.feature_statistics_ and "class_means" in det.feature_statistics_


def test_pickle_round_trip(digits, fitted):
    X_train, y_train, X_test, _ = digits
    for score in ("knn", "vim", "relative_mahalanobis"):
        det = _prefit(fitted, X_train, y_train, ood_score=score)
        again = pickle.loads(pickle.dumps(det))
        np.testing.assert_array_equal(again.score_samples(X_test), det.score_samples(X_test))
        np.testing.assert_array_equal(again.predict(X_test), det.predict(X_test))


_ARRAY_API_CHILD = """
from sklearn.utils.estimator_checks import check_array_api_input
from skinfo import OODDetector, SoftmaxClassifier
for score in ("score_samples", "knn", "mahalanobis", "vim"):
    det = OODDetector(SoftmaxClassifier(**{fast!r}), ood_score=score)
    check_array_api_input("OODDetector", det, array_namespace="numpy",
                          expect_only_array_outputs=False)
    print("ok", score)
"""


@pytest.mark.slow
def test_array_api_check_with_numpy_inputs():
    """The array-API check that parametrize_with_checks skips, run with SCIPY_ARRAY_API=1."""
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    code = _ARRAY_API_CHILD.format(fast=CHECK_FAST)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split().count("ok") == 4


def test_lazy_export():
    assert skinfo.OODDetector is OODDetector
    assert "OODDetector" in skinfo.__all__


@pytest.mark.parametrize(
    "params",
    [
        {"contamination": 0.0},
        {"contamination": 0.6},
        {"contamination": "auto"},
        {"holdout_fraction": 0.0},
        {"holdout_fraction": 1.0},
        {"n_neighbors": 0},
        {"covariance": "diagonal"},
        {"ood_score": "odin"},
        {"vim_dim": -1},
        {"prefit": "yes"},
    ],
)
def test_bad_params(params):
    with pytest.raises(ValueError, match=f"'{next(iter(params))}' parameter"):
        OODDetector(SoftmaxClassifier(**FAST), **params).fit(np.zeros((10, 3)), [0, 1] * 5)


def test_vim_dim_must_leave_a_residual_space(digits, fitted):
    X_train, y_train, _, _ = digits
    with pytest.raises(ValueError, match="vim_dim=16 must be smaller"):
        _prefit(fitted, X_train, y_train, ood_score="vim", vim_dim=16)


def test_labels_of_another_length(digits, fitted):
    X_train, y_train, _, _ = digits
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _prefit(fitted, X_train, y_train[:-1], ood_score="mahalanobis")


def test_a_fit_that_raises_leaves_the_detector_as_it_was(digits, fitted):
    X_train, y_train, X_test, _ = digits
    det = _prefit(fitted, X_train, y_train, ood_score="knn")
    scores, offset = det.score_samples(X_test), det.offset_
    with pytest.raises(ValueError):
        det.fit(X_train[:, :10], y_train)  # the classifier expects 64 features
    assert det.n_features_in_ == 64 and det.offset_ == offset
    np.testing.assert_array_equal(det.score_samples(X_test), scores)


def test_wrong_number_of_features_at_predict(digits, fitted):
    X_train, y_train, X_test, _ = digits
    det = _prefit(fitted, X_train, y_train, ood_score="knn")
    with pytest.raises(ValueError, match="features"):
        det.score_samples(X_test[:, :10])


@pytest.mark.parametrize(
    "qualname",
    [
        "skinfo.OODDetector",
        *(
            f"skinfo.OODDetector.{method}"
            for method in ("fit", "score_samples", "decision_function", "predict", "fit_predict")
        ),
    ],
)
def test_docstrings_are_complete(qualname):
    from numpydoc import validate

    # the checks of tests/test_docstrings.py: every parameter and return value documented
    checks = {"GL08", "PR01", "PR02", "PR07", "RT01", "RT03"}
    errors = [f"{code}: {msg}" for code, msg in validate.validate(qualname)["errors"]]
    assert not [e for e in errors if e[:4] in checks], errors


def test_image_shaped_rows(digits):
    X_train, y_train, X_test = digits[:3]
    images = X_train.reshape(-1, 1, 8, 8)
    det = OODDetector(SoftmaxClassifier(**FAST), ood_score="knn").fit(images, y_train)
    scores = det.score_samples(X_test.reshape(-1, 1, 8, 8))
    assert det.classifier_.image_shape_ == (1, 8, 8)
    assert scores.shape == (len(X_test),) and np.isfinite(scores).all()
    assert set(det.predict(X_test.reshape(-1, 1, 8, 8))) <= {-1, 1}
    with pytest.raises(ValueError):
        det.score_samples(X_test.reshape(-1, 2, 4, 8))
