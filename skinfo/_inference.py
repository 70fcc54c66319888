"""Batched inference: run a function of the fitted module over X, batch by batch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

#: Rows per forward pass at inference; memory does not grow with n_samples.
INFERENCE_BATCH_SIZE = 1024


def infer(
    module: nn.Module,
    device: str | torch.device,
    X: np.ndarray,
    fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    *,
    grad: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Apply ``fn(module, x_batch)`` to float32 ``X`` batch-wise; float64 numpy out.

    Runs in evaluation mode, under ``torch.no_grad()`` unless ``grad`` is True
    (for scores that differentiate with respect to the input). It draws no
    random numbers and never touches torch's global random state, so it is
    safe to call from several threads. Every forward pass sees exactly
    :data:`INFERENCE_BATCH_SIZE` rows (the last batch is zero-padded): float32
    matrix kernels then round each row the same way whatever the batch, so
    outputs do not depend on which other rows are predicted with it
    (sklearn's subset invariance).

    Raises
    ------
    ValueError
        When ``finite`` and an output is NaN or infinite: the message names
        the rows, and the weights when they are the cause.
    """
    module.eval()
    size = INFERENCE_BATCH_SIZE
    if not (X.flags.c_contiguous and X.flags.writeable):
        X = np.array(X, dtype=np.float32, order="C")  # torch needs a writable buffer
    result = np.empty((0,), dtype=np.float64)
    grad_mode = torch.enable_grad() if grad else torch.no_grad()
    with grad_mode:
        for start in range(0, X.shape[0], size):
            rows = X[start : start + size]
            if len(rows) < size:
                padded = np.zeros((size, X.shape[1]), dtype=np.float32)
                padded[: len(rows)] = rows
                rows = padded
            out = fn(module, torch.from_numpy(rows).to(device))[: min(size, len(X) - start)]
            out = out.detach().to("cpu", torch.float64).numpy()
            if start == 0:  # one output array, filled in place: memory stays flat
                result = np.empty((len(X), *out.shape[1:]), dtype=np.float64)
            result[start : start + len(out)] = out
    if finite:
        check_finite_output(module, result)
    return result


def check_finite_output(module: nn.Module, result: np.ndarray) -> None:
    """Raise a ValueError naming the rows (and the weights, if to blame) of non-finite output."""
    bad = ~np.isfinite(result).reshape(len(result), -1).all(axis=1)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
    broken = [name for name, p in module.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise ValueError(
            f"The model gave NaN or infinite values for {len(rows)} of {len(result)} rows "
            f"because its weights are not finite ({', '.join(broken[:5])}): the fit that "
            "produced them diverged. Refit with a smaller lr or standardized inputs."
        )
    raise ValueError(
        f"The model gave NaN or infinite values for {len(rows)} of {len(result)} rows "
        f"(rows {shown}): these inputs are far outside the training range (e.g. |x| ~ "
        "1e30) and overflow float32; rescale them like the training data."
    )
