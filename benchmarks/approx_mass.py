"""Approximate-mass flows on digits: OOD quality against sklearn detectors, and cost.

Quality, in the layout of Chali et al. (2023), on scikit-learn's embedded digits
(stratified 75/25 split per seed, pixels / 16, then ``StandardScaler`` fitted on
the training rows, inside a ``Pipeline`` for every model):

* (a) digits vs each OOD variant of the test images
  (``skinfo.datasets.make_digits_ood``), one model per seed trained on all
  training digits (Table 2);
* (b) anomalous-class detection: one model per digit class trained on that
  class only; in-distribution = test images of that class, OOD = test images
  of the other classes (Tables 3/4).

In and out counts are balanced (the larger set is subsampled, as the paper
insists) before AUROC, AUPR (in-distribution positive) and TNR at 95 % TPR.
Models: the flow trained with ``alpha=0`` (maximum likelihood) and with the
default ``alpha``, each scored by minus the approximate mass and by the
log-likelihood (one fit, two scores), and sklearn's IsolationForest,
LocalOutlierFactor(novelty=True), OneClassSVM and GaussianMixture log-density.

Speed: one training step (flow, loss, backward, Adam update; batch 128, the
default dense flow on 64 features and the image flow on 1x8x8) with
``alpha > 0`` over ``alpha = 0``, medians of interleaved repeats; and the
throughput (samples/s) of ``score_samples`` (approximate mass: forward and one
backward pass) against a plain log-likelihood pass, on the fitted detector.

Run: ``python -m benchmarks.approx_mass [--quick] [--seeds 3] [--image]``; writes
``results/approx_mass.md`` / ``.json`` (``approx_mass_quick`` with ``--quick``).

The sweep behind the default ``alpha`` and ``noise`` (the tables of the
approximate-mass documentation page) runs instead with ``--alpha-grid`` and/or
``--noise-grid``: for every setting and seed, one flow on all training digits
scored against the five OOD variants and one flow on digits 0-4 scored against
the held-out digits 5-9; the table holds the mean balanced AUROC over those six
sets (minus the approximate mass, and the log-likelihood of the same fits),
averaged over seeds, at each of ``--grid-epochs`` (weights snapshotted during
one run, so a column of 30 epochs comes from the first 30 epochs of the 80-epoch
run). ``--noise-grid`` varies the dequantization noise at the default alpha and
the first of ``--grid-epochs``. Writes ``results/approx_mass_grid.md`` / ``.json``::

    python -m benchmarks.approx_mass --alpha-grid 0 0.1 0.5 1 2 5 \
        --noise-grid 0.01 0.05 0.1 --grid-epochs 30 80 --seeds 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM
from skorch.callbacks import Callback

from skinfo import ApproxMassFlowDetector
from skinfo.datasets import OOD_KINDS, load_digits_held_out, load_digits_split, make_digits_ood
from skinfo.metrics import ood_aupr_in, ood_auroc, tnr_at_tpr
from skinfo.nn.realnvp import FlowTrainingModule, RealNVP
from skinfo.objectives.approx_mass import ApproxMassLoss

from ._common import interleaved_medians, machine, markdown_table, write_results

ALPHA = ApproxMassFlowDetector().alpha  # the default
NOISE = ApproxMassFlowDetector().noise  # the default
METRICS = {"auroc": ood_auroc, "aupr": ood_aupr_in, "tnr95": tnr_at_tpr}
BATCH = 128


def flow_scores(det_pipe) -> dict[str, Callable]:
    """The two scores of one fitted flow pipeline: minus the approximate mass, log-likelihood."""
    return {
        "mass": det_pipe.score_samples,
        "log-lik": lambda X: det_pipe[-1].log_likelihood(det_pipe[0].transform(X)),
    }


def models(seed: int, epochs: int, image: bool) -> dict[str, Callable[[], object]]:
    """Name -> factory of an unfitted pipeline (scaler + detector)."""

    def flow(alpha: float, **kw):
        return lambda: make_pipeline(
            StandardScaler(),
            ApproxMassFlowDetector(alpha=alpha, max_epochs=epochs, random_state=seed, **kw),
        )

    out = {"flow alpha=0": flow(0.0), f"flow alpha={ALPHA:g}": flow(ALPHA)}
    if image:
        img = dict(architecture="multiscale", input_shape=(1, 8, 8), n_blocks=1, hidden_width=16)
        out["image flow alpha=0"] = flow(0.0, **img)
        out[f"image flow alpha={ALPHA:g}"] = flow(ALPHA, **img)
    out.update(
        {
            "IsolationForest": lambda: make_pipeline(
                StandardScaler(), IsolationForest(random_state=seed)
            ),
            "LOF (novelty)": lambda: make_pipeline(
                StandardScaler(), LocalOutlierFactor(novelty=True)
            ),
            "OneClassSVM": lambda: make_pipeline(
                StandardScaler(), OneClassSVM(gamma="scale", nu=0.1)
            ),
            "GaussianMixture": lambda: make_pipeline(
                StandardScaler(),
                GaussianMixture(5, covariance_type="diag", reg_covar=1e-2, random_state=seed),
            ),
        }
    )
    return out


def fit_and_score(factory, X_train, X_in, oods: dict[str, np.ndarray], seed: int) -> dict:
    """Fit one model; return {score name: {ood name: {metric: value}}}."""
    model = factory().fit(X_train)
    is_flow = isinstance(model[-1], ApproxMassFlowDetector)
    scorers = flow_scores(model) if is_flow else {"": model.score_samples}
    out = {}
    for score, fn in scorers.items():
        s_in = fn(X_in)
        out[score] = {
            name: {
                m: float(f(s_in, fn(X_out), balance=True, random_state=seed))
                for m, f in METRICS.items()
            }
            for name, X_out in oods.items()
        }
    return out


def _row_name(model: str, score: str) -> str:
    return f"{model}, {score}" if score else model


def ood_variants(seeds, epochs: int, kinds, image: bool) -> dict:
    """(a): {row: {kind: {metric: [values over seeds]}}}."""
    table: dict = {}
    for seed in seeds:
        X_tr, X_te, _, _ = load_digits_split(random_state=seed)
        oods = {k: make_digits_ood(X_te, k, random_state=seed) for k in kinds}
        for name, factory in models(seed, epochs, image).items():
            for score, per_ood in fit_and_score(factory, X_tr, X_te, oods, seed).items():
                row = table.setdefault(_row_name(name, score), {})
                for kind, values in per_ood.items():
                    for m, v in values.items():
                        row.setdefault(kind, {}).setdefault(m, []).append(v)
    return table


def anomalous_class(seeds, epochs: int, classes) -> dict:
    """(b): {row: {class: [AUROC over seeds]}} (plus AUPR and TNR in 'all')."""
    table: dict = {}
    for seed in seeds:
        X_tr, X_te, y_tr, y_te = load_digits_split(random_state=seed)
        for c in classes:
            X_out = {"other classes": X_te[y_te != c]}
            for name, factory in models(seed, epochs, image=False).items():
                result = fit_and_score(factory, X_tr[y_tr == c], X_te[y_te == c], X_out, seed)
                for score, per_ood in result.items():
                    row = table.setdefault(_row_name(name, score), {})
                    for m, v in per_ood["other classes"].items():
                        row.setdefault(str(c), {}).setdefault(m, []).append(v)
    return table


def step_ratio(shape, repeats: int, **flow_kw) -> dict:
    """Median training-step time with alpha > 0 and alpha = 0 on a batch of 128 rows."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, int(np.prod(shape)))
    steps = {}
    for alpha in (0.0, ALPHA):
        module = FlowTrainingModule(RealNVP(shape, **flow_kw)).train()
        loss = ApproxMassLoss(alpha=alpha, noise=0.05)
        opt = torch.optim.Adam(module.parameters(), lr=1e-4)

        def step(module=module, loss=loss, opt=opt):
            opt.zero_grad()
            loss(x, None, X=x, module=module)["loss"].backward()
            opt.step()

        steps[alpha] = step
    for step in steps.values():  # warm-up
        step()
    t = interleaved_medians({"0": steps[0.0], "alpha": steps[ALPHA]}, repeats)
    return {"step_s_alpha0": t["0"], "step_s_alpha": t["alpha"], "ratio": t["alpha"] / t["0"]}


def throughput(n_rows: int, repeats: int, epochs: int) -> dict:
    """score_samples (approximate mass) vs log_likelihood samples/s on a fitted detector."""
    X_tr, X_te, _, _ = load_digits_split(random_state=0)
    scaler = StandardScaler().fit(X_tr)
    det = ApproxMassFlowDetector(max_epochs=epochs, random_state=0).fit(scaler.transform(X_tr))
    big = np.tile(scaler.transform(X_te), (n_rows // len(X_te) + 1, 1))[:n_rows]
    big = big.astype(np.float32)
    t = interleaved_medians(
        {"mass": lambda: det.score_samples(big), "ll": lambda: det.log_likelihood(big)}, repeats
    )
    return {
        "mass_per_s": n_rows / t["mass"],
        "loglik_per_s": n_rows / t["ll"],
        "ratio": t["mass"] / t["ll"],
    }


class _WeightSnapshots(Callback):
    """Keep a copy of the module's weights at the end of the given epochs."""

    def __init__(self, epochs) -> None:
        self.epochs = tuple(epochs)

    def initialize(self):
        self.states: dict[int, dict] = {}
        return self

    def on_epoch_end(self, net, **kwargs) -> None:
        epoch = len(net.history)
        if epoch in self.epochs:
            state = net.module_.state_dict()
            self.states[epoch] = {k: v.detach().clone() for k, v in state.items()}


def _grid_fit_scores(alpha, noise, epochs, seed, X_train, X_in, oods) -> dict:
    """{epoch: {score: {ood name: AUROC}}} of one flow, at each epoch in ``epochs``."""
    snapshots = _WeightSnapshots(epochs)
    pipe = make_pipeline(
        StandardScaler(),
        ApproxMassFlowDetector(
            alpha=alpha,
            noise=noise,
            max_epochs=max(epochs),
            random_state=seed,
            callbacks=[("snapshots", snapshots)],
        ),
    ).fit(X_train)
    module = pipe[-1].net_.module_
    states = dict(pipe[-1].net_.callbacks_)["snapshots"].states
    out = {}
    for epoch in epochs:
        module.load_state_dict(states[epoch])
        out[epoch] = {
            score: {
                name: float(ood_auroc(fn(X_in), fn(X_out), balance=True, random_state=seed))
                for name, X_out in oods.items()
            }
            for score, fn in flow_scores(pipe).items()
        }
    return out


def alpha_noise_grid(seeds, alphas, noises, epochs, kinds) -> dict:
    """{setting: {epoch: {score: [mean AUROC over the six OOD sets, per seed]}}}.

    Settings: every alpha at the default noise, with all ``epochs``; every
    noise at the default alpha, with the first of ``epochs``.
    """
    settings = [(float(a), NOISE, tuple(epochs)) for a in alphas]
    settings += [(ALPHA, float(n), tuple(epochs[:1])) for n in noises]
    table: dict = {}
    for seed in seeds:
        X_tr, X_te, _, _ = load_digits_split(random_state=seed)
        variants = {k: make_digits_ood(X_te, k, random_state=seed) for k in kinds}
        X_tr_in, _, X_te_in, _, X_held_out = load_digits_held_out(
            (0, 1, 2, 3, 4), random_state=seed
        )
        for alpha, noise, setting_epochs in settings:
            key = f"alpha={alpha:g}, noise={noise:g}"
            if seed in table.get(key, {}).get("seeds", []):
                continue  # the default setting appears in both sweeps
            a = _grid_fit_scores(alpha, noise, setting_epochs, seed, X_tr, X_te, variants)
            b = _grid_fit_scores(
                alpha, noise, setting_epochs, seed, X_tr_in, X_te_in, {"held-out 5-9": X_held_out}
            )
            row = table.setdefault(key, {"alpha": alpha, "noise": noise, "seeds": []})
            row["seeds"].append(seed)
            for epoch in setting_epochs:
                for score in a[epoch]:
                    aurocs = [*a[epoch][score].values(), *b[epoch][score].values()]
                    cell = row.setdefault(str(epoch), {}).setdefault(score, [])
                    cell.append(float(np.mean(aurocs)))
    return table


def grid_to_markdown(data: dict) -> str:
    s = data["settings"]
    epochs = [str(e) for e in s["grid_epochs"]]
    parts = [
        "# Approximate-mass flows on digits: alpha and noise sweep",
        "",
        f"Seeds {s['seeds']}; mean balanced AUROC over the OOD variants {s['kinds']} "
        "(flow on all training digits) and the held-out digits 5-9 (flow on digits 0-4), "
        "averaged over seeds. 'mass' = minus the approximate mass, 'log-lik' = "
        "log-likelihood of the same fits. Pixels / 16, StandardScaler, default dense flow.",
    ]
    rows = []
    for row in data["grid"].values():
        cells = [f"{row['alpha']:g}", f"{row['noise']:g}"]
        for epoch in epochs:
            for score in ("mass", "log-lik"):
                values = row.get(epoch, {}).get(score)
                cells.append(f"{np.mean(values):.3f}" if values else "")
        rows.append(cells)
    header = ["alpha", "noise"] + [
        f"{sc}, {e} epochs" for e in epochs for sc in ("mass", "log-lik")
    ]
    parts += ["", markdown_table(header, rows)]
    return "\n".join(parts)


def _mean_std(values) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def to_markdown(data: dict) -> str:
    s = data["settings"]
    parts = [
        "# Approximate-mass flows on digits",
        "",
        f"{len(s['seeds'])} seeds; flows: {s['epochs_a']} epochs (a), {s['epochs_b']} epochs "
        f"(b), default architecture, alpha={ALPHA:g} vs 0; 'mass' = minus the approximate "
        "mass, 'log-lik' = log-likelihood. In/out counts balanced. Mean ± std over seeds.",
    ]
    a = data["ood_variants"]
    if a:
        kinds = list(next(iter(a.values())))
        for metric, title in (("auroc", "AUROC"), ("aupr", "AUPR-in"), ("tnr95", "TNR@95%TPR")):
            rows = [
                [name]
                + [_mean_std(row[k][metric]) for k in kinds]
                + [f"{np.mean([np.mean(row[k][metric]) for k in kinds]):.3f}"]
                for name, row in a.items()
            ]
            parts += ["", f"## (a) digits vs OOD variants: {title}", ""]
            parts.append(markdown_table(["model", *kinds, "mean"], rows))
    b = data["anomalous_class"]
    if b:
        classes = list(next(iter(b.values())))
        rows = [
            [name]
            + [f"{np.mean(row[c]['auroc']):.3f}" for c in classes]
            + [f"{np.mean([np.mean(row[c]['auroc']) for c in classes]):.3f}"]
            for name, row in b.items()
        ]
        parts += ["", "## (b) anomalous-class detection (one model per class): AUROC", ""]
        parts.append(markdown_table(["model", *classes, "mean"], rows))
    speed = data.get("speed")
    if speed:
        parts += ["", "## Cost", ""]
        rows = [
            [
                f"training step, {name}",
                f"{1e3 * r['step_s_alpha0']:.1f} ms",
                f"{1e3 * r['step_s_alpha']:.1f} ms",
                f"{r['ratio']:.2f}x",
            ]
            for name, r in speed["steps"].items()
        ]
        parts.append(
            markdown_table(["what (batch 128)", "alpha=0", f"alpha={ALPHA:g}", "ratio"], rows)
        )
        th = speed["throughput"]
        parts += [
            "",
            f"score_samples (approximate mass): {th['mass_per_s']:,.0f} samples/s; "
            f"log-likelihood pass: {th['loglik_per_s']:,.0f} samples/s "
            f"(mass costs {th['ratio']:.2f}x a likelihood pass; {speed['n_rows']} rows).",
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer epochs and classes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="flow epochs for (a)")
    parser.add_argument("--epochs-class", type=int, default=None, help="flow epochs for (b)")
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--kinds", nargs="+", default=list(OOD_KINDS))
    parser.add_argument("--image", action="store_true", help="also the image flow in (a)")
    parser.add_argument("--repeats", type=int, default=None, help="timing repeats")
    parser.add_argument("--throughput-rows", type=int, default=20_000)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--name", default=None, help="results file name (approx_mass, or approx_mass_quick)"
    )
    parser.add_argument(
        "--alpha-grid", type=float, nargs="+", default=None, help="run the alpha sweep instead"
    )
    parser.add_argument(
        "--noise-grid", type=float, nargs="+", default=None, help="run the noise sweep instead"
    )
    parser.add_argument("--grid-epochs", type=int, nargs="+", default=[30, 80])
    args = parser.parse_args(argv)
    if args.alpha_grid is not None or args.noise_grid is not None:
        return _run_grid(args)
    quick = args.quick
    seeds = list(range(1 if quick else args.seeds))
    epochs_a = args.epochs or (10 if quick else 40)
    epochs_b = args.epochs_class or (40 if quick else 150)
    classes = args.classes[:3] if quick else args.classes
    repeats = args.repeats or (5 if quick else 20)
    start = time.perf_counter()
    data: dict = {
        "settings": {
            "seeds": seeds,
            "epochs_a": epochs_a,
            "epochs_b": epochs_b,
            "classes": classes,
            "kinds": args.kinds,
            "alpha": ALPHA,
            "machine": machine(),
        },
        "ood_variants": {},
        "anomalous_class": {},
    }
    if not args.skip_quality:
        data["ood_variants"] = ood_variants(seeds, epochs_a, args.kinds, args.image)
        data["anomalous_class"] = anomalous_class(seeds, epochs_b, classes)
    if not args.skip_speed:
        data["speed"] = {
            "steps": {
                "dense flow, 64 features": step_ratio((64,), repeats),
                "image flow, 1x8x8": step_ratio(
                    (1, 8, 8), max(3, repeats // 2), n_blocks=1, hidden_width=16
                ),
            },
            "throughput": throughput(args.throughput_rows, max(3, repeats // 4), epochs=2),
            "n_rows": args.throughput_rows,
        }
    data["seconds"] = time.perf_counter() - start
    text = to_markdown(data)
    name = args.name or ("approx_mass_quick" if quick else "approx_mass")
    path = write_results(name, text, data)
    print(text)
    print(f"\nwritten to {path} in {data['seconds']:.0f} s")
    return data


def _run_grid(args) -> dict:
    start = time.perf_counter()
    seeds = list(range(args.seeds))
    epochs = sorted(set(args.grid_epochs))
    data: dict = {
        "settings": {
            "seeds": seeds,
            "alphas": args.alpha_grid or [],
            "noises": args.noise_grid or [],
            "grid_epochs": epochs,
            "kinds": args.kinds,
            "machine": machine(),
        },
        "grid": alpha_noise_grid(
            seeds, args.alpha_grid or [], args.noise_grid or [], epochs, args.kinds
        ),
    }
    data["seconds"] = time.perf_counter() - start
    text = grid_to_markdown(data)
    path = write_results(args.name or "approx_mass_grid", text, data)
    print(text)
    print(f"\nwritten to {path} in {data['seconds']:.0f} s")
    return data


if __name__ == "__main__":
    main()
