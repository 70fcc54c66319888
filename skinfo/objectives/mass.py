"""The MASS learning objective (Cvitkovic & Koliander, 2019, Section 3)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._weights import weighted_mean


class MASSLoss(nn.Module):
    """Empirical MASS loss ``L = CE + beta * (H - logJ)`` on a batch.

    With ``z_i = f(x_i)`` and the variational head ``q`` of the module::

        CE   = mean_i -log q(y_i | z_i)          (estimates H(Y | f(X)))
        H    = mean_i -log q(z_i)                (estimates H(f(X)))
        logJ = mean_{i in S} log J_f(x_i)        (estimates E[log J_f(X)])
        loss = CE + beta * H - beta * logJ

    ``q(y | z)`` is Bayes' rule on ``q(z | y) p(y)`` and ``q(z) = sum_y q(z | y)
    p(y)``, all in log space. ``S`` is a random subset of
    ``ceil(jacobian_fraction * B)`` rows of the batch (the paper: a ``1/K``
    fraction); its mean is an unbiased estimate of the batch mean. With
    ``beta == 0`` no Jacobian is computed and the ``log_jacobian`` component is
    not recorded.

    Components (without ``beta``, as in the paper's Figure 2):
    ``cross_entropy``, ``entropy``, ``log_jacobian``.

    With ``sample_weight`` ``w`` (shape ``(B,)``; see
    :mod:`skinfo.objectives._weights`), each term and component is a
    weighted mean: ``CE = sum_i w_i (-log q(y_i | z_i)) / sum_i w_i``,
    ``H = sum_i w_i (-log q(z_i)) / sum_i w_i`` and
    ``logJ = sum_{i in S} w_i log J_f(x_i) / sum_{i in S} w_i``, the
    subsample's rows weighted by their own weights and normalized over the
    subsample (a ratio estimate of the weighted batch mean). ``S`` is drawn
    exactly as without weights (uniformly, whatever the weights); if every
    row of ``S`` has weight 0, ``logJ`` is 0 for that batch.

    Parameters
    ----------
    beta : float
        Weight of the entropy and log-Jacobian terms.
    jacobian_fraction : float in (0, 1]
        Fraction of each batch on which ``log J_f`` is estimated.

    Examples
    --------
    >>> import torch
    >>> from skinfo.nn.encoders import MLP
    >>> from skinfo.nn.gmm import ClassConditionalGMM, MASSNetwork
    >>> _ = torch.manual_seed(0)
    >>> net = MASSNetwork(MLP(4, (8,)), 8, ClassConditionalGMM(2, n_classes=3, n_components=2))
    >>> x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> terms = MASSLoss(beta=0.1, jacobian_fraction=0.5)(net(x), y, X=x, module=net)
    >>> sorted(terms)
    ['cross_entropy', 'entropy', 'log_jacobian', 'loss']
    """

    def __init__(self, beta: float, jacobian_fraction: float) -> None:
        super().__init__()
        self.beta = float(beta)
        self.jacobian_fraction = float(jacobian_fraction)

    def forward(
        self, output, y, X=None, module=None, sample_weight: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        z, hidden = output
        w = sample_weight
        head = module.head
        log_joint = head.log_joint(z)  # (B, K): log q(z|y) + log p(y)
        log_marginal = torch.logsumexp(log_joint, dim=-1)  # log q(z)
        log_true = log_joint.gather(1, y.view(-1, 1)).squeeze(1)
        cross_entropy = weighted_mean(log_marginal - log_true, w)  # -log q(y|z)
        entropy = -weighted_mean(log_marginal, w)
        terms = {"cross_entropy": cross_entropy.detach(), "entropy": entropy.detach()}
        if self.beta == 0:
            return {"loss": cross_entropy, **terms}
        n_rows = z.shape[0]
        n_sub = min(n_rows, max(1, math.ceil(self.jacobian_fraction * n_rows)))
        rows = torch.randperm(n_rows, device=z.device)[:n_sub]
        x = X.to(z.device) if X is not None else None
        w_rows = None if w is None else w.to(z.device)[rows]
        log_jacobian = weighted_mean(module.log_jacobian(x, rows, hidden), w_rows)
        loss = cross_entropy + self.beta * (entropy - log_jacobian)
        return {"loss": loss, **terms, "log_jacobian": log_jacobian.detach()}
