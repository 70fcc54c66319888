"""OVAClassifier on images: which logits and learning rates its image defaults use.

Shared protocol of :mod:`benchmarks.image_defaults` (MNIST-5k as ``(n, 1, 28, 28)``
images, the default small CNN, :data:`~benchmarks.image_defaults.BUDGET`:
early stopping on a 10 % validation split, patience 5, at most 100 epochs).
For each setting and seed: accuracy, NLL and ECE (15 bins) of ``predict_proba``
on the 1,000 test images, and, trained on digits 0-4, the held-out-class
AUROC (test images of 0-4 against those of 5-9) of ``score_samples``
(``max_ova_proba``, the largest one-vs-all probability) and of the largest
normalized probability (``max_proba``); the epochs early stopping ran and
the fit time of the 4,000-image fit.

The settings compare the paper's distance logits (``z_k = -||f(x) - w_k||``),
distance logits with a learned scale (``z_k = -s ||f(x) - w_k||``) and affine
logits, each at encoder learning rates 1e-3 and 3e-3 (the head at 10x). The
last rows check the estimator as a user gets it, its image defaults at their
own ``max_epochs`` (no early stopping, no validation split), on MNIST-5k as
one-channel 28x28 images and as three-channel 32x32 images (each digit
zero-padded to 32x32 and repeated in three channels; no held-out-class fit),
and the same with the paper's distance logits.

Run: ``python -m benchmarks.image_defaults.ova [--quick]`` (writes
``results/image_defaults_ova.md`` / ``.json``). ``--quick``: one seed, the
default and affine logits, at most 3 epochs, no held-out-class fit.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
import torch

from skinfo import OVAClassifier
from skinfo.metrics import expected_calibration_error, negative_log_likelihood

from .._common import markdown_table, write_results
from . import BUDGET, evaluate, mnist_splits

#: (logits, lr, head_lr factor): the settings run under ``BUDGET``.
SETTINGS: list[tuple[str, float, float]] = [
    ("distance", 1e-3, 10),
    ("distance", 3e-3, 10),
    ("scaled_distance", 1e-3, 10),
    ("scaled_distance", 3e-3, 10),
    ("affine", 1e-3, 10),
    ("affine", 3e-3, 10),
]

KEYS = ("accuracy", "nll", "ece", "auroc_score", "auroc_max_proba", "epochs", "fit_s")


def _as_rgb32(X: np.ndarray) -> np.ndarray:
    """``(n, 1, 28, 28)`` digits zero-padded to 32x32 and repeated in 3 channels."""
    padded = np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return np.repeat(padded, 3, axis=1)


def _defaults_on_rgb32(seed: int) -> dict:
    """The image defaults on MNIST-5k as 3x32x32 images (no held-out-class fit)."""
    X_tr, X_te, y_tr, y_te = mnist_splits()["split"]
    X_tr, X_te = _as_rgb32(X_tr), _as_rgb32(X_te)
    clf = OVAClassifier(random_state=seed, device="cpu").fit(X_tr, y_tr)
    proba = clf.predict_proba(X_te)
    return {
        "accuracy": float(np.mean(clf.classes_[proba.argmax(1)] == y_te)),
        "nll": negative_log_likelihood(y_te, proba, labels=clf.classes_),
        "ece": expected_calibration_error(y_te, proba, n_bins=15, labels=clf.classes_),
        "epochs": int(clf.n_iter_),
    }


def _row(label: list, results: list[dict]) -> tuple[list, dict]:
    cells = []
    for key in KEYS:
        values = [r[key] for r in results if key in r]
        if not values:
            cells.append("–")
        elif key in ("epochs", "fit_s"):
            cells.append(f"{np.mean(values):.0f} ± {np.std(values):.0f}")
        else:
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
    return label + cells, {"setting": label, "per_seed": results}


def run(
    quick: bool, seeds: list[int], only: list[int] | None, verbose: int = 0
) -> tuple[str, dict]:
    torch.set_num_threads(1)
    budget = {**BUDGET, "max_epochs": 3} if quick else BUDGET
    settings = [SETTINGS[0], SETTINGS[4]] if quick else SETTINGS
    if only is not None:
        settings = [SETTINGS[i] for i in only]
    header = [
        "setting", "logits", "lr", "head_lr", "accuracy", "NLL", "ECE",
        "AUROC max_ova_proba", "AUROC max_proba", "epochs", "fit s",
    ]  # fmt: skip
    rows, records = [], []
    for logits, lr, factor in settings:
        params = dict(logits=logits, lr=lr, head_lr=factor * lr, device="cpu", verbose=verbose)
        results = [
            evaluate(partial(OVAClassifier, random_state=s, **params, **budget), ood=not quick)
            for s in seeds
        ]
        row, record = _row(["budget", logits, f"{lr:g}", f"{factor:g} x lr"], results)
        rows.append(row)
        records.append(record)
        print(" | ".join(map(str, row)), flush=True)
    if not quick and only is None:
        own_epochs = {
            "defaults, 1x28x28": lambda s: evaluate(
                partial(OVAClassifier, random_state=s, device="cpu")
            ),
            "defaults, 3x32x32": _defaults_on_rgb32,
            "defaults but logits='distance', 1x28x28": lambda s: evaluate(
                partial(OVAClassifier, logits="distance", random_state=s, device="cpu")
            ),
        }
        for name, run_seed in own_epochs.items():
            logits = "distance" if "distance" in name else "auto (affine)"
            row, record = _row([name, logits, "1e-3", "10 x lr"], [run_seed(s) for s in seeds])
            rows.append(row)
            records.append(record)
            print(" | ".join(map(str, row)), flush=True)
    intro = (
        f"OVAClassifier on MNIST-5k images, mean ± std over seeds {seeds}. 'budget' rows: "
        "early stopping on a 10 % validation split (patience 5, at most 100 epochs); "
        "'defaults' rows: the estimator's image defaults as they are (15 epochs), no "
        "validation split. "
        "AUROC: trained on digits 0-4, test images of 0-4 against 5-9.\n\n"
    )
    data = {"quick": quick, "seeds": seeds, "budget": budget, "rows": records}
    return intro + markdown_table(header, rows), data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 3 epochs, two settings")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    parser.add_argument("--only", type=int, nargs="+", default=None, help="SETTINGS indices")
    parser.add_argument("--verbose", action="store_true", help="print every epoch")
    args = parser.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    markdown, data = run(args.quick, seeds, args.only, int(args.verbose))
    name = "image_defaults_ova" + ("_quick" if args.quick else "")
    if args.only is not None:
        name += "_part" + "".join(map(str, args.only))
    if args.seeds is not None:
        name += "_seed" + "".join(map(str, seeds))
    print(write_results(name, markdown, data))


if __name__ == "__main__":
    main()
