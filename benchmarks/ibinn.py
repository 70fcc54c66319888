"""IB-INN on digits: the beta trade-off, calibration, OOD detection, samples and speed.

Run ``python -m benchmarks.ibinn [--seeds 0 1 2] [--quick]``. Writes
``results/ibinn.md``, ``results/ibinn.json`` and ``results/ibinn_samples.png``.

The tables follow the layout of Table 1 of Ardizzone et al. (2020): error,
bits/dim, the appendix-C calibration errors (geometric mean, ECE, MCE, ICE),
the increase of the predictive entropy on OOD data and the OOD detection
AUROC of ``score_samples`` (typicality test for the flows), per OOD variant of
:func:`skinfo.datasets.make_digits_ood` and averaged.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from skinfo import IBINNClassifier, SoftmaxClassifier
from skinfo.datasets import load_digits_split, make_digits_ood
from skinfo.metrics import (
    entropy_increase,
    expected_calibration_error,
    ibinn_calibration_errors,
    ood_auroc,
)

from ._common import interleaved_medians, machine, markdown_table, write_results

BETAS = (0.0, 0.1, 1.0, 10.0, np.inf)
OOD_KINDS = ("rotate90", "flip", "invert", "gaussian_noise", "uniform_noise")
#: Softmax MLP with about the parameters of the default 4-block INN (51.5k vs 51.3k)
SOFTMAX_HIDDEN = (192, 192)
DIGITS_LEVELS = 16  # pixels / 16: bits/dim on the 0..16 scale add log2(16)


def evaluate(clf, X_te, y_te, ood, is_flow):
    """One row of the table for a fitted classifier (fractions; bits/dim in bits)."""
    proba = clf.predict_proba(X_te)
    y_idx = np.searchsorted(clf.classes_, y_te)
    row = {
        "error": float(np.mean(proba.argmax(1) != y_idx)),
        "bpd": clf.bits_per_dim(X_te) + math.log2(DIGITS_LEVELS) if is_flow else float("nan"),
        "ece15": expected_calibration_error(y_idx, proba),
    }
    appendix_c = ibinn_calibration_errors(y_idx, proba, labels=np.arange(proba.shape[1]))
    row.update({f"{k}_c": v for k, v in appendix_c.items()})
    s_in = clf.score_samples(X_te)
    for kind, X_ood in ood.items():
        row[f"auroc_{kind}"] = ood_auroc(s_in, clf.score_samples(X_ood))
        row[f"dH_{kind}"] = entropy_increase(proba, clf.predict_proba(X_ood))
    row["auroc_avg"] = float(np.mean([row[f"auroc_{k}"] for k in ood]))
    row["dH_avg"] = float(np.mean([row[f"dH_{k}"] for k in ood]))
    return row


def models(epochs: int, seed: int) -> dict[str, object]:
    """The compared models: every IB-INN uses the estimator's defaults but beta / loss."""
    common = dict(max_epochs=epochs, random_state=seed, device="cpu")
    out: dict[str, object] = {}
    for beta in BETAS:
        label = "only L_X (beta=0)" if beta == 0 else f"beta={beta:g}"
        out[f"IB-INN {label}"] = IBINNClassifier(beta=beta, **common)
    out["IB-INN beta=1, no label smoothing"] = IBINNClassifier(
        beta=1.0, label_smoothing=0.0, **common
    )
    out["class-NLL (standard GC)"] = IBINNClassifier(loss="class_nll", **common)
    out["SoftmaxCE"] = SoftmaxClassifier(hidden_layer_sizes=SOFTMAX_HIDDEN, **common)
    # the paper smooths its baselines' labels as IB-INN does (IBINNClassifier's default 0.05)
    out["SoftmaxCE, label smoothing 0.05"] = SoftmaxClassifier(
        hidden_layer_sizes=SOFTMAX_HIDDEN, label_smoothing=0.05, **common
    )
    return out


def save_samples(fitted: dict[str, IBINNClassifier], path, n_per_class: int = 3) -> None:
    """A PNG grid: one block of rows per model, one column per digit class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(range(10))
    rows = n_per_class * len(fitted)
    fig, axes = plt.subplots(rows, len(classes), figsize=(len(classes), rows + 0.6))
    for m, (name, clf) in enumerate(fitted.items()):
        for j, c in enumerate(classes):
            X, _ = clf.sample(n_per_class, y=c, random_state=j)
            for i in range(n_per_class):
                ax = axes[m * n_per_class + i, j]
                ax.imshow(np.clip(X[i].reshape(8, 8), 0, 1), cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            if m == 0:
                axes[0, j].set_title(str(c))
        axes[m * n_per_class, 0].set_ylabel(name.replace("IB-INN ", ""), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def speed(X, y, epochs: int, repeats: int) -> dict[str, float]:
    """Training time per sample per epoch: IB loss vs ML flow (beta=0) vs SoftmaxCE."""
    common = dict(max_epochs=epochs, random_state=0, device="cpu")
    fns = {
        "IB-INN beta=1": lambda: IBINNClassifier(beta=1.0, **common).fit(X, y),
        "ML flow beta=0 (same INN)": lambda: IBINNClassifier(beta=0.0, **common).fit(X, y),
        "class-NLL (same INN)": lambda: IBINNClassifier(loss="class_nll", **common).fit(X, y),
        "SoftmaxCE": lambda: SoftmaxClassifier(hidden_layer_sizes=SOFTMAX_HIDDEN, **common).fit(
            X, y
        ),
    }
    med = interleaved_medians(fns, repeats)
    return {k: v / (epochs * len(X)) for k, v in med.items()}


def step_speed(X, y, n_steps: int, repeats: int, batch_size: int = 128) -> dict[str, float]:
    """Time per sample of one training step (forward, loss, backward, clipping, update).

    Each model is fitted for one epoch, then ``net_.train_step`` runs on the
    same batch ``n_steps`` times per repeat, the models interleaved.
    """
    makers = {
        "IB-INN beta=1": lambda: IBINNClassifier(beta=1.0, max_epochs=1, random_state=0),
        "ML flow beta=0 (same INN)": lambda: IBINNClassifier(
            beta=0.0, max_epochs=1, random_state=0
        ),
        "SoftmaxCE": lambda: SoftmaxClassifier(
            hidden_layer_sizes=SOFTMAX_HIDDEN, max_epochs=1, random_state=0
        ),
    }
    Xb = torch.as_tensor(X[:batch_size], dtype=torch.float32)
    fns = {}
    for name, make in makers.items():
        clf = make().fit(X, y)
        yb = torch.as_tensor(np.searchsorted(clf.classes_, y[:batch_size]))
        fns[name] = lambda net=clf.net_, yb=yb: [net.train_step((Xb, yb)) for _ in range(n_steps)]
    med = interleaved_medians(fns, repeats)
    return {k: v / (n_steps * batch_size) for k, v in med.items()}


def n_params(clf) -> int:
    return sum(p.numel() for p in clf.net_.module_.parameters() if p.requires_grad)


def _fmt(key: str, mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    if key == "bpd" or key.startswith("dH"):
        return f"{mean:.2f} ± {std:.2f}"
    return f"{mean:.1f} ± {std:.1f}"


def tables(results: dict[str, list[dict]], params: dict[str, int]) -> tuple[str, dict]:
    """Markdown tables in the layout of the paper's Table 1 and the summary dict."""
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for name, runs in results.items():
        summary[name] = {}
        for key in runs[0]:
            vals = np.array([r[key] for r in runs], dtype=float)
            scale = 1.0 if key == "bpd" or key.startswith("dH") else 100.0
            summary[name][key] = (float(scale * vals.mean()), float(scale * vals.std()))

    def table(columns: list[tuple[str, str]]) -> str:
        rows = [
            [name, params[name]] + [_fmt(k, *summary[name][k]) for k, _ in columns]
            for name in results
        ]
        return markdown_table(["model", "params"] + [h for _, h in columns], rows)

    main = table(
        [
            ("error", "error % ↓"),
            ("bpd", "bits/dim ↓"),
            ("geometric_mean_c", "calib. geo. mean % ↓"),
            ("ece_c", "ECE % ↓"),
            ("mce_c", "MCE % ↓"),
            ("ice_c", "ICE % ↓"),
            ("ece15", "ECE-15 (top label) % ↓"),
            ("dH_avg", "OoD entropy incr. avg ↑"),
            ("auroc_avg", "OoD AUROC avg % ↑"),
        ]
    )
    entropy = table([(f"dH_{k}", f"{k} ↑") for k in OOD_KINDS])
    auroc = table([(f"auroc_{k}", f"{k} ↑") for k in OOD_KINDS])
    md = (
        f"{main}\n\nIncrease of the predictive entropy on OOD data (nats)\n\n{entropy}\n\n"
        f"OOD detection AUROC % of score_samples\n\n{auroc}"
    )
    return md, summary


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    epochs = 5 if args.quick else 20
    seeds = args.seeds[:1] if args.quick else args.seeds
    X_tr, X_te, y_tr, y_te = load_digits_split(random_state=0)
    ood = {k: make_digits_ood(X_te, k, random_state=0) for k in OOD_KINDS}
    results: dict[str, list[dict]] = {}
    params: dict[str, int] = {}
    to_sample: dict[str, IBINNClassifier] = {}
    for seed in seeds:
        for name, clf in models(epochs, seed).items():
            clf.fit(X_tr, y_tr)
            params[name] = n_params(clf)
            is_flow = isinstance(clf, IBINNClassifier)
            results.setdefault(name, []).append(evaluate(clf, X_te, y_te, ood, is_flow))
            if seed == seeds[0] and name in ("IB-INN beta=0.1", "IB-INN beta=1", "IB-INN beta=10"):
                to_sample[name] = clf
    save_samples(to_sample, _samples_path())
    md_tables, summary = tables(results, params)
    sp = speed(X_tr, y_tr, 2 if args.quick else 5, 1 if args.quick else 5)
    st = step_speed(X_tr, y_tr, 10 if args.quick else 50, 3 if args.quick else 7)
    ib, ib_step = sp["IB-INN beta=1"], st["IB-INN beta=1"]
    speed_table = markdown_table(
        ["model", "fit: µs / sample / epoch", "IB-INN fit time / this"],
        [[k, 1e6 * v, ib / v] for k, v in sp.items()],
    )
    step_table = markdown_table(
        ["model", "train step: µs / sample", "IB-INN step time / this"],
        [[k, 1e6 * v, ib_step / v] for k, v in st.items()],
    )
    ml = "ML flow beta=0 (same INN)"
    md = (
        f"IB-INN on digits ({len(seeds)} seeds, {epochs} epochs, {machine()})\n\n{md_tables}\n\n"
        f"Training speed (medians of interleaved runs)\n\n{speed_table}\n\n{step_table}\n\n"
        f"IB / ML overhead: fit {ib / sp[ml]:.2f}x, step {ib_step / st[ml]:.2f}x; "
        f"IB / SoftmaxCE: fit {ib / sp['SoftmaxCE']:.2f}x, step {ib_step / st['SoftmaxCE']:.2f}x\n"
    )
    print(md)
    write_results(
        "ibinn",
        md,
        {
            "summary": summary,
            "runs": results,
            "speed_fit_s_per_sample_epoch": sp,
            "speed_step_s_per_sample": st,
            "params": params,
        },
    )


def _samples_path():
    from ._common import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / "ibinn_samples.png"


if __name__ == "__main__":
    main()
