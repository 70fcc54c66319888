"""The IB-INN loss (Ardizzone et al. 2020, Eq. 8/9) and the class-NLL baseline."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..nn.latent_gmm import LOG_2PI
from ._weights import weighted_mean


class IBINNLoss(nn.Module):
    """Information-bottleneck loss of an invertible network with a latent GMM.

    The criterion receives the module's output ``(z, log_det)`` with
    ``z = g(x + eps)`` and ``log_det = log|det J_g(x + eps)|``, and the
    module (for the GMM ``module.gmm``). Per sample, in nats:

    * ``L_X = -log q(z) - log|det J|`` with
      ``log q(z) = logsumexp_y(log w_y - 0.5 ||z - mu_y||^2) - d/2 log(2 pi)``
      (Eq. 4 / Eq. 54; the appendix's Eq. 55 prints the logsumexp with flipped
      signs, which is not ``-log q(z)``);
    * ``L_Y = sum_y t_y log_softmax_y(log w - 0.5 ||z - mu||^2)``, the GMM's
      log-posterior (Eq. 7) with label-smoothed targets ``t`` (``1 - s`` on the
      true class, ``s / K`` spread over all classes). The class weights enter
      ``L_Y`` detached, so a learned prior is trained by ``L_X`` only
      (appendix B).

    ``loss='ib'`` minimizes the rebalanced Eq. 9,
    ``2 / (1 + beta) * (mean L_X / D - beta * mean L_Y)`` (``beta`` is the
    paper's ``gamma = beta_IB / D``), with the limit ``-2 mean L_Y`` at
    ``beta = inf``; ``rebalance=False`` gives Eq. 8 with ``beta`` as
    ``beta_IB``: ``mean L_X - beta * mean L_Y``. ``loss='class_nll'``
    minimizes the class-conditional NLL ``-log q(z | y) - log|det J|``
    divided by ``D`` (the standard generative classifier).

    Components: ``L_X``, ``L_Y`` (batch means, nats), ``bits_per_dim``
    (``L_X / (D log 2)``) and, for class-NLL, ``class_nll``.

    With ``sample_weight`` ``w`` (shape ``(B,)``; see
    :mod:`skinfo.objectives._weights`), every batch mean above is the
    weighted mean ``sum_i w_i l_i / sum_i w_i`` of the per-sample values:
    ``L_X``, ``L_Y`` and the class-NLL, hence also ``bits_per_dim`` and the
    loss (Eq. 8/9 combine the weighted means).

    Parameters
    ----------
    beta : float
        The paper's ``gamma`` (``np.inf`` allowed).
    n_dims : int
        ``D = dim(X)``.
    label_smoothing : float
    loss : {'ib', 'class_nll'}
    rebalance : bool

    Examples
    --------
    >>> import torch
    >>> from skinfo.nn.latent_gmm import LatentGMM
    >>> class M(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.gmm = LatentGMM(2, 2, torch.ones(2) / 2)
    >>> z, log_det = torch.zeros(3, 2), torch.zeros(3)
    >>> terms = IBINNLoss(beta=1.0, n_dims=2)((z, log_det), torch.tensor([0, 1, 0]), module=M())
    >>> sorted(terms)
    ['L_X', 'L_Y', 'bits_per_dim', 'loss']
    """

    def __init__(
        self,
        beta: float = 1.0,
        n_dims: int = 1,
        label_smoothing: float = 0.05,
        loss: str = "ib",
        rebalance: bool = True,
    ) -> None:
        super().__init__()
        self.beta = float(beta)
        self.n_dims = int(n_dims)
        self.label_smoothing = float(label_smoothing)
        self.loss = loss
        self.rebalance = rebalance

    def forward(
        self, y_pred, y, X=None, module=None, sample_weight: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        z, log_det = y_pred
        w = sample_weight
        gmm = module.gmm
        neg_sq = gmm.neg_half_sq_dist(z)  # (B, K)
        log_w = gmm.log_weights().to(z.dtype)
        const = 0.5 * z.shape[1] * LOG_2PI
        log_qz = torch.logsumexp(neg_sq + log_w, dim=-1) - const
        l_x = weighted_mean(-log_qz - log_det, w)
        log_post = torch.log_softmax(neg_sq + log_w.detach(), dim=-1)
        k = log_post.shape[1]
        s = self.label_smoothing
        targets = torch.full_like(log_post, s / k)
        targets.scatter_add_(1, y.view(-1, 1), torch.full_like(log_post[:, :1], 1.0 - s))
        l_y = weighted_mean((targets * log_post).sum(-1), w)
        terms = {
            "L_X": l_x.detach(),
            "L_Y": l_y.detach(),
            "bits_per_dim": l_x.detach() / (self.n_dims * math.log(2)),
        }
        if self.loss == "class_nll":
            log_true = neg_sq.gather(1, y.view(-1, 1)).squeeze(1)
            nll = weighted_mean(-(log_true - const) - log_det, w)
            terms["class_nll"] = nll.detach()
            terms["loss"] = nll / self.n_dims
            return terms
        beta = self.beta
        if not self.rebalance:
            loss = l_x - beta * l_y if math.isfinite(beta) else -l_y
        elif math.isinf(beta):
            loss = -2.0 * l_y
        else:
            loss = 2.0 / (1.0 + beta) * (l_x / self.n_dims - beta * l_y)
        terms["loss"] = loss
        return terms
