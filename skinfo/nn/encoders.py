"""Feature encoders: pure torch modules mapping inputs to a representation.

Every encoder takes a batch of rows ``(B, n_features)``; image encoders reshape
the rows to ``(B, C, H, W)`` themselves (:class:`Reshape`), so that sklearn
pipelines with scalers work on flat arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
}


def get_activation(name: str) -> nn.Module:
    """Return a fresh activation module from its name (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"Unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}."
        ) from None


class MLP(nn.Sequential):
    """Fully connected network: ``Linear -> activation`` per hidden layer.

    Parameters
    ----------
    in_features : int or tuple of int
        Input dimension, or the input shape (its product is used), so that
        ``MLP`` itself can be passed as an ``encoder`` factory.
    hidden_layer_sizes : sequence of int
        Width of each hidden layer; ``()`` gives the identity (or a single
        linear map when ``out_features`` is set).
    activation : str, default="elu"
        Name of the activation after each hidden layer.
    out_features : int or None, default=None
        If given, a final linear layer (no activation) of this width.

    Attributes
    ----------
    out_features : int
        Width of the output.

    Examples
    --------
    >>> import torch
    >>> mlp = MLP(64, (400, 200), out_features=15)
    >>> mlp(torch.zeros(3, 64)).shape
    torch.Size([3, 15])
    """

    def __init__(
        self,
        in_features: int | Sequence[int],
        hidden_layer_sizes: Sequence[int] = (400, 200),
        activation: str = "elu",
        out_features: int | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        width = (
            int(math.prod(in_features)) if isinstance(in_features, Sequence) else int(in_features)
        )
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, int(size)), get_activation(activation)]
            width = int(size)
        if out_features is not None:
            layers.append(nn.Linear(width, int(out_features)))
            width = int(out_features)
        super().__init__(*layers)
        self.out_features = width


class Reshape(nn.Module):
    """Reshape flat rows ``(B, prod(shape))`` to ``(B, *shape)``."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class SmallCNN(nn.Module):
    """A small convolutional encoder for images given as flat rows.

    Two 3x3 convolution blocks (``channels`` filters each, activation, 2x2
    max-pooling when the image is at least 4 pixels wide) followed by a
    linear layer to ``out_features``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one image.
    channels : sequence of int, default=(32, 64)
        Filters of each convolution block.
    out_features : int, default=128
        Width of the representation.
    activation : str, default="relu"
        Activation name.

    Examples
    --------
    >>> import torch
    >>> cnn = SmallCNN((1, 8, 8), out_features=16)
    >>> cnn(torch.zeros(5, 64)).shape
    torch.Size([5, 16])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int] = (32, 64),
        out_features: int = 128,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        layers: list[nn.Module] = [Reshape((c, h, w))]
        for width in channels:
            layers += [nn.Conv2d(c, int(width), 3, padding=1), get_activation(activation)]
            c = int(width)
            if min(h, w) >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        layers += [nn.Flatten(), nn.Linear(c * h * w, int(out_features))]
        self.body = nn.Sequential(*layers)
        self.out_features = int(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images given as flat rows.

        Parameters
        ----------
        x : torch.Tensor of shape (B, C * H * W)
            One flattened image per row, in channel-height-width order.

        Returns
        -------
        torch.Tensor of shape (B, out_features)
            The representation.
        """
        return self.body(x)


def output_width(module: nn.Module, n_features: int) -> int:
    """Width of ``module``'s output for flat inputs of ``n_features``.

    Uses the module's ``out_features`` attribute when it has one, otherwise a
    forward pass of two zero rows in evaluation mode.

    Parameters
    ----------
    module : nn.Module
        An encoder mapping rows ``(B, n_features)`` to ``(B, width)``.
    n_features : int
        Width of its input rows.

    Returns
    -------
    int
        The width of the representation.
    """
    width = getattr(module, "out_features", None)
    if isinstance(width, int):
        return width
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(2, n_features))
    module.train(was_training)
    if out.ndim != 2:
        raise ValueError(
            "The encoder must map a batch of rows (B, n_features) to a 2-D "
            f"representation (B, d); it returned shape {tuple(out.shape)}."
        )
    return int(out.shape[1])
