"""IB-INN on digits: the beta trade-off, calibration, OOD detection, samples and speed.

Run ``python -m benchmarks.ibinn [--seeds 0 1 2] [--quick]``. Writes
``results/ibinn.md``, ``results/ibinn.json`` and ``results/ibinn_samples.png``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from skinfo import IBINNClassifier, SoftmaxClassifier
from skinfo.datasets import load_digits_split, make_digits_ood
from skinfo.metrics import expected_calibration_error, ibinn_calibration_errors, ood_auroc

from ._common import interleaved_medians, machine, markdown_table, write_results

BETAS = (0.1, 1.0, 10.0, np.inf)
OOD_KINDS = ("rotate90", "flip", "invert", "gaussian_noise", "uniform_noise")
SOFTMAX_HIDDEN = (256, 256)  # ~85k parameters vs ~100k of the 8-block INN


def evaluate(clf, X_te, y_te, ood, is_flow):
    proba = clf.predict_proba(X_te)
    y_idx = np.searchsorted(clf.classes_, y_te)
    row = {
        "error": float(np.mean(proba.argmax(1) != y_idx)),
        "bpd": clf.bits_per_dim(X_te) + math.log2(16) if is_flow else float("nan"),
        "ece15": expected_calibration_error(y_idx, proba),
    }
    appendix_c = ibinn_calibration_errors(y_idx, proba, labels=np.arange(proba.shape[1]))
    row["ece_c"], row["mce_c"] = appendix_c["ece"], appendix_c["mce"]
    s_in = clf.score_samples(X_te)
    for kind, X_ood in ood.items():
        row[f"auroc_{kind}"] = ood_auroc(s_in, clf.score_samples(X_ood))
    return row


def models(epochs, seed):
    common = dict(max_epochs=epochs, lr=3e-3, random_state=seed, device="cpu")
    out = {"class-NLL": IBINNClassifier(loss="class_nll", **common)}
    for beta in BETAS:
        out[f"IB-INN beta={beta:g}"] = IBINNClassifier(beta=beta, **common)
    out["SoftmaxCE"] = SoftmaxClassifier(hidden_layer_sizes=SOFTMAX_HIDDEN, **common)
    return out


def save_samples(clf, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes, n = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 6
    fig, axes = plt.subplots(n, len(classes), figsize=(len(classes), n))
    for j, c in enumerate(classes):
        X, _ = clf.sample(n, y=c, random_state=j)
        for i in range(n):
            axes[i, j].imshow(np.clip(X[i].reshape(8, 8), 0, 1), cmap="gray_r", vmin=0, vmax=1)
            axes[i, j].axis("off")
        axes[0, j].set_title(str(c))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def speed(X, y, epochs, repeats):
    """Fit time per sample per epoch: IB loss vs ML flow (beta=0) vs SoftmaxCE."""
    common = dict(max_epochs=epochs, random_state=0, device="cpu")
    fns = {
        "IB-INN beta=1": lambda: IBINNClassifier(beta=1.0, **common).fit(X, y),
        "ML flow beta=0": lambda: IBINNClassifier(beta=0.0, **common).fit(X, y),
        "SoftmaxCE": lambda: SoftmaxClassifier(hidden_layer_sizes=SOFTMAX_HIDDEN, **common).fit(
            X, y
        ),
    }
    med = interleaved_medians(fns, repeats)
    return {k: v / (epochs * len(X)) for k, v in med.items()}


def n_params(clf):
    return sum(p.numel() for p in clf.net_.module_.parameters() if p.requires_grad)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    epochs = 5 if args.quick else 15
    seeds = args.seeds[:1] if args.quick else args.seeds
    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    ood = {k: make_digits_ood(X_te, k, random_state=0) for k in OOD_KINDS}
    results: dict[str, list[dict]] = {}
    params = {}
    for seed in seeds:
        for name, clf in models(epochs, seed).items():
            clf.fit(X_tr, y_tr)
            params[name] = n_params(clf)
            results.setdefault(name, []).append(
                evaluate(clf, X_te, y_te, ood, "INN" in name or "NLL" in name)
            )
            if seed == seeds[0] and name == "IB-INN beta=1":
                save_samples(clf, _samples_path())
    keys = ["error", "bpd", "ece15", "ece_c", "mce_c"] + [f"auroc_{k}" for k in OOD_KINDS]
    header = [
        "model",
        "params",
        "error %",
        "bits/dim",
        "ECE-15 %",
        "ECE (app. C) %",
        "MCE (app. C) %",
    ] + [f"AUROC {k} %" for k in OOD_KINDS]
    rows, summary = [], {}
    for name, runs in results.items():
        cells = [name, params[name]]
        summary[name] = {}
        for key in keys:
            vals = np.array([r[key] for r in runs])
            scale = 1.0 if key == "bpd" else 100.0
            mean, std = scale * vals.mean(), scale * vals.std()
            summary[name][key] = (float(mean), float(std))
            cells.append(f"{mean:.2f} ± {std:.2f}" if key == "bpd" else f"{mean:.1f} ± {std:.1f}")
        rows.append(cells)
    table = markdown_table(header, rows)
    sp = speed(X_tr, y_tr, 2 if args.quick else 5, 1 if args.quick else 3)
    ratio_ml = sp["IB-INN beta=1"] / sp["ML flow beta=0"]
    ratio_sm = sp["IB-INN beta=1"] / sp["SoftmaxCE"]
    speed_table = markdown_table(
        ["model", "µs / sample / epoch", "IB-INN time / this"],
        [[k, 1e6 * v, sp["IB-INN beta=1"] / v] for k, v in sp.items()],
    )
    md = (
        f"IB-INN on digits ({len(seeds)} seeds, {epochs} epochs, {machine()})\n\n{table}\n\n"
        f"Training speed\n\n{speed_table}\n\nIB / ML overhead: {ratio_ml:.2f}x; "
        f"IB / SoftmaxCE: {ratio_sm:.2f}x\n"
    )
    print(md)
    write_results(
        "ibinn",
        md,
        {"summary": summary, "runs": results, "speed_s_per_sample": sp, "params": params},
    )


def _samples_path():
    from ._common import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / "ibinn_samples.png"


if __name__ == "__main__":
    main()
