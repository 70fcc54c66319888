"""Softmax cross-entropy and the one-vs-all loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.heads import ova_log_complement, ova_log_proba
from ._weights import weighted_cross_entropy, weighted_mean


class SoftmaxCrossEntropy(nn.Module):
    """Mean softmax cross-entropy ``-log_softmax(logits)[y]`` (the SoftmaxCE baseline).

    With ``label_smoothing = s > 0`` the target of each sample is
    ``(1 - s) onehot(y) + s / K`` (torch's ``cross_entropy(label_smoothing=s)``),
    so the loss is ``(1 - s) (-log p_y) + s mean_k (-log p_k)``.

    Components: ``ce`` (the loss above) and, with ``label_smoothing > 0``,
    ``nll`` (the unsmoothed ``-log p_y``).

    With ``sample_weight`` ``w`` (shape ``(B,)``), the loss and both
    components are weighted means over the rows, ``sum_i w_i l_i / sum_i w_i``
    (see :mod:`skinfo.objectives._weights`); ``None`` gives the plain means.

    Parameters
    ----------
    label_smoothing : float in [0, 1), default=0.0
        Weight ``s`` of the uniform distribution in the targets.

    Examples
    --------
    >>> import torch
    >>> terms = SoftmaxCrossEntropy()(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    >>> round(float(terms["loss"]), 4)  # log 2
    0.6931
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(
        self, logits, y, X=None, module=None, sample_weight: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        s = self.label_smoothing
        ce = weighted_cross_entropy(logits, y, sample_weight, label_smoothing=s)
        terms = {"loss": ce, "ce": ce.detach()}
        if s > 0:
            terms["nll"] = weighted_cross_entropy(logits.detach(), y, sample_weight)
        return terms


class OneVsAllLoss(nn.Module):
    """One-vs-all loss of Padhy et al. (2020), Eq. 7, averaged over the batch.

    ``-log p_y(x) - sum_{k != y} log(1 - p_k(x))`` where ``p_k`` is the
    one-vs-all probability of Eq. 5 (affine, ``sigmoid(z_k)``) or Eq. 6
    (distance, ``2 sigmoid(z_k)`` with ``z_k = -||f(x) - w_k||``). Both
    logarithms are evaluated stably (see
    :func:`skinfo.nn.heads.ova_log_complement`).

    Components: ``positive`` (mean ``-log p_y``) and ``negative`` (mean
    ``-sum_{k != y} log(1 - p_k)``).

    With ``sample_weight`` ``w`` (shape ``(B,)``), both terms (and so the
    loss) are weighted means over the rows, ``sum_i w_i l_i / sum_i w_i``
    (see :mod:`skinfo.objectives._weights`); ``None`` gives the plain means.

    Parameters
    ----------
    distance : bool
        Whether the logits are distance logits (factor-2 sigmoid).

    Examples
    --------
    >>> import torch
    >>> loss = OneVsAllLoss(distance=False)
    >>> terms = loss(torch.zeros(1, 3), torch.tensor([0]))
    >>> round(float(terms["loss"]), 4)  # 3 * log 2
    2.0794
    """

    def __init__(self, distance: bool) -> None:
        super().__init__()
        self.distance = distance

    def forward(
        self, logits, y, X=None, module=None, sample_weight: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        w = sample_weight
        onehot = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        positive = -weighted_mean((onehot * ova_log_proba(logits, self.distance)).sum(-1), w)
        log_complement = ova_log_complement(logits, self.distance)
        negative = -weighted_mean(((1 - onehot) * log_complement).sum(-1), w)
        loss = positive + negative
        return {"loss": loss, "positive": positive.detach(), "negative": negative.detach()}
