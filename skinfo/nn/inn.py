"""Invertible networks (INNs) of the IB-INN, built from FrEIA's blocks.

Every invertible module here maps ``x -> (y, log|det J|)`` with
``forward(x, rev=False)``; ``rev=True`` runs the inverse and returns minus the
log-determinant of the forward map at the output.

Blocks:

* :class:`CouplingBlock`: FrEIA's ``AllInOneBlock`` (affine coupling, random
  soft permutation, global affine scaling; appendix E of Ardizzone et al.
  2020) made picklable, with the paper's soft clamp ``clamp * tanh(s / clamp)``
  (FrEIA 0.2 computes ``clamp * tanh(s)``);
* :class:`ElementwiseAffine`: ``y = x * exp(s) + t`` per feature, the flow used
  when there is a single feature (a coupling needs two halves);
* FrEIA's ``IRevNetDownsampling`` (2x2 space-to-channel) between resolution
  levels of the convolutional variant, and :class:`Flatten`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from FrEIA.modules import AllInOneBlock, IRevNetDownsampling
from torch import nn

from .encoders import get_activation

#: Named architectures of the convolutional variant: ints are numbers of
#: coupling blocks at one resolution, ``'down'`` an i-RevNet downsampling.
INN_PRESETS: dict[str, tuple] = {
    # Ardizzone et al. (2020), appendix E (CIFAR-10)
    "paper": (8, "down", 25, "down", 25),
    # single-channel images (e.g. digits 1x8x8): downsample first so couplings have channels
    "small": ("down", 4, "down", 4),
}


@contextlib.contextmanager
def _numpy_seed_from_torch() -> Iterator[None]:
    """Seed numpy's global RNG from torch's inside the block, then restore it.

    FrEIA draws the soft permutation with ``scipy.stats.special_ortho_group``
    from numpy's global RNG; seeding it from torch makes the networks
    reproducible under ``torch.manual_seed`` and leaves the caller's numpy
    state untouched.
    """
    state = np.random.get_state()  # noqa: NPY002 (FrEIA draws from the global RNG)
    np.random.seed(int(torch.randint(0, 2**31 - 1, ())))  # noqa: NPY002 (FrEIA draws from the global RNG)
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002 (FrEIA draws from the global RNG)


class DenseSubnet(nn.Sequential):
    """Coupling subnetwork for vectors: an MLP ending in a linear layer."""

    def __init__(self, c_in: int, c_out: int, hidden: Sequence[int], activation: str) -> None:
        layers: list[nn.Module] = []
        width = c_in
        for h in hidden:
            layers += [nn.Linear(width, h), get_activation(activation)]
            width = h
        layers.append(nn.Linear(width, c_out))
        super().__init__(*layers)


class ConvSubnet(nn.Sequential):
    """Coupling subnetwork for images: 3x3 conv, activation, 3x3 conv (ends in a conv)."""

    def __init__(self, c_in: int, c_out: int, hidden: int, activation: str) -> None:
        super().__init__(
            nn.Conv2d(c_in, hidden, 3, padding=1),
            get_activation(activation),
            nn.Conv2d(hidden, c_out, 3, padding=1),
        )


class _SubnetFactory:
    """Module-level (picklable) subnet constructor ``f(c_in, c_out)``."""

    def __init__(self, kind: str, hidden, activation: str) -> None:
        self.kind, self.hidden, self.activation = kind, hidden, activation

    def __call__(self, c_in: int, c_out: int) -> nn.Module:
        if self.kind == "dense":
            return DenseSubnet(c_in, c_out, self.hidden, self.activation)
        return ConvSubnet(c_in, c_out, self.hidden, self.activation)


class CouplingBlock(AllInOneBlock):
    """FrEIA's ``AllInOneBlock``, picklable and with the paper's soft clamp.

    One block computes ``y = R (psi(s_g) * coupling(x) + t_g)``: an affine
    coupling of the second half of the channels conditioned on the first
    (``x2 * exp(c * tanh(s / c)) + t``, ``s, t`` from the subnet), a global
    affine scaling (``psi`` = 0.1 softplus, FrEIA's default) and a fixed random
    rotation ``R`` (soft permutation).

    Differences from FrEIA 0.2: the global-scale activation is a method instead
    of a lambda stored on the instance (so the block pickles), and the clamp
    is ``clamp * tanh(s / clamp)`` (Dinh et al. 2017, used by the paper) rather
    than FrEIA 0.2's ``clamp * tanh(s)``. FrEIA's scaling of the subnet output
    by 0.1 is kept.
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

    def forward(self, x, c=[], rev=False, jac=True):  # noqa: B006 (FrEIA's signature)
        if not isinstance(x, (list, tuple)):
            (out,), log_det = super().forward((x,), rev=rev)
            return out, log_det
        return super().forward(x, c=c, rev=rev, jac=jac)


class ElementwiseAffine(nn.Module):
    """``y = x * exp(s) + t`` per feature; log-determinant ``sum(s)``."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(n_features))
        self.shift = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor, rev: bool = False):
        log_det = self.log_scale.sum().expand(x.shape[0])
        if rev:
            return (x - self.shift) * torch.exp(-self.log_scale), -log_det
        return x * torch.exp(self.log_scale) + self.shift, log_det


class Downsample(IRevNetDownsampling):
    """i-RevNet 2x2 space-to-channel reshuffle (volume preserving)."""

    def forward(self, x, rev: bool = False):
        (out,), _ = super().forward((x,), rev=rev)
        return out, x.new_zeros(x.shape[0])


class Flatten(nn.Module):
    """Invertible reshape from ``(B, *shape)`` to ``(B, prod(shape))``."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor, rev: bool = False):
        out = x.reshape(x.shape[0], *self.shape) if rev else x.reshape(x.shape[0], -1)
        return out, x.new_zeros(x.shape[0])


class InvertibleSequence(nn.Module):
    """A chain of invertible modules on flat rows ``(B, D)``.

    ``forward(x)`` returns ``(z, log|det dz/dx|)``; ``inverse(z)`` returns ``x``.
    With ``input_shape`` the rows are reshaped to images first.
    """

    def __init__(self, blocks: Sequence[nn.Module], input_shape: Sequence[int]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.input_shape = tuple(int(s) for s in input_shape)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.reshape(x.shape[0], *self.input_shape)
        log_det = x.new_zeros(x.shape[0])
        for block in self.blocks:
            h, ld = block(h, rev=False)
            log_det = log_det + ld
        return h.reshape(x.shape[0], -1), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for block in reversed(self.blocks):
            h, _ = block(h, rev=True)
        return h.reshape(z.shape[0], -1)


def dense_inn(
    n_features: int,
    n_blocks: int = 8,
    hidden: Sequence[int] = (128,),
    activation: str = "relu",
    clamp: float = 2.0,
) -> InvertibleSequence:
    """Dense INN for feature vectors: ``n_blocks`` coupling blocks with MLP subnets.

    With ``n_features == 1`` a coupling has nothing to condition on, so the
    flow is a single :class:`ElementwiseAffine` layer (affine in ``x``: the
    latent GMM then models the feature as a mixture of Gaussians).

    Examples
    --------
    >>> import torch
    >>> flow = dense_inn(6, n_blocks=2, hidden=(16,))
    >>> x = torch.randn(3, 6)
    >>> z, log_det = flow(x)
    >>> bool(torch.allclose(flow.inverse(z), x, atol=1e-5))
    True
    """
    if n_features == 1:
        return InvertibleSequence([ElementwiseAffine(1)], (1,))
    factory = _SubnetFactory("dense", tuple(hidden), activation)
    with _numpy_seed_from_torch():
        blocks = [
            CouplingBlock([(n_features,)], factory, affine_clamping=clamp, permute_soft=True)
            for _ in range(n_blocks)
        ]
    return InvertibleSequence(blocks, (n_features,))


def conv_inn(
    input_shape: Sequence[int],
    architecture: str | Sequence = "paper",
    n_fc_blocks: int = 2,
    hidden: Sequence[int] = (128,),
    conv_width: int = 32,
    activation: str = "relu",
    clamp: float = 2.0,
) -> InvertibleSequence:
    """Convolutional INN for images ``(C, H, W)``.

    ``architecture`` is a preset name of :data:`INN_PRESETS` or a sequence of
    ints (coupling blocks with convolutional subnets at the current
    resolution) and ``'down'`` (i-RevNet downsampling: 4x channels, half the
    height and width). The result is flattened and followed by
    ``n_fc_blocks`` coupling blocks with MLP subnets (the paper applies a DCT
    before them; we flatten).

    Examples
    --------
    >>> import torch
    >>> flow = conv_inn((1, 8, 8), "small", n_fc_blocks=1, hidden=(16,), conv_width=8)
    >>> x = torch.randn(2, 64)
    >>> bool(torch.allclose(flow.inverse(flow(x)[0]), x, atol=1e-5))
    True
    """
    if isinstance(architecture, str):
        if architecture not in INN_PRESETS:
            raise ValueError(
                f"Unknown INN preset {architecture!r}; expected one of {sorted(INN_PRESETS)} "
                "or a sequence of ints and 'down'."
            )
        architecture = INN_PRESETS[architecture]
    if len(input_shape) != 3:
        raise ValueError(f"The convolutional INN needs input_shape (C, H, W), got {input_shape}.")
    c, h, w = (int(s) for s in input_shape)
    conv_factory = _SubnetFactory("conv", int(conv_width), activation)
    blocks: list[nn.Module] = []
    with _numpy_seed_from_torch():
        for step in architecture:
            if step == "down":
                if h % 2 or w % 2:
                    raise ValueError(
                        f"i-RevNet downsampling needs even height and width, got {h}x{w}."
                    )
                blocks.append(Downsample([(c, h, w)]))
                c, h, w = 4 * c, h // 2, w // 2
            elif isinstance(step, (int, np.integer)) and not isinstance(step, bool) and step >= 0:
                if step and c < 2:
                    raise ValueError(
                        "Convolutional coupling blocks need at least 2 channels; start the "
                        "architecture with 'down' for single-channel images (preset 'small')."
                    )
                blocks += [
                    CouplingBlock(
                        [(c, h, w)], conv_factory, affine_clamping=clamp, permute_soft=True
                    )
                    for _ in range(int(step))
                ]
            else:
                raise ValueError(f"INN architecture steps are ints >= 0 or 'down', got {step!r}.")
        blocks.append(Flatten((c, h, w)))
        dense_factory = _SubnetFactory("dense", tuple(hidden), activation)
        d = c * h * w
        blocks += [
            CouplingBlock([(d,)], dense_factory, affine_clamping=clamp, permute_soft=True)
            for _ in range(n_fc_blocks)
        ]
    return InvertibleSequence(
        blocks, (int(input_shape[0]), int(input_shape[1]), int(input_shape[2]))
    )


class IBINNNetwork(nn.Module):
    """An INN ``g`` with a latent class-conditional GMM (the IB-INN model).

    ``forward(x)`` returns ``(z, log|det J_g|)`` at ``x + eps`` with
    ``eps ~ N(0, noise_sigma^2 I)`` in training mode and at ``x`` in
    evaluation mode.
    """

    def __init__(self, flow: InvertibleSequence, gmm: nn.Module, noise_sigma: float) -> None:
        super().__init__()
        self.flow = flow
        self.gmm = gmm
        self.noise_sigma = float(noise_sigma)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and self.noise_sigma > 0:
            x = x + self.noise_sigma * torch.randn_like(x)
        return self.flow(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Latent code ``z = g(x)``."""
        return self.flow(x)[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``log w_y - 0.5 ||g(x) - mu_y||^2``."""
        return self.gmm.logits(self.flow(x)[0])

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class posterior by Bayes' rule in latent space (log_softmax of the logits)."""
        return torch.log_softmax(self.logits(x), dim=-1)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """``log q(x) = log q(g(x)) + log|det J_g(x)|`` (nats)."""
        z, log_det = self.flow(x)
        return self.gmm.log_prob(z) + log_det
