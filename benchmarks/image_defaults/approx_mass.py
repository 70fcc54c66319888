"""ApproxMassFlowDetector on images: which flow and which alpha its defaults use.

Protocol of :mod:`benchmarks.image_defaults`, held-out-class split: trained
unsupervised on the 2,000 MNIST-5k training images of digits 0-4, passed as
``(n, 1, 28, 28)`` images (pixels in [0, 1]); scored on the test images of
0-4 (in) against those of 5-9 (out), 500 each.

1. **Cost per epoch** of each architecture (seconds per epoch per 1,000
   images, from skorch's epoch durations): the dense flow (the default) on
   1x28x28 and on 3x32x32 images (MNIST zero-padded to 32x32 and repeated in
   three channels), and the multi-scale convolutional flow at its default
   size (``n_blocks=2``, ``hidden_width=64``) and at a small size
   (``n_blocks=1``, ``hidden_width=16``), each at ``alpha=0`` (one backward
   pass) and ``alpha=2`` (double backpropagation).
2. **alpha at a fixed budget**: the dense flow at the detector's own
   ``max_epochs`` for images (25, what a user gets), for each alpha in
   :data:`ALPHAS`; the held-out AUROC of the approximate mass
   (``score_samples``) and of the log-likelihood of the same fit after 5 and
   10 epochs (from :class:`~skinfo.approx_mass.ApproxMassMonitor`, which
   scores the weights of the same run after that epoch) and at the end, and
   the fit time. One run of the default to 50 epochs (the default for flat
   rows) shows what the longer budget buys.
3. **The convolutional flow at about the dense flow's wall time**: the small
   multi-scale flow with ``alpha=2`` for :data:`CONV_EPOCHS` epochs, one seed.

The shared early-stopping budget (:data:`~benchmarks.image_defaults.BUDGET`)
is not used here, to keep the run within minutes: the training loss of the
dense flow is still falling at epoch 50, so early stopping with patience 5
would run up to its 100-epoch cap; the snapshot columns show where the
held-out AUROC levels off. The fits run in two worker processes (joblib),
each on one thread; the timings are wall-clock seconds of each process.

Run: ``python -m benchmarks.image_defaults.approx_mass [--quick]`` (writes
``results/image_defaults_approx_mass.md`` / ``.json``). ``--quick``: one seed,
10 epochs, the dense flow's costs only, no convolutional or 50-epoch fit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from joblib import Parallel, delayed

from skinfo import ApproxMassFlowDetector
from skinfo.approx_mass import IMAGE_EPOCHS, ApproxMassMonitor
from skinfo.metrics import ood_auroc

from .._common import markdown_table, write_results
from . import mnist_splits

#: The alphas compared at the default budget (0 = maximum likelihood; 2 = the default).
ALPHAS = (0.0, 2.0, 5.0)
#: Epochs after which the held-out AUROC is reported (besides the last).
SNAPSHOTS = (5, 10, 25)
#: The multi-scale convolutional flows of the cost table: (label, parameters).
CONV = {
    "multiscale, default size": dict(architecture="multiscale"),
    "multiscale, n_blocks=1, hidden_width=16": dict(
        architecture="multiscale", n_blocks=1, hidden_width=16
    ),
}
#: Epochs of the small convolutional flow in part 3.
CONV_EPOCHS = 2


def _as_rgb32(X: np.ndarray) -> np.ndarray:
    """``(n, 1, 28, 28)`` digits zero-padded to 32x32 and repeated in 3 channels."""
    return np.repeat(np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)


def _seconds_per_epoch(X: np.ndarray, n_images: int, **params) -> float:
    """Seconds per epoch per 1,000 images: median of 2 epochs on ``n_images`` images."""
    torch.set_num_threads(1)
    det = ApproxMassFlowDetector(max_epochs=2, random_state=0, device="cpu", **params)
    det.fit(X[:n_images])
    return float(np.median(det.history_[:, "dur"])) * 1000 / n_images


def cost_table(quick: bool) -> tuple[list, dict]:
    X = mnist_splits()["held_out"][0]
    rows, data = [], {}
    n = 500 if quick else len(X)
    cases = [
        ("dense (default)", "1x28x28", False, {}, n),
        ("dense (default)", "3x32x32", True, {}, n),
    ]
    if not quick:
        sizes = {"multiscale, default size": 64}
        cases += [(k, "1x28x28", False, v, sizes.get(k, 128)) for k, v in CONV.items()]
    jobs = [(case, alpha) for case in cases for alpha in (0.0, 2.0)]
    seconds = Parallel(n_jobs=2)(
        delayed(_seconds_per_epoch)(_as_rgb32(X) if rgb else X, n, alpha=alpha, **params)
        for (_, _, rgb, params, n), alpha in jobs
    )
    for i, (label, shape, *_) in enumerate(cases):
        cells = seconds[2 * i : 2 * i + 2]
        data[f"{label}, {shape}"] = {"alpha=0": cells[0], "alpha=2": cells[1]}
        rows.append([label, shape, *cells, f"{cells[1] / cells[0]:.1f}x"])
    return rows, data


def _fit_and_score(seed: int, epochs: int, **params) -> dict:
    """Fit on digits 0-4; held-out AUROC of the mass and of the log-likelihood."""
    torch.set_num_threads(1)
    X_train, _, X_in, X_out = mnist_splits()["held_out"]
    flat_in, flat_out = X_in.reshape(len(X_in), -1), X_out.reshape(len(X_out), -1)
    monitor = ApproxMassMonitor(X_ood=flat_out, X_in=flat_in)
    det = ApproxMassFlowDetector(
        max_epochs=epochs, random_state=seed, device="cpu", callbacks=[monitor], **params
    )
    start = time.perf_counter()
    det.fit(X_train)
    out = {"fit_s": time.perf_counter() - start, "epochs": int(det.n_iter_)}
    for epoch in SNAPSHOTS:
        if epoch < det.n_iter_:
            out[f"mass_{epoch}"] = float(det.history_[epoch - 1, "mass_auroc"])
            out[f"loglik_{epoch}"] = float(det.history_[epoch - 1, "loglik_auroc"])
    out["mass"] = ood_auroc(-det.approximate_mass(X_in), -det.approximate_mass(X_out))
    out["loglik"] = ood_auroc(det.log_likelihood(X_in), det.log_likelihood(X_out))
    return out


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "–"


def run(quick: bool) -> tuple[str, dict]:
    torch.set_num_threads(1)
    seeds = [0] if quick else [0, 1]
    epochs = 10 if quick else IMAGE_EPOCHS
    snapshots = [e for e in SNAPSHOTS if e < (epochs if quick else 50)]
    cost_rows, costs = cost_table(quick)
    parts = [
        "**Cost** (seconds per epoch per 1,000 training images; batch 128, "
        "`torch.set_num_threads(1)`):\n\n"
        + markdown_table(["flow", "images", "alpha=0", "alpha=2", "ratio"], cost_rows)
    ]
    header = ["flow", "alpha", "epochs"]
    for e in snapshots:
        header += [f"mass, {e} ep.", f"log-lik, {e} ep."]
    header += ["mass", "log-lik", "fit s"]
    rows, records = [], []

    small = CONV["multiscale, n_blocks=1, hidden_width=16"]
    jobs = [(("dense", alpha, epochs), s, {"alpha": alpha}) for alpha in ALPHAS for s in seeds]
    if not quick:  # the long fits first, so that the two workers finish together
        jobs.insert(0, (("multiscale, n_blocks=1, hidden_width=16", 2.0, CONV_EPOCHS), 0, small))
        jobs.insert(0, (("dense", 2.0, 50), 0, {"alpha": 2.0}))
    results = Parallel(n_jobs=2)(
        delayed(_fit_and_score)(s, key[2], **{"alpha": key[1], **params}) for key, s, params in jobs
    )
    grouped: dict = {}
    for (key, _, _), result in sorted(zip(jobs, results), key=lambda job: job[0][0][2]):
        grouped.setdefault(key, []).append(result)  # by budget, then alpha, then seed

    def add(label: str, alpha: float, budget: str, results: list[dict]) -> None:
        cells = [label, f"{alpha:g}", budget]
        for e in snapshots:
            cells += [_cell([r[f"mass_{e}"] for r in results if f"mass_{e}" in r])]
            cells += [_cell([r[f"loglik_{e}"] for r in results if f"loglik_{e}" in r])]
        cells += [_cell([r["mass"] for r in results]), _cell([r["loglik"] for r in results])]
        cells += [f"{np.mean([r['fit_s'] for r in results]):.0f}"]
        rows.append(cells)
        records.append({"flow": label, "alpha": alpha, "budget": budget, "per_seed": results})
        print(" | ".join(cells), flush=True)

    for (label, alpha, budget), per_seed in grouped.items():
        add(label, alpha, str(budget), per_seed)
    parts.append(
        f"**Held-out-class AUROC** (train 0-4, in = test 0-4, out = test 5-9), mean ± std "
        f"over seeds {seeds} (the 50-epoch and multi-scale rows: seed 0); 'mass' and "
        "'log-lik' are the scores of the final model:\n\n" + markdown_table(header, rows)
    )
    data = {"quick": quick, "seeds": seeds, "costs_s_per_epoch_per_1000": costs, "rows": records}
    return "\n\n".join(parts), data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 10 epochs")
    args = parser.parse_args(argv)
    markdown, data = run(args.quick)
    name = "image_defaults_approx_mass" + ("_quick" if args.quick else "")
    print(write_results(name, markdown, data))


if __name__ == "__main__":
    main()
