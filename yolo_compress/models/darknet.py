"""A Darknet detector as a torch module, and the cfg of what it has become.

After pruning, `to_sections()` reads filters, groups and batch_normalize back from the real
modules, which is what makes a pruned checkpoint rebuild from its own cfg text.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import torch
from torch import nn

from yolo_compress.models.build import build_layers, input_shape
from yolo_compress.models.cfg import Section, format_cfg, parse_cfg, resolve_cfg
from yolo_compress.models.heads import Head
from yolo_compress.models.layers import ConvBlock


class Darknet(nn.Module):
    """forward(images [B,C,H,W]) returns each head's raw input tensor [B, A*(5+C), h, w], pre-activation.

    `layers[i]` is cfg layer i (sections[i + 1]) and reads the outputs of `sources[i]` (-1 = the
    image), so indices in error messages, weights and pruning all agree with the cfg.
    """

    def __init__(self, sections: Sequence[Section], source: str | None = None):
        super().__init__()
        sections = copy.deepcopy(list(sections))
        if source is not None:
            for section in sections:
                section.source = source
        built = build_layers(sections)
        self.source = sections[0].source
        self.sections = sections
        self.in_channels, height, width = input_shape(sections[0])
        self.input_size = (height, width)
        self.layers = nn.ModuleList(layer.module for layer in built)
        self.sources = [layer.sources for layer in built]
        self.heads: list[Head] = [layer.head for layer in built if layer.head is not None]

    @classmethod
    def from_cfg(cls, name_or_path: str | os.PathLike) -> Darknet:
        """Build from a cfg file or a built-in cfg name (see cfg.builtin_cfg_names)."""
        text, source = resolve_cfg(name_or_path)
        return cls(parse_cfg(text, source))

    @property
    def layer_types(self) -> list[str]:
        return [section.type for section in self.sections[1:]]

    def describe(self, index: int) -> str:
        """"layer 12 [convolutional] (yolov3-tiny.cfg:80)", for error messages."""
        section = self.sections[index + 1]
        return f"layer {index} [{section.type}] ({section.where()})"

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every layer, in cfg order (a [yolo]/[region] layer passes its input through)."""
        outputs = [x]  # outputs[i + 1] is layer i's
        for layer, sources in zip(self.layers, self.sources, strict=True):
            outputs.append(layer(*[outputs[i + 1] for i in sources]))
        return outputs[1:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = self.layer_outputs(x)
        return [outputs[head.index] for head in self.heads]

    def to_sections(self) -> list[Section]:
        """The cfg of this network as it is now: conv filters, groups and batch norm from the modules."""
        sections = copy.deepcopy(self.sections)
        for section, layer in zip(sections[1:], self.layers, strict=True):
            if isinstance(layer, ConvBlock):
                _describe_conv(section.options, layer)
        return sections

    def cfg_text(self) -> str:
        """to_sections() as cfg text."""
        return format_cfg(self.to_sections())

    def at_input_size(self, height: int, width: int) -> Darknet:
        """A copy with the same weights built for a `height` x `width` input (heads get their new grids).

        Convolutions do not depend on the input size, so a lower resolution is a speed lever that needs no
        retraining: the tiers use it where pruning alone reaches a latency floor.
        """
        sections = self.to_sections()
        sections[0].options.update(height=str(height), width=str(width))
        resized = Darknet(sections)
        resized.load_state_dict(self.state_dict())
        return resized.train(self.training)


def _describe_conv(options: dict[str, str], block: ConvBlock) -> None:
    options["filters"] = str(block.conv.out_channels)
    if block.conv.groups != 1 or "groups" in options:
        options["groups"] = str(block.conv.groups)
    if block.bn is not None or "batch_normalize" in options:
        options["batch_normalize"] = "1" if block.bn is not None else "0"
