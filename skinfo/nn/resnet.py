"""A ResNet20-style convolutional encoder for images given as flat rows (He et al., 2016).

The CIFAR ResNet of depth ``6n + 2``: a 3x3 convolution with 16 filters, three
stages of ``n`` basic blocks (two 3x3 convolutions with batch norm and ReLU, an
identity shortcut) with 16, 32 and 64 filters, the second and third stage
starting with stride 2 (shortcut: a strided 1x1 convolution with batch norm),
then global average pooling. ``n = 3`` gives ResNet20. The classifier layer is
not included: the estimator adds its own head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import Reshape


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet encoder on flat rows; output width ``widths[-1]``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one image; rows of the input are reshaped to it.
    blocks_per_stage : int, default=3
        ``n``: the depth is ``6n + 2`` (3 gives ResNet20).
    widths : sequence of int, default=(16, 32, 64)
        Filters of each stage.

    Attributes
    ----------
    out_features : int
        Width of the representation (``widths[-1]``).

    Examples
    --------
    >>> import torch
    >>> net = ResNet((3, 8, 8), blocks_per_stage=1)
    >>> net(torch.zeros(2, 3 * 8 * 8)).shape
    torch.Size([2, 64])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        blocks_per_stage: int = 3,
        widths: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}.")
        channels = int(input_shape[0])
        layers: list[nn.Module] = [
            Reshape(input_shape),
            nn.Conv2d(channels, int(widths[0]), 3, 1, 1, bias=False),
            nn.BatchNorm2d(int(widths[0])),
            nn.ReLU(),
        ]
        width = int(widths[0])
        for stage, out_width in enumerate(widths):
            for block in range(int(blocks_per_stage)):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(width, int(out_width), stride))
                width = int(out_width)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images given as flat rows.

        Parameters
        ----------
        x : torch.Tensor of shape (B, C * H * W)
            One flattened image per row, in channel-height-width order.

        Returns
        -------
        torch.Tensor of shape (B, widths[-1])
            The globally average-pooled features of the last stage.
        """
        return self.body(x)


def resnet20(input_shape: Sequence[int]) -> ResNet:
    """ResNet20 encoder factory (``encoder=resnet20`` with ``input_shape=(C, H, W)``).

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one image.

    Returns
    -------
    ResNet
        A ResNet of depth 20 (three blocks per stage) with 64 output features.

    Examples
    --------
    >>> resnet20((3, 32, 32)).out_features
    64
    """
    return ResNet(input_shape, blocks_per_stage=3)
