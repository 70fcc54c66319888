"""Fast run of benchmarks/approx_mass.py with tiny settings: output structure and values."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks import _common
from benchmarks import approx_mass as bench
from skinfo import ApproxMassFlowDetector
from skinfo.datasets import load_digits_split, make_digits_ood

TINY = [
    "--quick",
    "--epochs", "1",
    "--epochs-class", "1",
    "--classes", "3",
    "--kinds", "flip", "uniform_noise",
    "--repeats", "2",
    "--throughput-rows", "500",
]  # fmt: skip


def test_benchmark_tiny_run_writes_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    data = bench.main(TINY)
    alpha = f"{bench.ALPHA:g}"
    expected_rows = {
        "flow alpha=0, mass",
        "flow alpha=0, log-lik",
        f"flow alpha={alpha}, mass",
        f"flow alpha={alpha}, log-lik",
        "IsolationForest",
        "LOF (novelty)",
        "OneClassSVM",
        "GaussianMixture",
    }
    assert set(data["ood_variants"]) == expected_rows
    assert set(data["anomalous_class"]) == expected_rows
    for row in data["ood_variants"].values():
        assert set(row) == {"flip", "uniform_noise"}
        for values in row.values():
            assert set(values) == {"auroc", "aupr", "tnr95"}
            assert all(0.0 <= v <= 1.0 for vs in values.values() for v in vs)
    assert set(data["anomalous_class"]["IsolationForest"]) == {"3"}
    steps = data["speed"]["steps"]
    for r in steps.values():
        assert r["ratio"] == pytest.approx(r["step_s_alpha"] / r["step_s_alpha0"])
    assert data["speed"]["throughput"]["mass_per_s"] > 0
    md = (tmp_path / "approx_mass_quick.md").read_text()
    assert "(a) digits vs OOD variants: AUROC" in md and "(b) anomalous-class" in md
    assert "samples/s" in md
    stored = json.loads((tmp_path / "approx_mass_quick.json").read_text())
    assert stored["settings"]["seeds"] == [0]


def test_fit_and_score_is_the_balanced_auroc():
    X_tr, X_te, _, _ = load_digits_split(random_state=0)
    X_out = make_digits_ood(X_te, "rotate90")[:200]  # fewer than X_te: X_te is subsampled
    factory = bench.models(0, 1, image=False)["flow alpha=0"]
    result = bench.fit_and_score(factory, X_tr, X_te, {"rot": X_out}, seed=0)
    model = factory().fit(X_tr)  # same seed: the same fitted model
    s_in, s_out = model.score_samples(X_te), model.score_samples(X_out)
    rng = np.random.RandomState(0)
    s_in = s_in[rng.choice(len(s_in), len(s_out), replace=False)]
    expected = roc_auc_score(np.r_[np.ones(200), np.zeros(200)], np.r_[s_in, s_out])
    assert result["mass"]["rot"]["auroc"] == pytest.approx(expected)
    assert isinstance(model[-1], ApproxMassFlowDetector)
    ll_in = model[-1].log_likelihood(model[0].transform(X_te))
    assert set(result) == {"mass", "log-lik"}
    assert np.isfinite(ll_in).all()
