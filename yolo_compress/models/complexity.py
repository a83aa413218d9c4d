"""Parameters and FLOPs per layer, in Darknet's conventions, so figures compare with published ones.

FLOPs are what AlexeyAB's Darknet sums into its "Total BFLOPS": 2 x multiply-adds per convolution
(no bias, batch norm or activation terms), size² x outputs per maxpool and one add per shortcut
output; the last two are under 1%, and with them Yolo-Fastest-1.1 gives its published 0.252 (0.2509
for the convolutions alone). Parameters are every float a layer stores in its .weights file (BN
running statistics included), the count Darknet models are published with (Yolo-Fastest-1.1:
0.35M). Shapes come from a forward pass of the model as it is, so a pruned model is measured with
its real channel counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock, MaxPool, Shortcut
from yolo_compress.models.weights import conv_tensors


@dataclass(frozen=True)
class LayerCost:
    """One layer: output shape (C, H, W), stored parameters and FLOPs (see the module docstring)."""

    index: int
    type: str
    out_shape: tuple[int, int, int]
    params: int
    flops: int


def layer_costs(model: Darknet, input_size: tuple[int, int] | None = None) -> list[LayerCost]:
    """The cost of every layer at `input_size` (H, W; default: the cfg's)."""
    shapes = output_shapes(model, input_size)
    return [
        LayerCost(i, kind, shape, _params(layer), _flops(layer, shape))
        for i, (kind, layer, shape) in enumerate(zip(model.layer_types, model.layers, shapes, strict=True))
    ]


def output_shapes(model: Darknet, input_size: tuple[int, int] | None = None) -> list[tuple[int, int, int]]:
    """(C, H, W) of every layer's output, from one batch-1 forward pass in eval mode (BN statistics untouched)."""
    height, width = input_size or model.input_size
    weight = next(model.parameters())
    image = torch.zeros(1, model.in_channels, height, width, dtype=weight.dtype, device=weight.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model.layer_outputs(image)
    finally:
        model.train(was_training)
    return [tuple(out.shape[1:]) for out in outputs]


def _params(layer: torch.nn.Module) -> int:
    return sum(t.numel() for t in conv_tensors(layer)) if isinstance(layer, ConvBlock) else 0


def _flops(layer: torch.nn.Module, out_shape: tuple[int, int, int]) -> int:
    outputs = math.prod(out_shape)
    if isinstance(layer, ConvBlock):
        return 2 * layer.conv.weight[0].numel() * outputs
    if isinstance(layer, MaxPool):
        return layer.pool.kernel_size**2 * outputs
    return outputs if isinstance(layer, Shortcut) else 0


def total_flops(model: Darknet, input_size: tuple[int, int] | None = None) -> int:
    """Darknet's BFLOPs x 1e9."""
    return sum(cost.flops for cost in layer_costs(model, input_size))


def total_params(model: Darknet) -> int:
    """Darknet's parameter count: the floats of the model's .weights file."""
    return sum(_params(layer) for layer in model.layers)
