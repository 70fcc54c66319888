"""MASS learning: training-step cost against SoftmaxCE, and quality on digits.

Speed: one training step (forward, loss, backward, Adam update) of a batch of
256 rows with the paper's SmallMLP encoder (400-200, ELU), for SoftmaxCE and for
MASS with the exact Jacobian term on the default 1/K subsample, computed

* analytically (the MLP chain reusing the forward pass; the default),
* with ``torch.func`` (``vmap(jacrev)``; the path for any encoder),
* with a per-output autograd loop (``d`` calls of ``torch.autograd.grad`` with
  ``create_graph=True``; how reference code computes it),

and for MASS with ``beta=0``; then SoftmaxCE and MASS (analytic) with the
criterion through ``torch.compile``, as ``compile=True`` trains (the compiled
MASS step over the compiled and over the eager SoftmaxCE step, and the
seconds of the first, compiling step; ``--no-compile`` skips them). Inputs
of 64 (digits) and 3072 (CIFAR-sized,
random data) features; representation widths ``d`` of 10 (the default) and 15
(the paper's SmallMLP runs). Timings are medians over interleaved repeats in one
process, by default of the thread's CPU time (``--clock wall`` for wall time);
the table reports ratios to the SoftmaxCE step.

Quality: digits (stratified 75/25 split, pixels / 16), SoftmaxClassifier vs
MASSClassifier with the same encoder and epochs, mean (std) over seeds of
accuracy, top-label ECE (15 bins), NLL, and OOD AUROC on held-out classes
(a second fit on digits 0-4, OOD = test digits 5-9) and on the digits OOD
variants of the test set (``skinfo.datasets.make_digits_ood``): MASS scored by
``max_y log q(f(x) | y)``, SoftmaxCE by its maximum softmax probability. A
row trains ``q`` at the encoder's learning rate (``head_lr=lr``) to show
why the default trains it faster; the last scores with the trained ``q``
(``refit_head=False``) instead of its refitted copy.

Run: ``python -m benchmarks.mass [--quick] [--seeds 3] [--skip-quality] [--skip-speed]``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import torch

from skinfo import MASSClassifier, SoftmaxClassifier
from skinfo._net import compiled_objective
from skinfo._training import update_kernel_options
from skinfo.metrics import expected_calibration_error, negative_log_likelihood, ood_auroc
from skinfo.nn.encoders import MLP
from skinfo.nn.gmm import ClassConditionalGMM, MASSNetwork
from skinfo.nn.heads import SoftmaxNetwork
from skinfo.nn.jacobian import log_volume
from skinfo.objectives.mass import MASSLoss
from skinfo.objectives.softmax_ova import SoftmaxCrossEntropy

from ._common import interleaved_medians, machine, markdown_table, write_results

BATCH = 256
N_CLASSES = 10
OOD_KINDS = ("rotate90", "flip", "invert", "gaussian_noise", "uniform_noise")


class LoopJacobianLoss(MASSLoss):
    """MASS loss whose Jacobian comes from a per-output autograd loop (the slow baseline)."""

    def forward(self, output, y, X=None, module=None):
        z, _ = output
        head = module.head
        log_joint = head.log_joint(z)
        log_marginal = torch.logsumexp(log_joint, dim=-1)
        ce = (log_marginal - log_joint.gather(1, y.view(-1, 1)).squeeze(1)).mean()
        entropy = -log_marginal.mean()
        n_sub = max(1, math.ceil(self.jacobian_fraction * len(z)))
        rows = torch.randperm(len(z))[:n_sub]
        x = X[rows].detach().requires_grad_(True)
        z_sub = module.embed(x)
        jac = torch.stack(
            [
                torch.autograd.grad(z_sub[:, j].sum(), x, create_graph=True)[0]
                for j in range(z_sub.shape[1])
            ],
            dim=1,
        )
        log_j = log_volume(jac).mean()
        return {"loss": ce + self.beta * (entropy - log_j)}


def _step_fn(module, criterion, X, y):
    # the parameter update the estimators use (the fused kernel where torch has one)
    options = update_kernel_options(torch.optim.Adam, "cpu")
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4, **options)

    def step():
        optimizer.zero_grad()
        loss = criterion(module(X), y, X=X, module=module)["loss"]
        loss.backward()
        optimizer.step()

    return step


def speed(
    n_features: int,
    repeats: int,
    latent_dim: int = 10,
    clock: str = "cpu",
    compile_too: bool = True,
) -> dict[str, float]:
    """Median step time (seconds) of each variant for ``n_features`` inputs.

    With ``compile_too``, also SoftmaxCE and MASS (analytic) with their
    criterion through ``torch.compile``, as the estimators' ``compile=True``
    trains (``compile_seconds_mass``: the first, compiling step).
    """
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(BATCH, n_features, generator=gen)
    y = torch.randint(0, N_CLASSES, (BATCH,), generator=gen)
    frac = 1.0 / N_CLASSES
    torch.manual_seed(0)

    def mass(jacobian="auto", beta=1e-3, loss_class=MASSLoss):
        head = ClassConditionalGMM(latent_dim, N_CLASSES, 10)
        net = MASSNetwork(MLP(n_features, (400, 200)), 200, head, jacobian=jacobian)
        return _step_fn(net, loss_class(beta=beta, jacobian_fraction=frac), X, y)

    softmax_net = SoftmaxNetwork(MLP(n_features, (400, 200)), torch.nn.Linear(200, N_CLASSES))
    softmax_ce = SoftmaxCrossEntropy()

    def softmax_criterion(logits, target, X=None, module=None):
        return softmax_ce(logits, target)

    funcs = {
        "softmax_ce": _step_fn(softmax_net, softmax_criterion, X, y),
        "mass_beta0": mass(beta=0.0),
        "mass_analytic": mass("analytic"),
        "mass_torch_func": mass("autograd"),
        "mass_autograd_loop": mass("autograd", loss_class=LoopJacobianLoss),
    }
    if compile_too:
        torch.manual_seed(0)
        softmax_net_c = SoftmaxNetwork(MLP(n_features, (400, 200)), torch.nn.Linear(200, N_CLASSES))
        head = ClassConditionalGMM(latent_dim, N_CLASSES, 10)
        net = MASSNetwork(MLP(n_features, (400, 200)), 200, head, jacobian="analytic")
        funcs["softmax_ce_compiled"] = _step_fn(softmax_net_c, compiled_objective(softmax_ce), X, y)
        funcs["mass_analytic_compiled"] = _step_fn(
            net, compiled_objective(MASSLoss(beta=1e-3, jacobian_fraction=frac)), X, y
        )
    compile_seconds = {}
    for name, fn in funcs.items():  # warm-up (and compilation)
        start = time.perf_counter()
        fn()
        compile_seconds[name] = time.perf_counter() - start
    times = interleaved_medians(funcs, repeats, clock=clock)
    if compile_too:
        times["compile_seconds_mass"] = compile_seconds["mass_analytic_compiled"]
    return times


def quality(seeds: list[int], max_epochs: int) -> list[dict]:
    from skinfo.datasets import load_digits_held_out, load_digits_split, make_digits_ood

    X_train, X_test, y_train, y_test = load_digits_split(random_state=0)
    ood = {kind: make_digits_ood(X_test, kind, random_state=0) for kind in OOD_KINDS}
    near = load_digits_held_out((0, 1, 2, 3, 4), random_state=0)  # train 0-4, OOD = 5-9

    def mass(beta, **kw):
        return lambda s: MASSClassifier(beta=beta, max_epochs=max_epochs, random_state=s, **kw)

    models = {
        "SoftmaxCE": lambda s: SoftmaxClassifier(max_epochs=max_epochs, random_state=s),
        "MASS beta=0": mass(0.0),
        "MASS beta=1e-3": mass(1e-3),
        "MASS beta=1e-2": mass(1e-2),
        # q trained at the encoder's learning rate: q does not fit f(X) (see docs/mass.md)
        "MASS beta=1e-3, head_lr=lr": mass(1e-3, head_lr=1e-3),
        # scores from the trained q instead of the refitted copy (the paper's scores)
        "MASS beta=1e-3, refit_head=False": mass(1e-3, refit_head=False),
    }
    rows = []
    for name, make in models.items():
        per_seed = []
        for seed in seeds:
            clf = make(seed).fit(X_train, y_train)
            proba = clf.predict_proba(X_test)
            result = {
                "accuracy": float((proba.argmax(1) == y_test).mean()),
                "ece": expected_calibration_error(y_test, proba, labels=clf.classes_),
                "nll": negative_log_likelihood(y_test, proba, labels=clf.classes_),
            }
            s_in = clf.score_samples(X_test)
            for kind, X_ood in ood.items():
                result[f"auroc_{kind}"] = ood_auroc(s_in, clf.score_samples(X_ood))
            X_near, y_near, X_near_in, _, X_near_out = near
            clf = make(seed).fit(X_near, y_near)
            result["auroc_held_out_classes"] = ood_auroc(
                clf.score_samples(X_near_in), clf.score_samples(X_near_out)
            )
            per_seed.append(result)
        summary = {"model": name}
        for key in per_seed[0]:
            values = np.array([r[key] for r in per_seed])
            summary[key] = float(values.mean())
            summary[key + "_std"] = float(values.std())
        rows.append(summary)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, seeds, epochs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadiest on a shared machine)"
    )
    parser.add_argument(
        "--latent-dims",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[10, 15],
        help="representation widths d to time (comma separated; 10 = default, 15 = the paper)",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="time steps by this thread's CPU time (steady on a shared machine) or wall time",
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="skip the torch.compile (compile=True) column"
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (5 if args.quick else 21)
    seeds = list(range(1 if args.quick else args.seeds))
    epochs = 10 if args.quick else 50
    markdown, data = [f"Machine: {machine()}"], {}

    if not args.skip_speed:
        speed_rows = []
        for latent_dim, n_features in itertools.product(args.latent_dims, (64, 3072)):
            times = speed(n_features, repeats, latent_dim, args.clock, not args.no_compile)
            base = times["softmax_ce"]
            data[f"speed_{n_features}_d{latent_dim}"] = times
            row = [
                n_features,
                latent_dim,
                f"{1e3 * base:.2f}",
                times["mass_beta0"] / base,
                times["mass_analytic"] / base,
                times["mass_torch_func"] / base,
                times["mass_autograd_loop"] / base,
                times["mass_autograd_loop"] / times["mass_analytic"],
            ]
            if not args.no_compile:
                compiled = times["mass_analytic_compiled"]
                row.append(f"{compiled / times['softmax_ce_compiled']:.3f}")
                row.append(compiled / base)
                row.append(f"{times['compile_seconds_mass']:.0f}")
            speed_rows.append(row)
        header = [
            "D",
            "d",
            "SoftmaxCE step (ms)",
            "MASS beta=0",
            "MASS analytic",
            "MASS torch.func",
            "MASS autograd loop",
            "loop / analytic",
        ]
        if not args.no_compile:
            header += [
                "MASS compile=True / SoftmaxCE compile=True",
                "MASS compile=True / SoftmaxCE",
                "compiling step (s)",
            ]
        markdown += [
            f"\n### Training-step time / SoftmaxCE step (batch {BATCH}, SmallMLP, "
            f"Jacobian on {math.ceil(BATCH / N_CLASSES)} rows; median of {repeats}, "
            f"{args.clock} time)\n",
            markdown_table(header, speed_rows),
        ]

    if not args.skip_quality:
        rows = quality(seeds, epochs)
        data["quality"] = rows
        keys = ["accuracy", "ece", "nll", "auroc_held_out_classes"]
        keys += [f"auroc_{k}" for k in OOD_KINDS]
        table = [[r["model"]] + [f"{r[k]:.3f} ({r[k + '_std']:.3f})" for k in keys] for r in rows]
        markdown += [
            f"\n### Digits, {len(seeds)} seed(s), {epochs} epochs, mean (std); OOD AUROC "
            "(MASS: max_y log q(f(x)|y); SoftmaxCE: max softmax probability)\n",
            markdown_table(["model"] + keys, table),
        ]

    text = "\n".join(markdown)
    path = write_results("mass", text, data)
    print(text)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
