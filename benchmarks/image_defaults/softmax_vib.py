"""SoftmaxClassifier and VIBClassifier on images: learning rate and VIB's beta.

Shared protocol of :mod:`benchmarks.image_defaults` (MNIST-5k as ``(n, 1, 28, 28)``
images, the default small CNN, :data:`~benchmarks.image_defaults.BUDGET`:
early stopping on a 10 % validation split, patience 5, at most 100 epochs).
For each setting and seed: accuracy, NLL and ECE (15 bins) of ``predict_proba``
on the 1,000 test images, the epochs early stopping ran (the best epoch is
5 fewer) and the fit time of the 4,000-image fit; for the settings marked
"held-out", a second fit on digits 0-4 and the AUROC of test images of 0-4
against those of 5-9 for each OOD score of the estimator (SoftmaxClassifier:
``max_proba``; VIBClassifier: ``neg_marginal_rate``, its default, ``max_proba``
and ``neg_rate``).

VIBClassifier uses its default ``regularizer='kl'``, ``latent_dim=32`` and
``n_samples=12``; the settings vary ``beta`` around its default 1e-3 and the
learning rate of both estimators (default 1e-3, and 3e-3).

Run: ``python -m benchmarks.image_defaults.softmax_vib [--quick]`` (writes
``results/image_defaults_softmax_vib.md`` / ``.json``). Fits run in two
worker processes with one torch thread each. ``--quick``: one seed, the two
defaults, at most 3 epochs, no held-out-class fit.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import numpy as np
import torch

from skinfo import SoftmaxClassifier, VIBClassifier
from skinfo.metrics import ood_auroc

from .._common import RESULTS, markdown_table, write_results
from . import BUDGET, evaluate, mnist_splits

#: (estimator, lr, beta, held-out fit): the settings run under ``BUDGET``.
SETTINGS: list[tuple[str, float, float | None, bool]] = [
    ("vib", 1e-3, 1e-3, True),
    ("softmax", 1e-3, None, True),
    ("vib", 1e-3, 1e-2, True),
    ("vib", 1e-3, 1e-4, True),
    ("softmax", 3e-3, None, False),
    ("vib", 3e-3, 1e-3, False),
]

#: The OOD scores reported for each estimator.
SCORES = {"softmax": ("max_proba",), "vib": ("neg_marginal_rate", "max_proba", "neg_rate")}

SEEDS = (0, 1)


def _make(name: str, lr: float, beta: float | None, seed: int, budget: dict):
    common = dict(lr=lr, random_state=seed, device="cpu", **budget)
    if name == "softmax":
        return SoftmaxClassifier(**common)
    return VIBClassifier(beta=beta, **common)


def _run(name: str, lr: float, beta: float | None, held_out: bool, seed: int, budget: dict):
    torch.set_num_threads(1)
    # a fit stopped by an interrupt keeps its last epoch, not the rule's: fail the job
    warnings.filterwarnings("error", message="Training was interrupted")
    row = evaluate(lambda: _make(name, lr, beta, seed, budget), ood=False)
    if held_out:
        X_k, y_k, X_in, X_out = mnist_splits()["held_out"]
        det = _make(name, lr, beta, seed, budget).fit(X_k, y_k)
        for score in SCORES[name]:
            det.set_params(ood_score=score)
            row[f"auroc_{score}"] = ood_auroc(det.score_samples(X_in), det.score_samples(X_out))
    return row


def _table(settings, seeds, budget, done: dict) -> tuple[str, dict]:
    keys = ["accuracy", "nll", "ece", "epochs", "fit_s"]
    keys += [f"auroc_{s}" for s in ("max_proba", "neg_marginal_rate", "neg_rate")]
    header = [
        "estimator", "lr", "beta", "seeds", "accuracy", "NLL", "ECE", "epochs", "fit s",
        "AUROC max_proba", "AUROC neg_marginal_rate", "AUROC neg_rate",
    ]  # fmt: skip
    rows, records = [], []
    for setting in settings:
        per_seed = {
            seed: done[_key(setting, seed)] for seed in seeds if _key(setting, seed) in done
        }
        cells = []
        for key in keys:
            values = [r[key] for r in per_seed.values() if key in r]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "-")
        name, lr, beta, _ = setting
        beta_cell = "-" if beta is None else f"{beta:g}"
        rows.append([name, f"{lr:g}", beta_cell, ",".join(map(str, per_seed)), *cells])
        records.append({"setting": list(setting), "per_seed": per_seed})
    intro = (
        "SoftmaxClassifier and VIBClassifier (`regularizer='kl'`) on MNIST-5k images, "
        f"default small CNN, mean ± std over the seeds listed; budget {budget}. "
        "Held-out-class AUROC: trained on digits 0-4, test images of 0-4 against 5-9 "
        "('-': not measured for this setting).\n\n"
    )
    data = {"seeds": list(seeds), "budget": budget, "rows": records}
    return intro + markdown_table(header, rows), data


def _key(setting, seed) -> str:
    return f"{setting[0]} lr={setting[1]:g} beta={setting[2]} seed={seed}"


def run(quick: bool, resume: bool) -> None:
    """Run every (setting, seed) job, seed by seed; rewrite the results after each job.

    With ``resume``, jobs already in the results file (same budget) are not run again.
    """
    seeds = SEEDS[:1] if quick else SEEDS
    settings = SETTINGS
    if quick:
        settings = [s[:3] + (False,) for s in SETTINGS if s[1] == 1e-3 and s[2] in (None, 1e-3)]
    budget = {**BUDGET, "max_epochs": 3} if quick else BUDGET
    name = "image_defaults_softmax_vib" + ("_quick" if quick else "")
    done: dict = {}
    path = RESULTS / f"{name}.json"
    if resume and path.exists():
        previous = json.loads(path.read_text())
        if previous.get("budget") == budget:
            for record in previous["rows"]:
                for seed, row in record["per_seed"].items():
                    done[_key(tuple(record["setting"]), int(seed))] = row
    mnist_splits()  # load once before the workers start
    # the held-out settings first, seed by seed; then the others
    jobs = [(s, seed) for held in (True, False) for seed in seeds for s in settings if s[3] == held]
    jobs = [job for job in jobs if _key(*job) not in done]
    with ProcessPoolExecutor(min(2, os.cpu_count() or 1), get_context("spawn")) as pool:
        futures = {pool.submit(_run, *s, seed, budget): (s, seed) for s, seed in jobs}
        for future in as_completed(futures):
            setting, seed = futures[future]
            if future.exception() is not None:
                print(f"{_key(setting, seed)} failed ({future.exception()!r}); rerun with --resume")
                continue
            done[_key(setting, seed)] = future.result()
            print(_key(setting, seed), done[_key(setting, seed)], flush=True)
            markdown, data = _table(settings, seeds, budget, done)
            write_results(name, markdown, data)
    if done:
        print(_table(settings, seeds, budget, done)[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, the defaults, 3 epochs")
    parser.add_argument("--resume", action="store_true", help="skip jobs already in the results")
    args = parser.parse_args(argv)
    run(args.quick, args.resume)


if __name__ == "__main__":
    main()
