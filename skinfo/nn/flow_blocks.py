"""Invertible blocks shared by skinfo's normalizing flows (FrEIA modules, pure torch).

Both flows are FrEIA ``SequenceINN`` chains of these blocks and of FrEIA's own
modules, wrapped in :class:`Flow` (flat rows in, flat rows out): IB-INN's
invertible network (:mod:`skinfo.nn.inn`) and the approximate-mass detector's
RealNVP (:mod:`skinfo.nn.realnvp`). Every block follows FrEIA's convention:
``forward(x, c=None, rev=False, jac=True)`` takes and returns a tuple of
tensors together with ``log|det J|`` per row (``rev=True`` runs the inverse
and returns minus the log-determinant of the forward map at its output).

* st-networks of the couplings: :class:`DenseSubnet` (MLP) and
  :class:`ConvSubnet` (3x3 convolutions, optionally with residual blocks),
  built by the picklable :class:`SubnetFactory`;
* :class:`CouplingBlock`: FrEIA's ``AllInOneBlock`` (affine coupling, random
  soft permutation, global affine scaling; IB-INN), picklable and with the
  soft clamp ``clamp * tanh(s / clamp)``;
* :class:`CheckerboardCoupling`: affine coupling with a checkerboard mask on
  images (RealNVP; FrEIA has none). Channel-mask couplings are FrEIA's
  ``AffineCouplingOneSided`` with :class:`SoftClamp`;
* :class:`ElementwiseAffine` (the whole flow when there is one feature: a
  coupling needs two halves), :class:`FixedPermutation`, :class:`Flatten` and
  :class:`FactorOut` (multi-scale factoring-out).

FrEIA 0.2 stores lambdas on its modules (clamp functions, the global-scale
activation), which do not pickle; the replacements here are module-level
classes and methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from FrEIA.framework import SequenceINN
from FrEIA.modules import AllInOneBlock, InvertibleModule
from torch import nn

from .encoders import get_activation

__all__ = [
    "CheckerboardCoupling",
    "ConvSubnet",
    "CouplingBlock",
    "DenseSubnet",
    "ElementwiseAffine",
    "FactorOut",
    "FixedPermutation",
    "Flatten",
    "Flow",
    "ResidualBlock",
    "SoftClamp",
    "SubnetFactory",
]


# ------------------------------------------------------------------ subnets
def _zero_last(layer: nn.Module) -> nn.Module:
    nn.init.zeros_(layer.weight)  # the coupling starts as the identity
    nn.init.zeros_(layer.bias)
    return layer


class DenseSubnet(nn.Sequential):
    """MLP st-network: ``Linear -> activation`` per width in ``hidden``, then ``Linear``.

    It ends in a linear layer (never an activation); with ``zero_init`` that
    layer starts at zero, so the coupling starts as the identity.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        hidden: Sequence[int],
        activation: str = "relu",
        zero_init: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        width = c_in
        for h in hidden:
            layers += [nn.Linear(width, int(h)), get_activation(activation)]
            width = int(h)
        last = nn.Linear(width, c_out)
        layers.append(_zero_last(last) if zero_init else last)
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """``x + conv(act(conv(act(x))))`` with 3x3 convolutions."""

    def __init__(self, width: int, activation: str = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            get_activation(activation),
            nn.Conv2d(width, width, 3, padding=1),
            get_activation(activation),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvSubnet(nn.Sequential):
    """3x3-convolution st-network: conv, ``n_res_blocks`` residual blocks, activation, conv.

    ``n_res_blocks=0`` is conv, activation, conv (IB-INN); RealNVP's ResNet
    st-networks have residual blocks. With ``zero_init`` the last convolution
    starts at zero.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        width: int,
        n_res_blocks: int = 0,
        activation: str = "relu",
        zero_init: bool = False,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, width, 3, padding=1),
            *[ResidualBlock(width, activation) for _ in range(n_res_blocks)],
            get_activation(activation),
        ]
        last = nn.Conv2d(width, c_out, 3, padding=1)
        layers.append(_zero_last(last) if zero_init else last)
        super().__init__(*layers)


class SubnetFactory:
    """Picklable subnet constructor ``f(c_in, c_out) = subnet(c_in, c_out, **kwargs)``.

    ``subnet`` is :class:`DenseSubnet` or :class:`ConvSubnet` (FrEIA couplings
    call the factory with the sizes of their halves).
    """

    def __init__(self, subnet: type[nn.Module], **kwargs) -> None:
        self.subnet = subnet
        self.kwargs = kwargs

    def __call__(self, c_in: int, c_out: int) -> nn.Module:
        return self.subnet(c_in, c_out, **self.kwargs)


class SoftClamp:
    """``u -> tanh(u / clamp)``; FrEIA multiplies by ``clamp`` (``clamp * tanh(s / clamp)``).

    A module-level class instead of FrEIA's lambdas, so that the couplings pickle.
    """

    def __init__(self, clamp: float) -> None:
        self.clamp = float(clamp)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return torch.tanh(u / self.clamp)


# ---------------------------------------------------------------- couplings
class CouplingBlock(AllInOneBlock):
    """FrEIA's ``AllInOneBlock``, picklable and with the paper's soft clamp.

    One block computes ``y = R (psi(s_g) * coupling(x) + t_g)``: an affine
    coupling of the second half of the channels conditioned on the first
    (``x2 * exp(c * tanh(s / c)) + t``, ``s, t`` from the subnet), a global
    affine scaling (``psi`` = 0.1 softplus, FrEIA's default) and a fixed random
    rotation ``R`` (soft permutation, drawn from numpy's global RNG).

    Differences from FrEIA 0.2: the global-scale activation is a method instead
    of a lambda stored on the instance (so the block pickles), and the clamp
    is ``clamp * tanh(s / clamp)`` (Dinh et al. 2017, used by Ardizzone et al.
    2020) rather than FrEIA 0.2's ``clamp * tanh(s)``. FrEIA's scaling of the
    subnet output by 0.1 is kept.
    """

    def __init__(self, dims_in, subnet_constructor, affine_clamping: float = 2.0, **kwargs):
        self._global_affine_type = kwargs.get("global_affine_type", "SOFTPLUS")
        super().__init__(
            dims_in,
            subnet_constructor=subnet_constructor,
            affine_clamping=affine_clamping,
            **kwargs,
        )
        del self.global_scale_activation  # the lambda; the method below replaces it

    def global_scale_activation(self, a: torch.Tensor) -> torch.Tensor:
        if self._global_affine_type == "SIGMOID":
            return 10 * torch.sigmoid(a - 2.0)
        if self._global_affine_type == "SOFTPLUS":
            return 0.1 * self.softplus(a)
        return torch.exp(a)

    def _affine(self, x, a, rev=False):
        a = a * 0.1
        ch = x.shape[1]
        s = self.clamp * torch.tanh(a[:, :ch] / self.clamp)
        if not rev:
            return x * torch.exp(s) + a[:, ch:], s.sum(dim=self.sum_dims)
        return (x - a[:, ch:]) * torch.exp(-s), -s.sum(dim=self.sum_dims)


class CheckerboardCoupling(InvertibleModule):
    """Affine coupling with a checkerboard mask on images ``(C, H, W)`` (RealNVP).

    Pixels with ``(i + j) % 2 == parity`` condition the others:
    ``y = x * exp(s) + t`` where ``(s, t) = subnet(x * mask)`` is set to 0 on the
    conditioning pixels, so they pass through unchanged. The log-scale is
    soft-clamped, ``clamp * tanh(s / clamp)``.
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


# ------------------------------------------------------- other invertible maps
class ElementwiseAffine(InvertibleModule):
    """``y = x * exp(s) + t`` per value (any shape); log-determinant ``sum(s)``.

    Starts as the identity. A coupling needs two halves, so with a single
    feature this layer is the whole flow.
    """

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


class Flatten(InvertibleModule):
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


# -------------------------------------------------------------------- flows
class Flow(nn.Module):
    """A FrEIA ``SequenceINN`` on flat rows ``(B, D)``.

    Rows are reshaped to the input shape of ``inn`` (``inn.shapes[0]``) and
    the output is flattened. ``forward(x)`` returns ``(z, log|det dz/dx|)``
    (a tensor per row, also for an empty chain); ``inverse(z)`` returns ``x``.
    The blocks are ``flow.inn[i]``.

    Parameters
    ----------
    inn : FrEIA.framework.SequenceINN
        The invertible chain; its input shape (``inn.shapes[0]``) is the shape
        each row is reshaped to.
    """

    def __init__(self, inn: SequenceINN) -> None:
        super().__init__()
        self.inn = inn
        self.input_shape = tuple(int(s) for s in inn.shapes[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map inputs to the latent space.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        z : torch.Tensor of shape (B, D)
            The latent codes, flattened.
        log_det : torch.Tensor of shape (B,)
            ``log|det dz/dx|`` of each row.
        """
        z, log_det = self.inn(x.reshape(x.shape[0], *self.input_shape))
        if not torch.is_tensor(log_det):
            log_det = x.new_full((x.shape[0],), float(log_det))
        return z.reshape(x.shape[0], -1), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Map latent codes back to inputs (the inverse of :meth:`forward`).

        Parameters
        ----------
        z : torch.Tensor of shape (B, D)
            Latent codes, flattened.

        Returns
        -------
        torch.Tensor of shape (B, D)
            The inputs ``x``, flattened.
        """
        x, _ = self.inn(z, rev=True)
        return x.reshape(z.shape[0], -1)
