"""VIB on digits: accuracy, calibration, OOD detection, information plane and speed.

Run ``python -m benchmarks.vib [--seeds 3] [--quick] [--parts quality,speed,...]``.
A full run (all parts, not ``--quick``) writes ``results/vib.md`` and
``results/vib.json``; the information plane goes to
``results/vib_information_plane.png``.

Compared, with the same encoder (MLP 400-200), epochs and optimizer:
``VIBClassifier`` with each regularizer and ``SoftmaxClassifier``. OOD scores:
for VIB minus the rate to the fitted marginal (the default ``ood_score``),
minus the rate to the N(0, I) prior (``'kl'`` only) and the maximum
probability; for softmax the maximum probability.

Speed: epoch time = (fit of ``E + 1`` epochs - fit of 1 epoch) / ``E``, so the
fixed per-fit costs (building the net, VIB's post-fit pass that fits the
marginal) cancel; both process CPU time (robust to other processes on a shared
machine) and wall time, medians of interleaved repeats. The whole-fit ratio,
which includes the post-fit pass, is reported beside it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from skinfo import SoftmaxClassifier, VIBClassifier
from skinfo.datasets import OOD_KINDS, load_digits_held_out, load_digits_split, make_digits_ood
from skinfo.metrics import expected_calibration_error, negative_log_likelihood, ood_auroc

from ._common import RESULTS, machine, markdown_table, write_results

BETA = 1e-3
REGULARIZERS = ("kl", "l2", "logvar", "cond_logvar")
PLANE_BETAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
LR = 1e-3
ALL_PARTS = "quality,decomposition,mnist,plane,speed"


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


def ood_scores(name: str) -> tuple[str, ...]:
    """The ``ood_score`` values compared for a model of :func:`models`."""
    if name == "Softmax":
        return ("max_proba",)
    if " kl " in name:
        return ("neg_marginal_rate", "neg_rate", "max_proba")
    return ("neg_marginal_rate", "max_proba")


def evaluate(clf, X_te, y_te, ood: dict, seed: int, name: str) -> dict:
    """Accuracy, NLL, ECE-15 and, per OOD score and OOD set, the balanced AUROC."""
    proba = clf.predict_proba(X_te)
    y_idx = np.searchsorted(clf.classes_, y_te)
    labels = np.arange(proba.shape[1])
    row = {
        "accuracy": float(np.mean(proba.argmax(1) == y_idx)),
        "nll": negative_log_likelihood(y_idx, proba, labels=labels),
        "ece15": expected_calibration_error(y_idx, proba, n_bins=15, labels=labels),
    }
    row.update(ood_aurocs(clf, X_te, ood, seed, name))
    return row


def ood_aurocs(clf, X_in, ood: dict, seed: int, name: str) -> dict:
    """``{"auroc_<set>[<score>]": AUROC}`` for every OOD score of the model and OOD set."""
    out = {}
    for score in ood_scores(name):
        clf.set_params(ood_score=score)
        s_in = clf.score_samples(X_in)
        for kind, X_ood in ood.items():
            out[f"auroc_{kind}[{score}]"] = ood_auroc(
                s_in, clf.score_samples(X_ood), balance=True, random_state=seed
            )
    return out


def rate_decomposition(betas=(1e-3, 1e-2, 1e-1), epochs: int = 15) -> tuple[str, dict]:
    """Why minus the N(0, I) rate fails as an OOD score: split the rate into its two terms.

    ``KL(N(mu, sigma^2) || N(0, I)) = 0.5 ||mu||^2 + sum_i (0.5 sigma_i^2 - log sigma_i - 0.5)``.
    Trained on digits 0-4 (the quality benchmark's near-OOD split); for each set: the mean
    of each term, and the AUROC of minus each term and of the default score.
    """
    X_tr, y_tr, X_in, _, X_ho = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)
    sets = {"in (test 0-4)": X_in, "held_out 5-9": X_ho}
    sets.update({k: make_digits_ood(X_in, k, random_state=0) for k in OOD_KINDS})
    rows, data = [], {}
    for beta in betas:
        clf = VIBClassifier(beta=beta, max_epochs=epochs, lr=LR, random_state=0, device="cpu")
        clf.fit(X_tr, y_tr)
        module = clf.net_.module_.eval()
        terms = {}
        for name, X in sets.items():
            with torch.no_grad():
                mu, sd = (t.double() for t in module.distribution(torch.as_tensor(X)))
            mean_term = (0.5 * mu.pow(2).sum(-1)).numpy()
            var_term = (0.5 * sd.pow(2) - torch.log(sd) - 0.5).sum(-1).numpy()
            terms[name] = (mean_term, var_term, clf.score_samples(X))
        m_in, v_in, s_in = terms["in (test 0-4)"]
        for name, (m, v, sc) in terms.items():
            row = [f"{beta:g}", name, float(np.mean(m + v)), float(np.mean(m)), float(np.mean(v))]
            if name != "in (test 0-4)":
                row += [
                    ood_auroc(-(m_in + v_in), -(m + v)),
                    ood_auroc(-m_in, -m),
                    ood_auroc(-v_in, -v),
                    ood_auroc(s_in, sc),
                ]
            else:
                row += ["", "", "", ""]
            rows.append(row)
            data[f"{beta:g}/{name}"] = row[2:]
    table = markdown_table(
        [
            "beta",
            "set",
            "rate",
            "0.5 ||mu||^2",
            "variance term",
            "AUROC -rate",
            "AUROC -0.5||mu||^2",
            "AUROC -variance term",
            "AUROC neg_marginal_rate",
        ],
        rows,
    )
    return table, data


def mnist_ood(epochs: int = 15) -> str:
    """OOD AUROC of each VIB score on MNIST-5k (trained on 0-4); '' without the ``mnist`` extra."""
    from sklearn.model_selection import train_test_split

    try:
        from skinfo.datasets import load_mnist_5k

        X, y = load_mnist_5k()
    except ImportError:
        return ""
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    X_in = X_te[y_te < 5]
    sets = {"held_out 5-9": X_te[y_te >= 5]}
    for kind in OOD_KINDS:
        extra = {"image_shape": (28, 28)} if kind in ("rotate90", "flip") else {}
        sets[kind] = make_digits_ood(X_in, kind, random_state=0, **extra)
    clf = VIBClassifier(beta=BETA, max_epochs=epochs, lr=LR, random_state=0, device="cpu")
    clf.fit(X_tr[y_tr < 5], y_tr[y_tr < 5])
    rows = []
    for score in ood_scores(f"VIB kl (beta={BETA:g})"):
        clf.set_params(ood_score=score)
        s_in = clf.score_samples(X_in)
        aurocs = [ood_auroc(s_in, clf.score_samples(X_o)) for X_o in sets.values()]
        rows.append([score, *aurocs, float(np.mean(aurocs))])
    return markdown_table(["ood_score", *sets, "mean"], rows)


def information_plane_png(X, y, epochs: int, path) -> dict:
    """Information-plane trajectories over ``PLANE_BETAS`` for ``'kl'`` and ``'logvar'``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfo.plotting import information_plane

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    traj: dict[str, dict] = {}
    for ax, reg in zip(axes, ("kl", "logvar")):
        for beta in PLANE_BETAS:
            clf = VIBClassifier(
                beta=beta, regularizer=reg, max_epochs=epochs, lr=LR, random_state=0, device="cpu"
            ).fit(X, y)
            information_plane(
                clf.history_, x_key="info_izx", y_key="info_hyz", ax=ax, label=f"beta={beta:g}"
            )
            traj.setdefault(reg, {})[f"{beta:g}"] = {
                "info_izx": [float(r["info_izx"]) for r in clf.history_],
                "info_hyz": [float(r["info_hyz"]) for r in clf.history_],
            }
        bound = "rate KL(p(z|x) || N(0, I))" if reg == "kl" else "sum_i 0.5 log(2 pi e Var[Z_i])"
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel(f"I(X;Z) upper bound: {bound} (nats)")
        ax.set_ylabel("H(Y|Z) upper bound: decoder cross-entropy (nats)")
        ax.set_title(f"VIB {reg!r} on digits, {epochs} epochs (training-batch estimates)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return traj


def speed(X, y, epochs: int, repeats: int) -> dict[str, dict[str, float]]:
    """Seconds per epoch (CPU and wall) and seconds per whole fit, interleaved medians."""
    common = dict(lr=LR, random_state=0, device="cpu")
    makers = {
        "Softmax": lambda e: SoftmaxClassifier(max_epochs=e, **common),
        "VIB kl, track_information=False": lambda e: VIBClassifier(
            max_epochs=e, track_information=False, **common
        ),
        "VIB kl, track_information=True": lambda e: VIBClassifier(max_epochs=e, **common),
        "VIB l2, track_information=False": lambda e: VIBClassifier(
            max_epochs=e, regularizer="l2", track_information=False, **common
        ),
        "VIB cond_logvar, track_information=False": lambda e: VIBClassifier(
            max_epochs=e, regularizer="cond_logvar", track_information=False, **common
        ),
    }
    makers["Softmax"](1).fit(X, y)  # warm-up
    times: dict[str, dict[str, list[float]]] = {
        k: {"cpu_epoch": [], "wall_epoch": [], "wall_fit": []} for k in makers
    }
    for _ in range(repeats):
        for name, make in makers.items():
            c0, w0 = time.process_time(), time.perf_counter()
            make(1).fit(X, y)
            c1, w1 = time.process_time(), time.perf_counter()
            make(epochs + 1).fit(X, y)
            c2, w2 = time.process_time(), time.perf_counter()
            times[name]["cpu_epoch"].append(((c2 - c1) - (c1 - c0)) / epochs)
            times[name]["wall_epoch"].append(((w2 - w1) - (w1 - w0)) / epochs)
            times[name]["wall_fit"].append(w2 - w1)
    return {k: {m: statistics.median(v) for m, v in d.items()} for k, d in times.items()}


def plain_torch_steps(X, y, repeats: int) -> dict[str, float]:
    """CPU seconds per training step of hand-written torch loops (no skorch), interleaved.

    Separates the cost of the VIB architecture (the extra ``200 -> 2K`` latent
    layer and ``K -> C`` decoder) from the cost of sampling Z and the rate.
    """
    from torch import nn
    from torch.nn import functional as F

    from skinfo.nn.vib import sample_with_rate

    k, n_classes = 32, int(y.max()) + 1
    xb, yb = torch.as_tensor(X[:128]), torch.as_tensor(y[:128])

    def encoder():
        return nn.Sequential(nn.Linear(X.shape[1], 400), nn.ELU(), nn.Linear(400, 200), nn.ELU())

    def softmax_head():
        enc, head = encoder(), nn.Linear(200, n_classes)
        return nn.ModuleList([enc, head]), lambda: F.cross_entropy(head(enc(xb)), yb)

    def vib_head(sample: bool):
        enc, lat, dec = encoder(), nn.Linear(200, 2 * k), nn.Linear(k, n_classes)

        def loss():
            h = lat(enc(xb))
            if not sample:  # same layers, no sampling and no rate
                return F.cross_entropy(dec(h[:, :k]), yb)
            z, rate = sample_with_rate(h, torch.randn(len(h), k))
            return torch.add(F.cross_entropy(dec(z), yb), rate, alpha=BETA)

        return nn.ModuleList([enc, lat, dec]), loss

    built = {
        "plain torch: softmax head": softmax_head(),
        "plain torch: VIB layers, no sampling/rate": vib_head(False),
        "plain torch: VIB ('kl', one sample)": vib_head(True),
    }
    steps = {}
    for name, (params, loss) in built.items():
        opt = torch.optim.Adam(params.parameters(), lr=LR, foreach=True)

        def step(opt=opt, loss=loss):
            opt.zero_grad()
            loss().backward()
            opt.step()

        steps[name] = step
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.process_time()
            for _ in range(20):
                step()
            times[name].append((time.process_time() - start) / 20)
    return {name: statistics.median(v) for name, v in times.items()}


def mean_std(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..n-1)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default=ALL_PARTS, help="comma-separated subset to run")
    parser.add_argument("--speed-repeats", type=int, default=9)
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
    if "quality" in args.parts:
        for seed in seeds:
            for name, clf in models(epochs, seed).items():
                row = evaluate(clf.fit(X_tr, y_tr), X_te, y_te, ood, seed, name)
                held_out = models(epochs, seed)[name].fit(Xh_tr, yh_tr)
                row.update(ood_aurocs(held_out, Xh_in, {"held_out": Xh_ood}, seed, name))
                runs.setdefault(name, []).append(row)

    keys = ["accuracy", "nll", "ece15"]
    kinds = [*OOD_KINDS, "held_out"]
    quality = markdown_table(
        ["model", "accuracy", "NLL (nats)", "ECE-15"],
        [[n] + [mean_std([r[k] for r in rs]) for k in keys] for n, rs in runs.items()],
    )
    ood_rows = []
    for n, rs in runs.items():
        for score in ood_scores(n):
            cells = [mean_std([r[f"auroc_{k}[{score}]"] for r in rs]) for k in kinds]
            mean_all = np.mean([[r[f"auroc_{k}[{score}]"] for k in kinds] for r in rs])
            ood_rows.append([n, score, *cells, float(mean_all)])
    ood_table = markdown_table(["model", "ood_score", *kinds, "mean"], ood_rows)
    summary = {
        n: {
            k: [float(np.mean([r[k] for r in rs])), float(np.std([r[k] for r in rs]))]
            for k in rs[0]
        }
        for n, rs in runs.items()
    }

    decomposition, decomposition_data = "", {}
    if "decomposition" in args.parts:
        decomposition, decomposition_data = rate_decomposition(epochs=5 if args.quick else 15)

    mnist = mnist_ood(epochs=5 if args.quick else 15) if "mnist" in args.parts else ""

    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / "vib_information_plane.png"
    traj = {}
    if "plane" in args.parts:
        traj = information_plane_png(X_tr, y_tr, epochs if args.quick else 30, png)

    sp_epochs = 2 if args.quick else 10
    repeats = 2 if args.quick else args.speed_repeats
    sp = {}
    if "speed" in args.parts:
        sp["1 thread"] = speed(X_tr, y_tr, sp_epochs, repeats)
        if threads != 1:
            torch.set_num_threads(threads)
            sp[f"{threads} threads"] = speed(X_tr, y_tr, sp_epochs, repeats)
    plain = (
        plain_torch_steps(X_tr, y_tr, 20 if args.quick else 200) if "speed" in args.parts else {}
    )
    plain_rows = [[k, 1e6 * v, v / plain["plain torch: softmax head"]] for k, v in plain.items()]
    plain_table = markdown_table(["loop", "CPU us / step", "/ softmax"], plain_rows)
    speed_rows = []
    for setting, times in sp.items():
        base = times["Softmax"]
        for k, v in times.items():
            speed_rows.append(
                [
                    setting,
                    k,
                    1e3 * v["cpu_epoch"],
                    v["cpu_epoch"] / base["cpu_epoch"],
                    1e3 * v["wall_epoch"],
                    v["wall_epoch"] / base["wall_epoch"],
                    v["wall_fit"] / base["wall_fit"],
                ]
            )
    speed_table = markdown_table(
        [
            "threads",
            "model",
            "CPU ms / epoch",
            "/ Softmax",
            "wall ms / epoch",
            "/ Softmax",
            f"whole fit ({sp_epochs + 1} epochs) / Softmax",
        ],
        speed_rows,
    )

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
        f"Rate to N(0, I) split into its terms ('kl', trained on digits 0-4, seed 0; "
        f"AUROC unbalanced)\n\n{decomposition}\n\n"
        f"MNIST-5k, VIB 'kl' trained on digits 0-4 ({'5' if args.quick else '15'} epochs, "
        f"seed 0, 25 % test split; AUROC unbalanced)\n\n{mnist or 'mnist extra not installed'}\n\n"
        f"Training speed (digits; epoch time = (fit of {sp_epochs + 1} epochs - fit of 1 "
        f"epoch) / {sp_epochs}; medians of {repeats} interleaved repeats)\n\n{speed_table}"
        f"\n\nOne training step (batch 128, Adam) of hand-written torch loops, no skorch, "
        f"1 thread:\n\n{plain_table}\n\nInformation plane: {png}\n\n"
        f"Run time: {elapsed:.0f} s\n"
    )
    print(md)
    if args.quick or set(args.parts.split(",")) != set(ALL_PARTS.split(",")):
        return  # quick or partial runs only print: results/ keeps the last full run
    write_results(
        "vib",
        md,
        {
            "setup": setup,
            "summary": summary,
            "runs": runs,
            "speed_s": sp,
            "plain_torch_step_s": plain,
            "rate_decomposition": decomposition_data,
            "information_plane": traj,
            "run_time_s": elapsed,
        },
    )


if __name__ == "__main__":
    main()
