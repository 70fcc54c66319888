"""Fast checks of the VIB benchmark's evaluation helper against sklearn."""

import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from skinfo.datasets import load_digits_split, make_digits_ood

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
from benchmarks.vib import evaluate, models, score_name  # noqa: E402


def test_evaluate_matches_sklearn():
    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    clf = models(2, 0)["VIB kl (beta=0.001)"].fit(X_tr, y_tr)
    ood = {"gaussian_noise": make_digits_ood(X_te, "gaussian_noise", random_state=0)}
    row = evaluate(clf, X_te, y_te, ood, seed=0)
    proba = clf.predict_proba(X_te)
    assert np.isclose(row["accuracy"], clf.score(X_te, y_te))
    assert np.isclose(row["nll"], log_loss(y_te, proba, labels=clf.classes_))
    assert 0.0 <= row["ece15"] <= 1.0
    # same number of in and out rows: balancing keeps every row, so sklearn's AUROC applies
    s_in, s_out = clf.score_samples(X_te), clf.score_samples(ood["gaussian_noise"])
    assert len(s_in) == len(s_out)
    labels = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    expected = roc_auc_score(labels, np.r_[s_in, s_out])
    assert np.isclose(row["auroc_gaussian_noise"], expected)
    assert score_name("VIB kl (beta=0.001)") == "-rate"
    assert score_name("Softmax") == "max prob"
