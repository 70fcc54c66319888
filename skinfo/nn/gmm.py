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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .first_order import first_order_only
from .jacobian import (
    batched_jacobian,
    log_volume,
    mlp_forward,
    mlp_jacobian,
    mlp_layers,
    mlp_log_volume,
)


def _softplus_inverse(value: float) -> float:
    return value + math.log(-math.expm1(-value))


#: Mixture terms more than ``exp(60)`` times smaller than a class's largest term are
#: dropped from its ``logsumexp`` (below float64 rounding of the sum, which holds a
#: term equal to 1); evaluating them would only produce subnormal numbers, which
#: are very slow to compute with on CPUs.
_NEGLIGIBLE_LOG_RATIO = -60.0


def whitened_residuals(z: torch.Tensor, inv: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """``A_c (z_b - mu_c)`` for every component ``c`` and row ``b``, shape ``(C, d, B)``.

    ``A_c`` (``inv``, shape (C, d, d)) is the inverse Cholesky factor of the
    covariance; ``means`` has shape (C, d). One matrix product of the stacked
    factors with the rows, ``[A_1; ...; A_C] z^T - [A_1 mu_1; ...]``, after
    shifting ``z`` and the means by the (constant) mean of the means, which
    keeps the two terms of the difference small. The layout puts the rows
    last, so the sums over ``d`` and the broadcasts over rows of the backward
    pass run along contiguous memory.
    """
    c, d = means.shape
    center = means.detach().mean(0)
    shifted = means - center
    a_mu = torch.bmm(inv, shifted.unsqueeze(-1)).view(c * d, 1)
    return torch.addmm(a_mu, inv.reshape(c * d, d), (z - center).T, beta=-1.0).view(c, d, -1)


class MixtureLogDensity(torch.autograd.Function):
    """``log q(z | y = k)`` of Gaussian mixtures for every row and class, shape (B, K).

    ``forward(z, lower, scales, means, log_weights)`` with ``z`` (B, d),
    ``lower`` (K M, d, d) (only its strict lower triangle is used), ``scales``
    (K M, d) (positive), ``means`` (K M, d) and normalized ``log_weights``
    (K, M). Component ``c`` is ``N(mu_c, L_c L_c^T)`` with inverse Cholesky
    factor ``A_c = L_c^-1 = tril(lower_c, -1) + diag(1 / scales_c)``, so
    ``log N(z; mu_c, L_c L_c^T) = -0.5 |A_c (z - mu_c)|^2 - sum log scales_c
    - d/2 log 2 pi``. The residuals ``A_c (z - mu_c)`` come from
    :func:`whitened_residuals` (one matrix product); the log-sum-exp over
    components drops terms more than ``exp(60)`` below the largest (they
    vanish in the sum's rounding).

    The backward pass is written out: with upstream gradient ``g`` (B, K) and
    responsibilities ``r_bkm = g_bk exp(term_bkm - out_bk)``,
    ``d log_weights = sum_b r``, ``d residual = -r * residual``, and from
    ``residual = A (z - mu)``: ``dz = sum_c A_c^T d residual_c``,
    ``dA_c = sum_b d residual_cb (z_b - mu_c)^T``,
    ``dmu_c = -A_c^T sum_b d residual_cb``; then ``d lower`` is the strict
    lower triangle of ``dA`` and ``d scales = -diag(dA) / scales^2 -
    (sum_b r) / scales``. Three matrix products and a few elementwise passes,
    in one autograd node, faster than autograd's graph of the same expression
    with the parametrization (timings on the MASS page of the documentation,
    "For maintainers"). Differentiable once: the
    backward is guarded by :func:`skinfo.nn.first_order.first_order_only`, so
    asking for a second derivative (``create_graph=True``) raises a clear
    error instead of silently dropping terms.

    Examples
    --------
    >>> import math, torch
    >>> z, mu = torch.zeros(1, 2), torch.ones(4, 2)
    >>> lower, scales = torch.zeros(4, 2, 2), torch.full((4, 2), 0.5)  # covariance I / 4
    >>> log_w = torch.full((2, 2), math.log(0.5))  # two classes of two components
    >>> out = MixtureLogDensity.apply(z, lower, scales, mu, log_w)
    >>> expected = -0.5 * 8 - 2 * math.log(0.5) - math.log(2 * math.pi)
    >>> torch.allclose(out, torch.full((1, 2), expected))
    True
    """

    @staticmethod
    def forward(ctx, z, lower, scales, means, log_weights):
        k, m = log_weights.shape
        c, d, n = k * m, z.shape[1], z.shape[0]
        inv = torch.tril(lower, diagonal=-1) + torch.diag_embed(scales.reciprocal())
        bias = log_weights.reshape(c, 1) - torch.log(scales).sum(-1, keepdim=True)
        bias -= 0.5 * d * math.log(2 * math.pi)
        resid = whitened_residuals(z, inv, means)  # (C, d, B)
        terms = torch.add(bias, resid.square().sum(1), alpha=-0.5).view(k, m, n)
        top = terms.amax(1, keepdim=True)
        rel = terms - top
        keep = rel > _NEGLIGIBLE_LOG_RATIO
        weights = rel.clamp_min_(_NEGLIGIBLE_LOG_RATIO).exp_().mul_(keep)  # (K, M, B)
        total = weights.sum(1)
        out = total.log().add_(top.squeeze(1))  # (K, B)
        ctx.save_for_backward(z, inv, scales, means, resid, weights, total)
        return out.T

    @staticmethod
    @first_order_only
    def backward(ctx, grad):
        z, inv, scales, means, resid, weights, total = ctx.saved_tensors
        k, m, n = weights.shape
        c, d = k * m, z.shape[1]
        resp = (weights / total.unsqueeze(1)).mul_(grad.T.unsqueeze(1)).view(c, n)
        grad_bias = resp.sum(-1)  # (C,)
        grad_resid = (resid * resp.neg_().unsqueeze(1)).view(c * d, n)
        grad_z = (inv.reshape(c * d, d).T @ grad_resid).T
        center = means.mean(0)
        grad_inv = torch.mm((z - center).T, grad_resid.T).T.reshape(c, d, d)
        grad_a_mu = grad_resid.sum(-1).neg_().view(c, d)  # d(A mu)
        grad_inv += grad_a_mu.unsqueeze(2) * (means - center).unsqueeze(1)
        grad_means = torch.bmm(inv.transpose(1, 2), grad_a_mu.unsqueeze(-1)).squeeze(-1)
        # A = tril(lower, -1) + diag(1 / scales); bias holds -sum log scales
        grad_scales = torch.diagonal(grad_inv, dim1=-2, dim2=-1) / scales.square()
        grad_scales = grad_scales.neg_().sub_(grad_bias.unsqueeze(1) / scales)
        grad_lower = torch.tril(grad_inv, diagonal=-1)
        return grad_z, grad_lower, grad_scales, grad_means, grad_bias.view(k, m)


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
        prior = np.full(k, 1.0 / k) if class_prior is None else np.asarray(class_prior, float)
        if prior.shape != (k,) or not (prior > 0).all():
            raise ValueError(f"class_prior must hold {k} positive values, got {prior.tolist()}.")
        self.register_buffer(
            "log_prior", torch.tensor(np.log(prior / prior.sum()), dtype=torch.float32)
        )
        self.weight_logits = nn.Parameter(torch.zeros(k, m))
        self.means = nn.Parameter(torch.randn(k, m, d) * float(init_spread))
        raw = _softplus_inverse(max(1.0 - self.min_scale, 1e-6))
        self.raw_diag = nn.Parameter(torch.full((k, m, d), raw))
        self.lower = nn.Parameter(torch.zeros(k, m, d, d))

    def scales(self) -> torch.Tensor:
        """Diagonal of the covariance Cholesky factors, ``softplus(raw) + min_scale``.

        Returns
        -------
        torch.Tensor of shape (K, M, d)
            Positive scales, at least ``min_scale``.
        """
        return F.softplus(self.raw_diag) + self.min_scale

    def precision_tril(self) -> torch.Tensor:
        """``L^-1``, the inverse Cholesky factors of the covariances, shape (K, M, d, d).

        Lower triangular with diagonal ``1 / scales()`` (the inverse of a
        triangular matrix has the reciprocal diagonal) and a free strict lower
        triangle, a one-to-one reparametrization of the strict lower triangle of ``L``.

        Returns
        -------
        torch.Tensor of shape (K, M, d, d)
            The lower-triangular inverse Cholesky factors.
        """
        return torch.tril(self.lower, diagonal=-1) + torch.diag_embed(1.0 / self.scales())

    def scale_tril(self) -> torch.Tensor:
        """Cholesky factors ``L`` of the covariances.

        Returns
        -------
        torch.Tensor of shape (K, M, d, d)
            Lower-triangular ``L`` with ``L L^T`` the covariance of each component.
        """
        inv = self.precision_tril()
        eye = torch.eye(self.latent_dim, dtype=inv.dtype, device=inv.device)
        return torch.linalg.solve_triangular(inv, eye.expand_as(inv), upper=False)

    def covariances(self) -> torch.Tensor:
        """Covariance matrices ``L L^T``.

        Returns
        -------
        torch.Tensor of shape (K, M, d, d)
            The covariance of every component of every class.
        """
        tril = self.scale_tril()
        return tril @ tril.transpose(-1, -2)

    def log_class_conditional(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z | y)`` for every class.

        One :class:`MixtureLogDensity` node (hand-written backward) over
        every class and component.

        Parameters
        ----------
        z : torch.Tensor of shape (B, latent_dim)
            Representations.

        Returns
        -------
        torch.Tensor of shape (B, K)
            The class-conditional log-densities.
        """
        k, m, d = self.n_classes, self.n_components, self.latent_dim
        return MixtureLogDensity.apply(
            z,
            self.lower.reshape(k * m, d, d),
            self.scales().reshape(k * m, d),
            self.means.reshape(k * m, d),
            F.log_softmax(self.weight_logits, dim=-1),
        )

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z | y) + log p(y)``, the joint log-density of ``z`` and each class.

        Parameters
        ----------
        z : torch.Tensor of shape (B, latent_dim)
            Representations.

        Returns
        -------
        torch.Tensor of shape (B, K)
            The joint log-densities.
        """
        return self.log_class_conditional(z) + self.log_prior

    def log_marginal(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z) = log sum_y q(z | y) p(y)``, the marginal log-density.

        Parameters
        ----------
        z : torch.Tensor of shape (B, latent_dim)
            Representations.

        Returns
        -------
        torch.Tensor of shape (B,)
            The marginal log-density of each row.
        """
        return torch.logsumexp(self.log_joint(z), dim=-1)

    def log_posterior(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(y | z)`` by Bayes' rule.

        Parameters
        ----------
        z : torch.Tensor of shape (B, latent_dim)
            Representations.

        Returns
        -------
        torch.Tensor of shape (B, K)
            Class log-probabilities; each row's exponentials sum to 1.
        """
        return torch.log_softmax(self.log_joint(z), dim=-1)

    @torch.no_grad()
    def refit(
        self,
        z: torch.Tensor,
        y: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
        *,
        n_iter: int = 20,
        reg_covar: float | None = None,
    ) -> ClassConditionalGMM:
        """Refit each class's mixture to representations by EM (maximum likelihood).

        For every class ``k`` present in ``y`` (with positive total weight),
        ``n_iter`` expectation-maximization steps on the rows of that class,
        starting from the current weights, means and covariances. With
        responsibilities ``r_im`` of the current mixture and row weights
        ``w_i``, the M-step is ``n_m = sum_i w_i r_im + 10 eps``,
        ``w_m = n_m / sum n``, ``mu_m = sum_i w_i r_im z_i / n_m`` and
        ``Sigma_m = sum_i w_i r_im (z_i - mu_m)(z_i - mu_m)^T / n_m +
        reg_covar I``, i.e. scikit-learn's ``GaussianMixture`` EM with row
        weights. With ``n_components=1`` one step is the closed-form
        weighted Gaussian MLE of each class. Computed in float64 and written
        into the parameters (``weight_logits``, ``means``, ``raw_diag``,
        ``lower``); ``log_prior`` is left as it is. Classes without rows
        keep their parameters.

        Parameters
        ----------
        z : torch.Tensor of shape (n, latent_dim)
            Representations.
        y : torch.Tensor of int of shape (n,)
            Classes in ``0..n_classes-1``.
        sample_weight : torch.Tensor of shape (n,) or None, default=None
            Non-negative row weights (an integer weight equals repeating the row).
        n_iter : int, default=20
            EM steps per class.
        reg_covar : float or None, default=None
            Added to the diagonal of every covariance; ``None`` is
            ``(2 * min_scale)^2``, so every Cholesky diagonal is at least
            ``2 * min_scale`` and representable by the parametrization.

        Returns
        -------
        ClassConditionalGMM
            The head itself, refitted.

        Examples
        --------
        >>> import torch
        >>> head = ClassConditionalGMM(2, n_classes=2, n_components=1)
        >>> z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [7.0, 5.0]])
        >>> head = head.refit(z, torch.tensor([0, 0, 1, 1]))
        >>> head.means.detach().squeeze(1)
        tensor([[1., 0.],
                [6., 5.]])
        """
        d = self.latent_dim
        reg = (2.0 * self.min_scale) ** 2 if reg_covar is None else float(reg_covar)
        z = z.detach().to(torch.float64)
        y = y.detach().to(z.device).long()
        w = torch.ones(len(z), dtype=z.dtype, device=z.device)
        if sample_weight is not None:
            w = sample_weight.detach().to(z.device, torch.float64)
        log_w = F.log_softmax(self.weight_logits.double(), -1).to(z.device)
        means = self.means.double().to(z.device)
        inv = self.precision_tril().double().to(z.device)
        eye = torch.eye(d, dtype=z.dtype, device=z.device)
        tiny = 10 * torch.finfo(z.dtype).eps
        for k in range(self.n_classes):
            rows = (y == k) & (w > 0)
            if not bool(rows.any()):
                continue
            zk, wk = z[rows], w[rows]
            lw, mu, a = log_w[k], means[k], inv[k]
            for _ in range(int(n_iter)):
                resid = torch.einsum("mij,mnj->mni", a, zk.unsqueeze(0) - mu.unsqueeze(1))
                log_det = torch.log(torch.diagonal(a, dim1=-2, dim2=-1)).sum(-1)
                log_p = lw + log_det - 0.5 * resid.square().sum(-1).T  # (n_k, M)
                resp = torch.softmax(log_p, dim=-1) * wk.unsqueeze(1)
                n_m = resp.sum(0) + tiny
                mu = resp.T @ zk / n_m.unsqueeze(1)
                diff = zk.unsqueeze(0) - mu.unsqueeze(1)  # (M, n_k, d)
                cov = torch.einsum("nm,mni,mnj->mij", resp, diff, diff) / n_m.view(-1, 1, 1)
                cov = cov + reg * eye
                tril = torch.linalg.cholesky(cov)
                a = torch.linalg.solve_triangular(tril, eye.expand_as(tril), upper=False)
                lw = torch.log(n_m / n_m.sum())
            log_w[k], means[k], inv[k] = lw, mu, a
        scales = 1.0 / torch.diagonal(inv, dim1=-2, dim2=-1)
        excess = (scales - self.min_scale).clamp_min(1e-12)
        raw = excess + torch.log(-torch.expm1(-excess))  # softplus^-1
        dtype = self.means.dtype
        self.weight_logits.copy_(log_w.to(dtype))
        self.means.copy_(means.to(dtype))
        self.raw_diag.copy_(raw.to(dtype))
        self.lower.copy_(torch.tril(inv, diagonal=-1).to(dtype))
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The log-posterior ``log q(y | z)`` (the classifier's log-probabilities).

        Parameters
        ----------
        z : torch.Tensor of shape (B, latent_dim)
            Representations.

        Returns
        -------
        torch.Tensor of shape (B, K)
            Same as :meth:`log_posterior`.
        """
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
        """The flat ``Linear (act Linear)*`` chain of ``f`` on the analytic path, else empty."""
        return mlp_layers(self.encoder, self.projection) if self.analytic else []

    def forward(self, x: torch.Tensor) -> MASSOutput:
        """The representation and, on the analytic Jacobian path, the MLP pre-activations.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        MASSOutput
            ``z`` of shape (B, latent_dim) and ``hidden``, the pre-activations of
            the MLP layers that :meth:`jacobian` and :meth:`log_jacobian` reuse
            (empty on the ``torch.func`` path).
        """
        if self.analytic:
            z, hidden = mlp_forward(self._layers(), x)
            return MASSOutput(z, hidden)
        return MASSOutput(self.projection(self.encoder(x)), ())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The representation ``z = f(x)``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, latent_dim)
            The representation.
        """
        return self.projection(self.encoder(x))

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """``log q(y | f(x))`` by Bayes' rule.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, K)
            Normalized class log-probabilities.
        """
        return self.head.log_posterior(self.embed(x))

    def jacobian(
        self, x: torch.Tensor, rows: torch.Tensor, hidden: tuple[torch.Tensor, ...] = ()
    ) -> torch.Tensor:
        """``Df``, the Jacobian of the representation, at the rows ``x[rows]``.

        On the analytic path, ``hidden`` (from :meth:`forward` on ``x``) is
        reused when given. On the ``torch.func`` path the encoder runs in
        evaluation mode for the Jacobian (batch norm uses its running
        statistics, dropout is off), so each row's Jacobian is that of a
        deterministic per-row map.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.
        rows : torch.Tensor of int
            Indices of the rows of ``x`` at which to take the Jacobian.
        hidden : tuple of torch.Tensor, default=()
            The pre-activations from :meth:`forward` on the same ``x``, reused on
            the analytic path; empty to recompute them.

        Returns
        -------
        torch.Tensor of shape (len(rows), latent_dim, D)
            One Jacobian matrix per selected row.
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
        """``log J_f = 0.5 log det(Df Df^T)`` at the rows ``x[rows]``.

        See :func:`skinfo.nn.jacobian.log_volume`.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.
        rows : torch.Tensor of int
            Indices of the rows of ``x`` at which to take the Jacobian term.
        hidden : tuple of torch.Tensor, default=()
            The pre-activations from :meth:`forward` on the same ``x``, reused on
            the analytic path; empty to recompute them.

        Returns
        -------
        torch.Tensor of shape (len(rows),)
            The log-volume of ``Df`` at each selected row.
        """
        if self.analytic:
            if not hidden:
                _, hidden = mlp_forward(self._layers(), x)
            return mlp_log_volume(self._layers(), hidden, rows)
        return log_volume(self.jacobian(x, rows, hidden))
