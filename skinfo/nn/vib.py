"""Variational-information-bottleneck encoder heads and zero-entropy noise (pure torch)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Variance of zero-entropy Gaussian noise: ``0.5 * log(2 pi e var) == 0``.
ZERO_ENTROPY_VAR = 1.0 / (2.0 * math.pi * math.e)

#: Shift of the standard-deviation parametrization ``std = softplus(rho - 5)`` (Alemi et al.).
STD_SHIFT = 5.0


def _kl_standard_terms(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Elementwise ``mean^2 + std^2 - 1 - 2 log std``: twice the KL to N(0, 1) per dimension.

    The 1 is subtracted per element, before any sum: near collapse (``mean ~ 0``,
    ``std ~ 1``) each term is close to 0 and the sums lose nothing to cancellation.
    """
    return torch.addcmul(mean * mean, std, std).sub_(torch.log(std), alpha=2.0).sub_(1.0)


def gaussian_kl_standard(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-row ``KL(N(mean, diag std^2) || N(0, I))`` in nats (closed form).

    ``0.5 * sum_i (mean_i^2 + std_i^2 - 2 log std_i - 1)``. The mixture bound
    :func:`gaussian_kl_to_mixture_bound` and the training rate of
    :func:`sample_with_rate` are built from it.

    Parameters
    ----------
    mean : Tensor of shape (B, K)
        Means of the diagonal Gaussians, one per row.
    std : Tensor of shape (B, K)
        Their standard deviations (positive).

    Returns
    -------
    Tensor of shape (B,)
        The KL divergence of each row's Gaussian to the standard normal, in nats.

    Examples
    --------
    >>> import torch
    >>> gaussian_kl_standard(torch.zeros(2, 3), torch.ones(2, 3)).tolist()
    [0.0, 0.0]
    """
    return 0.5 * _kl_standard_terms(mean, std).sum(-1)


def sample_with_rate(h: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample Z and the batch-mean rate from the encoder output ``h = [mean, rho]``.

    With ``std = softplus(rho - 5)``, returns ``z = mean + std * eps`` (the
    reparametrization) and the rate ``mean_rows KL(N(mean, diag std^2) || N(0, I))``
    in nats (the closed form of :func:`gaussian_kl_standard`). Plain tensor
    operations: autograd differentiates both with respect to ``h``, to any
    order. As ``std`` underflows to 0 (``rho - 5`` below about -104 in
    float32), ``log std`` is ``-inf`` and the rate ``+inf``, so a training run
    stops loudly instead of continuing with a meaningless loss.

    Parameters
    ----------
    h : Tensor of shape (B, 2K)
        Mean (first K columns) and pre-activation ``rho`` (last K columns).
    eps : Tensor of shape (B, K)
        Standard-normal draws.

    Returns
    -------
    z : Tensor of shape (B, K)
        The reparametrized samples ``mean + std * eps``.
    rate : Tensor of shape ()
        The mean over rows of ``KL(N(mean, diag std^2) || N(0, I))``, in nats.

    Examples
    --------
    >>> import torch
    >>> z, rate = sample_with_rate(torch.zeros(3, 4), torch.zeros(3, 2))
    >>> z.tolist()
    [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    >>> std = torch.nn.functional.softplus(torch.tensor(-5.0))
    >>> bool(torch.isclose(rate, 2 * (0.5 * std**2 - 0.5 - torch.log(std))))
    True
    """
    mean, rho = h.chunk(2, dim=-1)
    std = F.softplus(rho - STD_SHIFT)
    z = torch.addcmul(mean, std, eps)
    # the mean over rows of gaussian_kl_standard, summed over all entries at once
    rate = _kl_standard_terms(mean, std).sum().mul(0.5 / mean.shape[0])
    return z, rate


def gaussian_kl_to_mixture_bound(
    mean: torch.Tensor,
    std: torch.Tensor,
    comp_mean: torch.Tensor,
    comp_var: torch.Tensor,
    comp_log_weight: torch.Tensor,
) -> torch.Tensor:
    """Upper bound on ``KL(N(mean, diag std^2) || sum_c w_c N(m_c, diag v_c))`` per row.

    ``min_c [KL(N(mean, std^2) || N(m_c, v_c)) - log w_c]``, which bounds the
    KL to the mixture from above because ``log sum_c w_c r_c >= log w_c r_c``
    for every ``c``. Computed with matrix products, so memory is (B, C).

    Parameters
    ----------
    mean, std : Tensor of shape (B, K)
    comp_mean, comp_var : Tensor of shape (C, K)
    comp_log_weight : Tensor of shape (C,)

    Returns
    -------
    Tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> one = torch.ones(1, 2)
    >>> float(gaussian_kl_to_mixture_bound(one, one, one, one, torch.zeros(1)))
    0.0
    """
    # KL(q || N(m_c, v_c)) = KL(q || N(0, I)) + E_q[log N(z; 0, I) - log N(z; m_c, v_c)],
    # the expectation 0.5 sum_i [(mean^2 + std^2)(1/v_c - 1) - 2 mean m_c / v_c
    # + m_c^2 / v_c + log v_c]: two (B, K) x (K, C) products.
    inv_var = comp_var.reciprocal()  # (C, K)
    second_moment = torch.addcmul(mean * mean, std, std)  # (B, K)
    quad = second_moment @ (inv_var - 1.0).T - 2.0 * mean @ (comp_mean * inv_var).T
    const = (comp_mean * comp_mean * inv_var + torch.log(comp_var)).sum(-1)  # (C,)
    kl = gaussian_kl_standard(mean, std).unsqueeze(-1) + 0.5 * (quad + const)
    return (kl - comp_log_weight).min(dim=-1).values


class ZeroEntropyNoise(nn.Module):
    """Add ``eps ~ N(0, I / (2 pi e))`` (differential entropy 0 per dimension).

    Added in training and in evaluation mode alike: it is part of the
    training objective (Kirsch et al. add it to Z before the regularizer and
    the decoder), so the validation loss of a skorch net (evaluation mode) has
    the same distribution as the training loss. Prediction does not use this
    module: :meth:`VIBNetwork.log_proba` draws Z with the fixed noise buffer
    ``pred_noise`` instead, so predictions stay deterministic.

    Examples
    --------
    >>> import math
    >>> round(0.5 * math.log(2 * math.pi * math.e * ZeroEntropyNoise.variance), 12)
    0.0
    """

    variance = ZERO_ENTROPY_VAR

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + torch.randn_like(z) * math.sqrt(self.variance)


class VIBNetwork(nn.Module):
    """Encoder -> latent Z -> linear softmax decoder.

    ``stochastic=True`` (Alemi et al.): the encoder output is mapped to a mean
    and ``std = softplus(rho - 5)`` of a diagonal Gaussian ``p(z|x)`` and Z is
    a reparametrized sample. ``stochastic=False`` (Kirsch et al.): Z is a
    deterministic map of the encoder output plus zero-entropy noise.

    ``forward`` (the objective's path, in training and validation) returns
    ``(z, logits, rate)`` with one fresh sample of Z per row, in either module
    mode; ``rate`` is the batch mean of ``KL(p(z|x) || N(0, I))`` for the
    stochastic encoder and None otherwise. For the stochastic encoder, Z and
    the rate come from :func:`sample_with_rate` and the logits from calling
    the decoder module on Z. ``log_proba`` averages the decoder softmax over
    the ``n_samples`` noise vectors of the buffer ``pred_noise``, shared by
    every row, so predictions do not depend on a row's position or batch.

    The buffers ``marginal_mean``, ``marginal_var`` (C, K) and
    ``marginal_log_weight`` (C,) hold a Gaussian mixture fitted to the
    aggregate posterior of the training data (see
    :meth:`set_marginal`); :meth:`marginal_rate` uses it.

    Parameters
    ----------
    encoder : nn.Module
        Maps flat rows to ``(B, width)``.
    width : int
        Encoder output width.
    latent_dim : int
        Dimension K of Z.
    n_classes : int
        Number of classes of the decoder.
    stochastic : bool
        Whether Z is a reparametrized sample of a learned Gaussian (Alemi et al.)
        rather than a deterministic map plus zero-entropy noise (Kirsch et al.).
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
        # the marginal r(z) until set_marginal is called: N(0, I) in every class
        self.register_buffer("marginal_mean", torch.zeros(n_classes, latent_dim))
        self.register_buffer("marginal_var", torch.ones(n_classes, latent_dim))
        self.register_buffer("marginal_log_weight", torch.full((n_classes,), -math.log(n_classes)))

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of ``p(z|x)`` (std is the noise std if deterministic).

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        mean : torch.Tensor of shape (B, latent_dim)
            The mean of Z given each row.
        std : torch.Tensor of shape (B, latent_dim)
            Its standard deviation: ``softplus(rho - 5)`` for the stochastic
            encoder, the zero-entropy noise's ``1 / sqrt(2 pi e)`` otherwise.
        """
        h = self.to_latent(self.encoder(x))
        if self.stochastic:
            mean, rho = h.chunk(2, dim=-1)
            return mean, F.softplus(rho - STD_SHIFT)
        return h, torch.full_like(h, math.sqrt(ZERO_ENTROPY_VAR))

    def forward(self, x: torch.Tensor):
        """One fresh sample of Z per row, its logits and the rate (the objective's inputs).

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        z : torch.Tensor of shape (B, latent_dim)
            The sampled representation.
        logits : torch.Tensor of shape (B, n_classes)
            The decoder's logits for ``z``.
        rate : torch.Tensor of shape () or None
            The batch mean of ``KL(p(z|x) || N(0, I))`` for the stochastic
            encoder, ``None`` for the deterministic one.
        """
        h = self.to_latent(self.encoder(x))
        if self.stochastic:
            eps = torch.randn(h.shape[0], h.shape[1] // 2, dtype=h.dtype, device=h.device)
            z, rate = sample_with_rate(h, eps)
            return z, self.decoder(z), rate
        z = self.noise(h)
        return z, self.decoder(z), None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic representation, the mean of ``p(z|x)``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, latent_dim)
            The mean of Z given each row.
        """
        return self.distribution(x)[0]

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class log-probabilities averaged over the fixed prediction noise.

        The decoder's softmax is averaged over the ``n_samples`` draws of Z
        given by the buffer ``pred_noise``, the same for every row.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, n_classes)
            Normalized class log-probabilities.
        """
        mean, std = self.distribution(x)
        z = mean.unsqueeze(0) + std.unsqueeze(0) * self.pred_noise.unsqueeze(1)  # (S, B, K)
        log_p = F.log_softmax(self.decoder(z), dim=-1)
        return torch.logsumexp(log_p, dim=0) - math.log(z.shape[0])

    def set_marginal(self, mean: torch.Tensor, var: torch.Tensor, log_weight: torch.Tensor) -> None:
        """Store the mixture ``r(z) = sum_c w_c N(mean_c, diag var_c)``, ``log w = log_weight``.

        Parameters
        ----------
        mean : torch.Tensor of shape (C, latent_dim)
            Means of the components.
        var : torch.Tensor of shape (C, latent_dim)
            Their diagonal variances.
        log_weight : torch.Tensor of shape (C,)
            Their normalized log-weights.
        """
        with torch.no_grad():
            self.marginal_mean.copy_(mean)
            self.marginal_var.copy_(var)
            self.marginal_log_weight.copy_(log_weight)

    def marginal_rate(self, x: torch.Tensor) -> torch.Tensor:
        """Upper bound on ``KL(p(z|x) || r(z))`` per row for the stored mixture ``r``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B,)
            The bound of :func:`gaussian_kl_to_mixture_bound`, in nats.
        """
        mean, std = self.distribution(x)
        return gaussian_kl_to_mixture_bound(
            mean, std, self.marginal_mean, self.marginal_var, self.marginal_log_weight
        )
