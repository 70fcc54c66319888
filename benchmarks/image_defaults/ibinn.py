"""IBINNClassifier on MNIST-5k images: how its image defaults were chosen.

The shared protocol of :mod:`benchmarks.image_defaults` (4,000 training images
as ``(n, 1, 28, 28)``, early stopping on a 10 % validation split, patience 5,
at most 100 epochs): for each setting and seed, accuracy, NLL and ECE
(15 bins) on the 1,000 test images, epochs trained, fit time and seconds per
epoch; then a second fit on digits 0-4 and the held-out-class AUROC (test
images of 0-4 against those of 5-9) of three scores of that one fitted model:
the typicality test, ``log q(x)`` and the maximum class probability.

Every setting is the estimator's defaults (``'small'`` convolutional INN,
Adam, batch 128, head at 10x ``lr``) except the listed ``lr`` and ``beta``.
The first row is the former default (``lr=1e-2``, ``beta=1``); ``beta=1``
is the paper's recommended ``gamma = 1``. ``SoftmaxClassifier`` with its
image defaults is the reference row.

Run: ``python -m benchmarks.image_defaults.ibinn [--quick] [--cache PATH]``
(writes ``results/image_defaults_ibinn[_quick].md`` / ``.json``). ``--quick``:
seed 0, the new default and ``beta=1``, at most 10 epochs each. One fit of
the INN costs about 10 s per epoch on one free core; the full run (5
settings, 2 seeds, two fits each) takes one to two hours on one core, so
``--cache`` stores each finished (setting, seed) and a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from skinfo import IBINNClassifier, SoftmaxClassifier
from skinfo.metrics import ood_auroc

from .._common import markdown_table, write_results
from . import BUDGET, evaluate, mnist_splits

#: (label, lr, beta); the estimator's defaults otherwise.
SETTINGS: list[tuple[str, float, float]] = [
    ("former default", 1e-2, 1.0),
    ("paper's gamma=1", 1e-3, 1.0),
    ("", 1e-3, 10.0),
    ("new default", 1e-3, 100.0),
    ("classifier only", 1e-3, math.inf),
]
#: The settings of ``--quick``: the new default and the paper's trade-off.
QUICK = [SETTINGS[3], SETTINGS[1]]
SEEDS = (0, 1)
KEYS = (
    "accuracy", "nll", "ece", "epochs", "fit_s", "s_per_epoch",
    "auroc_typicality", "auroc_log_likelihood", "auroc_max_proba",
)  # fmt: skip


def held_out_aurocs(make) -> dict[str, float]:
    """Fit ``make()`` on digits 0-4; AUROC of each IB-INN score (in = 0-4, out = 5-9)."""
    X_k, y_k, X_in, X_out = mnist_splits()["held_out"]
    det = make().fit(X_k, y_k)
    out = {}
    for score in ("typicality", "log_likelihood", "max_proba"):
        det.set_params(ood_score=score)
        out[f"auroc_{score}"] = ood_auroc(det.score_samples(X_in), det.score_samples(X_out))
    return out


def one(lr: float, beta: float, seed: int, max_epochs: int) -> dict[str, float]:
    """Every measurement of one (setting, seed)."""

    def make():
        budget = {**BUDGET, "max_epochs": min(BUDGET["max_epochs"], max_epochs)}
        return IBINNClassifier(lr=lr, beta=beta, random_state=seed, device="cpu", **budget)

    row = evaluate(make, ood=False)
    row["s_per_epoch"] = row["fit_s"] / row["epochs"]
    row.update(held_out_aurocs(make))
    return row


def softmax_row(seed: int) -> dict[str, float]:
    """SoftmaxClassifier (image defaults) under the same budget; max-probability AUROC."""
    make = lambda: SoftmaxClassifier(random_state=seed, device="cpu", **BUDGET)  # noqa: E731
    row = evaluate(make)
    row["s_per_epoch"] = row["fit_s"] / row["epochs"]
    return row


def run(quick: bool, cache: Path | None) -> tuple[str, dict]:
    seeds = SEEDS[:1] if quick else SEEDS
    settings = QUICK if quick else SETTINGS
    max_epochs = 10 if quick else BUDGET["max_epochs"]
    done = json.loads(cache.read_text()) if cache and cache.exists() else {}
    rows, records = [], []

    def measured(key: str, compute, *args) -> dict:
        if key not in done:
            done[key] = compute(*args)
            if cache:
                cache.write_text(json.dumps(done, indent=1))
        return done[key]

    def add(label: list, results: list[dict]) -> None:
        cells = []
        for key in KEYS:
            values = [r[key] for r in results if key in r]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "n/a")
        rows.append(label + cells)
        records.append({"setting": label, "per_seed": results})
        print(" | ".join(map(str, rows[-1])), flush=True)

    for name, lr, beta in settings:
        results = [
            measured(f"{lr:g}/{beta:g}/{seed}/{max_epochs}", one, lr, beta, seed, max_epochs)
            for seed in seeds
        ]
        add([name, f"{lr:g}", f"{beta:g}"], results)
    if not quick:
        results = [measured(f"softmax/{seed}", softmax_row, seed) for seed in seeds]
        add(["SoftmaxClassifier", "its default", "-"], results)
    header = [
        "setting", "lr", "beta", "accuracy", "NLL", "ECE", "epochs", "fit s", "s / epoch",
        "AUROC typicality", "AUROC log q(x)", "AUROC max proba",
    ]  # fmt: skip
    intro = (
        f"IBINNClassifier on MNIST-5k images, mean ± std over seeds {list(seeds)}, "
        f"early stopping on 10 % validation, patience 5, at most {max_epochs} epochs. "
        "AUROC: trained on digits 0-4, test images of 0-4 against those of 5-9. "
        "SoftmaxClassifier: the AUROC of its maximum probability is in the last column.\n\n"
    )
    data = {"quick": quick, "seeds": list(seeds), "max_epochs": max_epochs, "rows": records}
    return intro + markdown_table(header, rows), data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seed 0, two settings, 10 epochs")
    parser.add_argument("--cache", type=Path, help="JSON file of finished (setting, seed)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    markdown, data = run(args.quick, args.cache)
    name = "image_defaults_ibinn" + ("_quick" if args.quick else "")
    print(write_results(name, markdown, data))


if __name__ == "__main__":
    main()
