"""The torch modules a Darknet network is made of, each computing what Darknet computes.

Convolutions stay plain nn.Conv2d + nn.BatchNorm2d inside ConvBlock so that pruning (dependency
graphs) and Conv+BN fusion see standard modules; route and shortcut are plain tensor ops (cat,
chunk, add) so the network traces with torch.fx, torch.jit.trace and the ONNX exporter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Darknet's leaky ReLU slope.
LEAKY_SLOPE = 0.1
# AlexeyAB's Darknet (which trained Yolo-Fastest and yolov4) normalizes on the CPU with
# (x - mean) / sqrt(var + 1e-6), as OpenCV DNN does; pjreddie's original put the epsilon outside
# the square root. The two differ only for near-zero variances, and this one is nn.BatchNorm2d's.
BN_EPS = 1e-6
# Darknet keeps rolling statistics with 0.99/0.01; 0.03 adapts within the few hundred steps of a
# finetune after pruning (ultralytics' choice for the same models).
BN_MOMENTUM = 0.03

_ACTIVATIONS = {
    "leaky": lambda: nn.LeakyReLU(LEAKY_SLOPE),
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "mish": nn.Mish,
    "swish": nn.SiLU,
    "logistic": nn.Sigmoid,
}
ACTIVATION_NAMES = tuple(_ACTIVATIONS)


def make_activation(name: str) -> nn.Module:
    """The module of a Darknet activation name (one of ACTIVATION_NAMES)."""
    return _ACTIVATIONS[name]()


class ConvBlock(nn.Module):
    """[convolutional]: `conv`, optional `bn` (the conv then has no bias), `act`."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, act: nn.Module):
        super().__init__()
        self.conv = conv
        self.bn = bn
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class MaxPool(nn.Module):
    """[maxpool] with Darknet's padding: `padding` pixels (default size-1), floor(padding/2) before.

    For size=2 stride=1 that is one pixel after only, which keeps the size. That odd pixel repeats
    the last row and column (for a max, the same as Darknet's skipping of out-of-range pixels), by
    concatenation, which exports to two plain Slice+Concat nodes.
    """

    def __init__(self, size: int, stride: int, padding: int):
        super().__init__()
        self.pad_after = padding % 2 == 1
        self.pool = nn.MaxPool2d(size, stride, padding // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_after:
            x = torch.cat([x, x[:, :, -1:]], dim=2)
            x = torch.cat([x, x[:, :, :, -1:]], dim=3)
        return self.pool(x)


class Route(nn.Module):
    """[route]: concatenate its inputs along channels; with groups, chunk `group_id` of each."""

    def __init__(self, groups: int = 1, group_id: int = 0):
        super().__init__()
        self.groups = groups
        self.group_id = group_id

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.groups > 1:
            inputs = tuple(x.chunk(self.groups, dim=1)[self.group_id] for x in inputs)
        return inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)


class Shortcut(nn.Module):
    """[shortcut]: previous output + an earlier layer's output, then the activation."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act

    def forward(self, previous: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self.act(previous + other)


class Upsample(nn.Module):
    """[upsample]: nearest neighbour by an integer stride."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=float(self.stride), mode="nearest")


class Reorg(nn.Module):
    """[reorg] (the YOLOv2 passthrough) in Darknet's own element order, which is not space-to-depth.

    Darknet reads the [C, H, W] input buffer as if it were [C/s², H·s, W·s], writes channel block
    (dy·s + dx) of a [C, H, W] buffer from the pixels at offset (dy, dx), and then calls that
    buffer the [C·s², H/s, W/s] output.
    """

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, channels, height, width = x.shape
        s = self.stride
        y = x.reshape(-1, channels // (s * s), height, s, width, s)
        y = y.permute(0, 3, 5, 1, 2, 4)
        return y.reshape(-1, channels * s * s, height // s, width // s)
