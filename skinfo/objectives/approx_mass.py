"""Approximate-mass penalized maximum likelihood (Chali et al., CVPRW 2023, Eq. 2)."""

from __future__ import annotations

import torch
from torch import nn

from ..nn.realnvp import approximate_mass
from ._weights import weighted_mean


class ApproxMassLoss(nn.Module):
    """``-mean_i log p(x_i) + alpha * mean_i ||d log p(x_i) / d x_i||``.

    Chali et al. (2023), Eq. 2, with ``L(x) = log p(x)``. The input gradients
    are per sample (``autograd.grad(log_p.sum(), x, create_graph=True)``: rows
    are independent, so row ``i`` of that gradient is ``d log p(x_i) / d x_i``),
    the double backpropagation of the paper. Differentiating the batch *mean*
    instead, as the reference code does, divides every norm by the batch size
    ``B``: a weight ``a`` there is ``alpha = a / B`` here. With
    ``alpha=0`` no input gradient is taken (plain maximum likelihood, one
    backward pass); the mass is then not logged. In training mode, Gaussian
    dequantization noise of standard deviation ``noise`` is added to the batch
    before the flow sees it.

    Components: ``nll`` (mean ``-log p``) and, when ``alpha > 0``, ``mass``.

    With ``sample_weight`` ``w`` (shape ``(B,)``; see
    :mod:`skinfo.objectives._weights`), both means are weighted:
    ``nll = -sum_i w_i log p(x_i) / sum_i w_i`` and
    ``mass = sum_i w_i ||d log p(x_i) / d x_i|| / sum_i w_i``. The input
    gradients themselves stay unweighted per-row gradients (the weights scale
    each row's penalty, not its gradient norm).

    Parameters
    ----------
    alpha : float
        Weight of the approximate-mass penalty.
    noise : float
        Standard deviation of the dequantization noise (training only).

    Examples
    --------
    >>> import torch
    >>> from skinfo.nn.realnvp import RealNVP, FlowTrainingModule
    >>> module = FlowTrainingModule(RealNVP(2, n_blocks=2, hidden_width=4)).eval()
    >>> x = torch.zeros(3, 2)
    >>> terms = ApproxMassLoss(alpha=1.0, noise=0.0)(x, None, X=x, module=module)
    >>> round(float(terms["nll"]), 4)  # log(2 pi): identity flow at init, x = 0
    1.8379
    >>> round(float(terms["mass"]), 4)
    0.0
    """

    def __init__(self, alpha: float = 1.0, noise: float = 0.0) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.noise = float(noise)

    def forward(
        self, output, y=None, X=None, module=None, sample_weight: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        w = sample_weight
        x = output if X is None else X
        x = x.to(next(module.parameters()).dtype)
        if module.training and self.noise > 0:
            x = x + self.noise * torch.randn_like(x)
        flow = module.flow
        if self.alpha == 0:
            nll = -weighted_mean(flow.log_prob(x), w)
            return {"loss": nll, "nll": nll.detach()}
        # Validation runs under no_grad: the input gradient still needs a graph of log p,
        # but no second-order graph, and the loss is returned without a graph.
        training = torch.is_grad_enabled()
        with torch.enable_grad():
            log_p, mass = approximate_mass(
                flow, x.detach().requires_grad_(True), create_graph=training
            )
        nll = -weighted_mean(log_p, w)
        mean_mass = weighted_mean(mass, w)
        loss = nll + self.alpha * mean_mass
        if not training:
            loss = loss.detach()
        return {"loss": loss, "nll": nll.detach(), "mass": mean_mass.detach()}
