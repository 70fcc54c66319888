"""Latent Gaussian mixture of the IB-INN: one unit-covariance Gaussian per class."""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class LatentGMM(nn.Module):
    """Mixture ``q(z) = sum_y w_y N(z; mu_y, I)`` with learned means ``mu_y``.

    The class weights are ``w = softmax(phi)`` (Ardizzone et al. 2020,
    appendix B). Without ``learn_prior``, ``phi`` is a fixed buffer holding
    the log of ``class_prior``. With ``learn_prior`` it is a parameter that
    starts at 0 (equal weights, the paper's ``Phi = 0``) and is learned; the
    objective lets only ``L_X`` update it, so it converges to the class
    frequencies of the data.

    The means are spread at initialization: with ``K <= d`` they are the rows
    of a random orthonormal matrix times ``distance / sqrt(2)`` (every pair at
    distance exactly ``distance``); with ``K > d`` they are Gaussian with
    variance ``distance**2 / (2 d)`` per coordinate (pairwise distance
    ``distance`` in expectation).

    Parameters
    ----------
    n_classes, n_dims : int
        Number of components ``K`` and latent dimension ``d``.
    class_prior : tensor of shape (K,)
        Fixed class weights (positive, normalized here); unused when
        ``learn_prior``.
    learn_prior : bool
        Whether ``phi`` is a trainable parameter (initialized to 0).
    distance : float
        Pairwise distance of the initial means.

    Examples
    --------
    >>> import torch
    >>> gmm = LatentGMM(3, 4, torch.ones(3) / 3)
    >>> mu = gmm.means.detach()
    >>> round(float(torch.cdist(mu, mu)[0, 1]), 4)
    5.0
    """

    def __init__(
        self,
        n_classes: int,
        n_dims: int,
        class_prior: torch.Tensor,
        learn_prior: bool = False,
        distance: float = 5.0,
    ) -> None:
        super().__init__()
        self.n_classes, self.n_dims = int(n_classes), int(n_dims)
        if n_classes <= n_dims:
            q, _ = torch.linalg.qr(torch.randn(n_dims, n_classes))
            means = q.T * (distance / math.sqrt(2))
        else:
            means = torch.randn(n_classes, n_dims) * (distance / math.sqrt(2 * n_dims))
        self.means = nn.Parameter(means.contiguous())
        prior = torch.as_tensor(class_prior, dtype=torch.float32)
        phi = torch.log(prior / prior.sum())
        if learn_prior:
            self.phi = nn.Parameter(torch.zeros_like(phi))
        else:
            self.register_buffer("phi", phi)

    def log_weights(self) -> torch.Tensor:
        """``log w_y = log_softmax(phi)``, the log class weights.

        Returns
        -------
        torch.Tensor of shape (K,)
            Log-weights; their exponentials sum to 1.
        """
        return torch.log_softmax(self.phi, dim=0)

    def neg_half_sq_dist(self, z: torch.Tensor) -> torch.Tensor:
        """``-0.5 ||z - mu_y||^2`` for every row and class.

        Parameters
        ----------
        z : torch.Tensor of shape (B, d)
            Latent codes.

        Returns
        -------
        torch.Tensor of shape (B, K)
            Minus half the squared distances to the class means.
        """
        diff = z.unsqueeze(1) - self.means.to(z.dtype).unsqueeze(0)
        return -0.5 * diff.pow(2).sum(-1)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalized class log-posterior ``log w_y - 0.5 ||z - mu_y||^2``.

        Parameters
        ----------
        z : torch.Tensor of shape (B, d)
            Latent codes.

        Returns
        -------
        torch.Tensor of shape (B, K)
            One logit per class.
        """
        return self.neg_half_sq_dist(z) + self.log_weights().to(z.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z)``, including its constant ``-d/2 log(2 pi)``.

        Parameters
        ----------
        z : torch.Tensor of shape (B, d)
            Latent codes.

        Returns
        -------
        torch.Tensor of shape (B,)
            The log-density of each row under the mixture.
        """
        return torch.logsumexp(self.logits(z), dim=-1) - 0.5 * self.n_dims * LOG_2PI

    def sample(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``z ~ N(mu_y, I)`` for each label in ``y``.

        Parameters
        ----------
        y : torch.Tensor of int
            Class indices, one per sample to draw.
        generator : torch.Generator or None, default=None
            CPU generator of the noise; ``None`` uses torch's global one.

        Returns
        -------
        torch.Tensor of shape (len(y), d)
            The latent samples, on the device of the means.
        """
        eps = torch.randn(
            len(y), self.n_dims, generator=generator, dtype=self.means.dtype, device="cpu"
        ).to(self.means.device)
        return self.means[y] + eps
