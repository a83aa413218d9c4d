"""One structural pruning step on a Darknet model: score, allocate, cut, in place.

The model stays a plain Darknet afterwards (its cfg regenerates from the modules), so the caller can
finetune it, save it as a self-describing checkpoint and export it like any other model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from yolo_compress.models.complexity import layer_costs
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.prune.allocation import ROUND_TO, allowed_keep, counts_for_flops, keep_counts, plan_from_counts
from yolo_compress.prune.groups import channel_groups, dependency_graph, prune_channels
from yolo_compress.prune.importance import Importance


@dataclass(frozen=True)
class StepSettings:
    """How much to cut and under which constraints.

    Exactly one of `amount` (fraction of the prunable channels, 0..1), `target_flops` (conv FLOPs to come
    down to) and `widths` (group layer -> channels to keep, e.g. from sensitivity analysis; rounded like the
    rest) is set. `floors` maps group layer -> minimum width (default `min_channels` everywhere).
    """

    rule: str = "uniform"
    amount: float | None = None
    target_flops: float | None = None
    widths: Mapping[int, int] | None = None
    round_to: int = ROUND_TO
    min_channels: int = 8
    floors: Mapping[int, int] | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.amount, self.target_flops, self.widths)) != 1:
            raise ValueError("give exactly one of amount, target_flops or widths")
        if self.amount is not None and not 0.0 <= self.amount < 1.0:
            raise ValueError(f"amount must be in [0, 1), got {self.amount}")
        if self.round_to < 1 or self.min_channels < 1:
            raise ValueError("round_to and min_channels must be >= 1")


def conv_widths(model: Darknet) -> dict[int, int]:
    """Output channels of every conv layer (for the per-layer 'channels removed' record)."""
    return {i: block.conv.out_channels for i, block in enumerate(model.layers) if isinstance(block, ConvBlock)}


def prune_step(model: Darknet, importance: Importance, settings: StepSettings) -> dict[int, int]:
    """Prune `model` in place; returns the output channels removed per conv layer (only layers that lost some)."""
    graph = dependency_graph(model)
    groups = channel_groups(model, graph)
    scores = {g.layer: importance.scores(g) for g in groups}
    group_floors = {g.layer: (settings.floors or {}).get(g.layer, settings.min_channels) for g in groups}
    if settings.amount is not None:
        keep = keep_counts(groups, scores, settings.rule, settings.amount, settings.round_to, group_floors)
    elif settings.widths is not None:
        keep = {g.layer: allowed_keep(g.size, settings.widths.get(g.layer, g.size), settings.round_to,
                                      group_floors[g.layer]) for g in groups}
    else:
        flops = [cost.flops for cost in layer_costs(model)]
        keep = counts_for_flops(model, groups, scores, settings.rule, settings.target_flops, settings.round_to,
                                group_floors, flops)
    before = conv_widths(model)
    plan = plan_from_counts(groups, scores, keep, settings.round_to, group_floors)
    for group in groups:
        prune_channels(graph, group, plan.removals.get(group.layer, []))
    after = conv_widths(model)
    return {layer: before[layer] - after[layer] for layer in before if before[layer] != after[layer]}
