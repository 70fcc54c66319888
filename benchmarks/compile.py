"""``compile=True`` against ``compile=False``: epoch time of every classifier on digits.

Each classifier (default settings, batch 128, one torch thread) is fitted for 1
and for ``1 + epochs`` epochs with ``compile=False`` and with ``compile=True``;
``(fit(1 + epochs) - fit(1)) / epochs`` is the time of one epoch with the
one-time costs (and the compilation, which happens in the first epoch) taken
out. Medians of interleaved repeats in one process, by process CPU time. The
compilation itself is reported from the very first ``compile=True`` fit of
each estimator (torch's on-disk compile cache makes later processes faster).

Run: ``python -m benchmarks.compile [--quick] [--repeats 5] [--epochs 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits

from skinfo import IBINNClassifier, MASSClassifier, OVAClassifier, SoftmaxClassifier, VIBClassifier

from ._common import machine, markdown_table, write_results


def makers() -> dict[str, Callable[[int, bool], object]]:
    """Estimator factories ``(max_epochs, compile) -> estimator``."""
    common = dict(random_state=0, device="cpu")
    return {
        "SoftmaxClassifier": lambda e, c: SoftmaxClassifier(max_epochs=e, compile=c, **common),
        "OVAClassifier": lambda e, c: OVAClassifier(max_epochs=e, compile=c, **common),
        "VIBClassifier ('kl')": lambda e, c: VIBClassifier(
            max_epochs=e, track_information=False, compile=c, **common
        ),
        "MASSClassifier (latent_dim=10)": lambda e, c: MASSClassifier(
            max_epochs=e, compile=c, **common
        ),
        "MASSClassifier (latent_dim=15)": lambda e, c: MASSClassifier(
            max_epochs=e, latent_dim=15, compile=c, **common
        ),
        "IBINNClassifier": lambda e, c: IBINNClassifier(max_epochs=e, compile=c, **common),
    }


def measure(X, y, repeats: int, epochs: int) -> dict[str, dict[str, float]]:
    """Seconds per epoch (eager, compiled) and the first compiling fit, per estimator."""
    out: dict[str, dict[str, float]] = {}
    factories = makers()
    for name, make in factories.items():
        start = time.perf_counter()
        make(1, True).fit(X, y)
        first = time.perf_counter() - start
        make(1, False).fit(X, y)  # warm-up
        out[name] = {"first_compiled_fit_seconds": first, "eager": [], "compiled": []}
    for _ in range(repeats):
        for name, make in factories.items():
            for key, flag in (("eager", False), ("compiled", True)):
                t0 = time.process_time()
                make(1, flag).fit(X, y)
                t1 = time.process_time()
                make(1 + epochs, flag).fit(X, y)
                t2 = time.process_time()
                out[name][key].append(((t2 - t1) - (t1 - t0)) / epochs)
    for values in out.values():
        values["eager"] = statistics.median(values["eager"])
        values["compiled"] = statistics.median(values["compiled"])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats of 2 epochs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\..*")
    repeats, epochs = (2, 2) if args.quick else (args.repeats, args.epochs)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    results = measure(X, y, repeats, epochs)
    soft = results["SoftmaxClassifier"]
    rows = [
        [
            name,
            f"{1e3 * r['eager']:.1f}",
            f"{1e3 * r['compiled']:.1f}",
            r["compiled"] / r["eager"],
            r["eager"] / soft["eager"],
            r["compiled"] / soft["compiled"],
            f"{r['first_compiled_fit_seconds']:.0f}",
        ]
        for name, r in results.items()
    ]
    header = [
        "estimator",
        "epoch, compile=False (ms)",
        "epoch, compile=True (ms)",
        "compiled / eager",
        "/ Softmax, eager",
        "/ Softmax, compiled",
        "first compile=True fit (s)",
    ]
    text = "\n".join(
        [
            f"Machine: {machine()}",
            f"\n### Epoch time on digits (1797 rows, batch 128), median of {repeats}, "
            f"{epochs}-epoch differences, process CPU time\n",
            markdown_table(header, rows),
        ]
    )
    path = write_results("compile" + ("_quick" if args.quick else ""), text, results)
    print(text)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
