"""Structural pruning on Darknet models: coupled channels stay consistent and removal is exact."""

from __future__ import annotations

import pytest
import torch

from yolo_compress.models.cfg import parse_cfg
from yolo_compress.models.complexity import layer_costs
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.prune.allocation import ROUND_TO, conv_flops_after, floors, keep_counts
from yolo_compress.prune.groups import channel_groups, dependency_graph, protected_layers, prune_channels
from yolo_compress.prune.importance import L1Importance
from yolo_compress.prune.step import StepSettings, conv_widths, prune_step

from conftest import yolo_fastest_files

BUILTIN = ["demo", "yolov2-tiny-voc", "yolov3-tiny", "yolov4-tiny"]


def _model(name: str) -> Darknet:
    """Seeded random weights, with BN statistics and shifts like a trained model's: with the init's zero
    means and shifts a channel fed only zeros stays zero downstream, which hid a consumer the dead-channel
    test below failed to silence (the 4 SPP copies of a channel in yolo-fastest-1.1-xl)."""
    torch.manual_seed(0)
    if name.startswith("yolo-fastest"):
        name = str(yolo_fastest_files(name)[0])
    model = Darknet.from_cfg(name).eval()
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.bias.uniform_(-0.5, 0.5)
    return model


def _conv_flops(model: Darknet) -> int:
    return sum(c.flops for c, layer in zip(layer_costs(model), model.layers, strict=True)
               if isinstance(layer, ConvBlock))


@pytest.mark.parametrize("name", [*BUILTIN, "yolo-fastest-1.1", "yolo-fastest-1.1-xl"])
def test_removing_dead_channels_leaves_outputs_unchanged(name):
    """Channels whose every consumer ignores them (zero input weights) are removed without changing a single
    output: proof that the graph found every coupled conv (shortcuts, depthwise, routes, upsample)."""
    model = _model(name)
    x = torch.rand(1, 3, *model.input_size)
    graph = dependency_graph(model)
    groups = channel_groups(model, graph)
    chosen = {}
    with torch.no_grad():
        for group in groups:
            channels = list(range(0, group.size, 4))[: group.size // 2]
            chosen[group.layer] = channels
            for member in group.members:
                if not member.outputs:
                    conv = model.layers[member.layer].conv
                    local = [ch for ch, pos in zip(member.channels, member.positions, strict=True) if pos in channels]
                    conv.weight[:, local] = 0
        reference = [out.clone() for out in model(x)]
        widths = conv_widths(model)
        for group in groups:
            prune_channels(graph, group, chosen[group.layer])
        pruned = model(x)
    assert conv_widths(model) != widths
    for before, after in zip(reference, pruned, strict=True):
        torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", BUILTIN)
def test_pruned_model_rebuilds_from_its_own_cfg(name):
    model = _model(name)
    prune_step(model, L1Importance(model), StepSettings(amount=0.4))
    rebuilt = Darknet(parse_cfg(model.cfg_text()))
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, *model.input_size)
    for a, b in zip(model(x), rebuilt.eval()(x), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("name", "rule"), [("yolov3-tiny", "global"), ("yolov3-tiny", "uniform"),
                                          ("yolo-fastest-1.1-xl", "global")])
def test_step_keeps_heads_rounds_to_eight_and_meets_min_width(name, rule):
    """Also for groups that are route concatenations of several convs (Yolo-Fastest): each conv rounds."""
    model = _model(name)
    protected = {layer: model.layers[layer].conv.out_channels for layer in protected_layers(model)}
    before = conv_widths(model)
    removed = prune_step(model, L1Importance(model), StepSettings(rule=rule, amount=0.6, min_channels=16))
    after = conv_widths(model)
    assert removed and all(after[layer] == width for layer, width in protected.items())
    for layer in removed:
        assert after[layer] % 8 == 0 and after[layer] >= 16 and after[layer] < before[layer]


def test_grouped_route_inputs_are_protected():
    model = _model("yolov4-tiny")
    split_sources = {2, 10, 18}  # the convs whose outputs yolov4-tiny's [route] groups=2 halves
    assert split_sources <= set(protected_layers(model))
    assert not split_sources & {g.layer for g in channel_groups(model)}


def test_flops_target_is_met_from_above_and_the_estimate_is_exact_without_slices():
    model = _model("yolov3-tiny")
    full = _conv_flops(model)
    prune_step(model, L1Importance(model), StepSettings(target_flops=0.5 * full))
    assert 0.45 * full < _conv_flops(model) <= 0.5 * full * 1.05
    groups = channel_groups(model)
    scores = {g.layer: L1Importance(model).scores(g) for g in groups}
    keep = keep_counts(groups, scores, "uniform", 0.25, ROUND_TO, floors(groups, 8))
    estimate = conv_flops_after(model, groups, keep, [c.flops for c in layer_costs(model)])
    prune_step(model, L1Importance(model), StepSettings(widths=keep))
    assert estimate == pytest.approx(_conv_flops(model), rel=1e-9)


def test_explicit_widths_are_rounded_and_floored():
    model = _model("demo")
    groups = {g.layer: g.size for g in channel_groups(model)}
    layer = max(groups, key=groups.get)
    prune_step(model, L1Importance(model), StepSettings(widths={layer: groups[layer] // 2 + 3}))
    assert conv_widths(model)[layer] == groups[layer] // 2  # the nearest multiple of ROUND_TO (8)
