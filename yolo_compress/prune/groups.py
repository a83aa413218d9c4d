"""Which channels of a Darknet network can be removed together: Torch-Pruning's dependency graph, Darknet rules.

Torch-Pruning traces the network and couples every tensor dimension that must shrink together: a conv's
outputs with its BN, the next layer's inputs, the depthwise conv that reads them, both sides of a
[shortcut], the slices of a [route] concatenation. One `ChannelGroup` is one such set, named after its
root conv's cfg layer. The Darknet-specific rules live here, outside the criteria: detection-head convs
(their outputs ARE the anchors x (5 + classes) layout) are never pruned, nor convs whose output a grouped
[route] splits in halves (yolov4-tiny), because the graph cannot keep both halves equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock, Route


@dataclass(frozen=True)
class Member:
    """One conv touched by a group: its cfg layer, whether the group removes its outputs or its inputs, and
    which of its channels (`channels`) correspond to which channels of the group (`positions`).

    A member can hold only part of the group: convs concatenated by a [route] into a depthwise conv each
    own a slice of the depthwise conv's channels.
    """

    layer: int
    outputs: bool
    channels: tuple[int, ...]
    positions: tuple[int, ...]


@dataclass
class ChannelGroup:
    """Coupled channels: `size` of them, named by `layer`, the first conv whose outputs they are.

    `group` is Torch-Pruning's group with full indices; its root conv (group[0]) is whichever conv the graph
    met first, e.g. the depthwise conv of an inverted residual rather than the 1x1 conv that feeds it.
    """

    layer: int
    size: int
    group: tp.dependency.Group
    members: tuple[Member, ...]


def conv_layers(model: Darknet) -> dict[nn.Conv2d, int]:
    """Each conv module of the network -> its cfg layer index."""
    return {block.conv: i for i, block in enumerate(model.layers) if isinstance(block, ConvBlock)}


def protected_layers(model: Darknet) -> list[int]:
    """Conv layers whose output channels must stay: the head convs and the inputs of grouped routes."""
    heads = {head.index - 1 for head in model.heads}
    split = {
        source
        for layer, sources in zip(model.layers, model.sources, strict=True)
        if isinstance(layer, Route) and layer.groups > 1
        for source in sources
    }
    convs = set(conv_layers(model).values())
    return sorted((heads | split) & convs)


def dependency_graph(model: Darknet) -> tp.DependencyGraph:
    """Torch-Pruning's graph of `model` as it is now (rebuild it after every pruning step)."""
    weight = next(model.parameters())
    example = torch.zeros(1, model.in_channels, *model.input_size, dtype=weight.dtype, device=weight.device)
    was_training = model.training
    model.eval()
    try:
        return tp.DependencyGraph().build_dependency(
            model, example_inputs=example, output_transform=lambda outputs: sum(o.sum() for o in outputs)
        )
    finally:
        model.train(was_training)


def channel_groups(model: Darknet, graph: tp.DependencyGraph | None = None) -> list[ChannelGroup]:
    """Every prunable group of `model`, in cfg order of its root conv."""
    graph = graph or dependency_graph(model)
    layers = conv_layers(model)
    ignored = [model.layers[i].conv for i in protected_layers(model)]
    groups = []
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d]):
        root = group[0].dep.target.module
        members = _members(group, layers)
        first = min(member.layer for member in members if member.outputs)
        groups.append(ChannelGroup(first, root.out_channels, group, members))
    return sorted(groups, key=lambda g: g.layer)


def _members(group: tp.dependency.Group, layers: dict[nn.Conv2d, int]) -> tuple[Member, ...]:
    found: dict[tuple[int, bool], Member] = {}
    for item in group:
        module, handler = item.dep.target.module, item.dep.handler
        if module in layers and handler in _OUT_FNS + _IN_FNS:
            key = (layers[module], handler in _OUT_FNS)
            found.setdefault(key, Member(*key, tuple(item.idxs), tuple(item.root_idxs)))
    return tuple(found.values())


_OUT_FNS = (tp.prune_conv_out_channels, tp.prune_depthwise_conv_out_channels)
_IN_FNS = (tp.prune_conv_in_channels, tp.prune_depthwise_conv_in_channels)


def prune_channels(graph: tp.DependencyGraph, group: ChannelGroup, channels: Sequence[int]) -> None:
    """Remove root `channels` of `group` (and everything coupled to them) from the model, in place."""
    if not channels:
        return
    if len(channels) >= group.size:
        raise ValueError(f"layer {group.layer}: cannot remove all {group.size} channels")
    root = group.group[0].dep.target.module
    graph.get_pruning_group(root, tp.prune_conv_out_channels, sorted(int(c) for c in channels)).prune()
