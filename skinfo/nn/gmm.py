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

from .first_order import first_order_only
from .jacobian import batched_jacobian, log_volume, mlp_forward, mlp_jacobian, mlp_layers


def _softplus_inverse(value: float) -> float:
    return value + math.log(-math.expm1(-value))


def _mahalanobis_forward(z64, inv64, mu64):
    """Squared distances (B, C) in float64 and what their backward pass needs."""
    n, d = z64.shape
    c = inv64.shape[0]
    prec = inv64.transpose(-1, -2) @ inv64  # (C, d, d)
    pmu = (prec @ mu64.unsqueeze(-1)).squeeze(-1)  # P mu, (C, d)
    const = (pmu * mu64).sum(-1)  # mu^T P mu
    coef = torch.cat([prec.reshape(c, d * d), -2 * pmu], 1)  # (C, d^2 + d)
    feats = torch.cat([(z64.unsqueeze(2) * z64.unsqueeze(1)).reshape(n, d * d), z64], 1)
    maha = torch.addmm(const, feats, coef.T).clamp_min_(0.0)
    return maha, (prec, pmu, feats)


def _mahalanobis_backward(g, z64, inv64, mu64, prec, pmu, feats):
    """Gradients of ``sum(g * maha)`` with respect to z, A and mu (float64)."""
    n, d = z64.shape
    c = inv64.shape[0]
    weighted_prec = (g @ prec.reshape(c, d * d)).view(n, d, d)  # sum_c g_bc P_c
    grad_z = 2 * ((weighted_prec * z64.unsqueeze(1)).sum(-1) - g @ pmu)
    stats = g.T @ feats  # (C, d^2 + d): sum_b g_bc z_b z_b^T | sum_b g_bc z_b
    s2 = stats[:, : d * d].view(c, d, d)
    s1 = stats[:, d * d :]
    count = g.sum(0)
    cross = mu64.unsqueeze(2) * s1.unsqueeze(1)  # mu_c s1_c^T
    grad_p = s2 - cross - cross.transpose(-1, -2)
    grad_p = grad_p + count[:, None, None] * (mu64.unsqueeze(2) * mu64.unsqueeze(1))
    grad_inv = inv64 @ (grad_p + grad_p.transpose(-1, -2))
    grad_mu = -2 * ((prec @ s1.unsqueeze(-1)).squeeze(-1) - count[:, None] * pmu)
    return grad_z, grad_inv, grad_mu


class SquaredMahalanobis(torch.autograd.Function):
    """``(z_b - mu_c)^T P_c (z_b - mu_c)`` with ``P_c = A_c^T A_c``, shape (B, C).

    ``forward(z, A, mu)`` with ``z`` (B, d), ``A`` (C, d, d) (the inverse
    Cholesky factors ``L^-1``) and ``mu`` (C, d). Expanded as
    ``z^T P z - 2 (P mu)^T z + mu^T P mu``: one matrix product of the ``d^2 + d``
    quadratic and linear features of ``z`` with the per-component coefficients,
    instead of whitening ``z`` for every component (a ``B x C d`` tensor). The
    expansion cancels large terms, so it is evaluated in float64.

    The backward pass is written out (fewer, larger operations than autograd's
    graph of the expansion): with upstream gradient ``g`` (B, C),
    ``dz_b = 2 sum_c g_bc P_c (z_b - mu_c)``,
    ``dP_c = sum_b g_bc (z_b - mu_c)(z_b - mu_c)^T`` (from the weighted feature
    sums ``g^T [z z^T, z]``), ``dA_c = A_c (dP_c + dP_c^T)`` and
    ``dmu_c = -2 P_c sum_b g_bc (z_b - mu_c)``. Distances are clamped at 0
    against rounding; the gradient is that of the exact quadratic form.
    Differentiable once (first-order gradients, which is what training needs):
    the backward is guarded by :func:`skinfo.nn.first_order.first_order_only`,
    so asking for a second derivative (``create_graph=True``) raises a clear
    error instead of silently dropping terms.

    Examples
    --------
    >>> import torch
    >>> z, A, mu = torch.zeros(1, 2), 2 * torch.eye(2).expand(3, 2, 2), torch.ones(3, 2)
    >>> SquaredMahalanobis.apply(z, A, mu)  # (0 - 1)^2 * 4 * 2 for each component
    tensor([[8., 8., 8.]])
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, inv: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        z64, inv64, mu64 = z.double(), inv.double(), means.double()
        maha, saved = _mahalanobis_forward(z64, inv64, mu64)
        ctx.save_for_backward(z64, inv64, mu64, *saved)
        ctx.dtypes = (z.dtype, inv.dtype, means.dtype)
        return maha.to(z.dtype)

    @staticmethod
    @first_order_only
    def backward(ctx, grad: torch.Tensor):
        grads = _mahalanobis_backward(grad.double(), *ctx.saved_tensors)
        return tuple(g.to(t) for g, t in zip(grads, ctx.dtypes, strict=True))


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

        See :class:`SquaredMahalanobis` (float64, closed-form gradient).
        """
        k, m, d = self.n_classes, self.n_components, self.latent_dim
        inv = self.precision_tril().reshape(k * m, d, d)
        return SquaredMahalanobis.apply(z, inv, self.means.reshape(k * m, d))

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
