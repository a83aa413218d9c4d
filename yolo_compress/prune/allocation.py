"""How many channels each group loses in one pruning step, and which ones: the lowest-scoring.

Two rules share the same rounding. `global` ranks every channel of the network by its normalized score and
removes the lowest, so layers that matter keep more; `uniform` removes the same fraction of every group.
Either way a group keeps a multiple of `round_to` channels (default ROUND_TO = 8) and at least
`min_channels`: an unrounded pruned model was measured SLOWER than the unpruned one on this CPU. ONNX
Runtime's blocked NCHWc convolutions pad every channel count up to the block, 8 floats with AVX2 and 16 with
AVX-512, and GPU fp16 kernels want multiples of 8. On an AVX-512 machine a single 1x1 conv costs the same
at 40 as at 48 channels (bench/conv_channel_steps.py), so `round_to=16` suits it; whole yolo-fastest-1.1-xl
models pruned at 8 and at 16 showed no latency difference beyond that machine's noise (BENCHMARKS.md).
Removal targets are either a fraction of the prunable channels or a conv-FLOPs budget, found by bisection
on the score threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.prune.groups import ChannelGroup

RULES = ("global", "uniform")
ROUND_TO = 8  # ORT's NCHWc block with AVX2, and what GPU fp16 kernels want; 16 is the AVX-512 block


@dataclass(frozen=True)
class Plan:
    """Channels to remove per group (keyed by ChannelGroup.layer), lowest score first."""

    removals: dict[int, list[int]]

    @property
    def removed(self) -> int:
        return sum(len(channels) for channels in self.removals.values())


def allowed_keep(size: int, wanted: int, round_to: int, floor: int) -> int:
    """The channel count closest to `wanted` (ties: more) that is `size` itself or a multiple of `round_to`
    in [floor, size]."""
    options = [size] + [k for k in range(round_to, size, round_to) if k >= floor]
    return min(options, key=lambda keep: (abs(keep - wanted), -keep))


def floors(groups: Sequence[ChannelGroup], min_channels: int, min_ratio: float = 0.0,
           original: Mapping[int, int] | None = None) -> dict[int, int]:
    """The smallest width of each group: `min_channels`, or `min_ratio` of its unpruned width if more."""
    original = original or {}
    return {g.layer: max(min_channels, math.ceil(min_ratio * original.get(g.layer, g.size))) for g in groups}


def keep_counts(groups: Sequence[ChannelGroup], scores: Mapping[int, torch.Tensor], rule: str, amount: float,
                round_to: int, group_floors: Mapping[int, int]) -> dict[int, int]:
    """Channels each group keeps when the step removes `amount` (0..1) by `rule` ("global": channels scoring
    below the `amount` quantile of all scores; "uniform": `amount` of each group)."""
    if rule not in RULES:
        raise ValueError(f"unknown allocation rule {rule!r} (one of {', '.join(RULES)})")
    if rule == "uniform":
        wanted = {g.layer: g.size - round(amount * g.size) for g in groups}
    else:
        everything = torch.cat([scores[g.layer] for g in groups])
        threshold = torch.quantile(everything.double(), amount).item() if amount > 0 else -math.inf
        wanted = {g.layer: g.size - int((scores[g.layer].double() < threshold).sum()) for g in groups}
    return {g.layer: allowed_keep(g.size, wanted[g.layer], round_to, group_floors[g.layer]) for g in groups}


def slices(group: ChannelGroup) -> list[list[int]]:
    """The group's channels split by the convs that own them: one slice per conv concatenated by a [route]
    into the group (e.g. a depthwise conv reading a 24 + 96 channel concat), else one slice of all."""
    owned = sorted({m.positions for m in group.members if m.outputs and len(m.positions) < group.size})
    covered = sorted(p for positions in owned for p in positions)
    if not owned or covered != list(range(group.size)):
        return [list(range(group.size))]
    return [list(positions) for positions in owned]


def plan_from_counts(groups: Sequence[ChannelGroup], scores: Mapping[int, torch.Tensor], keep: Mapping[int, int],
                     round_to: int, group_floors: Mapping[int, int]) -> Plan:
    """Remove the lowest-scoring channels of each group down to about `keep[group]`.

    The cut is shared among a group's slices as the scores say, then each slice's width is rounded like a
    group's, so every conv ends with a multiple of `round_to` channels and none is emptied.
    """
    removals = {}
    for g in groups:
        drop = g.size - keep[g.layer]
        if drop <= 0:
            continue
        order = torch.argsort(scores[g.layer], stable=True)
        lowest = set(order[:drop].tolist())
        chosen: list[int] = []
        for part in slices(g):
            wanted = len(part) - sum(c in lowest for c in part)
            kept = allowed_keep(len(part), wanted, round_to, min(group_floors[g.layer], len(part)))
            ranked = sorted(part, key=lambda c: float(scores[g.layer][c]))
            chosen += ranked[: len(part) - kept]
        if chosen:
            removals[g.layer] = sorted(chosen)
    return Plan(removals)


def conv_flops_after(model: Darknet, groups: Sequence[ChannelGroup], keep: Mapping[int, int],
                     layer_flops: Sequence[int]) -> float:
    """Conv FLOPs of `model` once every group is cut to `keep`, estimated analytically: a conv's FLOPs scale with
    its kept outputs and kept inputs (a conv reading a [route] loses inputs to several groups), a depthwise
    conv's only with its outputs. A member holding a slice of a group is assumed to lose its share of the cut.
    Exact when every member holds the whole group; the schedule measures the real FLOPs after each step."""
    removed_out: dict[int, float] = {}
    removed_in: dict[int, float] = {}
    for g in groups:
        for member in g.members:
            counts = removed_out if member.outputs else removed_in
            share = len(member.channels) / g.size
            counts[member.layer] = counts.get(member.layer, 0) + share * (g.size - keep[g.layer])
    total = 0.0
    for index, block in enumerate(model.layers):
        if not isinstance(block, ConvBlock):
            continue
        conv = block.conv
        out_fraction = 1 - removed_out.get(index, 0) / conv.out_channels
        depthwise = conv.groups > 1 and conv.groups == conv.in_channels
        in_fraction = 1.0 if depthwise else 1 - removed_in.get(index, 0) / conv.in_channels
        total += layer_flops[index] * out_fraction * in_fraction
    return total


def counts_for_flops(model: Darknet, groups: Sequence[ChannelGroup], scores: Mapping[int, torch.Tensor],
                     rule: str, target_flops: float, round_to: int, group_floors: Mapping[int, int],
                     layer_flops: Sequence[int]) -> dict[int, int]:
    """Keep counts whose conv FLOPs come closest to `target_flops` from above (bisection on the amount)."""
    low, high = 0.0, 1.0
    best = keep_counts(groups, scores, rule, 0.0, round_to, group_floors)
    for _ in range(30):
        middle = (low + high) / 2
        keep = keep_counts(groups, scores, rule, middle, round_to, group_floors)
        if conv_flops_after(model, groups, keep, layer_flops) >= target_flops:
            best, low = keep, middle
        else:
            high = middle
    return best
