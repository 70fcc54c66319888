"""Command line: ``skinfo demo`` (also ``python -m skinfo demo``).

The demo trains every skinfo classifier and the OOD detector on the
embedded digits data, prints a table of accuracy, NLL, Brier score, ECE and
OOD AUROC per OOD variant (the detector has only the OOD columns), and
writes reliability diagrams of the classifiers as a PNG.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import datasets, metrics
from .datasets import OOD_KINDS

# (display name, estimator class name, parameters for digits scaled to [0, 1])
DEMO_MODELS: list[tuple[str, str, dict]] = [
    ("SoftmaxCE", "SoftmaxClassifier", {}),
    ("OVA (distance)", "OVAClassifier", {"logits": "distance"}),
    ("OVA (affine)", "OVAClassifier", {"logits": "affine"}),
    ("VIB (kl)", "VIBClassifier", {}),
    ("MASS", "MASSClassifier", {}),
    ("IB-INN", "IBINNClassifier", {}),
    ("ApproxMassFlow", "ApproxMassFlowDetector", {}),
]


def _table(header: list[str], rows: list[list]) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def run_demo(out_dir: str | Path = "demo_output", *, max_epochs: int = 30, seed: int = 0) -> str:
    """Train every estimator of :data:`DEMO_MODELS` on digits; return the printed table.

    Parameters
    ----------
    out_dir : str or Path, default="demo_output"
        Where the reliability-diagram PNG is written.
    max_epochs : int, default=30
        Training epochs of every estimator.
    seed : int, default=0
        ``random_state`` of the data split, the OOD sets and the estimators.

    Returns
    -------
    table : str
        The results table (also printed).
    """
    import skinfo

    X_train, X_test, y_train, y_test = datasets.load_digits_split(random_state=seed)
    ood = {kind: datasets.make_digits_ood(X_test, kind, random_state=seed) for kind in OOD_KINDS}
    Xh_train, yh_train, Xh_test, _, Xh_ood = datasets.load_digits_held_out(random_state=seed)
    data = (X_train, X_test, y_train, y_test, ood, (Xh_train, yh_train, Xh_test, Xh_ood))

    header = ["model", "acc", "NLL", "Brier", "ECE", "fit s", *OOD_KINDS, "held-out"]
    rows, probas = [], {}
    for name, class_name, params in DEMO_MODELS:
        cls = getattr(skinfo, class_name)
        try:
            row, proba = _evaluate(cls(max_epochs=max_epochs, random_state=seed, **params), data)
        except Exception as error:  # one failing model must not hide the others
            print(f"skipped {name}: {type(error).__name__}: {error}")
            continue
        rows.append([name, *row])
        if proba is not None:
            probas[name] = proba
    table = _table(header, rows)
    print("skinfo demo: digits (8x8, scaled to [0, 1]); test split of 25 %.")
    print("OOD columns: AUROC of score_samples (ID positive); held-out: trained on 0-4.\n")
    print(table)
    out_dir = Path(out_dir)
    try:
        path = _reliability_png(y_test, probas, out_dir)
        print(f"\nreliability diagrams: {path}")
    except ImportError as exc:  # matplotlib is an optional extra
        print(f"\n(no figure: {exc})")
    return table


def _evaluate(est, data) -> tuple[list, np.ndarray | None]:
    """Fit ``est`` and return its table row (after the name) and its test probabilities.

    Outlier detectors have no class probabilities: their accuracy and
    calibration cells read "-".
    """
    from sklearn.base import clone

    X_train, X_test, y_train, y_test, ood, (Xh_train, yh_train, Xh_test, Xh_ood) = data
    classifier = hasattr(est, "predict_proba")
    held = clone(est)
    start = time.perf_counter()
    est.fit(X_train, y_train if classifier else None)
    fit_s = time.perf_counter() - start
    s_in = est.score_samples(X_test)
    aurocs = [metrics.ood_auroc(s_in, est.score_samples(ood[k])) for k in OOD_KINDS]
    held.fit(Xh_train, yh_train if classifier else None)
    aurocs.append(metrics.ood_auroc(held.score_samples(Xh_test), held.score_samples(Xh_ood)))
    if not classifier:
        return ["-", "-", "-", "-", fit_s, *aurocs], None
    proba = est.predict_proba(X_test)
    quality = [
        float(np.mean(est.predict(X_test) == y_test)),
        metrics.negative_log_likelihood(y_test, proba, labels=est.classes_),
        metrics.brier_score(y_test, proba, labels=est.classes_),
        metrics.expected_calibration_error(y_test, proba, labels=est.classes_),
    ]
    return [*quality, fit_s, *aurocs], proba


def _reliability_png(y_true: np.ndarray, probas: dict[str, np.ndarray], out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import reliability_diagram

    fig, axes = plt.subplots(1, len(probas), figsize=(3.2 * len(probas), 3.4), squeeze=False)
    for ax, (name, proba) in zip(axes[0], probas.items()):
        reliability_diagram(y_true, proba, ax=ax)
        ax.set_title(f"{name}\n{ax.get_title()}", fontsize=9)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "reliability.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skinfo`` command."""
    parser = argparse.ArgumentParser(prog="skinfo", description="skinfo command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the estimators on digits and print a table")
    demo.add_argument("--out", default="demo_output", help="folder for the figure")
    demo.add_argument("--epochs", type=int, default=30, help="training epochs per model")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        run_demo(args.out, max_epochs=args.epochs, seed=args.seed)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
