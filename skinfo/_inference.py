"""Batched inference: run a function of the fitted module over X, batch by batch."""

from __future__ import annotations

import functools
from bisect import bisect_left
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

#: Most rows per forward pass at inference; memory does not grow with n_samples.
INFERENCE_BATCH_SIZE = 1024

#: Rows of a forward pass on the CPU: a batch is zero-padded to the smallest of
#: these that holds it (see :func:`infer` for why none is below 32).
CPU_BATCH_SIZES: tuple[int, ...] = (32, 64, 128, 256, 512, INFERENCE_BATCH_SIZE)


def batch_sizes(device: str | torch.device) -> tuple[int, ...]:
    """The padded sizes of a forward pass on ``device``, smallest first.

    :data:`CPU_BATCH_SIZES` on the CPU; elsewhere only
    :data:`INFERENCE_BATCH_SIZE` (GPU libraries pick their matrix kernels by
    batch size, and a full batch costs about what a small one does).
    """
    return CPU_BATCH_SIZES if _is_cpu(device) else (INFERENCE_BATCH_SIZE,)


@functools.lru_cache(maxsize=64)
def _is_cpu(device: str | torch.device | None) -> bool:
    # None: placement left to an accelerator (see _training.build_net); pad fully there
    return device is not None and torch.device(device).type == "cpu"


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
    safe to call from several threads.

    ``X`` runs in batches of :data:`INFERENCE_BATCH_SIZE` rows, so no forward
    pass sees more and memory does not grow with ``n_samples``. On the CPU the
    last (or only) batch is zero-padded to the smallest of
    :data:`CPU_BATCH_SIZES` that holds it: one row costs a 32-row pass, not a
    1024-row one. On other devices every batch is padded to
    :data:`INFERENCE_BATCH_SIZE`.

    Why pad at all: float32 kernels choose their blocking, their vectorized
    tails and the order of their sums by the size of the tensors, so a row
    computed alone can round differently (about 1e-7 relative) from the same
    row among a thousand. Padded to at least 32 rows, each row's outputs are
    bitwise the same whatever the other rows of the call (sklearn's subset and
    sample-order invariance): calls of up to 32 rows all run the same shapes,
    and the sizes above give every row the same bits as well, for every
    estimator and inference method (``tests/test_latency.py`` checks it).
    Smaller passes do not: below 4 rows the matrix products take another
    path, and at 8 or 16 rows the VIB and MASS heads and the IB-INN flows
    (size-dependent reductions and matrix kernels) still round some rows
    differently.

    Raises
    ------
    ValueError
        When ``finite`` and an output is NaN or infinite: the message names
        the rows, and the weights when they are the cause.
    """
    if any(m.training for m in module.modules()):  # eval() alone costs more than the check
        module.eval()
    sizes = batch_sizes(device)
    n = X.shape[0]
    if not (X.flags.c_contiguous and X.flags.writeable):
        X = np.array(X, dtype=np.float32, order="C")  # torch needs a writable buffer
    result = np.empty((0,), dtype=np.float64)
    grad_mode = torch.enable_grad() if grad else torch.no_grad()
    with grad_mode:
        for start in range(0, n, INFERENCE_BATCH_SIZE):
            rows = X[start : start + INFERENCE_BATCH_SIZE]
            count = len(rows)
            size = sizes[bisect_left(sizes, count)]
            if count < size:
                padded = np.zeros((size, X.shape[1]), dtype=np.float32)
                padded[:count] = rows
                rows = padded
            out = fn(module, torch.from_numpy(rows).to(device))[:count]
            out = out.detach().to("cpu", torch.float64).numpy()
            if start == 0:  # one output array, filled in place: memory stays flat
                result = np.empty((n, *out.shape[1:]), dtype=np.float64)
            result[start : start + count] = out
    if finite:
        check_finite_output(module, result)
    return result


def check_finite_output(module: nn.Module, result: np.ndarray) -> None:
    """Raise a ValueError naming the rows (and the weights, if to blame) of non-finite output."""
    if np.isfinite(result).all():
        return
    bad = ~np.isfinite(result).reshape(len(result), -1).all(axis=1)
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
