"""Fit and predict time of the estimators against a hand-written PyTorch loop.

The hand-written loop trains the same module with the same objective, data,
batch size, optimizer (Adam with the estimator's per-group learning rates and
the same update kernel) and number of epochs, with nothing else: no history,
no callbacks, no validation. The ratio ``estimator / loop`` is the overhead of
the sklearn/skorch layer. Every timing is a median over interleaved repeats in
one process.

The latency part times ``predict_proba`` on one row against scikit-learn's
``MLPClassifier`` with the same hidden widths, and against the same estimator
with every forward pass padded to the full inference batch of 1024 rows (what
runs on a GPU), plus a large ``predict_proba`` both ways.

Run: ``python -m benchmarks.speed [--quick]``.
"""

from __future__ import annotations

import argparse
import warnings
from contextlib import contextmanager
from fnmatch import fnmatch

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from skinfo import MASSClassifier, OVAClassifier, SoftmaxClassifier, _inference
from skinfo._training import torch_seed, update_kernel_options
from skinfo.nn.encoders import SmallCNN

from ._common import interleaved_medians, machine, markdown_table, write_results


def _param_groups(module: torch.nn.Module, patterns: list) -> list[dict]:
    """torch parameter groups from skorch-style ``[(pattern, options), ...]``; first match wins."""
    groups: list[dict] = [{"params": []}] + [{"params": [], **opts} for _, opts in patterns]
    for name, param in module.named_parameters():
        index = next((i + 1 for i, (pat, _) in enumerate(patterns) if fnmatch(name, pat)), 0)
        groups[index]["params"].append(param)
    return [group for group in groups if group["params"]]


def hand_written_fit(est, X: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    """Train ``est``'s module and objective with a plain PyTorch loop."""
    y_enc = np.unique(y, return_inverse=True)[1]
    est.classes_ = np.unique(y)
    with torch_seed(0, "cpu"):
        module = est._build_module(X, y_enc)
        criterion = est._build_criterion(X, y_enc)
        optimizer = torch.optim.Adam(
            _param_groups(module, est._param_groups()),
            lr=est.lr,
            **update_kernel_options(torch.optim.Adam, "cpu"),
        )
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(y_enc)
        generator = torch.Generator().manual_seed(0)
        module.train()
        for _ in range(est.max_epochs):
            order = torch.randperm(len(X_t), generator=generator)
            for start in range(0, len(X_t), est.batch_size):
                rows = order[start : start + est.batch_size]
                optimizer.zero_grad()
                loss = criterion(module(X_t[rows]), y_t[rows])["loss"]
                loss.backward()
                optimizer.step()
    return module


def hand_written_predict_proba(module: torch.nn.Module, X: np.ndarray, batch: int) -> np.ndarray:
    """Plain batched inference: ``log_proba`` per batch, exponentiated."""
    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(X), batch):
            out.append(module.log_proba(torch.from_numpy(X[start : start + batch])).exp())
    return torch.cat(out).double().numpy()


ESTIMATORS = {
    "SoftmaxClassifier": {},
    "OVAClassifier": {"logits": "distance"},
    "MASSClassifier": {},
    "VIBClassifier": {},
    "IBINNClassifier": {},
    "ApproxMassFlowDetector": {},
}


def per_estimator(X: np.ndarray, y: np.ndarray, repeats: int, n_predict: int) -> list[list]:
    """Fit (5 epochs) and inference time of every estimator over SoftmaxClassifier's."""
    import skinfo

    big = np.tile(X, (n_predict // len(X) + 1, 1))[:n_predict]
    fitted, funcs_fit, funcs_predict = {}, {}, {}
    for name, params in ESTIMATORS.items():
        try:
            cls = getattr(skinfo, name)
        except (AttributeError, ImportError):
            continue
        est = cls(max_epochs=5, random_state=0, device="cpu", **params)
        try:
            fitted[name] = est.fit(X, y)
        except Exception as error:  # report the others; say which one failed and why
            print(f"skipped {name}: {type(error).__name__}: {error}")
            continue
        funcs_fit[name] = lambda est=est: est.fit(X, y)
        funcs_predict[name] = lambda est=est: est.score_samples(big)
    fit_times = interleaved_medians(funcs_fit, repeats)
    predict_times = interleaved_medians(funcs_predict, repeats)
    base_fit, base_predict = fit_times["SoftmaxClassifier"], predict_times["SoftmaxClassifier"]
    return [
        [
            name,
            fit_times[name],
            fit_times[name] / base_fit,
            predict_times[name],
            predict_times[name] / base_predict,
        ]
        for name in fit_times
    ]


def fit_scaling(X: np.ndarray, y: np.ndarray, repeats: int) -> list[list]:
    """Fit time of SoftmaxClassifier and OVAClassifier on 1x, 2x and 4x the data."""
    rows = []
    for cls_name in ("SoftmaxClassifier", "OVAClassifier"):
        import skinfo

        cls = getattr(skinfo, cls_name)
        funcs = {}
        for factor in (1, 2, 4):
            Xf, yf = np.tile(X, (factor, 1)), np.tile(y, factor)
            est = cls(max_epochs=3, random_state=0, device="cpu")
            funcs[factor] = lambda est=est, Xf=Xf, yf=yf: est.fit(Xf, yf)
        times = interleaved_medians(funcs, repeats)
        rows.append([cls_name, *(times[f] / times[1] for f in (1, 2, 4))])
    return rows


_MEMORY_CHILD = """
import os, sys, threading, time, numpy as np
from sklearn.datasets import load_digits
from skinfo import SoftmaxClassifier
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page / 2**20
X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
clf = SoftmaxClassifier(max_epochs=1, random_state=0, device="cpu").fit(X, y)
big = np.tile(X, (int(sys.argv[1]) // len(X) + 1, 1))[: int(sys.argv[1])]
clf.predict_proba(big[:2000])
before, peak, done = rss(), [0.0], [False]
def watch():
    while not done[0]:
        peak[0] = max(peak[0], rss())
        time.sleep(0.0005)
thread = threading.Thread(target=watch)
thread.start()
proba = clf.predict_proba(big)
done[0] = True
thread.join()
print(peak[0] - before, big.nbytes / 2**20, proba.nbytes / 2**20)
"""


def predict_memory() -> list[list]:
    """Peak resident memory added by predict_proba on n rows (fresh process per n).

    A thread samples the resident set size every 0.5 ms during the call.
    """
    import subprocess
    import sys

    rows = []
    for n in (50_000, 100_000, 200_000):
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(n)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        growth, input_mb, output_mb = (float(v) for v in out)
        rows.append([n, growth, input_mb, output_mb, growth - output_mb])
    return rows


@contextmanager
def padded_to_full_batches():
    """Pad every CPU forward pass to ``INFERENCE_BATCH_SIZE`` rows, whatever the input size."""
    saved = _inference.CPU_BATCH_SIZES
    _inference.CPU_BATCH_SIZES = (_inference.INFERENCE_BATCH_SIZE,)
    try:
        yield
    finally:
        _inference.CPU_BATCH_SIZES = saved


def latency(
    repeats: int = 300, n_large: int = 100_000, max_epochs: int = 5, large_repeats: int = 7
) -> tuple[list[list], dict]:
    """One-row and large ``predict_proba`` times, with CPU pass sizes and with full passes.

    Digits, MLP 64-400-200 (``MLPClassifier`` with ``hidden_layer_sizes=(400, 200)``
    fitted ``max_epochs`` iterations, ``SoftmaxClassifier`` and ``MASSClassifier``
    with their default encoder) and a :class:`~skinfo.nn.SmallCNN` encoder on the
    8x8 images. Returns the table rows ``[model, one-row ms, ratio to
    MLPClassifier, ms with full 1024-row passes, speed-up]`` and the raw data.
    """
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    fast = dict(max_epochs=max_epochs, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(400, 200), max_iter=max_epochs, random_state=0)
        mlp.fit(X, y)
    models = {
        "SoftmaxClassifier": SoftmaxClassifier(**fast),
        "MASSClassifier": MASSClassifier(**fast),
        "SoftmaxClassifier + SmallCNN": SoftmaxClassifier(
            encoder=SmallCNN, input_shape=(1, 8, 8), **fast
        ),
    }
    row = X[:1]
    for est in models.values():
        est.fit(X, y)

    def padded(est, rows):
        with padded_to_full_batches():
            return est.predict_proba(rows)

    baseline = "MLPClassifier (sklearn)"
    now = interleaved_medians(
        {
            baseline: lambda: mlp.predict_proba(row),
            **{name: lambda est=est: est.predict_proba(row) for name, est in models.items()},
        },
        repeats,
    )
    # apart: a full pass costs up to ~100 ms, and it would evict the small calls' caches
    before = interleaved_medians(
        {name: lambda est=est: padded(est, row) for name, est in models.items()},
        max(3, repeats // 10),
    )
    rows = [[baseline, 1e3 * now[baseline], 1.0, "", ""]]
    for name in models:
        ratio = now[name] / now[baseline]
        rows.append([name, 1e3 * now[name], ratio, 1e3 * before[name], before[name] / now[name]])
    big = np.tile(X, (n_large // len(X) + 1, 1))[:n_large]
    softmax = models["SoftmaxClassifier"]
    large = interleaved_medians(
        {"new": lambda: softmax.predict_proba(big), "old": lambda: padded(softmax, big)},
        large_repeats,
    )
    data = {
        "one_row_s": now,
        "one_row_padded_s": before,
        "large": {"rows": n_large, "new_s": large["new"], "old_s": large["old"]},
    }
    return rows, data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and rows")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    n_predict = 50_000 if args.quick else 200_000

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    big = np.tile(X, (n_predict // len(X) + 1, 1))[:n_predict]
    rows, data = [], {}
    for logits in ("distance", "affine"):
        est = OVAClassifier(
            logits=logits, max_epochs=5, batch_size=128, random_state=0, device="cpu"
        )
        loop_est = OVAClassifier(logits=logits, max_epochs=5, batch_size=128, device="cpu")
        fitted = est.fit(X, y)
        module = hand_written_fit(loop_est, X, y)
        fit_times = interleaved_medians(
            {
                "skinfo": lambda est=est: est.fit(X, y),
                "loop": lambda est=loop_est: hand_written_fit(est, X, y),
            },
            repeats,
        )
        predict_times = interleaved_medians(
            {
                "skinfo": lambda est=fitted: est.predict_proba(big),
                "loop": lambda module=module: hand_written_predict_proba(module, big, 1024),
            },
            repeats,
        )
        fit_ratio = fit_times["skinfo"] / fit_times["loop"]
        predict_ratio = predict_times["skinfo"] / predict_times["loop"]
        rows.append(
            [
                f"OVAClassifier({logits})",
                fit_times["skinfo"],
                fit_times["loop"],
                fit_ratio,
                predict_times["skinfo"],
                predict_times["loop"],
                predict_ratio,
            ]
        )
        data[f"ova_{logits}"] = {
            "fit_s": fit_times,
            "predict_proba_s": predict_times,
            "fit_ratio": fit_ratio,
            "predict_ratio": predict_ratio,
        }
    header = [
        "estimator",
        "fit s",
        "loop fit s",
        "fit ratio",
        f"predict_proba s ({n_predict} rows)",
        "loop predict s",
        "predict ratio",
    ]
    table = "## skinfo vs a hand-written PyTorch loop\n\n" + markdown_table(header, rows)
    table += (
        "\n\nDigits (1797 x 64), MLP 64-400-200, batch 128, 5 epochs, Adam; "
        f"medians of {repeats} interleaved repeats."
    )
    n_small = 20_000 if args.quick else 50_000
    est_rows = per_estimator(X, y, repeats, n_small)
    data["per_estimator"] = est_rows
    table += "\n\n## Every estimator over SoftmaxClassifier\n\n" + markdown_table(
        ["estimator", "fit s (5 epochs)", "fit ratio", f"score_samples s ({n_small})", "ratio"],
        est_rows,
    )
    scaling = fit_scaling(X, y, repeats)
    data["fit_scaling"] = scaling
    table += "\n\n## Fit time with 1x, 2x, 4x the data (relative to 1x)\n\n" + markdown_table(
        ["estimator", "1x", "2x", "4x"], scaling
    )
    memory = predict_memory()
    data["predict_memory"] = memory
    table += (
        "\n\n## Peak memory added by predict_proba (MiB, fresh process per n)\n\n"
        + markdown_table(
            ["rows", "peak RSS growth", "input size", "output size", "growth - output"], memory
        )
        + "\n\nThe growth beyond the output array itself stays flat as n grows: inference "
        "runs in fixed batches."
    )
    latency_repeats = 60 if args.quick else 300
    n_large = 20_000 if args.quick else 100_000
    latency_rows, data["latency"] = latency(latency_repeats, n_large, large_repeats=repeats)
    large = data["latency"]["large"]
    table += (
        "\n\n## One-row predict_proba latency\n\n"
        + markdown_table(
            [
                "model",
                "one row, ms",
                "ratio to MLPClassifier",
                "one row padded to 1024, ms",
                "speed-up",
            ],
            latency_rows,
        )
        + f"\n\nDigits, hidden widths (400, 200) (`MLPClassifier` uses relu, skinfo elu), "
        f"SmallCNN on the 8x8 images; medians of {latency_repeats} interleaved calls "
        f"({max(3, latency_repeats // 10)} for the padded column, timed apart). "
        "`predict_proba` on "
        f"{n_large} rows: {large['new_s']:.3f} s, {large['old_s']:.3f} s with every pass "
        f"padded to 1024 rows (ratio {large['new_s'] / large['old_s']:.3f}; medians of "
        f"{repeats})."
    )
    table += f"\n\n{machine()}."
    path = write_results("speed", table, data)
    print(table)
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
