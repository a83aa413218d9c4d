"""Params and FLOPs in Darknet's convention, against the figures the models are published with."""

from __future__ import annotations

import pytest
import torch

from yolo_compress.models.complexity import layer_costs, total_flops, total_params
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.weights import save_weights

from _data import pruned_demo
from conftest import yolo_fastest_files


@pytest.mark.parametrize(
    ("name", "bflops"), [("yolov2-tiny-voc", 6.97), ("yolov3-tiny", 5.57), ("yolov4-tiny", 6.9)]
)
def test_published_bflops_of_builtin_cfgs(name, bflops):
    assert total_flops(Darknet.from_cfg(name)) / 1e9 == pytest.approx(bflops, rel=0.02)


@pytest.mark.parametrize(
    ("name", "bflops", "mparams"), [("yolo-fastest-1.1", 0.252, 0.35), ("yolo-fastest-1.1-xl", 0.725, 0.925)]
)
def test_published_figures_of_yolo_fastest(name, bflops, mparams):
    cfg, _, _ = yolo_fastest_files(name)
    model = Darknet.from_cfg(cfg)
    assert model.input_size == (320, 320)
    assert total_flops(model) / 1e9 == pytest.approx(bflops, rel=0.02)
    assert total_params(model) / 1e6 == pytest.approx(mparams, rel=0.02)


def test_params_are_the_floats_of_the_weights_file(tmp_path):
    model = Darknet.from_cfg("demo")
    save_weights(model, tmp_path / "demo.weights")
    assert total_params(model) == ((tmp_path / "demo.weights").stat().st_size - 20) // 4


def test_per_layer_costs():
    costs = layer_costs(Darknet.from_cfg("demo"))
    first, depthwise, maxpool, shortcut, route = costs[0], costs[3], costs[14], costs[11], costs[22]
    assert (first.index, first.type, first.out_shape) == (0, "convolutional", (16, 96, 96))
    assert first.flops == 2 * (3 * 3 * 3) * 16 * 96 * 96
    assert first.params == 16 * 3 * 3 * 3 + 4 * 16  # weights; BN bias, scale, mean, variance
    assert depthwise.flops == 2 * (3 * 3) * 32 * 48 * 48  # one input channel per group
    assert (maxpool.out_shape, maxpool.flops) == ((128, 12, 12), 2 * 2 * 128 * 12 * 12)
    assert shortcut.flops == 64 * 24 * 24
    assert (route.out_shape, route.flops, route.params) == ((128, 24, 24), 0, 0)


def test_costs_follow_pruning_and_input_size():
    model, pruned = Darknet.from_cfg("demo"), pruned_demo()
    assert total_flops(pruned) < total_flops(model)
    assert total_params(pruned) < total_params(model)
    assert layer_costs(pruned)[13].out_shape == (96, 12, 12)
    height, width = model.input_size
    conv = layer_costs(model, (2 * height, 2 * width))[0]
    assert conv.flops == 4 * layer_costs(model)[0].flops


def test_measuring_leaves_batch_norm_statistics_alone():
    model = Darknet.from_cfg("demo").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_costs(model)
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
