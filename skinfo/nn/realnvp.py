"""RealNVP-style normalizing flows for feature vectors (pure torch, no sklearn).

A flow maps a row ``x`` (dimension D) to ``z = T(x)`` with a standard normal base
density, so ``log p(x) = log N(T(x); 0, I) + log|det dT/dx|`` (change of variables).
The stack is: one elementwise affine layer (learned per-feature log-scale and
shift), then ``n_blocks`` affine couplings with alternating binary masks over
the features (Dinh et al., RealNVP). With ``D = 1`` a coupling has nothing to
condition on, so the flow is the elementwise affine layer alone (a learned
Gaussian); that keeps one-feature data valid.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _subnet(n_in: int, n_out: int, hidden: int, n_hidden: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_hidden):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    last = nn.Linear(width, n_out)
    nn.init.zeros_(last.weight)  # identity coupling at initialization
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class ElementwiseAffine(nn.Module):
    """``y = x * exp(s) + t`` per feature; log-det ``sum(s)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x * torch.exp(self.log_scale) + self.shift
        return y, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.shift) * torch.exp(-self.log_scale)


class AffineCoupling(nn.Module):
    """Affine coupling ``y_b = x_b * exp(s(x_a)) + t(x_a)``, ``y_a = x_a``.

    ``mask`` (0/1 of length D) marks the conditioning features ``a``. The
    log-scale is soft-clamped, ``clamp * tanh(s / clamp)``, for stability.
    """

    def __init__(self, mask: torch.Tensor, hidden: int, n_hidden: int, clamp: float) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())
        dim = mask.numel()
        self.clamp = float(clamp)
        self.net = _subnet(dim, 2 * dim, hidden, n_hidden)

    def _scale_shift(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(x_a).chunk(2, dim=1)
        s = self.clamp * torch.tanh(s / self.clamp) * (1 - self.mask)
        return s, t * (1 - self.mask)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._scale_shift(x * self.mask)
        y = x * torch.exp(s) + t
        return y, s.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self._scale_shift(y * self.mask)
        return (y - t) * torch.exp(-s)


class RealNVP(nn.Module):
    """Dense RealNVP flow on rows of dimension ``dim`` with a standard normal base.

    Parameters
    ----------
    dim : int
        Number of features D.
    n_blocks : int
        Number of affine couplings (masks alternate between two complementary
        halves, and every second pair uses a shuffled split, so every feature is
        transformed conditionally on every other after a few blocks).
    hidden_width : int
        Width of the coupling subnets.
    n_hidden : int
        Hidden layers per subnet.
    clamp : float
        Soft clamp of the coupling log-scales.
    seed : int
        Seeds the random feature splits.

    Examples
    --------
    >>> import torch
    >>> flow = RealNVP(4, n_blocks=2, hidden_width=8)
    >>> x = torch.randn(3, 4)
    >>> bool(torch.allclose(flow.inverse(flow(x)[0]), x, atol=1e-5))
    True
    """

    def __init__(
        self,
        dim: int,
        n_blocks: int = 6,
        hidden_width: int = 256,
        n_hidden: int = 2,
        clamp: float = 2.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim = int(dim)
        layers: list[nn.Module] = [ElementwiseAffine(self.dim)]
        if self.dim >= 2:
            gen = torch.Generator().manual_seed(seed)
            base = (torch.arange(self.dim) % 2).float()
            prev = base
            for i in range(n_blocks):
                if (i // 2) % 2 == 0:
                    mask = base
                else:
                    perm = torch.randperm(self.dim, generator=gen)
                    mask = torch.zeros(self.dim)
                    mask[perm[: self.dim // 2]] = 1.0
                if i % 2 == 1:
                    mask = 1 - prev
                prev = mask
                layers.append(AffineCoupling(mask, hidden_width, n_hidden, clamp))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``z = T(x)`` and ``log|det dT/dx|`` per row."""
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Return ``x = T^{-1}(z)``."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` per row (change of variables with a standard normal base)."""
        z, logdet = self(x)
        log_base = -0.5 * (z**2).sum(dim=1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_base + logdet


def approximate_mass(
    flow: RealNVP, x: torch.Tensor, *, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row log-likelihood and approximate mass ``||d log p(x_i) / d x_i||``.

    The gradient of ``sum_i log p(x_i)`` with respect to the batch gives every
    row's own input gradient (rows are independent), not the gradient of the
    batch mean (which would scale each norm by 1 / batch size).
    """
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    log_p = flow.log_prob(x)
    (grad,) = torch.autograd.grad(log_p.sum(), x, create_graph=create_graph)
    return log_p, grad.norm(dim=1)


class FlowTrainingModule(nn.Module):
    """Holds the flow for training; ``forward`` passes the batch through unchanged.

    The criterion evaluates the flow itself (it needs the input with
    ``requires_grad``), so the forward pass skorch makes costs nothing.
    """

    def __init__(self, flow: RealNVP) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
