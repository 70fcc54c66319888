"""Variational-information-bottleneck encoder heads and zero-entropy noise (pure torch)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Variance of zero-entropy Gaussian noise: ``0.5 * log(2 pi e var) == 0``.
ZERO_ENTROPY_VAR = 1.0 / (2.0 * math.pi * math.e)


class ZeroEntropyNoise(nn.Module):
    """Add ``eps ~ N(0, I / (2 pi e))`` (differential entropy 0 per dimension).

    Active in training mode only; in evaluation mode the input is returned
    unchanged (the estimator draws its own shared prediction noise).

    Examples
    --------
    >>> import math
    >>> round(0.5 * math.log(2 * math.pi * math.e * ZeroEntropyNoise.variance), 12)
    0.0
    """

    variance = ZERO_ENTROPY_VAR

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return z
        return z + torch.randn_like(z) * math.sqrt(self.variance)


class VIBNetwork(nn.Module):
    """Encoder -> latent Z -> linear softmax decoder.

    ``stochastic=True`` (Alemi et al.): the encoder output is mapped to a mean
    and ``std = softplus(rho - 5)`` of a diagonal Gaussian ``p(z|x)`` and Z is
    a reparametrized sample. ``stochastic=False`` (Kirsch et al.): Z is a
    deterministic map of the encoder output plus zero-entropy noise.

    ``forward`` (training) returns ``(mean, std, z, logits)`` with one sample
    of Z per row. ``log_proba`` averages the decoder softmax over the
    ``n_samples`` noise vectors of the buffer ``pred_noise``, shared by every
    row, so predictions do not depend on a row's position or batch.

    Parameters
    ----------
    encoder : nn.Module
        Maps flat rows to ``(B, width)``.
    width : int
        Encoder output width.
    latent_dim : int
        Dimension K of Z.
    n_classes : int
    stochastic : bool
    n_samples : int
        Monte-Carlo samples of Z at prediction.

    Examples
    --------
    >>> import torch
    >>> net = VIBNetwork(torch.nn.Identity(), 4, 2, 3, stochastic=True, n_samples=5)
    >>> bool(torch.allclose(net.log_proba(torch.zeros(2, 4)).exp().sum(-1), torch.ones(2)))
    True
    """

    def __init__(
        self,
        encoder: nn.Module,
        width: int,
        latent_dim: int,
        n_classes: int,
        *,
        stochastic: bool,
        n_samples: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.stochastic = stochastic
        self.to_latent = nn.Linear(width, 2 * latent_dim if stochastic else latent_dim)
        self.decoder = nn.Linear(latent_dim, n_classes)
        self.noise = ZeroEntropyNoise()
        self.register_buffer("pred_noise", torch.randn(n_samples, latent_dim))

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of ``p(z|x)`` (std is the noise std if deterministic)."""
        h = self.to_latent(self.encoder(x))
        if self.stochastic:
            mean, rho = h.chunk(2, dim=-1)
            return mean, F.softplus(rho - 5.0)
        return h, torch.full_like(h, math.sqrt(ZERO_ENTROPY_VAR))

    def forward(self, x: torch.Tensor):
        mean, std = self.distribution(x)
        z = mean + std * torch.randn_like(mean)
        return mean, std, z, self.decoder(z)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.distribution(x)[0]

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.distribution(x)
        z = mean.unsqueeze(0) + std.unsqueeze(0) * self.pred_noise.unsqueeze(1)  # (S, B, K)
        log_p = F.log_softmax(self.decoder(z), dim=-1)
        return torch.logsumexp(log_p, dim=0) - math.log(z.shape[0])
