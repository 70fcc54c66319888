"""RealNVP normalizing flows built from FrEIA blocks (pure torch, no sklearn).

A flow maps a row ``x`` (dimension D) to ``z = T(x)`` with a standard normal base
density, so ``log p(x) = log N(T(x); 0, I) + log|det dT/dx|`` (change of
variables). :class:`RealNVP` assembles the affine-coupling flow of Dinh et al.
(2017) as a FrEIA ``SequenceINN`` of FrEIA's modules and the blocks of
:mod:`skinfo.nn.flow_blocks` (shared with IB-INN's flow):

* feature vectors, ``input_shape=(D,)``: an elementwise affine layer, then
  ``n_blocks`` one-sided affine couplings (FrEIA's ``AffineCouplingOneSided``,
  MLP subnets) whose halves alternate (a reversal of the features between
  couplings) and are reshuffled by a fixed random permutation every second
  coupling. With ``D = 1`` a coupling has nothing to condition on, so the flow
  is the elementwise affine layer alone (a learned 1-D Gaussian);
* images, ``input_shape=(C, H, W)``: the multi-scale architecture. Each scale
  but the last is three couplings with checkerboard masks
  (:class:`~skinfo.nn.flow_blocks.CheckerboardCoupling`; FrEIA has none), a
  squeeze (FrEIA's ``IRevNetDownsampling``: 2x2 space-to-channel), three
  couplings with channel masks (``AffineCouplingOneSided`` with convolutional
  subnets) and the factoring-out of half of the channels
  (:class:`~skinfo.nn.flow_blocks.FactorOut`); the last scale is four
  checkerboard couplings. The st-networks are small ResNets with ``n_blocks``
  residual blocks (the paper's "blocks").

The log-scales are soft-clamped, ``clamp * tanh(s / clamp)``, and the last
layer of every subnet starts at zero, so each coupling starts as the identity.
There is no batch normalization: rows must stay independent, for per-sample
input gradients and for predictions that do not depend on the batch.

The flow is picklable (FrEIA 0.2 stores lambdas for its clamp functions;
:class:`~skinfo.nn.flow_blocks.SoftClamp` is passed instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from FrEIA.framework import SequenceINN
from FrEIA.modules import AffineCouplingOneSided, IRevNetDownsampling
from torch import nn

from .flow_blocks import (
    CheckerboardCoupling,
    ConvSubnet,
    DenseSubnet,
    ElementwiseAffine,
    FactorOut,
    FixedPermutation,
    Flatten,
    Flow,
    SoftClamp,
    SubnetFactory,
)

__all__ = ["FlowTrainingModule", "RealNVP", "approximate_mass"]


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
        inn.append(Flatten)
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


class RealNVP(Flow):
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
        if isinstance(input_shape, int):
            input_shape = (input_shape,)
        input_shape = tuple(int(s) for s in input_shape)
        dim = math.prod(input_shape)
        clamp = float(clamp)
        if len(input_shape) == 1:
            inn = SequenceINN(dim)
            inn.append(ElementwiseAffine)
            if dim >= 2:
                factory = SubnetFactory(
                    DenseSubnet, hidden=(int(hidden_width),) * int(n_hidden), zero_init=True
                )
                gen = torch.Generator().manual_seed(int(seed))
                for i in range(n_blocks):
                    if i:
                        perm = torch.randperm(dim, generator=gen) if i % 2 == 0 else None
                        inn.append(FixedPermutation, perm=perm)
                    inn.append(
                        AffineCouplingOneSided,
                        subnet_constructor=factory,
                        clamp=clamp,
                        clamp_activation=SoftClamp(clamp),
                    )
        elif len(input_shape) == 3:
            _check_image_shape(input_shape, n_scales)
            inn = SequenceINN(*input_shape)
            inn.append(ElementwiseAffine)
            factory = SubnetFactory(
                ConvSubnet, width=int(hidden_width), n_res_blocks=int(n_blocks), zero_init=True
            )
            _append_scale(inn, n_scales, factory, clamp)
        else:
            raise ValueError(f"input_shape must be (D,) or (C, H, W), got {input_shape}.")
        super().__init__(inn)
        self.dim = dim

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` per row (change of variables with a standard normal base).

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B,)
            ``log N(T(x); 0, I) + log|det dT/dx|`` of each row, in nats.
        """
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

    Parameters
    ----------
    flow : RealNVP
        The flow whose density is differentiated.
    x : torch.Tensor of shape (B, D)
        Input rows.
    create_graph : bool, default=False
        Keep the graph of the input gradient, so that a loss built on the mass
        can be differentiated with respect to the flow's parameters (training).

    Returns
    -------
    log_p : torch.Tensor of shape (B,)
        ``log p(x)`` of each row.
    mass : torch.Tensor of shape (B,)
        The approximate mass ``||d log p(x) / dx||`` of each row.
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
