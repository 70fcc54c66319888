"""Fit and predict time of the estimators against a hand-written PyTorch loop.

The hand-written loop trains the same module with the same objective, data,
batch size, optimizer and number of epochs, with nothing else: no history, no
callbacks, no validation. The ratio ``estimator / loop`` is the overhead of
the sklearn/skorch layer. Every timing is a median over interleaved repeats in
one process.

Run: ``python -m benchmarks.speed [--quick]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits

from skinfo import OVAClassifier
from skinfo._base import torch_seed

from ._common import interleaved_medians, machine, markdown_table, write_results


def hand_written_fit(est, X: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    """Train ``est``'s module and objective with a plain PyTorch loop."""
    y_enc = np.unique(y, return_inverse=True)[1]
    est.classes_ = np.unique(y)
    with torch_seed(0, "cpu"):
        module = est._build_module(X, y_enc)
        criterion = est._build_criterion(X, y_enc)
        optimizer = torch.optim.Adam(module.parameters(), lr=est.lr)
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
    table = markdown_table(header, rows)
    note = (
        "\n\nDigits (1797 x 64), MLP 64-400-200, batch 128, 5 epochs, Adam; "
        f"medians of {repeats} interleaved repeats; {machine()}."
    )
    path = write_results("speed", table + note, data)
    print(table + note)
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
