"""Fold each batch norm into its convolution, for export and inference.

In inference BN is a per-channel affine map, so conv then BN is one conv with scaled weights and a
bias: the exported graph is smaller and faster, and its cfg (batch_normalize=0) still describes it,
so a fused model also saves as .weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock


def fuse_conv_bn(model: Darknet) -> Darknet:
    """An eval-mode copy of `model` with every BN folded into its conv; `model` is unchanged.

    The copy freezes the BN running statistics into the weights: it is for inference, not training.
    """
    fused = copy.deepcopy(model)
    for layer in fused.layers:
        if isinstance(layer, ConvBlock) and layer.bn is not None:
            layer.conv = fold_bn(layer.conv, layer.bn)
            layer.bn = None
    return fused.eval()


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """The conv equal to bn(conv(x)) with bn using its running statistics (computed in float64)."""
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
        device=conv.weight.device, dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        fused.weight.copy_(conv.weight.double() * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean.double()) * scale + bn.bias.double())
    return fused
