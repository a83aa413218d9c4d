"""Pad channel counts up to the runtime's vector block with zero filters: the same function, a faster layout.

ONNX Runtime's CPU convolutions run in a blocked layout (NCHWc: 8 channels per block with AVX2, 16 with
AVX-512). A tensor whose channel count is not a multiple of the block leaves that layout: its producer
writes a padded block and reorders it back, its consumer runs a plain NCHW kernel. Pruning rounds the
widths it chooses, but the published models themselves have 4- and 8-channel layers (yolo-fastest-1.1's
stem at 160x160), which took a third of the body model's conv time in an ORT profile. Padding them with
zero filters (whose inputs the next convolution ignores) computes exactly the same boxes and keeps the
blocked layout end to end; bench/channel_padding.py measures what it gives.

Every tensor gets a `Lanes` map: where each real channel sits in the padded tensor. Convolutions put
their real filters first; a depthwise convolution and the parameter-free layers keep their input's
map; a [route] concatenates maps. Padded lanes hold whatever the activations make of zero (0, or 0.5
for a logistic): harmless, because no real channel ever reads them. Tensors whose channel order
something depends on (a head's input, a grouped [route], a [reorg], a grouped convolution that is not
depthwise, the two sides of a [shortcut] whose maps differ) stay unpadded.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from yolo_compress.models.build import build_layers
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock, MaxPool, Route, Shortcut, Upsample

_FLAGS_FILE = Path("/proc/cpuinfo")
PAD_HELP = ("pad the exported model's channels to multiples of this with zero filters: the same boxes in ONNX "
            "Runtime's blocked layout (BENCHMARKS.md); auto (default) = this CPU's block, 16 with AVX-512, 8 with "
            "AVX2; 1 = off. For a GPU robot try 8 and time it there")


@dataclass(frozen=True)
class Lanes:
    """`positions[i]`: where real channel i of a tensor sits among its `width` padded channels."""

    positions: tuple[int, ...]
    width: int

    @classmethod
    def dense(cls, channels: int, width: int | None = None) -> Lanes:
        """The real channels first, then `width - channels` padding lanes."""
        return cls(tuple(range(channels)), channels if width is None else width)

    @property
    def padded(self) -> bool:
        return self.width != len(self.positions)


def cpu_block_size(flags_file: Path = _FLAGS_FILE) -> int:
    """ONNX Runtime's NCHWc block on this CPU: 16 with AVX-512, 8 with AVX2, else 1 (no blocked layout)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return 1
    try:
        flags = next((line.split(":", 1)[1].split() for line in flags_file.read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return 1
    return 16 if "avx512f" in flags else 8 if "avx2" in flags else 1


def pad_multiple(text: str) -> int:
    """A command line's --pad-channels: "auto" (cpu_block_size: the machine that exports is the one that times
    the tiers) or a multiple >= 1 (1: no padding; 8 suits AVX2 CPUs, and GPU fp16 kernels want multiples of 8: not
    measured here)."""
    if text == "auto":
        return cpu_block_size()
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"takes 'auto' or a multiple >= 1, not {text!r}")
    return int(text)


def pad_channels(model: Darknet, multiple: int) -> Darknet:
    """A copy of fused `model` whose tensors are padded to multiples of `multiple` channels where that is
    exact (see the module docstring); `multiple` 1 returns an unpadded copy. Raises ValueError for a model
    that still has batch norms: padding is an export step, after fuse_conv_bn."""
    if multiple < 1:
        raise ValueError(f"pad multiple must be >= 1, got {multiple}")
    if any(isinstance(layer, ConvBlock) and layer.bn is not None for layer in model.layers):
        raise ValueError("pad_channels needs a fused model (fuse_conv_bn first): it pads conv weights, not batch norms")
    if multiple == 1:
        return copy.deepcopy(model)
    fixed: set[int] = set()
    while True:
        lanes, unpadded = _plan(model, multiple, fixed)
        if not unpadded - fixed:
            return _build(model, lanes)
        fixed |= unpadded


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _plan(model: Darknet, multiple: int, fixed: set[int]) -> tuple[list[Lanes], set[int]]:
    """Each layer's output lanes with the convs in `fixed` unpadded, and the convs that must be unpadded for
    every constraint to hold (a superset of `fixed` when the plan is consistent)."""
    lanes: list[Lanes] = []
    must_be_dense: list[int] = []  # layers whose output may not be padded
    image = Lanes.dense(model.in_channels)
    channels = [layer.shape[0] for layer in build_layers(model.to_sections())]
    heads = {head.index for head in model.heads}

    def source(i: int) -> Lanes:
        return image if i < 0 else lanes[i]

    for index, (layer, sources) in enumerate(zip(model.layers, model.sources, strict=True)):
        inputs = [source(i) for i in sources]
        out, dense_inputs = _layer_lanes(layer, inputs, channels[index], multiple, index in fixed)
        if dense_inputs or index in heads:
            must_be_dense.extend(sources)
        lanes.append(out)
    return lanes, fixed | {conv for i in must_be_dense if i >= 0 and lanes[i].padded
                           for conv in _producers(model, i)}


def _layer_lanes(layer: nn.Module, inputs: list[Lanes], channels: int, multiple: int,
                 fixed: bool) -> tuple[Lanes, bool]:
    """(output lanes, whether the inputs must be unpadded) of one layer with `channels` real output channels."""
    if isinstance(layer, ConvBlock):
        conv = layer.conv
        if _is_depthwise(conv):
            return inputs[0], False
        if conv.groups > 1:
            return Lanes.dense(channels), True
        return Lanes.dense(channels, channels if fixed else math.ceil(channels / multiple) * multiple), False
    if isinstance(layer, Route):
        if layer.groups > 1:
            return Lanes.dense(channels), True
        positions, offset = [], 0
        for lane in inputs:
            positions.extend(offset + p for p in lane.positions)
            offset += lane.width
        return Lanes(tuple(positions), offset), False
    if isinstance(layer, Shortcut):
        return inputs[0], inputs[0] != inputs[1]
    if isinstance(layer, (MaxPool, Upsample, nn.Dropout, nn.Identity)):
        return inputs[0], False
    return Lanes.dense(channels), True  # reorg, or anything new: keep its channel order


def _producers(model: Darknet, index: int) -> set[int]:
    """The ungrouped convs whose padding reaches layer `index`'s output (through depthwise convs, routes,
    shortcuts and parameter-free layers)."""
    layer = model.layers[index]
    if isinstance(layer, ConvBlock) and not _is_depthwise(layer.conv):
        return {index}
    return {conv for i in model.sources[index] if i >= 0 for conv in _producers(model, i)}


def _build(model: Darknet, lanes: list[Lanes]) -> Darknet:
    """The padded Darknet: widened conv sections, weights scattered to their lanes, zeros elsewhere."""
    sections = model.to_sections()
    for index, layer in enumerate(model.layers):
        if isinstance(layer, ConvBlock):
            options = sections[index + 1].options
            options["filters"] = str(lanes[index].width)
            if _is_depthwise(layer.conv):
                options["groups"] = str(lanes[index].width)
    padded = Darknet(sections)
    image = Lanes.dense(model.in_channels)
    for index, (layer, target) in enumerate(zip(model.layers, padded.layers, strict=True)):
        if isinstance(layer, ConvBlock):
            source = model.sources[index][0]
            _scatter(layer.conv, target, image if source < 0 else lanes[source], lanes[index])
    return padded.eval()


def _scatter(conv: nn.Conv2d, target: ConvBlock, inputs: Lanes, outputs: Lanes) -> None:
    """Copy fused `conv` into the lanes of `target`'s conv (built from a batch_normalize=0 cfg: it has a bias)."""
    out_index = torch.tensor(outputs.positions)
    with torch.no_grad():
        target.conv.weight.zero_()
        target.conv.bias.zero_()
        if conv.groups == 1:
            target.conv.weight[out_index[:, None], torch.tensor(inputs.positions)[None, :]] = conv.weight
        else:  # depthwise (its lanes are its input's) or grouped (unpadded): filter i to lane i
            target.conv.weight[out_index] = conv.weight
        target.conv.bias[out_index] = conv.bias
