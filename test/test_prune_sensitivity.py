"""Layer-wise sensitivity: the analysis on a real model, resume, and widths derived for a FLOPs target."""

from __future__ import annotations

import json
import math

import pytest
import torch

from yolo_compress.data.specs import load_dataset
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.complexity import layer_costs
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.source import load_model_source
from yolo_compress.prune.allocation import allowed_keep, conv_flops_after, slices
from yolo_compress.prune.groups import channel_groups
from yolo_compress.prune.sensitivity import analyze, derive_widths, load_sensitivity, plot_sensitivity
from yolo_compress.train.classes import select_classes

from _data import fake_sensitivity, sensitivity_prune
from conftest import shared_path, yolo_fastest_files


def test_derived_widths_meet_the_flops_target_and_spare_the_fragile_layer(tmp_path):
    torch.manual_seed(0)
    model = Darknet.from_cfg("yolov3-tiny")
    groups = channel_groups(model)
    fragile = max(groups, key=lambda g: g.size).layer
    result = fake_sensitivity(model, fragile)
    widths = derive_widths(result, model, target_flops=0.5)
    flops = [c.flops for c in layer_costs(model)]
    full = conv_flops_after(model, groups, {g.layer: g.size for g in groups}, flops)
    assert conv_flops_after(model, groups, widths, flops) <= 0.5 * full
    assert widths[fragile] == next(g.size for g in groups if g.layer == fragile)
    others = [widths[g.layer] / g.size for g in groups if g.layer != fragile]
    assert max(others) < 1.0 and len(set(round(r, 1) for r in others)) == 1  # one common budget
    path = tmp_path / "sensitivity.json"
    path.write_text(json.dumps({**result, "widths": widths}))
    assert load_sensitivity(path)["groups"] == result["groups"]
    plot_sensitivity(result, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_widths_without_results_for_every_group_are_refused():
    model = Darknet.from_cfg("demo")
    result = fake_sensitivity(model, fragile=-1)
    result["groups"] = result["groups"][1:]
    with pytest.raises(ValueError, match="lack groups"):
        derive_widths(result, model, 0.5)


def test_load_sensitivity_explains_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="needs --sensitivity"):
        load_sensitivity(None)
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        load_sensitivity(tmp_path / "nowhere.json")
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"ratios": [0.5], "ap50": 0.5, "groups": []}))
    with pytest.raises(ValueError, match="no per-group results"):
        load_sensitivity(path)


def test_each_iteration_cuts_to_the_widths_of_its_point_on_the_path(tmp_path):
    """--criterion sensitivity, 2 iterations to 40%: iteration k keeps the widths derived for 0.4^(k/2) of the
    start's conv FLOPs (the robust groups go first, the fragile one is never touched), not a straight line
    from the start to the final widths."""
    _, fragile, path, out = sensitivity_prune(tmp_path, "--iterations", "2")
    run = out / "runs" / "sensitivity"
    model0 = load_checkpoint(run / "iter_00" / "model.pt").model
    result = load_sensitivity(path)
    round_to = json.loads((run / "schedule.json").read_text())["round_to"]  # follows this CPU's padding
    ratios = []
    for k in (1, 2):
        wanted = derive_widths(result, model0, math.pow(0.4, k / 2))
        metrics = json.loads((run / f"iter_{k:02d}" / "metrics.json").read_text())
        for group in channel_groups(model0):
            keep = allowed_keep(group.size, wanted[group.layer], round_to, 8)
            assert metrics["widths"][str(group.layer)] == keep, (k, group.layer)
        assert metrics["widths"][str(fragile)] == next(g.size for g in channel_groups(model0) if g.layer == fragile)
        ratios.append(metrics["conv_flops_ratio"])
    assert 0.45 < ratios[0] < 0.8 and ratios[1] < ratios[0]


def test_real_model_analysis_drops_ap_and_resumes(tmp_path):
    cfg, weights, names = yolo_fastest_files("yolo-fastest-1.1")
    coco = shared_path("coco128-train")
    source = load_model_source(str(cfg), weights, names=names)
    model = select_classes(source.model, source.names, ["person"])
    val = load_dataset(f"yolo:{coco}", ["person"]).subset(list(range(0, 40, 5)))
    out = tmp_path / "sensitivity.json"
    groups = channel_groups(model)
    sliced = next(g for g in groups if len(slices(g)) > 1)  # a route concat feeding a depthwise conv
    chosen = [g.layer for g in groups[:4]] + [sliced.layer]
    partial = analyze(model, ["person"], val, out, ratios=[0.9], progress=False, layers=chosen)
    assert [g["layer"] for g in partial["groups"]] == sorted(chosen)
    by_layer = {g["layer"]: g for g in partial["groups"]}
    assert partial["ap50"] > 0.15
    # removing 90% of a group alone, without finetuning, costs AP somewhere
    assert min(g["ap50"]["0.9"] for g in partial["groups"]) < partial["ap50"] - 0.05
    assert all(0 < by_layer[layer]["flops_share"] < 1 for layer in chosen)
    # a rerun reads the finished groups back instead of measuring them again
    saved = json.loads(out.read_text())
    saved["groups"][0]["ap50"]["0.9"] = -1.0
    out.write_text(json.dumps(saved))
    again = analyze(model, ["person"], val, out, ratios=[0.9], progress=False, layers=chosen)
    assert again["groups"][0]["ap50"]["0.9"] == -1.0
    with pytest.raises(ValueError, match="other ratios"):
        analyze(model, ["person"], val, out, ratios=[0.5], progress=False)
