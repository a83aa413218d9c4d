"""Channel criteria against their definitions, computed independently with autograd and plain tensors."""

from __future__ import annotations

import pytest
import torch

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.prune.groups import channel_groups
from yolo_compress.prune.importance import (
    BNScaleImportance,
    FlopsRegularized,
    L1Importance,
    RandomImportance,
    TaylorImportance,
    l2_normalized,
)


def _demo() -> Darknet:
    torch.manual_seed(0)
    return Darknet.from_cfg("demo").eval()


def _loss(outputs) -> torch.Tensor:
    return sum((o - 0.3).pow(2).mean() for o in outputs)


def test_taylor_is_the_mean_of_activation_times_gradient():
    """Molchanov et al.: |mean over batch and positions of a * dL/da|, averaged over batches."""
    model = _demo()
    batches = [torch.rand(2, 3, *model.input_size, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    taylor = TaylorImportance(model)
    with taylor.recording():
        for images in batches:
            model.zero_grad()
            _loss(model(images)).backward()
    assert taylor.batches == 2

    layer = 7  # a plain 3x3 conv block (stride 2)
    expected = torch.zeros(model.layers[layer].conv.out_channels, dtype=torch.float64)
    for images in batches:
        outputs = model.layer_outputs(images)
        activation = outputs[layer]
        activation.retain_grad()
        _loss([outputs[head.index] for head in model.heads]).backward()
        expected += (activation * activation.grad).mean(dim=(0, 2, 3)).abs().double()
    torch.testing.assert_close(taylor.layer_scores(layer), expected / 2, rtol=1e-5, atol=1e-12)


def test_taylor_scores_are_l2_normalized_per_group_and_average_coupled_convs():
    model = _demo()
    taylor = TaylorImportance(model)
    with taylor.recording():
        _loss(model(torch.rand(2, 3, *model.input_size))).backward()
    shortcut_group = next(g for g in channel_groups(model) if sum(m.outputs for m in g.members) == 2)
    layers = [m.layer for m in shortcut_group.members if m.outputs]
    expected = l2_normalized(sum(l2_normalized(taylor.layer_scores(i).float()) for i in layers) / 2)
    scores = taylor.scores(shortcut_group)
    torch.testing.assert_close(scores, expected)
    assert abs(float(scores.norm()) - 1.0) < 1e-5


def test_l1_and_bn_scale_and_random():
    model = _demo()
    group = next(g for g in channel_groups(model) if len([m for m in g.members if m.outputs]) == 1)
    block = model.layers[group.layer]
    assert isinstance(block, ConvBlock)
    torch.testing.assert_close(L1Importance(model).scores(group),
                               l2_normalized(block.conv.weight.detach().abs().sum(dim=(1, 2, 3))))
    with torch.no_grad():
        block.bn.weight.copy_(torch.linspace(-1, 1, group.size))
    bn = BNScaleImportance(model).scores(group)
    assert int(bn.argmin()) in (group.size // 2 - 1, group.size // 2)  # |gamma| smallest in the middle
    first = RandomImportance(model, seed=3).scores(group)
    torch.testing.assert_close(first, RandomImportance(model, seed=3).scores(group))
    assert not torch.equal(first, RandomImportance(model, seed=4).scores(group))


def test_flops_regularization_lowers_the_scores_of_expensive_groups_most():
    model = _demo()
    groups = channel_groups(model)
    base = L1Importance(model)
    regularized = FlopsRegularized(base, model, groups, weight=0.5)
    drops = {g.layer: float((base.scores(g) - regularized.scores(g)).mean()) for g in groups}
    assert max(drops.values()) == pytest.approx(0.5)
    # the stem (full-resolution 3x3 conv) costs more per channel than the stride-16 1x1 convs
    assert drops[0] > drops[max(drops)]
    assert FlopsRegularized(base, model, groups, weight=0.0).scores(groups[0]).equal(base.scores(groups[0]))


def test_taylor_without_calibration_says_so():
    model = _demo()
    group = channel_groups(model)[0]
    try:
        TaylorImportance(model).scores(group)
    except RuntimeError as exc:
        assert "calibration" in str(exc)
    else:
        raise AssertionError("expected an error without calibration batches")
