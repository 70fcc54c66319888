"""OODDetector's scores on held-out digit classes: AUROC and the threshold's calibration.

For each seed: scikit-learn's digits split stratified 75/25
(:func:`skinfo.datasets.load_digits_held_out`, raw pixels 0..16, then
``StandardScaler`` fitted on the training rows); one ``SoftmaxClassifier``
(default network, ``--epochs`` epochs) is trained on the training digits 0-4.
Every score of :class:`skinfo.OODDetector` is then fitted on the same network
(``prefit=True``) and scores the in-distribution test digits 0-4 against the
test digits 5-9 (never seen in training):

* AUROC (:func:`skinfo.metrics.ood_auroc`, in-distribution positive);
* the fraction of in-distribution test rows that ``predict`` flags at the
  default ``contamination=0.05``, with ``offset_`` from the training scores
  (``holdout_fraction=None``) and from 20 % of the training rows held out of
  the fit (``holdout_fraction=0.2``; a second network trained on the other
  80 %, the split ``OODDetector`` itself makes with ``random_state=seed``).

Run: ``python -m benchmarks.ood_scores [--seeds 3] [--epochs 30] [--quick]``;
prints a markdown table (mean and standard deviation over seeds) and writes
``results/ood_scores.md`` / ``.json`` (``ood_scores_quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfo import OODDetector, SoftmaxClassifier
from skinfo.datasets import load_digits_held_out
from skinfo.metrics import ood_auroc

from ._common import machine, markdown_table, write_results

#: The OODDetector parameters of each row of the table.
SCORES: list[dict] = [
    {"ood_score": "max_proba"},  # SoftmaxClassifier's default score_samples
    {"ood_score": "neg_entropy"},
    {"ood_score": "energy"},
    {"ood_score": "knn"},
    {"ood_score": "mahalanobis"},
    {"ood_score": "mahalanobis", "covariance": "ledoit_wolf"},
    {"ood_score": "relative_mahalanobis"},
    {"ood_score": "relative_mahalanobis", "covariance": "ledoit_wolf"},
    {"ood_score": "vim"},
]

HOLDOUT = 0.2
CONTAMINATION = 0.05


def digits(seed: int) -> tuple[np.ndarray, ...]:
    """Standardized training digits 0-4, test digits 0-4 (and labels) and test digits 5-9."""
    X_train, y_train, X_in, y_in, X_out = load_digits_held_out(random_state=seed, scale=False)
    scaler = StandardScaler().fit(X_train)
    return (
        scaler.transform(X_train),
        y_train,
        scaler.transform(X_in),
        y_in,
        scaler.transform(X_out),
    )


def run_seed(seed: int, epochs: int) -> tuple[float, dict[str, dict[str, float]]]:
    """Test accuracy, and AUROC and flagged fractions of every score, for one seed."""
    X_train, y_train, X_in, y_in, X_out = digits(seed)
    common = dict(max_epochs=epochs, random_state=seed, device="cpu")
    clf = SoftmaxClassifier(**common).fit(X_train, y_train)
    # the network OODDetector(holdout_fraction=HOLDOUT, random_state=seed) trains
    X_fit, _, y_fit, _ = train_test_split(
        X_train, y_train, test_size=HOLDOUT, stratify=y_train, random_state=seed
    )
    clf_fit = SoftmaxClassifier(**common).fit(X_fit, y_fit)
    out = {}
    for params in SCORES:
        label = _label(params)
        det = OODDetector(clf, prefit=True, contamination=CONTAMINATION, **params)
        det.fit(X_train, y_train)
        held = OODDetector(
            clf_fit,
            prefit=True,
            contamination=CONTAMINATION,
            holdout_fraction=HOLDOUT,
            random_state=seed,
            **params,
        ).fit(X_train, y_train)
        out[label] = {
            "auroc": ood_auroc(det.score_samples(X_in), det.score_samples(X_out)),
            "flagged_train_offset": float(np.mean(det.predict(X_in) == -1)),
            "flagged_holdout_offset": float(np.mean(held.predict(X_in) == -1)),
        }
    return float(clf.score(X_in, y_in)), out


def _label(params: dict) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def build_table(results: list[dict]) -> str:
    """The markdown table: one row per score, mean (± standard deviation) over seeds."""
    rows = []
    for params in SCORES:
        label = _label(params)
        rows.append(
            [
                f"`{label}`",
                _mean_std([r[label]["auroc"] for r in results]),
                _mean_std([r[label]["flagged_train_offset"] for r in results]),
                _mean_std([r[label]["flagged_holdout_offset"] for r in results]),
            ]
        )
    header = [
        "OODDetector parameters",
        "AUROC, digits 0-4 vs 5-9",
        f"ID test flagged (target {CONTAMINATION:g}), offset from training rows",
        f"same, holdout_fraction={HOLDOUT:g}",
    ]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="one seed, 5 epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [0] if args.quick else list(range(args.seeds))
    epochs = 5 if args.quick else args.epochs
    start = time.perf_counter()
    accuracies, results = zip(*(run_seed(seed, epochs) for seed in seeds), strict=True)
    accuracy = _mean_std(list(accuracies))
    table = build_table(results)
    markdown = (
        f"SoftmaxClassifier (default network, {epochs} epochs) on standardized digits 0-4, "
        f"seeds {seeds}; test accuracy on digits 0-4 {accuracy}. "
        f"Command: `python -m benchmarks.ood_scores --seeds {len(seeds)} --epochs {epochs}`.\n\n"
        + table
    )
    print(markdown)
    print(f"\n({time.perf_counter() - start:.0f} s on {machine()})")
    name = "ood_scores_quick" if args.quick else "ood_scores"
    data = {"seeds": seeds, "epochs": epochs, "accuracy": accuracies, "results": results}
    write_results(name, markdown, data)


if __name__ == "__main__":
    main()
