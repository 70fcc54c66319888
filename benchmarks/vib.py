"""VIB on digits: accuracy, calibration, OOD detection, information plane and speed.

Run ``python -m benchmarks.vib [--seeds 3] [--quick]``. Writes ``results/vib.md``,
``results/vib.json`` and ``results/vib_information_plane.png``.

Compared, with the same encoder (MLP 400-200), epochs and optimizer:
``VIBClassifier`` with each regularizer (``'kl'`` scored by minus the rate, its
default ``ood_score``; the surrogates by their default, the maximum probability)
and ``SoftmaxClassifier`` (maximum softmax probability).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from skinfo import SoftmaxClassifier, VIBClassifier
from skinfo.datasets import OOD_KINDS, load_digits_held_out, load_digits_split, make_digits_ood
from skinfo.metrics import expected_calibration_error, negative_log_likelihood, ood_auroc

from ._common import RESULTS, interleaved_medians, machine, markdown_table, write_results

BETA = 1e-3
REGULARIZERS = ("kl", "l2", "logvar", "cond_logvar")
PLANE_BETAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
LR = 1e-3


def models(epochs: int, seed: int) -> dict:
    common = dict(max_epochs=epochs, lr=LR, random_state=seed, device="cpu")
    out = {
        f"VIB {reg} (beta={BETA:g})": VIBClassifier(
            beta=BETA, regularizer=reg, track_information=False, **common
        )
        for reg in REGULARIZERS
    }
    out["Softmax"] = SoftmaxClassifier(**common)
    return out


def score_name(name: str) -> str:
    return "-rate" if " kl " in name else "max prob"


def evaluate(clf, X_te, y_te, ood: dict, seed: int) -> dict:
    proba = clf.predict_proba(X_te)
    y_idx = np.searchsorted(clf.classes_, y_te)
    labels = np.arange(proba.shape[1])
    row = {
        "accuracy": float(np.mean(proba.argmax(1) == y_idx)),
        "nll": negative_log_likelihood(y_idx, proba, labels=labels),
        "ece15": expected_calibration_error(y_idx, proba, n_bins=15, labels=labels),
    }
    s_in = clf.score_samples(X_te)
    for kind, X_ood in ood.items():
        row[f"auroc_{kind}"] = ood_auroc(
            s_in, clf.score_samples(X_ood), balance=True, random_state=seed
        )
    return row


def held_out_auroc(clf, X_in, X_ood, seed: int) -> float:
    return ood_auroc(
        clf.score_samples(X_in), clf.score_samples(X_ood), balance=True, random_state=seed
    )


def information_plane_png(X, y, epochs: int, path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfo.plotting import information_plane

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    traj = {}
    for beta in PLANE_BETAS:
        clf = VIBClassifier(beta=beta, max_epochs=epochs, lr=LR, random_state=0, device="cpu")
        clf.fit(X, y)
        information_plane(
            clf.history_, x_key="info_izx", y_key="info_hyz", ax=ax, label=f"beta={beta:g}"
        )
        traj[f"{beta:g}"] = {
            "info_izx": [float(r["info_izx"]) for r in clf.history_],
            "info_hyz": [float(r["info_hyz"]) for r in clf.history_],
        }
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("I(X;Z) upper bound: rate (nats)")
    ax.set_ylabel("H(Y|Z) upper bound: decoder cross-entropy (nats)")
    ax.set_title(f"VIB 'kl' on digits, {epochs} epochs (training-batch estimates)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return traj


def speed(X, y, epochs: int, repeats: int) -> dict[str, float]:
    """Seconds per epoch (whole fit / epochs), interleaved medians."""
    common = dict(max_epochs=epochs, lr=LR, random_state=0, device="cpu")
    fns = {
        "Softmax": lambda: SoftmaxClassifier(**common).fit(X, y),
        "VIB kl, track_information=False": lambda: VIBClassifier(
            track_information=False, **common
        ).fit(X, y),
        "VIB kl, track_information=True": lambda: VIBClassifier(
            track_information=True, **common
        ).fit(X, y),
    }
    fns["Softmax"]()  # warm-up
    return {k: v / epochs for k, v in interleaved_medians(fns, repeats).items()}


def mean_std(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..n-1)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    # one thread: on a shared 2-core machine, 2 threads oversubscribe and times jump 10x
    torch.set_num_threads(1)
    epochs = 5 if args.quick else 20
    seeds = list(range(1 if args.quick else args.seeds))
    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    ood = {k: make_digits_ood(X_te, k, random_state=0) for k in OOD_KINDS}
    Xh_tr, yh_tr, Xh_in, _, Xh_ood = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)

    runs: dict[str, list[dict]] = {}
    for seed in seeds:
        for name, clf in models(epochs, seed).items():
            row = evaluate(clf.fit(X_tr, y_tr), X_te, y_te, ood, seed)
            row["auroc_held_out"] = held_out_auroc(
                models(epochs, seed)[name].fit(Xh_tr, yh_tr), Xh_in, Xh_ood, seed
            )
            runs.setdefault(name, []).append(row)

    keys = ["accuracy", "nll", "ece15"]
    auroc_keys = [f"auroc_{k}" for k in OOD_KINDS] + ["auroc_held_out"]
    quality = markdown_table(
        ["model", "accuracy", "NLL (nats)", "ECE-15"],
        [[n] + [mean_std([r[k] for r in rs]) for k in keys] for n, rs in runs.items()],
    )
    ood_table = markdown_table(
        ["model", "OOD score"] + [k.removeprefix("auroc_") for k in auroc_keys],
        [
            [n, score_name(n)] + [mean_std([r[k] for r in rs]) for k in auroc_keys]
            for n, rs in runs.items()
        ],
    )
    summary = {
        n: {
            k: [float(np.mean([r[k] for r in rs])), float(np.std([r[k] for r in rs]))]
            for k in keys + auroc_keys
        }
        for n, rs in runs.items()
    }

    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / "vib_information_plane.png"
    traj = information_plane_png(X_tr, y_tr, epochs if args.quick else 30, png)

    sp_epochs, repeats = (2, 2) if args.quick else (5, 5)
    sp = {"1 thread": speed(X_tr, y_tr, sp_epochs, repeats)}
    if threads != 1:
        torch.set_num_threads(threads)
        sp[f"{threads} threads"] = speed(X_tr, y_tr, sp_epochs, repeats)
    speed_rows = []
    for setting, times in sp.items():
        for k, v in times.items():
            speed_rows.append([setting, k, 1e3 * v, v / times["Softmax"]])
    speed_table = markdown_table(["threads", "model", "ms / epoch", "/ Softmax"], speed_rows)

    elapsed = time.perf_counter() - start
    setup = (
        f"digits scaled to [0, 1] (1347 train / 450 test), {len(seeds)} seeds "
        f"(mean ± std), {epochs} epochs, MLP (400, 200) ELU encoder, latent_dim=32, "
        f"Adam lr={LR:g}, batch 128, beta={BETA:g}, n_samples=12 at prediction; "
        "AUROC balanced (in/out subsampled to equal size); held-out: trained on 0-4, "
        f"OOD = test digits 5-9; torch.set_num_threads(1) except where noted; {machine()}"
    )
    md = (
        f"VIB on digits ({setup})\n\n{quality}\n\nOOD AUROC\n\n{ood_table}\n\n"
        f"Training speed (digits, {sp_epochs} epochs per fit, medians of {repeats} "
        f"interleaved repeats)\n\n{speed_table}\n\nInformation plane: {png}\n\n"
        f"Run time: {elapsed:.0f} s\n"
    )
    print(md)
    write_results(
        "vib",
        md,
        {
            "setup": setup,
            "summary": summary,
            "runs": runs,
            "speed_s_per_epoch": sp,
            "information_plane": traj,
            "run_time_s": elapsed,
        },
    )


if __name__ == "__main__":
    main()
