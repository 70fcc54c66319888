"""Deep VIB (Alemi et al.) and the IB surrogate objectives (Kirsch, Lyle & Gal)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..nn.vib import gaussian_kl_standard
from ._weights import safe_total, weighted_cross_entropy, weighted_group_variance, weighted_mean

_LOG_2PIE = math.log(2.0 * math.pi * math.e)
_REGULARIZERS = ("kl", "l2", "logvar", "cond_logvar")


def l2_regularizer(z: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Batch estimate of ``E ||Z||^2``: the (weighted) mean of ``||z_i||^2``."""
    return weighted_mean(z.pow(2).sum(-1), sample_weight)


def logvar_regularizer(
    z: torch.Tensor, eps: float = 1e-12, sample_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """``sum_i 0.5 log(2 pi e Var[Z_i])`` with the unbiased batch variance (0 if < 2 rows).

    With ``sample_weight``, ``Var`` is the unbiased weighted variance with
    reliability weights (see :func:`weighted_group_variance`), and the value
    is 0 when fewer than 2 rows have a positive weight.
    """
    if sample_weight is None:
        if z.shape[0] < 2:
            return z.sum() * 0.0
        return 0.5 * (_LOG_2PIE + torch.log(z.var(dim=0, unbiased=True) + eps)).sum()
    groups = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
    var, _, valid = weighted_group_variance(z, groups, 1, sample_weight)
    value = 0.5 * (_LOG_2PIE + torch.log(var[0] + eps)).sum()
    return torch.where(valid[0], value, torch.zeros_like(value))


def cond_logvar_regularizer(
    z: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    eps: float = 1e-12,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum_y p_hat(y) sum_i 0.5 log(2 pi e Var[Z_i | y])`` on a batch.

    ``p_hat(y) = n_y / n`` are the batch class frequencies and ``Var`` is the
    unbiased per-class variance; a class with fewer than 2 rows contributes 0.
    With ``sample_weight``, ``p_hat(y) = sum_{i: y_i = y} w_i / sum_i w_i`` and
    ``Var`` is the unbiased weighted per-class variance with reliability
    weights (see :func:`weighted_group_variance`); a class with fewer than 2
    rows of positive weight contributes 0. Computed with one scatter (no loop
    over classes).
    """
    var, total, valid = weighted_group_variance(z, y, n_classes, sample_weight)
    per_class = 0.5 * (_LOG_2PIE + torch.log(var + eps)).sum(-1)
    per_class = torch.where(valid, per_class, torch.zeros_like(per_class))
    if sample_weight is None:
        p_hat = total / z.shape[0]
    else:
        p_hat = total / safe_total(total.sum())
    return (p_hat * per_class).sum()


def _per_row_rate(module, X) -> torch.Tensor:
    """``KL(p(z|x_i) || N(0, I))`` per row, from a second pass of the encoder over ``X``."""
    if X is None or module is None or not hasattr(module, "distribution"):
        raise ValueError(
            "regularizer='kl' with sample_weight needs per-row rates: a rate of shape (B,) "
            "in the network output, or the input batch X and a module with distribution()."
        )
    mean, std = module.distribution(X)
    return gaussian_kl_standard(mean, std)


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

    With ``sample_weight`` ``w`` (shape ``(B,)``; see
    :mod:`skinfo.objectives._weights`), every term and component is weighted:

    * ``ce``: ``sum_i w_i CE_i / sum_i w_i``;
    * ``'kl'``: the rate is the weighted mean of the per-row
      ``KL(p(z|x_i) || N(0, I))``. The network may return the rate per row
      (shape ``(B,)``); a batch-mean rate (shape ``()``, what
      :class:`skinfo.nn.vib.VIBNetwork` returns) cannot be reweighted, so the
      per-row rates are then computed from ``module.distribution(X)``, a
      second pass of the encoder over the batch (same values for a
      deterministic encoder, its own gradient path; batch-norm layers in
      training mode update their running statistics twice);
    * ``'l2'``: the weighted mean of ``||z_i||^2``;
    * ``'logvar'`` (and ``izx`` without ``'kl'``): ``Var[Z_i]`` is the
      unbiased weighted variance with reliability weights,
      ``sum_j w_j (z_ji - m_i)^2 / (V1 - V2 / V1)`` around the weighted mean
      ``m``, ``V1 = sum w``, ``V2 = sum w^2`` (numpy's ``aweights``); 0 with
      fewer than 2 rows of positive weight;
    * ``'cond_logvar'``: the same weighted variance within each class, and
      the class frequencies ``p_hat(y)`` become the weighted ones
      ``sum_{i: y_i = y} w_i / sum_i w_i``; a class with fewer than 2 rows of
      positive weight contributes 0.

    ``sample_weight=None`` computes the unweighted objective.

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

    def forward(
        self, output, y, X=None, module=None, sample_weight: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        z, logits, rate = output
        w = sample_weight
        ce = weighted_cross_entropy(logits, y, w)
        terms: dict[str, torch.Tensor] = {"ce": ce.detach()}
        if self.regularizer == "kl":
            if rate is None:
                raise ValueError("regularizer='kl' needs the rate (a stochastic encoder).")
            if rate.ndim == 0 and w is not None:
                rate = _per_row_rate(module, None if X is None else X.to(z.device))
            reg = rate if rate.ndim == 0 else weighted_mean(rate, w)
            terms["rate"] = reg.detach()
            if self.track_information:
                terms["izx"] = terms["rate"]
        else:
            if self.regularizer == "l2":
                reg = l2_regularizer(z, w)
            elif self.regularizer == "logvar":
                reg = logvar_regularizer(z, sample_weight=w)
            else:
                reg = cond_logvar_regularizer(z, y, self.n_classes, sample_weight=w)
            terms["reg"] = reg.detach()
            if self.track_information:
                terms["izx"] = logvar_regularizer(z.detach(), sample_weight=w)
        terms["loss"] = torch.add(ce, reg, alpha=self.beta)
        return terms
