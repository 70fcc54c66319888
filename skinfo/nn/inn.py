"""Invertible networks (INNs) of the IB-INN: FrEIA ``SequenceINN`` chains.

The blocks are those of :mod:`skinfo.nn.flow_blocks`, shared with the
approximate-mass detector's RealNVP, and the result is a
:class:`~skinfo.nn.flow_blocks.Flow` (flat rows in and out; ``forward(x)``
returns ``(z, log|det dz/dx|)``, ``inverse(z)`` returns ``x``):

* :class:`~skinfo.nn.flow_blocks.CouplingBlock`: FrEIA's ``AllInOneBlock``
  (affine coupling, random soft permutation, global affine scaling; appendix E
  of Ardizzone et al. 2020) made picklable, with the paper's soft clamp
  ``clamp * tanh(s / clamp)`` (FrEIA 0.2 computes ``clamp * tanh(s)``), with
  MLP or convolutional subnets;
* :class:`~skinfo.nn.flow_blocks.ElementwiseAffine`: ``y = x * exp(s) + t``
  per feature, the flow used when there is a single feature (a coupling needs
  two halves);
* FrEIA's ``IRevNetDownsampling`` (2x2 space-to-channel) between resolution
  levels of the convolutional variant, and
  :class:`~skinfo.nn.flow_blocks.Flatten` before its dense blocks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from FrEIA.framework import SequenceINN
from FrEIA.modules import IRevNetDownsampling
from torch import nn

from .flow_blocks import (
    ConvSubnet,
    CouplingBlock,
    DenseSubnet,
    ElementwiseAffine,
    Flatten,
    Flow,
    SubnetFactory,
)

#: Named architectures of the convolutional variant: ints are numbers of
#: coupling blocks at one resolution, ``'down'`` an i-RevNet downsampling.
INN_PRESETS: dict[str, tuple] = {
    # Ardizzone et al. (2020), appendix E (CIFAR-10)
    "paper": (8, "down", 25, "down", 25),
    # single-channel images (e.g. digits 1x8x8): downsample first so couplings have channels
    "small": ("down", 4, "down", 4),
}

#: Widest block whose soft permutation FrEIA draws itself (scipy's
#: ``special_ortho_group``, cubic in the width with a Python loop: about 10 s
#: for 3,072 channels); wider blocks get a rotation from a QR decomposition.
SOFT_PERMUTATION_MAX = 512


@contextlib.contextmanager
def _numpy_seed_from_torch() -> Iterator[None]:
    """Seed numpy's global RNG from torch's inside the block, then restore it.

    FrEIA draws the soft permutation with ``scipy.stats.special_ortho_group``
    from numpy's global RNG; seeding it from torch makes the networks
    reproducible under ``torch.manual_seed`` and leaves the caller's numpy
    state untouched.
    """
    state = np.random.get_state()  # noqa: NPY002 (FrEIA draws from the global RNG)
    seed = int(torch.randint(0, 2**31 - 1, (), device="cpu"))  # also under torch.device("meta")
    np.random.seed(seed)  # noqa: NPY002 (FrEIA draws from the global RNG)
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002 (FrEIA draws from the global RNG)


def _coupling(inn: SequenceINN, factory: SubnetFactory, clamp: float) -> None:
    """Append a coupling block with a random rotation (soft permutation) to ``inn``.

    Up to :data:`SOFT_PERMUTATION_MAX` channels FrEIA draws the rotation; wider
    blocks are built with a hard permutation whose matrix is then replaced by
    a rotation with the same (Haar) distribution, ``Q diag(sign(diag R))`` of
    the QR decomposition of a Gaussian matrix (one column negated if
    ``det Q = -1``), drawn from torch's RNG.
    """
    channels = inn.shapes[-1][0]
    wide = channels > SOFT_PERMUTATION_MAX
    inn.append(
        CouplingBlock, subnet_constructor=factory, affine_clamping=clamp, permute_soft=not wide
    )
    if wide:
        block = inn.module_list[-1]
        gauss = torch.randn(channels, channels, dtype=torch.float64, device="cpu")
        q, r = torch.linalg.qr(gauss)
        q = q * torch.sign(torch.diagonal(r))
        if torch.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        with torch.no_grad():
            block.w_perm.copy_(q.T.reshape(block.w_perm.shape))
            block.w_perm_inv.copy_(q.reshape(block.w_perm_inv.shape))


def dense_inn(
    n_features: int,
    n_blocks: int = 8,
    hidden: Sequence[int] = (128,),
    activation: str = "relu",
    clamp: float = 2.0,
) -> Flow:
    """Dense INN for feature vectors: ``n_blocks`` coupling blocks with MLP subnets.

    With ``n_features == 1`` a coupling has nothing to condition on, so the
    flow is a single :class:`~skinfo.nn.flow_blocks.ElementwiseAffine` layer
    (affine in ``x``: the latent GMM then models the feature as a mixture of
    Gaussians).

    Parameters
    ----------
    n_features : int
        Width ``D`` of the rows.
    n_blocks : int, default=8
        Number of coupling blocks.
    hidden : sequence of int, default=(128,)
        Hidden widths of each coupling's MLP subnet.
    activation : str, default="relu"
        Activation of the subnets.
    clamp : float, default=2.0
        Soft clamp of the log-scales, ``clamp * tanh(s / clamp)``.

    Returns
    -------
    Flow
        The invertible network on flat rows of width ``n_features``.

    Examples
    --------
    >>> import torch
    >>> flow = dense_inn(6, n_blocks=2, hidden=(16,))
    >>> x = torch.randn(3, 6)
    >>> z, log_det = flow(x)
    >>> bool(torch.allclose(flow.inverse(z), x, atol=1e-5))
    True
    """
    inn = SequenceINN(int(n_features))
    if n_features == 1:
        inn.append(ElementwiseAffine)
        return Flow(inn)
    factory = SubnetFactory(DenseSubnet, hidden=tuple(hidden), activation=activation)
    with _numpy_seed_from_torch():
        for _ in range(n_blocks):
            _coupling(inn, factory, clamp)
    return Flow(inn)


def conv_inn(
    input_shape: Sequence[int],
    architecture: str | Sequence = "paper",
    n_fc_blocks: int = 2,
    hidden: Sequence[int] = (128,),
    conv_width: int = 32,
    activation: str = "relu",
    clamp: float = 2.0,
) -> Flow:
    """Convolutional INN for images ``(C, H, W)``.

    ``architecture`` is a preset name of :data:`INN_PRESETS` or a sequence of
    ints (coupling blocks with convolutional subnets at the current
    resolution) and ``'down'`` (i-RevNet downsampling: 4x channels, half the
    height and width). The result is flattened and followed by
    ``n_fc_blocks`` coupling blocks with MLP subnets (the paper applies a DCT
    before them; we flatten).

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one image; rows are reshaped to it.
    architecture : str or sequence, default="paper"
        A preset name of :data:`INN_PRESETS`, or a sequence of ints and
        ``'down'`` as above.
    n_fc_blocks : int, default=2
        Coupling blocks with MLP subnets after flattening.
    hidden : sequence of int, default=(128,)
        Hidden widths of those MLP subnets.
    conv_width : int, default=32
        Channels of the convolutional subnets.
    activation : str, default="relu"
        Activation of all subnets.
    clamp : float, default=2.0
        Soft clamp of the log-scales, ``clamp * tanh(s / clamp)``.

    Returns
    -------
    Flow
        The invertible network on flat rows of width ``C * H * W``.

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
    inn = SequenceINN(*(int(s) for s in input_shape))
    conv_factory = SubnetFactory(ConvSubnet, width=int(conv_width), activation=activation)
    dense_factory = SubnetFactory(DenseSubnet, hidden=tuple(hidden), activation=activation)
    with _numpy_seed_from_torch():
        for step in architecture:
            c, h, w = inn.shapes[-1]
            if isinstance(step, str) and step == "down":
                if h % 2 or w % 2:
                    raise ValueError(
                        f"i-RevNet downsampling needs even height and width, got {h}x{w}."
                    )
                inn.append(IRevNetDownsampling)
            elif isinstance(step, (int, np.integer)) and not isinstance(step, bool) and step >= 0:
                if step and c < 2:
                    raise ValueError(
                        "Convolutional coupling blocks need at least 2 channels; start the "
                        "architecture with 'down' for single-channel images (preset 'small')."
                    )
                for _ in range(int(step)):
                    _coupling(inn, conv_factory, clamp)
            else:
                raise ValueError(f"INN architecture steps are ints >= 0 or 'down', got {step!r}.")
        inn.append(Flatten)
        for _ in range(n_fc_blocks):
            _coupling(inn, dense_factory, clamp)
    return Flow(inn)


class IBINNNetwork(nn.Module):
    """An INN ``g`` with a latent class-conditional GMM (the IB-INN model).

    ``forward(x)`` returns ``(z, log|det J_g|)`` at ``x + eps`` with
    ``eps ~ N(0, noise_sigma^2 I)`` in training mode and at ``x`` in
    evaluation mode.

    Parameters
    ----------
    flow : Flow
        The invertible network ``g`` (:func:`dense_inn` or :func:`conv_inn`).
    gmm : nn.Module
        The latent mixture (:class:`~skinfo.nn.latent_gmm.LatentGMM`).
    noise_sigma : float
        Standard deviation of the Gaussian noise added to the inputs in training.
    """

    def __init__(self, flow: Flow, gmm: nn.Module, noise_sigma: float) -> None:
        super().__init__()
        self.flow = flow
        self.gmm = gmm
        self.noise_sigma = float(noise_sigma)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map inputs (with training noise in training mode) to the latent space.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        z : torch.Tensor of shape (B, D)
            The latent codes.
        log_det : torch.Tensor of shape (B,)
            ``log|det J_g|`` of each row.
        """
        if self.training and self.noise_sigma > 0:
            x = x + self.noise_sigma * torch.randn_like(x)
        return self.flow(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Latent code ``z = g(x)``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, D)
            The latent codes (no noise added).
        """
        return self.flow(x)[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalized class log-posterior ``log w_y - 0.5 ||g(x) - mu_y||^2``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, K)
            One logit per class.
        """
        return self.gmm.logits(self.flow(x)[0])

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class posterior by Bayes' rule in latent space (log_softmax of the logits).

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, K)
            Normalized class log-probabilities.
        """
        return torch.log_softmax(self.logits(x), dim=-1)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """``log q(x) = log q(g(x)) + log|det J_g(x)|`` (nats).

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B,)
            The log-likelihood of each row under the model.
        """
        z, log_det = self.flow(x)
        return self.gmm.log_prob(z) + log_det
