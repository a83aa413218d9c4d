"""Channel importance criteria: small interchangeable objects, each scoring every channel of a group.

Every criterion answers `scores(group) -> Tensor[group.size]` (higher = keep), so the allocation and the
iterative schedule never know which one they run. Scores are L2-normalized per group, as Molchanov et al.
(ICLR 2017) do for the Taylor criterion, so one global ranking across layers is meaningful for all of them.

- `TaylorImportance`: first-order Taylor expansion of the loss on the ACTIVATIONS, |mean(a * dL/da)| per
  channel (Molchanov et al.). Torch-Pruning's TaylorImportance is the weight x gradient form; this one needs
  the activations, so it records them with hooks while the caller runs forward/backward on real batches.
- `L1Importance`: L1 norm of each output filter (Li et al., ICLR 2017).
- `BNScaleImportance`: |gamma| of the batch norm (network slimming, Liu et al., ICCV 2017).
- `RandomImportance`: the baseline every criterion must beat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import torch

from yolo_compress.models.complexity import layer_costs
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.prune.groups import ChannelGroup


class Importance(Protocol):
    """What the allocation needs from a criterion."""

    name: str

    def scores(self, group: ChannelGroup) -> torch.Tensor: ...


def l2_normalized(values: torch.Tensor) -> torch.Tensor:
    """`values / ||values||_2`; all zeros stay zeros (nothing to tell the channels apart)."""
    norm = values.norm(p=2)
    return values / norm if norm > 0 else values


def _mean_over_members(group: ChannelGroup, per_layer: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """Normalized average, per group channel, of the normalized `per_layer(layer)` of every conv whose outputs
    the group removes (both sides of a shortcut, an expand conv and its depthwise conv, route slices)."""
    total = torch.zeros(group.size)
    count = torch.zeros(group.size)
    for member in group.members:
        if member.outputs:
            values = l2_normalized(per_layer(member.layer).detach().float().cpu())
            positions = torch.tensor(member.positions, dtype=torch.long)
            total.index_add_(0, positions, values[list(member.channels)])
            count.index_add_(0, positions, torch.ones(len(positions)))
    return l2_normalized(total / count.clamp(min=1))


def _filter_l1(block: ConvBlock) -> torch.Tensor:
    return block.conv.weight.abs().flatten(1).sum(1)


class L1Importance:
    """L1 norm of each output filter, averaged over the coupled convs (e.g. both sides of a shortcut)."""

    name = "l1"

    def __init__(self, model: Darknet):
        self.model = model

    def scores(self, group: ChannelGroup) -> torch.Tensor:
        return _mean_over_members(group, lambda layer: _filter_l1(self.model.layers[layer]))


class BNScaleImportance:
    """|gamma| of each channel's batch norm; a conv without BN scores by its filter's L1 norm instead."""

    name = "bn"

    def __init__(self, model: Darknet):
        self.model = model

    def scores(self, group: ChannelGroup) -> torch.Tensor:
        def gamma(layer: int) -> torch.Tensor:
            block = self.model.layers[layer]
            return block.bn.weight.abs() if block.bn is not None else _filter_l1(block)

        return _mean_over_members(group, gamma)


class RandomImportance:
    """Uniform random scores from a seeded generator: the same seed gives the same pruning."""

    name = "random"

    def __init__(self, model: Darknet, seed: int = 0):
        self.model = model
        self.generator = torch.Generator().manual_seed(seed)

    def scores(self, group: ChannelGroup) -> torch.Tensor:
        return l2_normalized(torch.rand(group.size, generator=self.generator))


class TaylorImportance:
    """|mean over batch and positions of activation x gradient| per channel, summed over calibration batches.

    Usage: `with taylor.recording(): for batch: loss(model(images)).backward()`, then `scores(group)`. The
    activation of a conv layer is its block's output (after BN and the activation function), the feature map
    the next layers read. A channel shared by several convs (a shortcut) averages their normalized scores.
    """

    name = "taylor"

    def __init__(self, model: Darknet):
        self.model = model
        self._sums: dict[int, torch.Tensor] = {}
        self._counts: dict[int, int] = {}

    @contextmanager
    def recording(self) -> Iterator[TaylorImportance]:
        """Hooks that record a*grad for every conv block while active; each backward() adds one batch."""
        handles = [
            block.register_forward_hook(self._forward_hook(index))
            for index, block in enumerate(self.model.layers)
            if isinstance(block, ConvBlock)
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _forward_hook(self, index: int):
        def hook(_module, _inputs, output: torch.Tensor) -> None:
            if output.requires_grad:
                activation = output.detach()
                output.register_hook(lambda grad: self._accumulate(index, activation, grad))

        return hook

    def _accumulate(self, index: int, activation: torch.Tensor, grad: torch.Tensor) -> None:
        value = (activation * grad.detach()).mean(dim=(0, 2, 3)).abs().double().cpu()
        self._sums[index] = self._sums.get(index, 0) + value
        self._counts[index] = self._counts.get(index, 0) + 1

    @property
    def batches(self) -> int:
        """Backward passes recorded (those that reached every conv)."""
        return min(self._counts.values(), default=0)

    def layer_scores(self, layer: int) -> torch.Tensor:
        """Accumulated raw criterion of conv `layer`'s output channels (before normalization)."""
        if layer not in self._sums:
            raise RuntimeError(
                f"no Taylor statistics for layer {layer}: run forward and backward on calibration batches "
                "inside recording() first"
            )
        return self._sums[layer] / self._counts[layer]

    def scores(self, group: ChannelGroup) -> torch.Tensor:
        return _mean_over_members(group, self.layer_scores)


class FlopsRegularized:
    """`base` minus `weight` x the FLOPs one channel of the group costs, relative to the costliest group's
    channel (Molchanov et al.'s FLOPs regularization): at equal importance, channels of expensive layers go
    first. `weight` 0 is `base` itself; scores are no longer unit-norm."""

    def __init__(self, base: Importance, model: Darknet, groups: Sequence[ChannelGroup], weight: float):
        self.base = base
        self.name = f"{base.name}+flops"
        self.weight = weight
        costs = [c.flops for c in layer_costs(model)]
        per_channel = {g.layer: _channel_flops(model, g, costs) for g in groups}
        top = max(per_channel.values(), default=0.0) or 1.0
        self._relative = {layer: value / top for layer, value in per_channel.items()}

    def scores(self, group: ChannelGroup) -> torch.Tensor:
        return self.base.scores(group) - self.weight * self._relative[group.layer]


def _channel_flops(model: Darknet, group: ChannelGroup, costs: Sequence[int]) -> float:
    """FLOPs saved per removed channel of `group`: each member conv's FLOPs over its channel count on the
    pruned side, weighted by the share of the group it holds."""
    total = 0.0
    for member in group.members:
        conv = model.layers[member.layer].conv
        channels = conv.out_channels if member.outputs else conv.in_channels
        total += costs[member.layer] / channels * len(member.channels) / group.size
    return total


CRITERIA = {"taylor": TaylorImportance, "l1": L1Importance, "bn": BNScaleImportance, "random": RandomImportance}
