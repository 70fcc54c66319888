"""RealNVP normalizing flows built from FrEIA blocks (pure torch, no sklearn).

A flow maps a row ``x`` (dimension D) to ``z = T(x)`` with a standard normal base
density, so ``log p(x) = log N(T(x); 0, I) + log|det dT/dx|`` (change of
variables). :class:`RealNVP` assembles the affine-coupling flow of Dinh et al.
(2017) from FrEIA's invertible modules:

* feature vectors, ``input_shape=(D,)``: an elementwise affine layer, then
  ``n_blocks`` one-sided affine couplings (FrEIA's ``AffineCouplingOneSided``,
  MLP subnets) whose halves alternate (a reversal of the features between
  couplings) and are reshuffled by a fixed random permutation every second
  coupling. With ``D = 1`` a coupling has nothing to condition on, so the flow
  is the elementwise affine layer alone (a learned 1-D Gaussian);
* images, ``input_shape=(C, H, W)``: the multi-scale architecture. Each scale
  but the last is three couplings with checkerboard masks
  (:class:`CheckerboardCoupling`; FrEIA has none), a squeeze (FrEIA's
  ``IRevNetDownsampling``: 2x2 space-to-channel), three couplings with channel
  masks (``AffineCouplingOneSided`` with convolutional subnets) and the
  factoring-out of half of the channels (:class:`FactorOut`); the last scale is
  four checkerboard couplings. The st-networks are small ResNets with
  ``n_blocks`` residual blocks (the paper's "blocks").

The log-scales are soft-clamped, ``clamp * tanh(s / clamp)``, and the last
layer of every subnet starts at zero, so each coupling starts as the identity.
There is no batch normalization: rows must stay independent, for per-sample
input gradients and for predictions that do not depend on the batch.

Every module here is picklable (FrEIA 0.2 stores lambdas for its clamp
functions; :class:`SoftClamp` is passed instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from FrEIA.framework import SequenceINN
from FrEIA.modules import AffineCouplingOneSided, InvertibleModule, IRevNetDownsampling
from torch import nn

__all__ = [
    "CheckerboardCoupling",
    "ElementwiseAffine",
    "FactorOut",
    "FixedPermutation",
    "FlowTrainingModule",
    "RealNVP",
    "SoftClamp",
    "approximate_mass",
]


class SoftClamp:
    """``u -> tanh(u / clamp)``; FrEIA multiplies by ``clamp`` (``clamp * tanh(s / clamp)``).

    A module-level class instead of FrEIA's lambdas, so that the couplings pickle.
    """

    def __init__(self, clamp: float) -> None:
        self.clamp = float(clamp)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return torch.tanh(u / self.clamp)


def _zero_last(layer: nn.Module) -> nn.Module:
    nn.init.zeros_(layer.weight)  # the coupling starts as the identity
    nn.init.zeros_(layer.bias)
    return layer


class DenseSubnet(nn.Sequential):
    """MLP st-network: ``n_hidden`` ReLU layers of width ``hidden``, zero-initialized output."""

    def __init__(self, c_in: int, c_out: int, hidden: int, n_hidden: int) -> None:
        layers: list[nn.Module] = []
        width = c_in
        for _ in range(n_hidden):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(_zero_last(nn.Linear(width, c_out)))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3x3 convolutions."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvSubnet(nn.Sequential):
    """ResNet st-network: 3x3 conv in, ``n_blocks`` residual blocks, zero-initialized conv out."""

    def __init__(self, c_in: int, c_out: int, width: int, n_blocks: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, width, 3, padding=1),
            *[ResidualBlock(width) for _ in range(n_blocks)],
            nn.ReLU(),
            _zero_last(nn.Conv2d(width, c_out, 3, padding=1)),
        )


class SubnetFactory:
    """Picklable subnet constructor ``f(c_in, c_out)`` for FrEIA couplings."""

    def __init__(self, kind: str, width: int, depth: int) -> None:
        self.kind, self.width, self.depth = kind, int(width), int(depth)

    def __call__(self, c_in: int, c_out: int) -> nn.Module:
        if self.kind == "dense":
            return DenseSubnet(c_in, c_out, self.width, self.depth)
        return ConvSubnet(c_in, c_out, self.width, self.depth)


class ElementwiseAffine(InvertibleModule):
    """``y = x * exp(s) + t`` per value (any shape); log-determinant ``sum(s)``."""

    def __init__(self, dims_in, dims_c=None) -> None:
        super().__init__(dims_in, dims_c)
        shape = tuple(dims_in[0])
        self.log_scale = nn.Parameter(torch.zeros(shape))
        self.shift = nn.Parameter(torch.zeros(shape))

    def forward(self, x, c=None, rev: bool = False, jac: bool = True):
        (x,) = x
        log_det = self.log_scale.sum().expand(x.shape[0])
        if rev:
            return ((x - self.shift) * torch.exp(-self.log_scale),), -log_det
        return (x * torch.exp(self.log_scale) + self.shift,), log_det

    def output_dims(self, input_dims):
        return input_dims


class FixedPermutation(InvertibleModule):
    """A fixed permutation of the channels (dimension 1); log-determinant 0.

    ``perm=None`` reverses the order, so the half a one-sided coupling just
    transformed conditions the next one (RealNVP's alternating masks).
    """

    def __init__(self, dims_in, dims_c=None, perm: torch.Tensor | None = None) -> None:
        super().__init__(dims_in, dims_c)
        n = dims_in[0][0]
        perm = torch.arange(n - 1, -1, -1) if perm is None else torch.as_tensor(perm)
        self.register_buffer("perm", perm.long())
        self.register_buffer("perm_inv", torch.argsort(self.perm))

    def forward(self, x, c=None, rev: bool = False, jac: bool = True):
        (x,) = x
        return (x[:, self.perm_inv if rev else self.perm],), 0.0

    def output_dims(self, input_dims):
        return input_dims


class CheckerboardCoupling(InvertibleModule):
    """Affine coupling with a checkerboard mask on images ``(C, H, W)`` (RealNVP).

    Pixels with ``(i + j) % 2 == parity`` condition the others:
    ``y = x * exp(s) + t`` where ``(s, t) = subnet(x * mask)`` is set to 0 on the
    conditioning pixels, so they pass through unchanged.
    """

    def __init__(
        self,
        dims_in,
        dims_c=None,
        subnet_constructor=None,
        clamp: float = 2.0,
        parity: int = 0,
    ) -> None:
        super().__init__(dims_in, dims_c)
        c, h, w = dims_in[0]
        i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        mask = ((i + j) % 2 == parity).float().reshape(1, 1, h, w)
        self.register_buffer("mask", mask)
        self.clamp = float(clamp)
        self.subnet = subnet_constructor(c, 2 * c)

    def _scale_shift(self, x_cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.subnet(x_cond).chunk(2, dim=1)
        free = 1.0 - self.mask
        return self.clamp * torch.tanh(s / self.clamp) * free, t * free

    def forward(self, x, c=None, rev: bool = False, jac: bool = True):
        (x,) = x
        s, t = self._scale_shift(x * self.mask)  # x * mask is the same in both directions
        log_det = s.sum(dim=(1, 2, 3))
        if rev:
            return ((x - t) * torch.exp(-s),), -log_det
        return (x * torch.exp(s) + t,), log_det

    def output_dims(self, input_dims):
        return input_dims


class FactorOut(InvertibleModule):
    """Multi-scale factoring-out: the first ``n_keep`` channels go through ``inner``.

    The other channels are final latent values (they go to the base density
    directly). The output is flat: ``cat(inner(x_keep), flatten(x_rest))``;
    ``inner`` must end with a flat output.
    """

    def __init__(self, dims_in, dims_c=None, inner: nn.Module = None, n_keep: int = 1) -> None:
        super().__init__(dims_in, dims_c)
        c, h, w = dims_in[0]
        self.shape_rest = (c - n_keep, h, w)
        self.n_keep = int(n_keep)
        self.n_keep_flat = self.n_keep * h * w
        self.inner = inner

    def forward(self, x, c=None, rev: bool = False, jac: bool = True):
        (x,) = x
        if rev:
            keep, log_det = self.inner(x[:, : self.n_keep_flat], rev=True)
            rest = x[:, self.n_keep_flat :].reshape(x.shape[0], *self.shape_rest)
            return (torch.cat([keep, rest], dim=1),), log_det
        z, log_det = self.inner(x[:, : self.n_keep])
        return (torch.cat([z, x[:, self.n_keep :].reshape(x.shape[0], -1)], dim=1),), log_det

    def output_dims(self, input_dims):
        return [(math.prod(input_dims[0]),)]


class _Flat(InvertibleModule):
    """Flatten ``(C, H, W)`` to ``(C*H*W,)`` (reshape, so non-contiguous input is fine)."""

    def __init__(self, dims_in, dims_c=None) -> None:
        super().__init__(dims_in, dims_c)
        self.shape = tuple(dims_in[0])

    def forward(self, x, c=None, rev: bool = False, jac: bool = True):
        (x,) = x
        out = x.reshape(x.shape[0], *self.shape) if rev else x.reshape(x.shape[0], -1)
        return (out,), 0.0

    def output_dims(self, input_dims):
        return [(math.prod(input_dims[0]),)]


def _check_image_shape(input_shape: Sequence[int], n_scales: int) -> None:
    c, h, w = input_shape
    if n_scales < 1:
        raise ValueError(f"n_scales must be >= 1, got {n_scales}.")
    side = 2 ** (n_scales - 1)
    if h % side or w % side or h // side < 2 or w // side < 2:
        raise ValueError(
            f"input_shape {tuple(input_shape)} does not fit n_scales={n_scales}: height and "
            f"width must be divisible by 2**(n_scales - 1) = {side} and the last scale must "
            "be at least 2x2."
        )


def _append_scale(inn: SequenceINN, n_scales: int, factory: SubnetFactory, clamp: float) -> None:
    """Append one scale of the multi-scale RealNVP to ``inn`` (images), recursing."""
    n_checker = 4 if n_scales == 1 else 3
    for k in range(n_checker):
        inn.append(CheckerboardCoupling, subnet_constructor=factory, clamp=clamp, parity=k % 2)
    if n_scales == 1:
        inn.append(_Flat)
        return
    inn.append(IRevNetDownsampling)
    c, h, w = inn.shapes[-1]
    for k in range(3):
        if k:
            inn.append(FixedPermutation)  # the other half of the channels now conditions
        inn.append(
            AffineCouplingOneSided,
            subnet_constructor=factory,
            clamp=clamp,
            clamp_activation=SoftClamp(clamp),
        )
    inner = SequenceINN(c // 2, h, w)
    _append_scale(inner, n_scales - 1, factory, clamp)
    inn.append(FactorOut, inner=inner, n_keep=c // 2)


class RealNVP(nn.Module):
    """RealNVP flow on flat rows, built from FrEIA modules, with a standard normal base.

    Parameters
    ----------
    input_shape : int or tuple of int
        ``D`` or ``(D,)`` for feature vectors (dense couplings) or ``(C, H, W)`` for
        images (checkerboard and channel masks with squeeze, multi-scale).
    n_blocks : int, default=6
        Vectors: number of affine couplings. Images: residual blocks in each
        coupling's st-network (the "blocks" of Chali et al. and Kirichenko et al.).
    hidden_width : int, default=64
        Width of the st-networks (hidden units, or convolution channels).
    n_hidden : int, default=2
        Hidden layers of the dense st-networks (vectors only).
    n_scales : int, default=2
        Images only: number of scales (height and width must be divisible by
        ``2 ** (n_scales - 1)``).
    clamp : float, default=2.0
        Soft clamp of the coupling log-scales, ``clamp * tanh(s / clamp)``.
    seed : int, default=0
        Seeds the fixed random permutations (dense flow).

    Examples
    --------
    >>> import torch
    >>> flow = RealNVP((4,), n_blocks=2, hidden_width=8)
    >>> x = torch.randn(3, 4)
    >>> bool(torch.allclose(flow.inverse(flow(x)[0]), x, atol=1e-5))
    True
    >>> image_flow = RealNVP((1, 8, 8), n_blocks=1, hidden_width=4, n_scales=2)
    >>> image_flow.log_prob(torch.zeros(2, 64)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        input_shape: int | Sequence[int],
        n_blocks: int = 6,
        hidden_width: int = 64,
        n_hidden: int = 2,
        n_scales: int = 2,
        clamp: float = 2.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(input_shape, int):
            input_shape = (input_shape,)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dim = math.prod(self.input_shape)
        clamp = float(clamp)
        if len(self.input_shape) == 1:
            inn = SequenceINN(self.dim)
            inn.append(ElementwiseAffine)
            if self.dim >= 2:
                factory = SubnetFactory("dense", hidden_width, n_hidden)
                gen = torch.Generator().manual_seed(int(seed))
                for i in range(n_blocks):
                    if i:
                        perm = torch.randperm(self.dim, generator=gen) if i % 2 == 0 else None
                        inn.append(FixedPermutation, perm=perm)
                    inn.append(
                        AffineCouplingOneSided,
                        subnet_constructor=factory,
                        clamp=clamp,
                        clamp_activation=SoftClamp(clamp),
                    )
        elif len(self.input_shape) == 3:
            _check_image_shape(self.input_shape, n_scales)
            inn = SequenceINN(*self.input_shape)
            inn.append(ElementwiseAffine)
            factory = SubnetFactory("conv", hidden_width, n_blocks)
            _append_scale(inn, n_scales, factory, clamp)
        else:
            raise ValueError(
                f"input_shape must be (D,) or (C, H, W), got {tuple(self.input_shape)}."
            )
        self.inn = inn

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``z = T(x)`` (flat rows) and ``log|det dT/dx|`` per row."""
        z, log_det = self.inn(x.reshape(x.shape[0], *self.input_shape))
        if not torch.is_tensor(log_det):
            log_det = x.new_full((x.shape[0],), float(log_det))
        return z.reshape(x.shape[0], -1), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Return ``x = T^{-1}(z)`` as flat rows."""
        x, _ = self.inn(z, rev=True)
        return x.reshape(z.shape[0], -1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` per row (change of variables with a standard normal base)."""
        z, log_det = self(x)
        log_base = -0.5 * (z**2).sum(dim=1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_base + log_det


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
