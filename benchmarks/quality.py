"""Quality benchmark on digits: accuracy, proper scores, calibration, shift, OOD.

Reproduces the layout of the comparisons in the MASS, OVA, VIB and IB-INN papers
on scikit-learn's 8x8 digits (pixels scaled to [0, 1]):

1. accuracy, NLL, Brier score and mean predictive entropy (mean ± std over seeds),
   and accuracy at 25 / 50 / 100 % of the training set;
2. calibration: 15-bin top-label ECE and MCE, and the IB-INN appendix-C errors;
3. calibration under shift: accuracy and ECE per corruption intensity (PNG box plot);
4. OOD detection, near-OOD first (train on digits 0-4, OOD = 5-9), then every
   synthetic variant of :data:`skinfo.datasets.OOD_KINDS`; balanced in/out counts;
5. accuracy-vs-confidence curves on a mixed in/out test set (PNG).

Estimators that cannot be imported or fail to fit are skipped with a printed note.

Run: ``python -m benchmarks.quality [--quick] [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import LocalOutlierFactor
from sklearn.neural_network import MLPClassifier
from sklearn.svm import OneClassSVM

import skinfo
from skinfo import metrics as M
from skinfo.datasets import (
    CORRUPTION_KINDS,
    OOD_KINDS,
    corrupt_digits,
    load_digits_held_out,
    load_digits_split,
    make_digits_ood,
)

from ._common import markdown_table, write_results

#: Own OOD scores of each estimator (the values of its ``ood_score`` parameter).
OWN_OOD_SCORES: dict[str, tuple[str, ...]] = {
    "Softmax": ("max_proba", "energy"),
    "OVA": ("max_ova_proba",),
    "MASS": ("max_class_density", "marginal_density"),
    "VIB": ("neg_rate", "max_proba"),
    "IB-INN": ("typicality", "log_likelihood"),
}


def hyperparameters(quick: bool) -> dict[str, dict]:
    """Fixed hyperparameters per estimator for digits (recorded in the output)."""
    e = 15 if quick else 20  # default sized for the 30-minute make bench budget
    return {
        "Softmax": {"max_epochs": e},
        "OVA": {"max_epochs": e},
        "MASS": {"beta": 1e-3, "max_epochs": e},
        "VIB": {"beta": 1e-3, "max_epochs": e},
        "IB-INN": {"beta": 1.0, "max_epochs": e, "n_blocks": 4},
    }


def make_classifiers(quick: bool) -> dict[str, Callable[[int], object]]:
    """Factories ``seed -> unfitted classifier``; skinfo ones skipped when not importable."""
    hp = hyperparameters(quick)
    classes = {
        "Softmax": "SoftmaxClassifier",
        "OVA": "OVAClassifier",
        "MASS": "MASSClassifier",
        "VIB": "VIBClassifier",
        "IB-INN": "IBINNClassifier",
    }
    out: dict[str, Callable[[int], object]] = {}
    for name, cls_name in classes.items():
        try:
            cls = getattr(skinfo, cls_name)
        except Exception as exc:  # noqa: BLE001 - estimator being written elsewhere
            print(f"note: skipping {name}: cannot import {cls_name} ({exc})")
            continue
        out[name] = lambda s, cls=cls, kw=hp[name]: cls(random_state=s, device="cpu", **kw)

    def temperature(s: int):
        from sklearn.calibration import CalibratedClassifierCV

        base = skinfo.SoftmaxClassifier(random_state=s, device="cpu", **hp["Softmax"])
        return CalibratedClassifierCV(base, method="temperature", cv=3, ensemble=False)

    out["Softmax + temperature"] = temperature
    out["sklearn MLP"] = lambda s: MLPClassifier((128,), max_iter=200, random_state=s)
    out["LogisticRegression"] = lambda s: LogisticRegression(max_iter=1000)
    return out


def _fit(name: str, factory, seed: int, X, y):
    try:
        return factory(seed).fit(X, y)
    except Exception as exc:  # noqa: BLE001 - skip an estimator cleanly
        print(f"note: {name} failed to fit (seed {seed}): {type(exc).__name__}: {exc}")
        traceback.print_exc(limit=2)
        return None


def _mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def classification_tables(
    factories: dict, seeds: list[int], fractions=(0.25, 0.5, 1.0), n_shift_images: int | None = None
) -> dict:
    """Tables 1-3: scores, calibration and calibration under shift, per model, over seeds."""
    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    keys = [
        "accuracy",
        "nll",
        "brier",
        "entropy",
        "ece",
        "mce",
        "ibinn_ece",
        "ibinn_mce",
        "ibinn_ice",
        "ibinn_gm",
    ] + [f"acc@{f:g}" for f in fractions]
    raw: dict[str, dict[str, list[float]]] = {}
    shift: dict[str, dict[int, dict[str, list[float]]]] = {}
    fitted: dict[str, object] = {}
    for name, factory in factories.items():
        rec = {k: [] for k in keys}
        shift[name] = {i: {"accuracy": [], "ece": []} for i in range(1, 6)}
        for seed in seeds:
            rng = np.random.RandomState(seed)
            for frac in fractions:
                if frac == 1.0:
                    continue
                idx = _stratified_subset(y_tr, frac, rng)
                clf = _fit(name, factory, seed, X_tr[idx], y_tr[idx])
                if clf is not None:
                    rec[f"acc@{frac:g}"].append(float(np.mean(clf.predict(X_te) == y_te)))
            clf = _fit(name, factory, seed, X_tr, y_tr)
            if clf is None:
                continue
            fitted.setdefault(name, clf)
            proba = clf.predict_proba(X_te)
            rec["acc@1"].append(float(np.mean(clf.classes_[proba.argmax(1)] == y_te)))
            rec["accuracy"].append(rec["acc@1"][-1])
            rec["nll"].append(M.negative_log_likelihood(y_te, proba, labels=clf.classes_))
            rec["brier"].append(M.brier_score(y_te, proba, labels=clf.classes_))
            rec["entropy"].append(float(np.mean(M.predictive_entropy(proba))))
            rec["ece"].append(
                M.expected_calibration_error(y_te, proba, n_bins=15, labels=clf.classes_)
            )
            rec["mce"].append(M.max_calibration_error(y_te, proba, n_bins=15, labels=clf.classes_))
            ib = M.ibinn_calibration_errors(y_te, proba, labels=clf.classes_)
            for k, key in (
                ("ece", "ece"),
                ("mce", "mce"),
                ("ice", "ice"),
                ("gm", "geometric_mean"),
            ):
                rec[f"ibinn_{k}"].append(float(ib[key]))
            Xs, ys = (
                (X_te, y_te)
                if n_shift_images is None
                else (X_te[:n_shift_images], y_te[:n_shift_images])
            )
            for kind in CORRUPTION_KINDS:
                for i in range(1, 6):
                    Xc = corrupt_digits(Xs, kind, i, random_state=seed)
                    pc = clf.predict_proba(Xc)
                    shift[name][i]["accuracy"].append(
                        float(np.mean(clf.classes_[pc.argmax(1)] == ys))
                    )
                    shift[name][i]["ece"].append(
                        M.expected_calibration_error(ys, pc, n_bins=15, labels=clf.classes_)
                    )
        raw[name] = rec
    return {"raw": raw, "shift": shift, "fitted": fitted}


def _stratified_subset(y, frac, rng):
    idx = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        idx.extend(rng.choice(members, max(2, int(round(frac * len(members)))), replace=False))
    return np.sort(np.asarray(idx))


def _input_density_baselines(seed: int) -> dict[str, Callable[[], object]]:
    out = {
        "IsolationForest (input)": lambda: IsolationForest(random_state=seed),
        "LOF novelty (input)": lambda: LocalOutlierFactor(novelty=True),
        "OneClassSVM (input)": lambda: OneClassSVM(gamma="scale", nu=0.1),
        "GaussianMixture log-density (input)": lambda: GaussianMixture(
            10, covariance_type="diag", reg_covar=1e-3, random_state=seed
        ),
    }
    try:
        cls = skinfo.ApproxMassFlowDetector
        out["ApproxMassFlowDetector (input)"] = lambda: cls(
            random_state=seed, device="cpu", max_epochs=20
        )
    except Exception as exc:  # noqa: BLE001
        print(f"note: skipping ApproxMassFlowDetector: {exc}")
    return out


def ood_metrics(s_in, s_out, seed: int) -> dict[str, float]:
    """AUROC, AUPR-in/out and TNR@95%TPR with balanced in/out counts (higher score = in)."""
    return {
        "auroc": M.ood_auroc(s_in, s_out, balance=True, random_state=seed),
        "aupr_in": M.ood_aupr_in(s_in, s_out, balance=True, random_state=seed),
        "aupr_out": M.ood_aupr_out(s_in, s_out, balance=True, random_state=seed),
        "tnr@95": M.tnr_at_tpr(s_in, s_out, 0.95, balance=True, random_state=seed),
    }


def ood_tables(factories: dict, seeds: list[int]) -> dict:
    """Per OOD variant, per (model, score): metrics over seeds. Near-OOD = held-out classes."""
    X_tr, y_tr, X_in, _, X_ho = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)
    variants = {"held-out classes 5-9": X_ho}
    for kind in OOD_KINDS:
        variants[kind] = make_digits_ood(X_in, kind, random_state=0)
    res: dict[str, dict[str, dict[str, list[float]]]] = {v: {} for v in variants}
    mixed = {}
    for seed in seeds:
        scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        probas: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        for name, score_names in OWN_OOD_SCORES.items():
            if name not in factories:
                continue
            clf = _fit(name, factories[name], seed, X_tr, y_tr)
            if clf is None:
                continue
            probas[name] = clf.predict_proba
            for sn in score_names:

                def score(X, clf=clf, sn=sn):
                    clf.set_params(ood_score=sn)
                    return clf.score_samples(X)

                try:
                    score(X_in[:5])
                except Exception as exc:  # noqa: BLE001
                    print(f"note: {name} ood_score={sn} unavailable: {exc}")
                    continue
                scorers[f"{name} [{sn}]"] = score
        for name, make in _input_density_baselines(seed).items():
            try:
                det = make().fit(X_tr)
            except Exception as exc:  # noqa: BLE001
                print(f"note: {name} failed to fit: {exc}")
                continue
            scorers[name] = det.score_samples
        for label, fn in scorers.items():
            s_in = np.asarray(fn(X_in), dtype=float)
            for v, X_out in variants.items():
                m = ood_metrics(s_in, np.asarray(fn(X_out), dtype=float), seed)
                base = label.split(" [")[0]
                if base in probas:
                    m["entropy_increase"] = M.entropy_increase(
                        probas[base](X_in), probas[base](X_out)
                    )
                cell = res[v].setdefault(label, {})
                for k, val in m.items():
                    cell.setdefault(k, []).append(float(val))
        if not mixed:
            mixed = {n: (p(X_in), p(X_ho)) for n, p in probas.items()}
    return {
        "results": res,
        "n_in": len(X_in),
        "n_out": {v: len(x) for v, x in variants.items()},
        "mixed": mixed,
    }


def _plots(cls_res: dict, ood_res: dict, y_in_test) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfo.plotting import accuracy_vs_confidence

    from ._common import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    names = list(cls_res["shift"])
    width = 0.8 / max(1, len(names))
    for ax, key in zip(axes, ("accuracy", "ece")):
        for j, name in enumerate(names):
            data = [cls_res["shift"][name][i][key] or [np.nan] for i in range(1, 6)]
            pos = np.arange(1, 6) + (j - len(names) / 2) * width
            bp = ax.boxplot(
                data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False
            )
            for patch in bp["boxes"]:
                patch.set_facecolor(f"C{j}")
            ax.plot([], [], color=f"C{j}", lw=6, label=name)
        ax.set_xticks(range(1, 6), [str(i) for i in range(1, 6)])
        ax.set_xlabel("corruption intensity")
        ax.set_ylabel(key)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    p = RESULTS / "quality_shift.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (p_in, p_out) in ood_res["mixed"].items():
        y = np.concatenate([y_in_test, np.full(len(p_out), -1)])
        proba = np.vstack([p_in, p_out])
        is_ood = np.r_[np.zeros(len(p_in), bool), np.ones(len(p_out), bool)]
        accuracy_vs_confidence(y, proba, is_ood=is_ood, labels=np.arange(5), label=name, ax=ax)
    ax.legend(fontsize=7)
    p = RESULTS / "quality_acc_vs_conf.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    return paths


def build_markdown(cls_res: dict, ood_res: dict, hp: dict, seeds: list[int]) -> str:
    raw = cls_res["raw"]
    parts = [f"Seeds: {seeds}. Hyperparameters: {hp}.\n"]
    parts.append("## OOD detection (near-OOD first: trained on digits 0-4, OOD = 5-9)\n")
    parts.append(f"Balanced in/out counts (in = {ood_res['n_in']} digits-test images of 0-4).\n")
    for v, table in ood_res["results"].items():
        rows = [
            [label]
            + [
                _mean_std(m.get(k, []))
                for k in ("auroc", "aupr_in", "aupr_out", "tnr@95", "entropy_increase")
            ]
            for label, m in table.items()
        ]
        parts.append(f"### {v} (n_out = {ood_res['n_out'][v]})\n")
        parts.append(
            markdown_table(
                ["score", "AUROC", "AUPR-in", "AUPR-out", "TNR@95TPR", "entropy increase"], rows
            )
            + "\n"
        )
    parts.append("## Classification and proper scoring rules (digits, 10 classes)\n")
    rows = [
        [n]
        + [
            _mean_std(r.get(k, []))
            for k in ("accuracy", "nll", "brier", "entropy", "acc@0.25", "acc@0.5", "acc@1")
        ]
        for n, r in raw.items()
    ]
    parts.append(
        markdown_table(
            [
                "model",
                "accuracy",
                "NLL",
                "Brier",
                "mean entropy",
                "acc 25 %",
                "acc 50 %",
                "acc 100 %",
            ],
            rows,
        )
        + "\n"
    )
    parts.append("## Calibration\n")
    rows = [
        [n]
        + [
            _mean_std(r.get(k, []))
            for k in ("ece", "mce", "ibinn_ece", "ibinn_mce", "ibinn_ice", "ibinn_gm")
        ]
        for n, r in raw.items()
    ]
    parts.append(
        markdown_table(
            [
                "model",
                "ECE (15 bins)",
                "MCE",
                "IB-INN ECE",
                "IB-INN MCE",
                "IB-INN ICE",
                "IB-INN geo. mean",
            ],
            rows,
        )
        + "\n"
    )
    parts.append("## Calibration under shift (mean over corruption kinds and seeds)\n")
    rows = []
    for n, sh in cls_res["shift"].items():
        rows.append(
            [n]
            + [
                f"{np.mean(sh[i]['accuracy']):.3f} / {np.mean(sh[i]['ece']):.3f}"
                if sh[i]["accuracy"]
                else "n/a"
                for i in range(1, 6)
            ]
        )
    parts.append(
        markdown_table(["model (acc / ECE)"] + [f"intensity {i}" for i in range(1, 6)], rows) + "\n"
    )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, one seed (~3 min)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    seeds = list(range(1 if args.quick else args.seeds))
    start = time.perf_counter()
    factories = make_classifiers(args.quick)
    hp = hyperparameters(args.quick)
    cls_res = classification_tables(factories, seeds, n_shift_images=150 if args.quick else None)
    ood_res = ood_tables(factories, seeds)
    _, _, _, y_in_test, _ = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)
    try:
        pngs = _plots(cls_res, ood_res, y_in_test)
    except Exception as exc:  # noqa: BLE001
        print(f"note: plots failed: {exc}")
        pngs = []
    md = build_markdown(cls_res, ood_res, hp, seeds)
    md += f"\nTotal time: {time.perf_counter() - start:.0f} s.\n"
    data = {
        "seeds": seeds,
        "hyperparameters": hp,
        "classification": cls_res["raw"],
        "shift": cls_res["shift"],
        "ood": ood_res["results"],
        "pngs": pngs,
    }
    path = write_results("quality" + ("_quick" if args.quick else ""), md, data)
    print(md)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
