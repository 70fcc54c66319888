"""The image targets on MNIST-5k: each estimator's fit time at its image defaults, and a
pass/miss table read from the MNIST quality benchmark.

Two parts:

1. **Fit time at the image defaults.** Each estimator, constructed with its
   defaults (``random_state=0`` only), is fitted on the 4,000 MNIST-5k
   training images given as ``(n, 1, 28, 28)`` arrays, on the CPU with the
   process's torch threads. Reported: fit time, epochs, and (classifiers) the
   test accuracy and ECE of that default model. The target is at most two
   minutes on a 2-core CPU.
2. **The targets table**, from ``results/quality_mnist.json`` (written by
   ``python -m benchmarks.quality --data mnist``, which trains every
   classifier under the shared budget of :data:`benchmarks.image_defaults.BUDGET`
   over its seeds): accuracy within 2 points of ``SoftmaxClassifier``; each
   classifier's default ``score_samples`` at least softmax's maximum
   probability on the held-out classes; the best skinfo score at least 0.95;
   one of OVA, VIB, MASS, IB-INN with a lower ECE than softmax at equal
   accuracy (at most 0.5 points lower); ApproxMassFlowDetector ahead of the
   other input-space detectors. Every number is a mean over the seeds of that
   file.

Run: ``python -m benchmarks.image_targets [--quick] [--source quality_mnist]`` after
the MNIST quality benchmark (``make bench-images`` runs them in that order; after a
one-seed run, ``--source quality_mnist_1seed``). Writes
``results/image_targets<suffix>.md`` / ``.json``, the suffix of the source.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import skinfo
from skinfo.metrics import expected_calibration_error

from ._common import RESULTS, markdown_table, write_results
from .image_defaults import mnist_splits
from .quality import HELD_OUT

#: Benchmark name -> skinfo class, for the classifiers of the quality benchmark.
CLASSIFIERS = {
    "Softmax": "SoftmaxClassifier",
    "OVA": "OVAClassifier",
    "MASS": "MASSClassifier",
    "VIB": "VIBClassifier",
    "IB-INN": "IBINNClassifier",
}
#: The target of the fit time at the image defaults, in seconds (2-core CPU).
FIT_SECONDS = 120.0
#: "Equal accuracy" for the ECE target: at most this much below softmax's.
ACCURACY_SLACK = 0.005


def default_fit_times(quick: bool = False) -> list[dict]:
    """Fit every estimator at its image defaults on the MNIST-5k training images."""
    X_tr, X_te, y_tr, y_te = mnist_splits()["split"]
    if quick:
        X_tr, y_tr = X_tr[:400], y_tr[:400]
    rows = []
    for label, name in [*CLASSIFIERS.items(), ("flow detector", "ApproxMassFlowDetector")]:
        est = getattr(skinfo, name)(random_state=0)
        if quick:
            est.set_params(max_epochs=1)
        start = time.perf_counter()
        est.fit(X_tr) if label == "flow detector" else est.fit(X_tr, y_tr)
        row = {"model": label, "fit_s": time.perf_counter() - start, "epochs": est.n_iter_}
        if label != "flow detector":
            proba = est.predict_proba(X_te)
            row["accuracy"] = float(np.mean(est.classes_[proba.argmax(1)] == y_te))
            row["ece"] = expected_calibration_error(y_te, proba, n_bins=15, labels=est.classes_)
        rows.append(row)
        print(row, flush=True)
    return rows


def default_score(label: str) -> str:
    """The ``ood_score`` a classifier uses on images by default (``'auto'`` resolved)."""
    cls = getattr(skinfo, CLASSIFIERS[label])
    score = cls().ood_score
    return cls._auto["ood_score"][1] if score == "auto" else score


def _mean(values) -> float:
    return float(np.mean(values)) if values else float("nan")


def targets(quality: dict, fits: list[dict]) -> list[list[str]]:
    """Rows (target, measured, met) from the quality payload and the default fits."""
    cls, held = quality["classification"], quality["ood"][HELD_OUT]
    auroc = {label: _mean(m["auroc"]) for label, m in held.items()}
    acc = {n: _mean(cls[n]["accuracy"]) for n in CLASSIFIERS if n in cls}
    ece = {n: _mean(cls[n]["ece"]) for n in CLASSIFIERS if n in cls}
    rows = []

    slow = [f"{r['model']} {r['fit_s']:.0f} s" for r in fits]
    ok = all(r["fit_s"] <= FIT_SECONDS for r in fits)
    rows.append(["fit at image defaults <= 2 min", ", ".join(slow), ok])

    ref = acc["Softmax"]
    gaps = {n: ref - a for n, a in acc.items() if n != "Softmax"}
    text = ", ".join(f"{n} {a:.3f}" for n, a in acc.items())
    rows.append(["accuracy within 2 points of Softmax", text, max(gaps.values()) <= 0.02])

    base = auroc["Softmax [max_proba]"]
    own = {n: auroc.get(f"{n} [{default_score(n)}]", float("nan")) for n in CLASSIFIERS}
    text = ", ".join(f"{n} [{default_score(n)}] {a:.3f}" for n, a in own.items())
    rows.append([f"default score_samples >= Softmax max-probability ({base:.3f})", text,
                 all(a >= base for a in own.values())])  # fmt: skip

    skinfo_scores = {k: v for k, v in auroc.items() if k.split(" [")[0] in CLASSIFIERS}
    best = max(skinfo_scores, key=skinfo_scores.get)
    rows.append(["best skinfo score >= 0.95", f"{best} {skinfo_scores[best]:.3f}",
                 skinfo_scores[best] >= 0.95])  # fmt: skip

    better = [
        n for n in ("OVA", "VIB", "MASS", "IB-INN")
        if n in ece and ece[n] < ece["Softmax"] and acc[n] >= ref - ACCURACY_SLACK
    ]  # fmt: skip
    text = ", ".join(f"{n} {e:.3f} (acc. {acc[n]:.3f})" for n, e in ece.items())
    rows.append(["an OVA/VIB/MASS/IB-INN ECE below Softmax's at equal accuracy", text,
                 bool(better)])  # fmt: skip

    inputs = {k: v for k, v in auroc.items() if k.endswith("(input)")}
    flow = inputs.pop("ApproxMassFlowDetector (input)", float("nan"))
    rival = max(inputs, key=inputs.get)
    rows.append(["ApproxMassFlowDetector the best input-space detector (held-out classes)",
                 f"flow {flow:.3f}, best other: {rival} {inputs[rival]:.3f}",
                 flow >= inputs[rival]])  # fmt: skip
    return [[t, m, "met" if met else "**missed**"] for t, m, met in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 images, one epoch")
    parser.add_argument(
        "--source", default="quality_mnist", help="results/<SOURCE>.json of the MNIST benchmark"
    )
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    fits = default_fit_times(args.quick)
    header = ["model", "fit time (s)", "epochs", "accuracy", "ECE"]
    fit_rows = [
        [r["model"], f"{r['fit_s']:.1f}", r["epochs"]]
        + [f"{r[k]:.3f}" if k in r else "-" for k in ("accuracy", "ece")]
        for r in fits
    ]
    md = (
        "## Fit time at the image defaults (MNIST-5k, 4,000 training images, seed 0)\n\n"
        "Each estimator with its defaults only, no validation split; "
        f"{torch.get_num_threads()} torch threads.\n\n" + markdown_table(header, fit_rows) + "\n"
    )
    source = RESULTS / f"{args.source}.json"
    payload = {"fits": fits}
    if source.is_file() and not args.quick:
        quality = json.loads(source.read_text())
        rows = targets(quality, fits)
        md += (
            f"\n## Targets (MNIST-5k, seeds {quality['seeds']}, measured {quality['date']})\n\n"
            "Means over the seeds of `quality_mnist` (held-out classes 5-9, trained on 0-4; "
            "the shared early-stopping budget); fit times from the table above.\n\n"
            + markdown_table(["target", "measured", ""], rows)
            + "\n"
        )
        payload["targets"] = rows
    else:
        md += f"\nNo `results/{args.source}.json` (or `--quick`): no targets table.\n"
    suffix = "_quick" if args.quick else args.source.removeprefix("quality_mnist")
    path = write_results("image_targets" + suffix, md, payload)
    print(md)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
