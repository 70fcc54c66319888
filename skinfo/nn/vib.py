"""Variational-information-bottleneck encoder heads and zero-entropy noise (pure torch)."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .first_order import first_order_only
from .native import vib_kernels

#: Variance of zero-entropy Gaussian noise: ``0.5 * log(2 pi e var) == 0``.
ZERO_ENTROPY_VAR = 1.0 / (2.0 * math.pi * math.e)

#: Shift of the standard-deviation parametrization ``std = softplus(rho - 5)`` (Alemi et al.).
STD_SHIFT = 5.0


def gaussian_kl_standard(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-row ``KL(N(mean, diag std^2) || N(0, I))`` in nats (closed form).

    ``0.5 * sum_i (mean_i^2 + std_i^2 - 2 log std_i - 1)``. The mixture bound
    :func:`gaussian_kl_to_mixture_bound` is built from it; the training rate of
    :func:`sample_with_rate` evaluates the same formula inside its fused
    autograd node (tested equal).

    Parameters
    ----------
    mean, std : Tensor of shape (B, K)

    Returns
    -------
    Tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> gaussian_kl_standard(torch.zeros(2, 3), torch.ones(2, 3)).tolist()
    [0.0, 0.0]
    """
    u = torch.addcmul(mean * mean, std, std).sub_(torch.log(std), alpha=2.0)
    return 0.5 * (u.sum(-1) - mean.shape[-1])


@functools.lru_cache(maxsize=64)
def _scalar(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A cached 0-dim tensor holding ``value`` (a broadcast operand, no allocation per call)."""
    return torch.full((), value, dtype=dtype, device=device)


class _SampleWithRate(torch.autograd.Function):
    """Reparametrized sample and mean closed-form rate of ``N(mean, softplus(rho - 5)^2)``.

    One autograd node with a hand-written backward instead of about fifteen
    elementwise nodes: the same values and gradients (checked against plain
    autograd by ``gradcheck`` in the tests), fewer per-operation overheads.
    At these sizes the fixed cost of each tensor operation dominates (4-7
    microseconds each inside a training step, about twice what a tight loop
    measures: the rest of the step leaves the dispatch code cold), so both
    passes use as few operations as the formulas allow, 9 forward and 7
    backward: the rate is the sum of the elementwise terms
    ``(0.5 (mean^2 + std^2 - 1) - log std) / B`` built with fused
    multiply-adds (the row KLs averaged, up to float rounding), and the
    backward adds the rate's gradient to the sample's in place.
    Differentiable once: the backward builds no graph, and
    :func:`skinfo.nn.first_order.first_order_only` makes a request for a
    second derivative (``create_graph=True``) raise a clear error.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, eps: torch.Tensor):
        mean, rho = h.chunk(2, dim=-1)
        t = rho - STD_SHIFT
        std = F.softplus(t)
        z = torch.addcmul(mean, std, eps)
        # KL(N(mean, std^2) || N(0, I)) summed over the row, averaged over the B rows:
        # sum over all entries of s * [0.5 (mean^2 + std^2 - 1) - log std], s = 1 / B
        s = 1.0 / mean.shape[0]
        terms = torch.addcmul(_scalar(-0.5 * s, h.dtype, h.device), mean, mean, value=0.5 * s)
        terms.addcmul_(std, std, value=0.5 * s).sub_(torch.log(std), alpha=s)
        ctx.save_for_backward(mean, t, std, eps)
        return z, terms.sum()

    @staticmethod
    @first_order_only
    def backward(ctx, grad_z: torch.Tensor, grad_rate: torch.Tensor):
        mean, t, std, eps = ctx.saved_tensors
        s = 1.0 / mean.shape[0]
        # d rate / d mean = s * mean;  d rate / d std = s * (std - 1/std);  d z / d std = eps
        grad_mean = torch.addcmul(grad_z, mean, grad_rate, value=s)
        grad_std = torch.mul(grad_z, eps).addcmul_(std, grad_rate, value=s)
        grad_std.addcdiv_(grad_rate, std, value=-s)
        # d std / d rho = sigmoid(rho - 5)
        return torch.cat((grad_mean, grad_std.mul_(torch.sigmoid(t))), dim=-1), None


class _NativeVIBHead(torch.autograd.Function):
    """Sample, rate and (optionally) linear decoder by the kernels of :mod:`skinfo.nn.native`.

    Float32 on the CPU only. One pass over the batch forward, which also
    stores the two elementwise derivatives that the backward pass needs
    (``d z / d rho`` and ``d rate / d rho``, a ``(2, B, K)`` buffer), and one
    pass backward, instead of about 16 tensor operations plus the decoder's
    product and its three backward products: the same values and gradients
    up to float32 rounding (tested against float64). Returns
    ``(z, logits, rate)``; without a decoder (``weight`` None) the logits are
    an empty ``(B, 0)`` tensor.
    """

    @staticmethod
    def forward(ctx, h, eps, weight, bias, kernels):
        b, k = eps.shape
        c = 0 if weight is None else weight.shape[0]
        z = torch.empty_like(eps)
        logits = torch.empty((b, c), dtype=h.dtype)
        rate = torch.empty((), dtype=h.dtype)
        aux = torch.empty((2, b, k), dtype=h.dtype)
        w_ptr, b_ptr = (None, None) if weight is None else (weight.data_ptr(), bias.data_ptr())
        status = kernels.forward(
            *(h.data_ptr(), eps.data_ptr(), STD_SHIFT, w_ptr, b_ptr),
            *(z.data_ptr(), logits.data_ptr(), rate.data_ptr(), aux.data_ptr(), b, k, c),
        )
        if status != 0:
            raise MemoryError("out of memory in the VIB decoder kernel")
        ctx.kernels = kernels
        ctx.set_materialize_grads(False)  # an unused output gets None, not a tensor of zeros
        # z only for the decoder's gradients (as F.linear saves its input)
        decoder_grads = weight is not None and (ctx.needs_input_grad[2] or ctx.needs_input_grad[3])
        ctx.save_for_backward(h, aux, weight, z if decoder_grads else None)
        return z, logits, rate

    @staticmethod
    @first_order_only
    def backward(ctx, grad_z, grad_logits, grad_rate):
        h, aux, weight, z = ctx.saved_tensors
        b, k = aux.shape[1:]
        grad_h = torch.empty_like(h)
        grad_w = grad_b = None
        c = 0
        if weight is not None and grad_logits is not None:
            c = weight.shape[0]
            grad_logits = grad_logits.contiguous()
            if z is not None:
                grad_w, grad_b = torch.empty_like(weight), torch.empty(c, dtype=h.dtype)
        grad_z = None if grad_z is None else grad_z.contiguous()

        def ptr(t):
            return None if t is None else t.data_ptr()

        ctx.kernels.backward(
            *(ptr(h), ptr(aux), None if c == 0 else ptr(weight), ptr(z)),
            *(ptr(grad_z), None if c == 0 else ptr(grad_logits), ptr(grad_rate)),
            *(ptr(grad_h), ptr(grad_w), ptr(grad_b), b, k, c),
        )
        return grad_h, None, grad_w, grad_b, None


def _native_kernels(
    h: torch.Tensor,
    eps: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
):
    """The compiled kernels when they apply to these tensors (float32 CPU matrices), else None."""
    f32 = torch.float32
    if (
        not (
            h.is_cpu
            and eps.is_cpu
            and h.dtype is f32
            and eps.dtype is f32
            and h.dim() == 2
            and eps.dim() == 2
            and h.shape[0] == eps.shape[0] > 0
            and h.shape[1] == 2 * eps.shape[1]
        )
        or torch.compiler.is_compiling()
    ):
        return None
    if weight is not None and not (
        bias is not None
        and weight.is_cpu
        and bias.is_cpu
        and weight.dtype is f32
        and bias.dtype is f32
        and weight.dim() == 2
        and weight.shape[1] == eps.shape[1]
        and bias.shape == weight.shape[:1]
    ):
        return None
    return vib_kernels()


def sample_with_rate(h: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample Z and the batch-mean rate from the encoder output ``h = [mean, rho]``.

    With ``std = softplus(rho - 5)``, returns ``z = mean + std * eps`` and the
    rate ``mean_rows KL(N(mean, diag std^2) || N(0, I))`` in nats (closed
    form), both differentiable (once) with respect to ``h``.

    Float32 tensors on the CPU go through the compiled kernels of
    :mod:`skinfo.nn.native` when they are available (one pass over the batch
    forward and backward; the transcendental functions within 3 ulp);
    everything else, or without a C compiler, through PyTorch operations in
    one autograd node. Both give the same values and gradients up to float32
    rounding.

    Parameters
    ----------
    h : Tensor of shape (B, 2K)
        Mean (first K columns) and pre-activation ``rho`` (last K columns).
    eps : Tensor of shape (B, K)
        Standard-normal draws.

    Returns
    -------
    z : Tensor of shape (B, K)
    rate : Tensor of shape ()

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
    kernels = _native_kernels(h, eps)
    if kernels is not None:
        z, _, rate = _NativeVIBHead.apply(h.contiguous(), eps.contiguous(), None, None, kernels)
        return z, rate
    return _SampleWithRate.apply(h, eps)


def sample_decode_with_rate(
    h: torch.Tensor, eps: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`sample_with_rate` followed by the linear decoder ``logits = z W^T + bias``.

    The training path of :class:`VIBNetwork` (``'kl'``): on float32 CPU
    tensors with the compiled kernels, sample, rate and decoder are one
    autograd node (the decoder's product is small, ``K x C`` per row, and
    fusing it saves its tensor operations); otherwise
    ``sample_with_rate`` and ``torch.nn.functional.linear``.

    Parameters
    ----------
    h : Tensor of shape (B, 2K)
    eps : Tensor of shape (B, K)
    weight : Tensor of shape (C, K)
    bias : Tensor of shape (C,)

    Returns
    -------
    z : Tensor of shape (B, K)
    logits : Tensor of shape (B, C)
    rate : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> z, logits, rate = sample_decode_with_rate(
    ...     torch.zeros(2, 4), torch.ones(2, 2), torch.ones(3, 2), torch.zeros(3)
    ... )
    >>> logits.shape
    torch.Size([2, 3])
    >>> bool(torch.allclose(logits, z.sum(-1, keepdim=True).expand(2, 3)))
    True
    """
    kernels = _native_kernels(h, eps, weight, bias)
    if kernels is not None:
        return _NativeVIBHead.apply(
            h.contiguous(), eps.contiguous(), weight.contiguous(), bias.contiguous(), kernels
        )
    z, rate = _SampleWithRate.apply(h, eps)
    return z, F.linear(z, weight, bias), rate


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


def _is_plain_linear(module: nn.Module) -> bool:
    """An ``nn.Linear`` with a bias and no hooks: its call may be replaced by ``F.linear``."""
    hooks = nn.modules.module
    return (
        type(module) is nn.Linear
        and module.bias is not None
        and not module._forward_hooks
        and not module._forward_pre_hooks
        and not module._backward_hooks
        and not module._backward_pre_hooks
        and not hooks._global_forward_hooks
        and not hooks._global_forward_pre_hooks
        and not hooks._global_backward_hooks
        and not hooks._global_backward_pre_hooks
    )


class VIBNetwork(nn.Module):
    """Encoder -> latent Z -> linear softmax decoder.

    ``stochastic=True`` (Alemi et al.): the encoder output is mapped to a mean
    and ``std = softplus(rho - 5)`` of a diagonal Gaussian ``p(z|x)`` and Z is
    a reparametrized sample. ``stochastic=False`` (Kirsch et al.): Z is a
    deterministic map of the encoder output plus zero-entropy noise.

    ``forward`` (the objective's path, in training and validation) returns
    ``(z, logits, rate)`` with one fresh sample of Z per row, in either module
    mode; ``rate`` is the batch mean of ``KL(p(z|x) || N(0, I))`` for the
    stochastic encoder and None otherwise. For the stochastic encoder it
    calls :func:`sample_decode_with_rate` with the decoder's weights (one
    fused node; the compiled kernels on float32 CPU tensors) unless the
    decoder has forward hooks, in which case the decoder is called as a
    module. ``log_proba`` averages the decoder
    softmax over the ``n_samples`` noise vectors of the buffer ``pred_noise``,
    shared by every row, so predictions do not depend on a row's position or
    batch.

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
        # the marginal r(z) until set_marginal is called: N(0, I) in every class
        self.register_buffer("marginal_mean", torch.zeros(n_classes, latent_dim))
        self.register_buffer("marginal_var", torch.ones(n_classes, latent_dim))
        self.register_buffer("marginal_log_weight", torch.full((n_classes,), -math.log(n_classes)))

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of ``p(z|x)`` (std is the noise std if deterministic)."""
        h = self.to_latent(self.encoder(x))
        if self.stochastic:
            mean, rho = h.chunk(2, dim=-1)
            return mean, F.softplus(rho - STD_SHIFT)
        return h, torch.full_like(h, math.sqrt(ZERO_ENTROPY_VAR))

    def forward(self, x: torch.Tensor):
        h = self.to_latent(self.encoder(x))
        if self.stochastic:
            eps = torch.randn(h.shape[0], h.shape[1] // 2, dtype=h.dtype, device=h.device)
            if _is_plain_linear(self.decoder):
                return sample_decode_with_rate(h, eps, self.decoder.weight, self.decoder.bias)
            z, rate = sample_with_rate(h, eps)
            return z, self.decoder(z), rate
        z = self.noise(h)
        return z, self.decoder(z), None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.distribution(x)[0]

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.distribution(x)
        z = mean.unsqueeze(0) + std.unsqueeze(0) * self.pred_noise.unsqueeze(1)  # (S, B, K)
        log_p = F.log_softmax(self.decoder(z), dim=-1)
        return torch.logsumexp(log_p, dim=0) - math.log(z.shape[0])

    def set_marginal(self, mean: torch.Tensor, var: torch.Tensor, log_weight: torch.Tensor) -> None:
        """Store the mixture ``r(z) = sum_c w_c N(mean_c, diag var_c)``, ``log w = log_weight``."""
        with torch.no_grad():
            self.marginal_mean.copy_(mean)
            self.marginal_var.copy_(var)
            self.marginal_log_weight.copy_(log_weight)

    def marginal_rate(self, x: torch.Tensor) -> torch.Tensor:
        """Upper bound on ``KL(p(z|x) || r(z))`` per row for the stored mixture ``r``."""
        mean, std = self.distribution(x)
        return gaussian_kl_to_mixture_bound(
            mean, std, self.marginal_mean, self.marginal_var, self.marginal_log_weight
        )
