"""Training budget of OVAClassifier on digits: how its defaults were chosen.

Digits scaled to [0, 1] (``load_digits_split``: 1,347 training images, 11
batches of 128 per epoch), default MLP encoder (400-200). For each setting and
seed: accuracy, NLL and ECE (15 bins) of ``predict_proba`` on the 450 test
images, the ECE of the other normalization ``p_k / sum_j p_j``, the last
epoch's training loss, and the held-out-class AUROC of ``score_samples``
(trained on digits 0-4; test images of 0-4 against those of 5-9, balanced
counts). ``SoftmaxClassifier`` with its defaults is the reference row.

Run: ``python -m benchmarks.ova_defaults [--quick]`` (writes
``results/ova_defaults.md`` / ``.json``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skinfo import OVAClassifier, SoftmaxClassifier
from skinfo.datasets import load_digits_held_out, load_digits_split
from skinfo.metrics import expected_calibration_error, negative_log_likelihood, ood_auroc

from ._common import markdown_table, write_results

#: (logits, activation, lr, head_lr factor, center_init, epochs); factor 1 is the head at ``lr``.
SETTINGS: list[tuple[str, str, float, float, str, int]] = [
    ("distance", "elu", 1e-3, 1, "zeros", 15),
    ("distance", "elu", 1e-3, 1, "zeros", 50),
    ("distance", "elu", 1e-3, 1, "zeros", 200),
    ("distance", "elu", 1e-2, 1, "zeros", 50),
    ("distance", "elu", 1e-3, 10, "zeros", 50),
    ("distance", "elu", 1e-2, 10, "zeros", 50),
    ("distance", "relu", 1e-3, 1, "zeros", 20),
    ("distance", "relu", 1e-3, 1, "zeros", 30),
    ("distance", "relu", 1e-3, 1, "zeros", 50),
    ("distance", "relu", 1e-3, 10, "zeros", 15),
    ("distance", "relu", 1e-3, 10, "zeros", 30),
    ("distance", "relu", 1e-3, 10, "zeros", 50),
    ("distance", "relu", 1e-3, 10, "zeros", 200),
    ("distance", "relu", 1e-3, 30, "zeros", 50),
    ("distance", "relu", 1e-3, 10, "normal", 50),
    ("distance", "relu", 3e-3, 10, "zeros", 50),
    ("affine", "elu", 1e-3, 1, "zeros", 15),
    ("affine", "elu", 1e-3, 1, "zeros", 50),
    ("affine", "relu", 1e-3, 10, "zeros", 15),
    ("affine", "relu", 1e-3, 10, "zeros", 50),
    ("scaled_distance", "relu", 1e-3, 10, "zeros", 50),
]

#: The settings of ``--quick``: the old and the new default, both logit kinds.
QUICK = [SETTINGS[1], SETTINGS[11], SETTINGS[17], SETTINGS[19]]


def _evaluate(make, data, held_out) -> dict[str, float]:
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    clf = make().fit(X_train, y_train)
    seconds = time.perf_counter() - start
    proba = clf.predict_proba(X_test)
    row = {
        "accuracy": float(np.mean(clf.classes_[proba.argmax(1)] == y_test)),
        "nll": negative_log_likelihood(y_test, proba),
        "ece": expected_calibration_error(y_test, proba),
        "train_loss": float(clf.history_[-1, "train_loss"]),
        "fit_s": seconds,
    }
    if hasattr(clf, "predict_ova_proba"):
        ova = clf.predict_ova_proba(X_test)
        row["ece_sum"] = expected_calibration_error(y_test, ova / ova.sum(1, keepdims=True))
    X_in_train, y_in_train, X_in, _, X_out = held_out
    detector = make().fit(X_in_train, y_in_train)
    row["auroc"] = ood_auroc(
        detector.score_samples(X_in), detector.score_samples(X_out), balance=True, random_state=0
    )
    return row


def run(quick: bool) -> tuple[str, dict]:
    data = load_digits_split(random_state=0)
    held_out = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)
    seeds = [0] if quick else [0, 1, 2]
    settings = QUICK if quick else SETTINGS
    keys = ("accuracy", "nll", "ece", "ece_sum", "train_loss", "auroc")
    header = [
        "logits", "activation", "lr", "head_lr", "center_init", "epochs", "accuracy", "NLL",
        "ECE", "ECE of p/sum(p)", "train loss", "held-out AUROC",
    ]  # fmt: skip
    rows, records = [], []

    def add(label: list, makes) -> None:
        results = [_evaluate(make, data, held_out) for make in makes]
        stats = {}
        for key in keys:
            values = [r[key] for r in results if key in r]
            stats[key] = (float(np.mean(values)), float(np.std(values))) if values else None
        cells = [
            "n/a" if stats[k] is None else f"{stats[k][0]:.3f} ± {stats[k][1]:.3f}" for k in keys
        ]
        rows.append(label + cells)
        records.append({"setting": label, "per_seed": results})
        print(" | ".join(map(str, rows[-1])), flush=True)

    for logits, activation, lr, factor, init, epochs in settings:
        label = [logits, activation, f"{lr:g}", f"{factor:g} x lr", init, epochs]
        add(
            label,
            [
                lambda s=s, logits=logits, activation=activation, lr=lr, factor=factor,
                init=init, epochs=epochs: OVAClassifier(
                    logits=logits, activation=activation, lr=lr, head_lr=factor * lr,
                    center_init=init, max_epochs=epochs, random_state=s, device="cpu",
                )
                for s in seeds
            ],
        )  # fmt: skip
    add(
        ["softmax", "elu", "0.001", "-", "-", 50],
        [lambda s=s: SoftmaxClassifier(random_state=s, device="cpu") for s in seeds],
    )
    intro = (
        f"OVAClassifier on digits, mean ± std over seeds {seeds}; `head_lr` is the learning "
        "rate of the class centers (distance) or of the affine layer. Last row: "
        "SoftmaxClassifier with its defaults.\n\n"
    )
    return intro + markdown_table(header, rows), {"quick": quick, "seeds": seeds, "rows": records}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, four settings")
    args = parser.parse_args(argv)
    markdown, data = run(args.quick)
    print(write_results("ova_defaults", markdown, data))


if __name__ == "__main__":
    main()
