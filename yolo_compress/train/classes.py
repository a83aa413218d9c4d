"""Change the classes a pretrained detector predicts while keeping what it learned about the kept ones.

Each head's input conv has, per anchor, 4 box + 1 objectness + C class channels. Keeping only some
classes keeps their channels (and the box and objectness ones) with their trained weights, so an
80-class COCO model cut to `person` scores persons exactly as before ([yolo] heads: independent
sigmoids; a [region] head's softmax renormalizes over the kept classes, so its scores change).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.heads import Head
from yolo_compress.models.layers import ConvBlock


def class_indices(names: Sequence[str], keep: Sequence[str]) -> list[int]:
    """Indices of `keep` in `names`, in keep's order; an unknown or repeated name is an error listing names."""
    keep = [str(name).strip() for name in keep]
    if not keep:
        raise ValueError("no classes to keep")
    repeated = sorted({name for name in keep if keep.count(name) > 1})
    if repeated:
        raise ValueError(f"classes named twice: {', '.join(repeated)}")
    unknown = [name for name in keep if name not in names]
    if unknown:
        raise ValueError(f"unknown classes {', '.join(unknown)}; the model's classes are: {', '.join(names)}")
    return [list(names).index(name) for name in keep]


def select_classes(model: Darknet, names: Sequence[str], keep: Sequence[str]) -> Darknet:
    """A copy of `model` whose heads predict only the classes `keep` (in that order); `model` is unchanged.

    The returned model's cfg says classes=len(keep) and the matching filters=, so it saves as a checkpoint
    or .weights like any other. Its class names are `keep`.
    """
    if len(names) != model.heads[0].num_classes:
        raise ValueError(f"{len(names)} class names for a model with {model.heads[0].num_classes} classes")
    kept = class_indices(names, keep)
    sections = model.to_sections()
    state = model.state_dict()
    for head in model.heads:
        conv_index = _head_conv(model, head)
        channels = head_channels(head, kept)
        sections[head.index + 1].options["classes"] = str(len(kept))
        sections[conv_index + 1].options["filters"] = str(len(channels))
        prefix = f"layers.{conv_index}."
        for key in [key for key in state if key.startswith(prefix)]:
            if state[key].dim() > 0:
                state[key] = state[key][channels].clone()
    sliced = Darknet(sections)
    sliced.load_state_dict(state)
    return sliced.train(model.training)


def head_channels(head: Head, kept: Sequence[int]) -> torch.Tensor:
    """Output channels of a head's conv to keep: per anchor its 5 box/objectness channels, then `kept` classes."""
    attrs = 5 + head.num_classes
    per_anchor = torch.tensor([0, 1, 2, 3, 4, *(5 + k for k in kept)])
    return (torch.arange(head.num_anchors)[:, None] * attrs + per_anchor[None]).reshape(-1)


def _head_conv(model: Darknet, head: Head) -> int:
    """Index of the [convolutional] that produces a head's input (the layer just before the head)."""
    index = head.index - 1
    if not isinstance(model.layers[index], ConvBlock):
        raise ValueError(
            f"{model.describe(head.index)}: its input comes from {model.describe(index)}, not a [convolutional]; "
            "its classes cannot be sliced"
        )
    return index


def with_num_classes(model: Darknet, num_classes: int) -> Darknet:
    """A freshly initialized model of the same cfg whose heads predict `num_classes` classes: for training
    from scratch on a dataset with another class count (no trained weights to keep)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    sections = model.to_sections()
    for head in model.heads:
        conv_index = _head_conv(model, head)
        sections[head.index + 1].options["classes"] = str(num_classes)
        sections[conv_index + 1].options["filters"] = str(head.num_anchors * (5 + num_classes))
    return Darknet(sections).train(model.training)
