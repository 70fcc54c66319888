"""Deep VIB (Alemi et al.) and the IB surrogate objectives (Kirsch, Lyle & Gal)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LOG_2PIE = math.log(2.0 * math.pi * math.e)
_REGULARIZERS = ("kl", "l2", "logvar", "cond_logvar")


def l2_regularizer(z: torch.Tensor) -> torch.Tensor:
    """Batch estimate of ``E ||Z||^2``."""
    return z.pow(2).sum(-1).mean()


def logvar_regularizer(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``sum_i 0.5 log(2 pi e Var[Z_i])`` with the unbiased batch variance (0 if < 2 rows)."""
    if z.shape[0] < 2:
        return z.sum() * 0.0
    return 0.5 * (_LOG_2PIE + torch.log(z.var(dim=0, unbiased=True) + eps)).sum()


def cond_logvar_regularizer(
    z: torch.Tensor, y: torch.Tensor, n_classes: int, eps: float = 1e-12
) -> torch.Tensor:
    """``sum_y p_hat(y) sum_i 0.5 log(2 pi e Var[Z_i | y])`` on a batch.

    ``p_hat(y) = n_y / n`` are the batch class frequencies and ``Var`` is the
    unbiased per-class variance; a class with fewer than 2 rows contributes 0.
    Computed with one scatter (no loop over classes).
    """
    n = z.shape[0]
    onehot = F.one_hot(y, n_classes).to(z.dtype)  # (n, C)
    counts = onehot.sum(0)  # (C,)
    safe = counts.clamp(min=1.0)
    means = onehot.T @ z / safe.unsqueeze(1)  # (C, K)
    sq = onehot.T @ (z - means[y]).pow(2)  # (C, K)
    valid = counts >= 2
    var = sq / (counts - 1.0).clamp(min=1.0).unsqueeze(1)
    per_class = 0.5 * (_LOG_2PIE + torch.log(var + eps)).sum(-1)
    per_class = torch.where(valid, per_class, torch.zeros_like(per_class))
    return (counts / n * per_class).sum()


class VIBLoss(nn.Module):
    """``CE(y, decoder(z)) + beta * R`` with one sample of Z per row.

    The input is the network output ``(z, logits, rate)`` of
    :class:`skinfo.nn.vib.VIBNetwork`. ``R`` is the batch mean of the rate
    ``KL(p(z|x) || N(0, I))`` (``'kl'``, computed by the network) or a surrogate
    regularizer on the noisy Z (``'l2'``, ``'logvar'``, ``'cond_logvar'``).
    Components: ``ce``, ``rate`` (for ``'kl'``) or ``reg``, and with
    ``track_information`` ``izx``: an upper bound on I(X;Z) in nats (the rate
    for ``'kl'``; ``sum_i 0.5 log(2 pi e Var[Z_i])`` = the Gaussian bound on
    H[Z] = I(X;Z) for the deterministic encoders with zero-entropy noise).

    Examples
    --------
    >>> import torch
    >>> loss = VIBLoss("kl", beta=1.0, n_classes=2)
    >>> out = (torch.zeros(2, 3), torch.zeros(2, 2), torch.tensor(0.0))  # z, logits, rate
    >>> round(float(loss(out, torch.tensor([0, 1]))["loss"]), 4)  # log 2 + rate 0
    0.6931
    """

    def __init__(
        self, regularizer: str, beta: float, n_classes: int, track_information: bool = False
    ) -> None:
        super().__init__()
        if regularizer not in _REGULARIZERS:
            raise ValueError(f"regularizer must be one of {_REGULARIZERS}, got {regularizer!r}.")
        self.regularizer = regularizer
        self.beta = float(beta)
        self.n_classes = n_classes
        self.track_information = track_information

    def forward(self, output, y, X=None, module=None) -> dict[str, torch.Tensor]:
        z, logits, rate = output
        ce = F.cross_entropy(logits, y)
        terms: dict[str, torch.Tensor] = {"ce": ce.detach()}
        if self.regularizer == "kl":
            if rate is None:
                raise ValueError("regularizer='kl' needs the rate (a stochastic encoder).")
            reg = rate
            terms["rate"] = reg.detach()
            if self.track_information:
                terms["izx"] = terms["rate"]
        else:
            if self.regularizer == "l2":
                reg = l2_regularizer(z)
            elif self.regularizer == "logvar":
                reg = logvar_regularizer(z)
            else:
                reg = cond_logvar_regularizer(z, y, self.n_classes)
            terms["reg"] = reg.detach()
            if self.track_information:
                terms["izx"] = logvar_regularizer(z.detach())
        terms["loss"] = torch.add(ce, reg, alpha=self.beta)
        return terms
