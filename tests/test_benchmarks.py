"""Tests of the table-building functions of ``benchmarks.quality`` on tiny settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from benchmarks import quality, quality_images
from skinfo import metrics
from skinfo.datasets import CORRUPTION_KINDS, OOD_KINDS


def test_ood_metrics_are_balanced_and_match_sklearn():
    rng = np.random.RandomState(0)
    s_in, s_out = rng.normal(1, 1, 300), rng.normal(0, 1, 60)
    m = quality.ood_metrics(s_in, s_out, seed=0)
    balanced = dict(balance=True, random_state=0)
    assert m == {
        "auroc": metrics.ood_auroc(s_in, s_out, **balanced),
        "aupr_in": metrics.ood_aupr_in(s_in, s_out, **balanced),
        "aupr_out": metrics.ood_aupr_out(s_in, s_out, **balanced),
        "tnr@95": metrics.tnr_at_tpr(s_in, s_out, 0.95, **balanced),
    }
    assert m["aupr_in"] != metrics.ood_aupr_in(s_in, s_out)  # not the imbalanced number
    # equal counts: balancing keeps everything, so AUROC equals sklearn's
    m = quality.ood_metrics(s_in[:60], s_out, seed=0)
    expected = roc_auc_score(np.r_[np.ones(60), np.zeros(60)], np.r_[s_in[:60], s_out])
    assert m["auroc"] == pytest.approx(expected)
    assert all(0.0 <= v <= 1.0 for v in m.values())


def test_classification_tables_columns_and_ranges():
    factories = {"LR": lambda s: LogisticRegression(max_iter=300)}
    res = quality.classification_tables(factories, [0], fractions=(0.5, 1.0), n_shift_images=40)
    rec = res["raw"]["LR"]
    assert len(rec["fit_s"]) == 1 and rec["fit_s"][0] > 0
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
    assert table[0].count("|") == 8  # model, accuracy, NLL, Brier, entropy, acc 50 %, fit time
    assert "| acc 50 % train |" in md


def test_ood_tables_near_ood_first_and_ranges(monkeypatch):
    monkeypatch.setattr(
        quality,
        "_input_density_baselines",
        lambda seed: {"IF": lambda: IsolationForest(n_estimators=20, random_state=seed)},
    )
    res = quality.ood_tables({}, [0])
    variants = list(res["results"])
    assert variants[0].startswith("held-out")
    assert res["near"] == [quality.HELD_OUT, quality.MILD] == variants[:2]
    assert set(variants[2:]) == set(OOD_KINDS)
    for table in res["results"].values():
        m = table["IF"]
        for key in ("auroc", "aupr_in", "aupr_out", "tnr@95"):
            assert 0.0 <= m[key][0] <= 1.0
    # synthetic noise is far from digits for an input-density model
    assert res["results"]["uniform_noise"]["IF"]["auroc"][0] > 0.9
    md = quality.build_markdown({"raw": {}, "shift": {}}, res, {}, [0])
    assert md.index("held-out") < md.index(OOD_KINDS[0])
    assert md.index("Near-OOD summary") < md.index(f"### {quality.HELD_OUT}")


def test_mild_corruptions_uses_each_kind_on_its_share():
    from skinfo.datasets import corrupt_digits, load_digits_split

    _, X, _, _ = load_digits_split(random_state=0)
    X = X[:50]
    out = quality.mild_corruptions(X)
    parts = np.array_split(np.arange(50), len(CORRUPTION_KINDS))
    for kind, idx in zip(CORRUPTION_KINDS, parts):
        expected = corrupt_digits(X[idx], kind, 2, random_state=0)
        np.testing.assert_allclose(out[idx], expected)


def test_cross_dataset_shift_table():
    from skinfo.datasets import load_digits_split

    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    rng = np.random.RandomState(0)
    noisy = np.clip(X_te + rng.normal(0, 0.4, X_te.shape), 0, 1)
    factories = {"LR": lambda s: LogisticRegression(max_iter=300)}
    res = quality.classification_tables(
        factories, [0], fractions=(1.0,), n_shift_images=20, cross_sets={"noisy": (noisy, y_te)}
    )
    cell = res["cross"]["LR"]["noisy"]
    lr = LogisticRegression(max_iter=300).fit(X_tr, y_tr)
    assert cell["accuracy"][0] == pytest.approx(lr.score(noisy, y_te))
    assert cell["accuracy"][0] < res["raw"]["LR"]["accuracy"][0]
    md = "\n".join(quality.classification_markdown(res, "digits"))
    assert "## Cross-dataset shift: noisy" in md


def test_mnist_as_digits_matches_the_digits_construction():
    # a filled rectangle becomes a filled 8x8 image after size normalization
    im = np.zeros((28, 28))
    im[6:22, 6:22] = 1.0
    out = quality_images.mnist_as_digits(im.reshape(1, -1))
    assert out.shape == (1, 64)
    np.testing.assert_allclose(out, 1.0)
    # a thin vertical bar keeps its aspect ratio: centred columns only
    bar = np.zeros((28, 28))
    bar[4:24, 13:15] = 1.0
    img = quality_images.mnist_as_digits(bar.reshape(1, -1)).reshape(8, 8)
    assert img[:, :3].sum() == 0 and img[:, 5:].sum() == 0 and img[:, 3:5].sum() > 0
    # values on the digits' grid {0, 1/16, ..., 1}; a blank image stays blank
    assert np.allclose(img * 16, np.round(img * 16))
    assert not quality_images.mnist_as_digits(np.zeros((1, 784))).any()


def test_digits_as_mnist_layout():
    from skinfo.datasets import load_digits_split

    _, X, _, _ = load_digits_split(random_state=0)
    big = quality_images.digits_as_mnist(X[:5]).reshape(5, 28, 28)
    assert big.min() >= 0 and big.max() <= 1
    # 4-pixel empty border, the digit in the central 20x20 box
    assert not big[:, :4].any() and not big[:, 24:].any()
    assert not big[:, :, :4].any() and not big[:, :, 24:].any()
    # downsampling the central box back by area averaging recovers the digit
    from scipy import ndimage

    back = ndimage.zoom(big[0, 4:24, 4:24], 8 / 20, order=1)
    assert np.corrcoef(back.ravel(), X[0])[0, 1] > 0.9


def test_held_out_temperature_calibrates_on_held_out_share():
    from sklearn.frozen import FrozenEstimator

    from skinfo.datasets import load_digits_split

    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    model = quality_images.HeldOutTemperature(
        LogisticRegression(C=100.0, max_iter=500), calibration_fraction=0.2, random_state=0
    ).fit(X_tr, y_tr)
    cal = model.calibrated_.calibrated_classifiers_[0]
    assert isinstance(model.calibrated_.estimator, FrozenEstimator)
    base = model.calibrated_.estimator.estimator
    # the base model saw 80 % of the training rows
    assert base.coef_.shape == (10, 64)
    assert sum(base.n_iter_) >= 1
    proba = model.predict_proba(X_te)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (model.predict(X_te) == base.predict(X_te)).all()  # a temperature keeps the argmax
    assert cal is not None


def test_anomalous_class_table_one_detector_per_class():
    rng = np.random.RandomState(0)
    centers = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    y_tr, y_te = np.repeat([0, 1, 2], 40), np.repeat([0, 1, 2], 20)
    X_tr = centers[y_tr] + rng.normal(size=(120, 2))
    X_te = centers[y_te] + rng.normal(size=(60, 2))
    seen = []

    def detectors(seed, epochs):
        def make():
            det = IsolationForest(n_estimators=30, random_state=seed)
            original = det.fit

            def fit(X, y=None):
                seen.append(len(X))
                return original(X)

            det.fit = fit
            return det

        return {"IF": make}

    res = quality_images.anomalous_class_table(X_tr, y_tr, X_te, y_te, [0], 1, detectors)
    assert seen == [40, 40, 40]  # one fit per class, on that class only
    assert set(res["IF"]) == {"0", "1", "2"}
    from skinfo.metrics import ood_auroc

    for c in (0, 1, 2):  # the same numbers computed directly
        det = IsolationForest(n_estimators=30, random_state=0).fit(X_tr[y_tr == c])
        s_in, s_out = det.score_samples(X_te[y_te == c]), det.score_samples(X_te[y_te != c])
        expected = ood_auroc(s_in, s_out, balance=True, random_state=0)
        assert res["IF"][str(c)] == [pytest.approx(expected)]
        assert expected > 0.9  # separated clusters
    md = quality_images.anomalous_markdown(res)
    assert "| IF |" in md and md.splitlines()[0].endswith("| mean |")


def test_run_all_times_pieces_and_publishes(tmp_path, monkeypatch):
    from benchmarks import _common, run_all

    results, docs = tmp_path / "results", tmp_path / "docs"
    monkeypatch.setattr(_common, "RESULTS", results)
    monkeypatch.setattr(run_all, "RESULTS", results)
    monkeypatch.setattr(run_all, "DOCS_RESULTS", docs)
    monkeypatch.setattr(
        run_all,
        "PIECES",
        [
            ("present", "quality", ["--data", "mnist"], True),
            ("no flag", "landscapes", [], False),
            ("absent", "no_such_benchmark", [], True),
        ],
    )
    calls = []

    def fake_run(module, args):
        calls.append((module, args))
        (results / f"{module}.md").write_text("table")
        (results / f"{module}_quick.md").write_text("quick table")
        (results / f"{module}_1seed.md").write_text("one-seed table")
        (results / f"{module}_1seed_shift.png").write_bytes(b"png")
        return (0 if module == "quality" else 3), 1.5

    results.mkdir()
    monkeypatch.setattr(run_all, "run_piece", fake_run)
    assert run_all.main(["--quick"]) == 1  # a piece failed
    assert calls == [("quality", ["--data", "mnist", "--quick"]), ("landscapes", [])]
    md = (results / "bench_times_quick.md").read_text()
    assert md.startswith("*Measured ")
    assert "| absent | python -m benchmarks.no_such_benchmark | n/a | missing |" in md
    assert "| no flag | `python -m benchmarks.landscapes` | 2 | failed (exit 3) |" in md
    assert not docs.exists()  # quick runs are not published
    copied = run_all.publish(docs)
    assert sorted(p.name for p in copied) == ["landscapes.md", "quality.md"]
    import os

    os.utime(results / "quality.md", (0, 0))  # written before the run: not published
    copied = run_all.publish(tmp_path / "docs2", since=1.0)
    assert [p.name for p in copied] == ["landscapes.md"]
    # --images runs the 3-seed MNIST pieces only, timed in their own file
    monkeypatch.setattr(run_all, "IMAGE_PIECES", [("mnist", "quality", ["--seeds", "3"], True)])
    calls.clear()
    assert run_all.main(["--images", "--no-publish"]) == 0
    assert calls == [("quality", ["--seeds", "3"])]
    assert (results / "bench_times_images.md").is_file()


def test_image_targets_table_marks_each_target():
    from benchmarks import image_targets

    def scores(**auroc):
        return {label: {"auroc": [value, value]} for label, value in auroc.items()}

    classification = {
        name: {"accuracy": [acc, acc], "ece": [ece, ece]}
        for name, acc, ece in [
            ("Softmax", 0.97, 0.016),
            ("OVA", 0.975, 0.012),  # lower ECE at higher accuracy: the ECE target is met
            ("MASS", 0.94, 0.010),  # 3 points short: the accuracy target is missed
            ("VIB", 0.98, 0.02),
            ("IB-INN", 0.96, 0.05),
        ]
    }
    held = scores(
        **{
            "Softmax [max_proba]": 0.90,
            "OVA [max_ova_proba]": 0.93,
            "MASS [max_class_density]": 0.91,
            "VIB [neg_marginal_rate]": 0.94,
            "IB-INN [max_proba]": 0.89,  # below softmax: missed
            "VIB [knn]": 0.955,
            "ApproxMassFlowDetector (input)": 0.83,
            "LOF novelty (input)": 0.80,
        }
    )
    quality = {"classification": classification, "ood": {image_targets.HELD_OUT: held}}
    fits = [{"model": "Softmax", "fit_s": 60.0}, {"model": "IB-INN", "fit_s": 130.0}]
    rows = {r[0].split(" (")[0].split(" >=")[0]: r for r in image_targets.targets(quality, fits)}
    status = {k: r[2] for k, r in rows.items()}
    assert status == {
        "fit at image defaults <= 2 min": "**missed**",
        "accuracy within 2 points of Softmax": "**missed**",
        "default score_samples": "**missed**",
        "best skinfo score": "met",
        "an OVA/VIB/MASS/IB-INN ECE below Softmax's at equal accuracy": "met",
        "ApproxMassFlowDetector the best input-space detector": "met",
    }
    assert "VIB [knn] 0.955" in rows["best skinfo score"][1]


def test_cifar10_needs_files_and_never_downloads(tmp_path, monkeypatch):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(SystemExit, match="needs --root"):
        quality.main(["--data", "cifar10"])
    with pytest.raises(SystemExit, match="CIFAR-10 files not found") as info:
        quality.main(["--data", "cifar10", "--root", str(tmp_path)])
    assert "does not download" in str(info.value)


def test_save_plots_writes_the_shift_box_plot_and_accuracy_vs_confidence(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    rng = np.random.RandomState(0)
    shift = {
        name: {
            i: {"accuracy": list(rng.uniform(size=5)), "ece": list(rng.uniform(size=5))}
            for i in range(1, 6)
        }
        for name in ("A", "B")
    }
    y_in = rng.randint(0, 5, 40)
    p_in = rng.dirichlet(np.ones(5), 40)
    p_out = rng.dirichlet(np.ones(5), 30)
    ood = {"mixed": {"A": (p_in, p_out)}, "y_in": y_in}
    paths = quality.save_plots({"shift": shift}, ood, prefix="t")
    assert [Path(p).name for p in paths] == ["t_shift.png", "t_acc_vs_conf.png"]
    for p in paths:
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
