"""MASSClassifier on MNIST-5k images: how its image defaults were chosen.

The shared protocol of :mod:`benchmarks.image_defaults` (``evaluate(make)``
with ``BUDGET``: early stopping on a 10 % validation split, patience 5, at
most 100 epochs; the default encoder for image input, ``SmallCNN``, with the
Jacobian term through ``torch.func``). For each setting and seed: accuracy,
NLL and ECE on the 1,000 test images; the held-out-class AUROC (trained on
digits 0-4) of ``max_y log q(f(x) | y)``, of ``log q(f(x))`` and of the
maximum probability; epochs run and fit time. The settings vary the
refit of ``q`` at the end of ``fit`` (``refit_head``), the fraction of each
batch that carries the Jacobian term (its cost on a CNN), ``beta`` and the
learning rate.

Run: ``python -m benchmarks.image_defaults.mass [--quick]`` (writes
``results/image_defaults_mass.md`` / ``.json``). The full run trains
2 x 3 x 6 CNN models with the Jacobian term: about half an hour on 2 cores;
``--quick`` (one seed, two settings) a few minutes.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from skinfo import MASSClassifier
from skinfo.metrics import ood_auroc

from .._common import markdown_table, write_results
from . import BUDGET, evaluate, mnist_splits

#: (label, MASSClassifier parameters besides ``BUDGET``).
SETTINGS: list[tuple[str, dict]] = [
    ("defaults", {}),
    ("refit_head=False", {"refit_head": False}),
    ("jacobian_fraction=1/32", {"jacobian_fraction": 1 / 32}),
    ("beta=0", {"beta": 0.0}),
    ("beta=1e-2", {"beta": 1e-2}),
    ("lr=3e-3", {"lr": 3e-3}),
]

#: The settings of ``--quick``: the defaults with and without the refit of ``q``.
QUICK = SETTINGS[:2]

KEYS = (
    "accuracy", "nll", "ece", "auroc_score", "auroc_marginal", "auroc_max_proba", "epochs",
    "fit_s",
)  # fmt: skip


def _run_setting(params: dict, seed: int) -> dict:
    """``evaluate`` on the 10-class split; one fit on digits 0-4 scored three ways."""

    def make():
        return MASSClassifier(**BUDGET, **params, random_state=seed, device="cpu")

    row = evaluate(make, ood=False)
    X_k, y_k, X_in, X_out = mnist_splits()["held_out"]
    det = make().fit(X_k, y_k)
    for key, score in (
        ("auroc_score", "max_class_density"),
        ("auroc_marginal", "marginal_density"),
    ):
        det.set_params(ood_score=score)
        row[key] = ood_auroc(det.score_samples(X_in), det.score_samples(X_out))
    proba_in, proba_out = det.predict_proba(X_in), det.predict_proba(X_out)
    row["auroc_max_proba"] = ood_auroc(proba_in.max(1), proba_out.max(1))
    return row


def run(quick: bool) -> tuple[str, dict]:
    torch.set_num_threads(1)
    seeds = [0] if quick else [0, 1, 2]
    settings = QUICK if quick else SETTINGS
    header = [
        "setting", "accuracy", "NLL", "ECE", "AUROC max_class_density",
        "AUROC marginal_density", "AUROC max-probability", "epochs", "fit (s)",
    ]  # fmt: skip
    rows, records = [], []
    for label, params in settings:
        results = [_run_setting(params, s) for s in seeds]
        cells = []
        for key in KEYS:
            values = [r[key] for r in results]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
        rows.append([label, *cells])
        records.append({"setting": label, "params": params, "per_seed": results})
        print(" | ".join(rows[-1]), flush=True)
    intro = (
        f"MASSClassifier on MNIST-5k images (1 x 28 x 28), mean ± std over seeds {seeds}, "
        f"budget {BUDGET}; one torch thread. Held-out AUROC: trained on digits 0-4, "
        "test digits 0-4 against 5-9.\n\n"
    )
    return intro + markdown_table(header, rows), {"quick": quick, "seeds": seeds, "rows": records}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, two settings")
    args = parser.parse_args(argv)
    markdown, data = run(args.quick)
    print(write_results("image_defaults_mass", markdown, data))


if __name__ == "__main__":
    main()
