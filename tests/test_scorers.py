"""skinfo.scorers: sklearn scorers and the OOD scorer factory."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_classification
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer as sklearn_get_scorer
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfo.metrics import (
    brier_score,
    expected_calibration_error,
    fpr_at_tpr,
    max_calibration_error,
    negative_log_likelihood,
    ood_aupr_out,
    ood_auroc,
    tnr_at_tpr,
)
from skinfo.scorers import (
    get_scorer,
    get_scorer_names,
    make_ood_scorer,
    neg_brier_score,
    neg_expected_calibration_error,
    neg_max_calibration_error,
    neg_negative_log_likelihood,
)


@pytest.fixture(scope="module")
def multiclass():
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return X[:200], y[:200], X[200:], y[200:]


@pytest.fixture(scope="module")
def detector_data():
    rng = np.random.RandomState(0)
    X_train = rng.normal(size=(300, 3))
    X_test = rng.normal(size=(80, 3))
    X_ood = rng.normal(loc=2.0, size=(120, 3))
    return X_train, X_test, X_ood


@pytest.mark.parametrize(
    ("scorer", "metric"),
    [
        (neg_expected_calibration_error, expected_calibration_error),
        (neg_max_calibration_error, max_calibration_error),
        (neg_brier_score, brier_score),
        (neg_negative_log_likelihood, negative_log_likelihood),
    ],
)
def test_scorer_is_minus_metric(multiclass, scorer, metric):
    X_train, y_train, X_test, y_test = multiclass
    clf = LogisticRegression(max_iter=500).fit(X_train, y_train)
    assert scorer(clf, X_test, y_test) == pytest.approx(-metric(y_test, clf.predict_proba(X_test)))


def test_nll_scorer_equals_sklearn_neg_log_loss(multiclass):
    X_train, y_train, X_test, y_test = multiclass
    clf = LogisticRegression(max_iter=500).fit(X_train, y_train)
    expected = sklearn_get_scorer("neg_log_loss")(clf, X_test, y_test)
    assert neg_negative_log_likelihood(clf, X_test, y_test) == pytest.approx(expected)
    assert expected == pytest.approx(-log_loss(y_test, clf.predict_proba(X_test)))


def test_binary_string_labels_through_scorer():
    # sklearn hands scorers the 1-D probability of classes_[-1] for binary problems
    X, y = make_blobs(n_samples=120, centers=2, cluster_std=3.0, random_state=1)
    y = np.array(["no", "yes"])[y]
    clf = LogisticRegression().fit(X, y)
    proba = clf.predict_proba(X)
    assert neg_expected_calibration_error(clf, X, y) == pytest.approx(
        -expected_calibration_error(y, proba)
    )
    assert neg_brier_score(clf, X, y) == pytest.approx(-brier_score(y, proba))
    assert neg_negative_log_likelihood(clf, X, y) == pytest.approx(
        -negative_log_likelihood(y, proba)
    )


def test_grid_search_selects_by_ece(multiclass):
    X, y, _, _ = multiclass
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    grid = {"C": [1e-2, 1.0, 1e2]}
    search = GridSearchCV(
        LogisticRegression(max_iter=1000), grid, scoring=neg_expected_calibration_error, cv=cv
    ).fit(X, y)
    assert search.best_params_["C"] in grid["C"]
    best = int(np.argmax(search.cv_results_["mean_test_score"]))
    assert search.best_params_["C"] == grid["C"][best]
    # the cross-validated score of the winner is -ECE computed by hand on the same folds
    eces = []
    for train, test in cv.split(X, y):
        clf = LogisticRegression(C=grid["C"][best], max_iter=1000).fit(X[train], y[train])
        eces.append(expected_calibration_error(y[test], clf.predict_proba(X[test])))
    assert search.cv_results_["mean_test_score"][best] == pytest.approx(-np.mean(eces))


def test_multimetric_cross_validate(multiclass):
    X, y, _, _ = multiclass
    scoring = {"ece": neg_expected_calibration_error, "brier": get_scorer("neg_brier_score")}
    res = cross_validate(LogisticRegression(max_iter=500), X, y, scoring=scoring, cv=3)
    assert np.all(res["test_ece"] <= 0) and np.all(res["test_brier"] <= 0)


def test_get_scorer():
    assert get_scorer_names() == [
        "neg_brier_score",
        "neg_expected_calibration_error",
        "neg_max_calibration_error",
        "neg_negative_log_likelihood",
    ]
    for name in get_scorer_names():
        assert get_scorer(name) is globals()[name]
    assert get_scorer("roc_auc") is not None  # falls back to sklearn
    assert get_scorer(neg_expected_calibration_error) is neg_expected_calibration_error
    with pytest.raises(ValueError):
        get_scorer("no_such_scorer")


# ---------------------------------------------------------------------------
# OOD scorer
# ---------------------------------------------------------------------------


def test_ood_scorer_isolation_forest(detector_data):
    X_train, X_test, X_ood = detector_data
    det = IsolationForest(random_state=0).fit(X_train)
    expected = ood_auroc(det.score_samples(X_test), det.score_samples(X_ood))
    assert make_ood_scorer(X_ood)(det, X_test) == pytest.approx(expected)
    assert make_ood_scorer(X_ood)(det, X_test, None) == pytest.approx(expected)
    assert 0.7 < expected <= 1.0
    # decision_function = score_samples - offset_: same ranking
    assert make_ood_scorer(X_ood, score_method="decision_function")(det, X_test) == (
        pytest.approx(expected)
    )


def test_ood_scorer_pipeline(detector_data):
    X_train, X_test, X_ood = detector_data
    pipe = make_pipeline(StandardScaler(), IsolationForest(random_state=0)).fit(10 * X_train + 3)
    X_test, X_ood = 10 * X_test + 3, 10 * X_ood + 3
    scaler, det = pipe[0], pipe[-1]
    expected = ood_auroc(
        det.score_samples(scaler.transform(X_test)), det.score_samples(scaler.transform(X_ood))
    )
    assert make_ood_scorer(X_ood)(pipe, X_test) == pytest.approx(expected)


def test_ood_scorer_metrics(detector_data):
    X_train, X_test, X_ood = detector_data
    det = IsolationForest(random_state=0).fit(X_train)
    s_in, s_out = det.score_samples(X_test), det.score_samples(X_ood)
    assert make_ood_scorer(X_ood, "aupr_out")(det, X_test) == pytest.approx(
        ood_aupr_out(s_in, s_out)
    )
    assert make_ood_scorer(X_ood, "tnr_at_tpr", metric_params={"tpr": 0.9})(
        det, X_test
    ) == pytest.approx(tnr_at_tpr(s_in, s_out, tpr=0.9))
    # a loss is negated so that greater is better
    assert make_ood_scorer(X_ood, "fpr_at_tpr")(det, X_test) == pytest.approx(
        -fpr_at_tpr(s_in, s_out)
    )
    balanced = make_ood_scorer(X_ood, balance=True, random_state=0)
    assert balanced(det, X_test) == pytest.approx(
        ood_auroc(s_in, s_out, balance=True, random_state=0)
    )
    assert balanced(det, X_test) == balanced(det, X_test)

    def neg_mean_gap(scores_in, scores_out, *, balance, random_state):
        return float(np.mean(scores_out) - np.mean(scores_in))

    assert make_ood_scorer(X_ood, neg_mean_gap)(det, X_test) == pytest.approx(
        np.mean(s_out) - np.mean(s_in)
    )


def test_ood_scorer_classifier_score_methods(multiclass):
    X_train, y_train, X_test, _ = multiclass
    X_ood = np.random.RandomState(0).normal(scale=10.0, size=(50, X_train.shape[1]))
    clf = LogisticRegression(max_iter=500).fit(X_train, y_train)
    msp_in = clf.predict_proba(X_test).max(axis=1)
    msp_out = clf.predict_proba(X_ood).max(axis=1)
    scorer = make_ood_scorer(X_ood, score_method="max_proba")
    assert scorer(clf, X_test) == pytest.approx(ood_auroc(msp_in, msp_out))

    def neg_entropy(est, X):
        p = est.predict_proba(X)
        return np.sum(p * np.log(p), axis=1)

    by_callable = make_ood_scorer(X_ood, score_method=neg_entropy)(clf, X_test)
    assert by_callable == pytest.approx(
        ood_auroc(neg_entropy(clf, X_test), neg_entropy(clf, X_ood))
    )
    # LogisticRegression has no score_samples; its decision_function is 2-D
    with pytest.raises(AttributeError, match="score_samples"):
        make_ood_scorer(X_ood)(clf, X_test)
    with pytest.raises(ValueError, match="one number per sample"):
        make_ood_scorer(X_ood, score_method="decision_function")(clf, X_test)


def test_ood_scorer_in_grid_search(detector_data):
    X_train, _, X_ood = detector_data
    scorer = make_ood_scorer(X_ood)
    search = GridSearchCV(
        IsolationForest(n_estimators=25, random_state=0),
        {"max_samples": [16, 64]},
        scoring=scorer,
        cv=3,
    ).fit(X_train)
    assert search.best_params_["max_samples"] in (16, 64)
    assert np.all(search.cv_results_["mean_test_score"] > 0.5)
    clone = pickle.loads(pickle.dumps(scorer))
    det = search.best_estimator_
    assert clone(det, X_train[:50]) == scorer(det, X_train[:50])
    assert "auroc" in repr(scorer) and "120 samples" in repr(scorer)


def test_make_ood_scorer_validation(detector_data):
    _, _, X_ood = detector_data
    with pytest.raises(ValueError, match="metric"):
        make_ood_scorer(X_ood, "accuracy")
    with pytest.raises(TypeError, match="metric"):
        make_ood_scorer(X_ood, 3)
    with pytest.raises(ValueError, match="score_method"):
        make_ood_scorer(X_ood, score_method="predict")
    with pytest.raises(ValueError, match="empty"):
        make_ood_scorer(np.empty((0, 3)))
