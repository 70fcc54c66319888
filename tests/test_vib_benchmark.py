"""Fast checks of the VIB benchmark's evaluation helper against sklearn."""

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from benchmarks.vib import evaluate, models, ood_scores
from skinfo.datasets import load_digits_split, make_digits_ood
from skinfo.metrics import expected_calibration_error


def test_evaluate_matches_sklearn():
    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    name = "VIB kl (beta=0.001)"
    clf = models(2, 0)[name].fit(X_tr, y_tr)
    ood = {"gaussian_noise": make_digits_ood(X_te, "gaussian_noise", random_state=0)}
    row = evaluate(clf, X_te, y_te, ood, seed=0, name=name)
    proba = clf.predict_proba(X_te)
    assert np.isclose(row["accuracy"], clf.score(X_te, y_te))
    assert np.isclose(row["nll"], log_loss(y_te, proba, labels=clf.classes_))
    assert np.isclose(row["ece15"], expected_calibration_error(y_te, proba, n_bins=15))
    # same number of in and out rows: balancing keeps every row, so sklearn's AUROC applies
    for score in ood_scores(name):
        clf.set_params(ood_score=score)
        s_in, s_out = clf.score_samples(X_te), clf.score_samples(ood["gaussian_noise"])
        assert len(s_in) == len(s_out)
        labels = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
        expected = roc_auc_score(labels, np.r_[s_in, s_out])
        assert np.isclose(row[f"auroc_gaussian_noise[{score}]"], expected)
    assert ood_scores(name) == ("neg_marginal_rate", "neg_rate", "max_proba")
    assert ood_scores("Softmax") == ("max_proba",)


def test_image_defaults_table_averages_the_seeds_run():
    from benchmarks.image_defaults.softmax_vib import SETTINGS, _key, _table

    setting = SETTINGS[0]
    done = {
        _key(setting, 0): {"accuracy": 0.9, "auroc_max_proba": 0.8},
        _key(setting, 1): {"accuracy": 0.7, "auroc_max_proba": 0.6},
    }
    markdown, data = _table(SETTINGS[:2], (0, 1), {}, done)
    first, second = markdown.splitlines()[-2:]
    assert "| 0,1 | 0.800 ± 0.100 |" in first
    assert "0.700 ± 0.100" in first  # the AUROC column
    assert "|  | - |" in second  # the setting with no seed run yet
    assert data["rows"][0]["per_seed"][1]["accuracy"] == 0.7
