"""Class-conditional Gaussian-mixture density head (the variational q of MASS learning).

For each class ``y`` the head holds a mixture of ``n_components`` full-covariance
Gaussians with learned weights, means and covariances,

    q(z | y) = sum_m w_{y,m} N(z; mu_{y,m}, L_{y,m} L_{y,m}^T),

the marginal ``q(z) = sum_y q(z | y) p(y)`` with fixed class prior ``p(y)`` and
the posterior ``q(y | z) = q(z | y) p(y) / q(z)`` (Bayes' rule). Every density
is evaluated in log space with ``logsumexp``.

Covariances are parametrized by their Cholesky factor ``L`` with a strictly
positive diagonal ``softplus(raw) + min_scale``, so no covariance becomes
singular. The free parameters are that diagonal and the strict lower triangle
of ``L^-1`` (whose diagonal is ``1 / diag(L)``): the density needs only
``L^-1``, so no triangular solve is taken in training.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .jacobian import batched_jacobian, log_volume, mlp_forward, mlp_jacobian, mlp_layers


def _softplus_inverse(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class ClassConditionalGMM(nn.Module):
    """Per-class mixture of full-covariance Gaussians on a ``latent_dim``-dimensional space.

    Parameters
    ----------
    latent_dim : int
        Dimension ``d`` of the representation ``z``.
    n_classes : int
        Number of classes ``K``.
    n_components : int, default=10
        Mixture components per class.
    class_prior : sequence of float or None, default=None
        ``p(y)`` (e.g. the training class frequencies); ``None`` is uniform. Kept
        fixed (a buffer).
    min_scale : float, default=1e-3
        Floor added to the softplus of the Cholesky diagonal.
    init_spread : float, default=1.0
        Standard deviation of the initial means (drawn from N(0, init_spread^2));
        initial covariances are the identity.

    Examples
    --------
    >>> import torch
    >>> head = ClassConditionalGMM(2, n_classes=3, n_components=4)
    >>> z = torch.randn(5, 2)
    >>> head.log_class_conditional(z).shape
    torch.Size([5, 3])
    >>> bool(torch.allclose(head.log_posterior(z).exp().sum(-1), torch.ones(5)))
    True
    """

    def __init__(
        self,
        latent_dim: int,
        n_classes: int,
        n_components: int = 10,
        class_prior=None,
        min_scale: float = 1e-3,
        init_spread: float = 1.0,
    ) -> None:
        super().__init__()
        d, k, m = int(latent_dim), int(n_classes), int(n_components)
        self.latent_dim, self.n_classes, self.n_components = d, k, m
        self.min_scale = float(min_scale)
        prior = torch.full((k,), 1.0 / k) if class_prior is None else torch.as_tensor(class_prior)
        prior = prior.to(torch.float32)
        if prior.shape != (k,) or not bool((prior > 0).all()):
            raise ValueError(f"class_prior must hold {k} positive values, got {prior.tolist()}.")
        self.register_buffer("log_prior", torch.log(prior / prior.sum()))
        self.weight_logits = nn.Parameter(torch.zeros(k, m))
        self.means = nn.Parameter(torch.randn(k, m, d) * float(init_spread))
        raw = _softplus_inverse(max(1.0 - self.min_scale, 1e-6))
        self.raw_diag = nn.Parameter(torch.full((k, m, d), raw))
        self.lower = nn.Parameter(torch.zeros(k, m, d, d))

    def scales(self) -> torch.Tensor:
        """Diagonal of the covariance Cholesky factors, ``softplus(raw) + min_scale`` (K, M, d)."""
        return F.softplus(self.raw_diag) + self.min_scale

    def precision_tril(self) -> torch.Tensor:
        """``L^-1``, the inverse Cholesky factors of the covariances, shape (K, M, d, d).

        Lower triangular with diagonal ``1 / scales()`` (the inverse of a
        triangular matrix has the reciprocal diagonal) and a free strict lower
        triangle, a one-to-one reparametrization of the strict lower triangle of ``L``.
        """
        return torch.tril(self.lower, diagonal=-1) + torch.diag_embed(1.0 / self.scales())

    def scale_tril(self) -> torch.Tensor:
        """Cholesky factors ``L`` of the covariances, shape (K, M, d, d)."""
        inv = self.precision_tril()
        eye = torch.eye(self.latent_dim, dtype=inv.dtype, device=inv.device)
        return torch.linalg.solve_triangular(inv, eye.expand_as(inv), upper=False)

    def covariances(self) -> torch.Tensor:
        """Covariance matrices ``L L^T``, shape (K, M, d, d)."""
        tril = self.scale_tril()
        return tril @ tril.transpose(-1, -2)

    def mahalanobis(self, z: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distances ``(z - mu)^T Sigma^-1 (z - mu)``, shape (B, K * M).

        Expanded as ``z^T P z - 2 (P mu)^T z + mu^T P mu`` with ``P = L^-T L^-1``:
        one matrix product of the ``d^2 + d`` quadratic and linear features
        of ``z`` with the per-component coefficients, instead of whitening ``z``
        for every component (a ``B x K M d`` tensor). The expansion cancels
        large terms, so it is evaluated in float64.
        """
        k, m, d = self.n_classes, self.n_components, self.latent_dim
        inv = self.precision_tril().double()
        prec = inv.transpose(-1, -2) @ inv
        inv_mu = (inv @ self.means.double().unsqueeze(-1)).squeeze(-1)  # L^-1 mu
        lin = (inv.transpose(-1, -2) @ inv_mu.unsqueeze(-1)).squeeze(-1)  # P mu
        const = inv_mu.square().sum(-1).reshape(k * m)  # mu^T P mu
        coef = torch.cat([prec.reshape(k * m, d * d), -2 * lin.reshape(k * m, d)], dim=1)
        z64 = z.double()
        feats = torch.cat([(z64.unsqueeze(2) * z64.unsqueeze(1)).reshape(-1, d * d), z64], 1)
        return torch.addmm(const, feats, coef.T).clamp_min(0.0)

    def log_component(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z; mu_{y,m}, Sigma_{y,m})`` for every class and component, shape (B, K, M)."""
        k, m, d = self.n_classes, self.n_components, self.latent_dim
        maha = self.mahalanobis(z).to(z.dtype).view(-1, k, m)
        half_log_det = torch.log(self.scales()).sum(-1)  # 0.5 log|Sigma| = sum log diag L
        return -0.5 * maha - half_log_det - 0.5 * d * math.log(2 * math.pi)

    def log_class_conditional(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z | y)`` for every class, shape (B, K)."""
        log_w = F.log_softmax(self.weight_logits, dim=-1)
        return torch.logsumexp(self.log_component(z) + log_w, dim=-1)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z | y) + log p(y)``, shape (B, K)."""
        return self.log_class_conditional(z) + self.log_prior

    def log_marginal(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z) = log sum_y q(z | y) p(y)``, shape (B,)."""
        return torch.logsumexp(self.log_joint(z), dim=-1)

    def log_posterior(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(y | z)`` by Bayes' rule, shape (B, K); rows are normalized."""
        return torch.log_softmax(self.log_joint(z), dim=-1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The log-posterior ``log q(y | z)`` (the classifier's log-probabilities)."""
        return self.log_posterior(z)


class MASSOutput(NamedTuple):
    """Forward output of :class:`MASSNetwork`: the representation and the MLP pre-activations."""

    z: torch.Tensor
    hidden: tuple[torch.Tensor, ...]


class MASSNetwork(nn.Module):
    """Representation ``f(x) = projection(encoder(x))`` with a class-conditional GMM head.

    ``forward`` returns :class:`MASSOutput` (``z`` and, on the analytic path,
    the hidden pre-activations that the Jacobian term reuses); ``embed`` gives
    ``z``; ``log_proba`` the Bayes-rule posterior ``log q(y | f(x))``.

    Parameters
    ----------
    encoder : nn.Module
        Maps flat rows ``(B, D)`` to ``(B, width)``.
    width : int
        Output width of ``encoder``.
    head : ClassConditionalGMM
        The variational density ``q(z | y)`` on ``latent_dim`` dimensions.
    jacobian : {'auto', 'analytic', 'autograd'}, default='auto'
        How :meth:`log_jacobian` gets ``Df``: the analytic MLP chain (needs an
        encoder made of ``nn.Linear`` and elementwise activations, like
        :class:`skinfo.nn.encoders.MLP`), ``torch.func`` (any encoder), or the
        analytic chain when possible (``'auto'``).

    Examples
    --------
    >>> import torch
    >>> from skinfo.nn.encoders import MLP
    >>> net = MASSNetwork(MLP(6, (8,)), 8, ClassConditionalGMM(3, n_classes=2, n_components=2))
    >>> x = torch.randn(4, 6)
    >>> net.log_proba(x).shape, net.log_jacobian(x, torch.arange(4)).shape
    (torch.Size([4, 2]), torch.Size([4]))
    """

    def __init__(
        self, encoder: nn.Module, width: int, head: ClassConditionalGMM, jacobian: str = "auto"
    ) -> None:
        super().__init__()
        if jacobian not in ("auto", "analytic", "autograd"):
            raise ValueError(
                f"jacobian must be 'auto', 'analytic' or 'autograd', got {jacobian!r}."
            )
        self.encoder = encoder
        self.projection = nn.Linear(int(width), head.latent_dim)
        self.head = head
        analytic_ok = mlp_layers(encoder, self.projection) is not None
        if jacobian == "analytic" and not analytic_ok:
            raise ValueError(
                "jacobian='analytic' needs an MLP encoder (an nn.Sequential of nn.Linear and "
                "elementwise activations, e.g. the default encoder); use 'autograd' for "
                f"{type(encoder).__name__}."
            )
        self.analytic = analytic_ok and jacobian != "autograd"

    def _layers(self) -> list[nn.Module]:
        return [*list(self.encoder), self.projection] if self.analytic else []

    def forward(self, x: torch.Tensor) -> MASSOutput:
        if self.analytic:
            z, hidden = mlp_forward(self._layers(), x)
            return MASSOutput(z, hidden)
        return MASSOutput(self.projection(self.encoder(x)), ())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The representation ``z = f(x)``, shape (B, latent_dim)."""
        return self.projection(self.encoder(x))

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """``log q(y | f(x))`` by Bayes' rule, shape (B, K)."""
        return self.head.log_posterior(self.embed(x))

    def jacobian(
        self, x: torch.Tensor, rows: torch.Tensor, hidden: tuple[torch.Tensor, ...] = ()
    ) -> torch.Tensor:
        """``Df`` at the rows ``x[rows]``, shape ``(len(rows), latent_dim, D)``.

        On the analytic path, ``hidden`` (from :meth:`forward` on ``x``) is
        reused when given. On the ``torch.func`` path the encoder runs in
        evaluation mode for the Jacobian (batch norm uses its running
        statistics, dropout is off), so each row's Jacobian is that of a
        deterministic per-row map.
        """
        if self.analytic:
            if not hidden:
                _, hidden = mlp_forward(self._layers(), x)
            return mlp_jacobian(self._layers(), hidden, rows)
        was_training = self.training
        self.eval()
        try:
            return batched_jacobian(self.embed, x[rows])
        finally:
            self.train(was_training)

    def log_jacobian(
        self, x: torch.Tensor, rows: torch.Tensor, hidden: tuple[torch.Tensor, ...] = ()
    ) -> torch.Tensor:
        """``log J_f`` at the rows ``x[rows]`` (see :func:`skinfo.nn.jacobian.log_volume`)."""
        return log_volume(self.jacobian(x, rows, hidden))
