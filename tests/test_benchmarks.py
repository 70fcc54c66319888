"""Tests of the table-building functions of ``benchmarks.quality`` on tiny settings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from skinfo.datasets import CORRUPTION_KINDS, OOD_KINDS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
from benchmarks import quality  # noqa: E402


def test_ood_metrics_use_balance_and_match_sklearn(monkeypatch):
    calls = []
    for name in ("ood_auroc", "ood_aupr_in", "ood_aupr_out", "tnr_at_tpr"):
        original = getattr(quality.M, name)

        def spy(*args, _orig=original, _name=name, **kwargs):
            calls.append((_name, kwargs.get("balance")))
            return _orig(*args, **kwargs)

        monkeypatch.setattr(quality.M, name, spy)
    rng = np.random.RandomState(0)
    s_in, s_out = rng.normal(1, 1, 100), rng.normal(0, 1, 100)
    m = quality.ood_metrics(s_in, s_out, seed=0)
    assert sorted(c[0] for c in calls) == ["ood_aupr_in", "ood_aupr_out", "ood_auroc", "tnr_at_tpr"]
    assert all(balance is True for _, balance in calls)
    # equal counts: balancing keeps everything, so AUROC equals sklearn's
    expected = roc_auc_score(np.r_[np.ones(100), np.zeros(100)], np.r_[s_in, s_out])
    assert m["auroc"] == pytest.approx(expected)
    assert all(0.0 <= v <= 1.0 for v in m.values())


def test_classification_tables_columns_and_ranges():
    factories = {"LR": lambda s: LogisticRegression(max_iter=300)}
    res = quality.classification_tables(factories, [0], fractions=(0.5, 1.0), n_shift_images=40)
    rec = res["raw"]["LR"]
    for key in ("accuracy", "brier", "ece", "mce", "acc@0.5", "acc@1"):
        assert len(rec[key]) == 1
        assert 0.0 <= rec[key][0] <= 1.0, key
    assert rec["accuracy"][0] > 0.9
    assert rec["nll"][0] > 0
    assert 0.0 <= rec["entropy"][0] <= np.log(10)
    for i in range(1, 6):
        assert len(res["shift"]["LR"][i]["accuracy"]) == len(CORRUPTION_KINDS)
        assert all(0 <= a <= 1 for a in res["shift"]["LR"][i]["ece"])
    # corruption hurts: intensity 5 is less accurate than intensity 1 on average
    acc = [np.mean(res["shift"]["LR"][i]["accuracy"]) for i in (1, 5)]
    assert acc[1] < acc[0]
    md = quality.build_markdown(res, {"results": {}, "n_in": 0, "n_out": {}}, {}, [0])
    table = [ln for ln in md.splitlines() if ln.startswith("| LR")]
    assert len(table) == 3
    assert table[0].count("|") == 9  # model + 7 columns


def test_ood_tables_near_ood_first_and_ranges(monkeypatch):
    monkeypatch.setattr(
        quality,
        "_input_density_baselines",
        lambda seed: {"IF": lambda: IsolationForest(n_estimators=20, random_state=seed)},
    )
    res = quality.ood_tables({}, [0])
    variants = list(res["results"])
    assert variants[0].startswith("held-out")
    assert set(variants[1:]) == set(OOD_KINDS)
    for table in res["results"].values():
        m = table["IF"]
        for key in ("auroc", "aupr_in", "aupr_out", "tnr@95"):
            assert 0.0 <= m[key][0] <= 1.0
    # synthetic noise is far from digits for an input-density model
    assert res["results"]["uniform_noise"]["IF"]["auroc"][0] > 0.9
    md = quality.build_markdown({"raw": {}, "shift": {}}, res, {}, [0])
    assert md.index("held-out") < md.index(OOD_KINDS[0])
