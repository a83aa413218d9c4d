"""Depth pruning: removing a residual block equals skipping its branch, on built-in and real cfgs; the
block sensitivity and the choice it makes; a schedule that starts with a depth cut."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from yolo_compress.data.specs import load_dataset
from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.models.cfg import parse_cfg
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.models.source import load_model_source
from yolo_compress.prune.allocation import allowed_keep
from yolo_compress.prune.depth import (
    ResidualBlock,
    block_sensitivity,
    choose_blocks,
    greedy_blocks,
    named_blocks,
    remove_blocks,
    residual_blocks,
    surviving_layers,
)
from yolo_compress.prune.groups import channel_groups
from yolo_compress.prune.schedule import PruneRun, ScheduleConfig, conv_flops
from yolo_compress.prune.sensitivity import derive_widths, load_sensitivity, renumbered
from yolo_compress.train.finetune import FinetuneConfig
from yolo_compress.train.validate import validate

from _data import sensitivity_prune
from conftest import yolo_fastest_files


class _SkipBranch(nn.Module):
    """A [shortcut] that returns its block's input: what removing the block must compute."""

    def forward(self, previous: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return other


def _skipping(model: Darknet, blocks: list[ResidualBlock]) -> Darknet:
    reference = copy.deepcopy(model)
    for block in blocks:
        reference.layers[block.shortcut] = _SkipBranch()
    return reference


def _assert_same_outputs(a: Darknet, b: Darknet, size: int) -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        for p, q in zip(a.eval()(x), b.eval()(x), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-5)


def test_yolov3_without_blocks_equals_skipping_them():
    """yolov3 mixes relative shortcuts with absolute routes (layers = -1, 61) past the removed blocks."""
    torch.manual_seed(0)
    model = Darknet.from_cfg("yolov3").at_input_size(64, 64).eval()
    blocks = residual_blocks(model)
    assert len(blocks) == 23  # yolov3's residual blocks, all removable
    chosen = [blocks[i] for i in (1, 2, 7, 10, 11, 18, 22)]  # consecutive ones included: 6-8 then 9-11
    shallow = remove_blocks(model, chosen)
    assert len(shallow.layers) == len(model.layers) - sum(len(b.layers) for b in chosen)
    _assert_same_outputs(shallow, _skipping(model, chosen), 64)
    # the shallower cfg stands on its own: text -> model -> same weights
    rebuilt = Darknet(parse_cfg(shallow.cfg_text()))
    rebuilt.load_state_dict(shallow.state_dict())
    _assert_same_outputs(rebuilt, shallow, 64)


def test_only_identity_blocks_are_removable():
    model = Darknet.from_cfg("demo")
    names = [b.name() for b in residual_blocks(model)]
    assert names == ["2-6", "8-11"]
    assert not residual_blocks(Darknet.from_cfg("yolov3-tiny"))  # no shortcuts at all
    with pytest.raises(ValueError, match=r"not removable residual blocks: 3-6 \(this model's: 2-6, 8-11\)"):
        named_blocks(["3-6"], model)
    with pytest.raises(ValueError, match="named by its cfg layers"):
        ResidualBlock.from_name("2to6")
    assert surviving_layers(8, [ResidualBlock(1, 4)]) == [0, 1, 5, 6, 7]


def test_real_yolo_fastest_xl_without_blocks(tmp_path):
    cfg, weights, names = yolo_fastest_files("yolo-fastest-1.1-xl")
    source = load_model_source(str(cfg), weights, names=names)
    model = source.model.eval()
    blocks = residual_blocks(model)
    assert len(blocks) == 18
    chosen = named_blocks(["66-70", "71-75", "76-80", "94-98", "99-103", "104-108"], model)  # 76-80 feeds a route
    shallow = remove_blocks(model, chosen)
    convs = [sum(isinstance(layer, ConvBlock) for layer in m.layers) for m in (model, shallow)]
    assert convs == [84, 84 - 3 * len(chosen)]
    _assert_same_outputs(shallow, _skipping(model, chosen), 320)
    export_onnx(shallow, source.names, tmp_path / "shallow.onnx")  # export checks ORT against torch itself


def test_block_sensitivity_ranks_and_resumes(tmp_path):
    torch.manual_seed(0)
    model = Darknet.from_cfg("demo")
    names = list(load_dataset("synthetic:1:0").names)
    val = load_dataset("synthetic:6:1")
    out = tmp_path / "blocks.json"
    result = block_sensitivity(model, names, val, out, progress=False)
    assert [(b["input"], b["shortcut"]) for b in result["blocks"]] == [(1, 6), (7, 11)]
    # a resumed analysis keeps what was done: a doctored entry survives
    saved = json.loads(out.read_text())
    saved["blocks"][0]["ap50"] = -1.0
    saved["blocks"].pop()
    out.write_text(json.dumps(saved))
    resumed = block_sensitivity(model, names, val, out, progress=False)
    assert resumed["blocks"][0]["ap50"] == -1.0 and len(resumed["blocks"]) == 2
    # greedy: step 1 from the analysis (the doctored block loses), step 2 measured with both removed
    assert greedy_blocks(model, names, val, out, 1, progress=False) == [ResidualBlock(7, 11)]
    both = greedy_blocks(model, names, val, out, 2, progress=False)
    assert both == [ResidualBlock(7, 11), ResidualBlock(1, 6)]
    step = json.loads(out.read_text())["greedy"][1]
    assert step["ap50"] == validate(remove_blocks(model, both), names, val)["ap50"]
    assert greedy_blocks(model, names, val, out, 1, progress=False) == both[:1]  # the saved path, reused
    with pytest.raises(ValueError, match="only 2 removable"):
        greedy_blocks(model, names, val, out, 3, progress=False)
    chosen = choose_blocks("1", model, names, val, tmp_path / "choice", progress=False)
    fresh = json.loads((tmp_path / "choice" / "block_sensitivity.json").read_text())
    best = max(fresh["blocks"], key=lambda b: (b["ap50"], b["shortcut"]))  # step 1: the cheapest alone
    assert chosen == [ResidualBlock.from_record(best).name()]
    assert (tmp_path / "choice" / "block_sensitivity.png").stat().st_size > 1000
    assert choose_blocks("8-11,2-6", model, names, val, tmp_path / "unused", progress=False) == ["2-6", "8-11"]


def test_renumbered_sensitivity_follows_the_depth_cut():
    result = {"ap50": 0.5, "groups": [{"layer": 0}, {"layer": 3}, {"layer": 9}]}
    assert renumbered(result, [0, 1, 7, 8, 9])["groups"] == [{"layer": 0}, {"layer": 4}]


def test_schedule_starts_with_the_depth_cut(tmp_path):
    torch.manual_seed(0)
    model = Darknet.from_cfg("demo")
    names = list(load_dataset("synthetic:1:0").names)
    train, val = load_dataset("synthetic:16:0"), load_dataset("synthetic:6:1")
    config = ScheduleConfig(iterations=1, target_flops=0.4, drop_blocks=["2-6"], calibration_batches=1,
                            calibration_batch=4,
                            finetune=FinetuneConfig(epochs=1, lr=1e-4, batch=4, warmup_epochs=0.0, progress=False))
    run = PruneRun(tmp_path, names, train, val, [val[0].load_image()], config, progress=False)
    records = run.run(copy.deepcopy(model))
    assert [r["iteration"] for r in records] == [0, 1, 2]
    start_convs = {i: b.conv.out_channels for i, b in enumerate(model.layers) if isinstance(b, ConvBlock)}
    depth, channels = records[1], records[2]
    assert depth["removed_blocks"] == ["2-6"]
    assert {int(k) for k, n in depth["removed"].items()} == {2, 3, 4}  # the block's convs, whole
    assert depth["widths"] == {str(i): (0 if i in (2, 3, 4) else w) for i, w in start_convs.items()}
    assert channels["conv_flops_ratio"] <= 0.4 * 1.05 < depth["conv_flops_ratio"] < 1.0
    assert set(channels["widths"]) == {str(i) for i in start_convs}  # still the start model's numbering
    shallow = load_checkpoint(tmp_path / "iter_01" / "model.pt").model
    assert len(shallow.layers) == len(model.layers) - 5
    assert ScheduleConfig(iterations=0, drop_blocks=["2-6"]).total_iterations == 1
    nothing = PruneRun(tmp_path / "none", names, train, val, [], ScheduleConfig(iterations=0), progress=False)
    with pytest.raises(ValueError, match="nothing to prune"):
        nothing.run(model)


def test_cli_drops_the_greedy_block_then_prunes_by_sensitivity(tmp_path):
    """tools/prune.py --drop-blocks 1 --criterion sensitivity: the greedy block analysis picks the block, iteration 1
    removes it, and iteration 2 keeps the widths derived for its point on the path from the shallower model,
    the analysis' groups renumbered to it."""
    start, fragile, path, out = sensitivity_prune(tmp_path, "--drop-blocks", "1", "--iterations", "1")
    analysis = json.loads((out / "blocks" / "block_sensitivity.json").read_text())
    dropped = ResidualBlock.from_record(analysis["greedy"][0])
    run = out / "runs" / "sensitivity"
    depth = json.loads((run / "iter_01" / "metrics.json").read_text())
    assert depth["removed_blocks"] == [dropped.name()]
    shallow = load_checkpoint(run / "iter_01" / "model.pt").model
    layers = surviving_layers(len(start.layers), [dropped])
    target = 0.4 * conv_flops(start) / conv_flops(shallow)
    wanted = derive_widths(renumbered(load_sensitivity(path), layers), shallow, target)
    widths = json.loads((run / "iter_02" / "metrics.json").read_text())["widths"]
    round_to = json.loads((run / "schedule.json").read_text())["round_to"]  # follows this CPU's padding
    for group in channel_groups(shallow):
        assert widths[str(layers[group.layer])] == allowed_keep(group.size, wanted[group.layer], round_to, 8)
    assert widths[str(fragile)] == (0 if fragile in dropped.layers else start.layers[fragile].conv.out_channels)
    report = (out / "report.md").read_text()
    assert f"blocks {dropped.name()}" in report


def test_keep_best_keeps_the_epoch_that_validated_best(tmp_path):
    """keep_best: the cut model (epoch 0) and every finetune epoch are validated; the iteration's model is the
    best of them, and the record says which."""
    torch.manual_seed(0)
    model = Darknet.from_cfg("demo")
    names = list(load_dataset("synthetic:1:0").names)
    train, val = load_dataset("synthetic:16:0"), load_dataset("synthetic:6:1")
    config = ScheduleConfig(iterations=0, drop_blocks=["8-11"], keep_best=True, calibration_batches=1,
                            finetune=FinetuneConfig(epochs=2, lr=1e-3, batch=4, warmup_epochs=0.0, progress=False))
    records = PruneRun(tmp_path, names, train, val, [val[0].load_image()], config, progress=False).run(model)
    history = json.loads((tmp_path / "iter_01" / "finetune" / "log.json").read_text())
    scored = [row for row in history if row.get("ap50") is not None]
    assert [row["epoch"] for row in scored] == [0, 1, 2]
    best = max(scored, key=lambda row: row["ap50"])  # the first of equals, as best.pt keeps it
    assert records[1]["finetune_epoch_kept"] == best["epoch"]
    kept = load_checkpoint(tmp_path / "iter_01" / "model.pt").model.state_dict()
    chosen = load_checkpoint(tmp_path / "iter_01" / "finetune" / "best.pt").model.state_dict()
    assert all(torch.equal(kept[key], chosen[key]) for key in chosen)


def test_zero_finetune_epochs_keep_the_cut_as_it_is(tmp_path):
    """--finetune-epochs 0: the iteration's model is the cut itself (on 1.1-xl the best depth cut is), and no
    finetune runs at all (not even the BN statistics move)."""
    torch.manual_seed(0)
    model = Darknet.from_cfg("demo")
    names = list(load_dataset("synthetic:1:0").names)
    train, val = load_dataset("synthetic:16:0"), load_dataset("synthetic:6:1")
    config = ScheduleConfig(iterations=0, drop_blocks=["8-11"], calibration_batches=1,
                            finetune=FinetuneConfig(epochs=0, batch=4, progress=False))
    PruneRun(tmp_path, names, train, val, [val[0].load_image()], config, progress=False).run(model)
    kept = load_checkpoint(tmp_path / "iter_01" / "model.pt").model.state_dict()
    cut = load_checkpoint(tmp_path / "iter_01" / "pruned.pt").model.state_dict()
    assert kept.keys() == cut.keys() and all(torch.equal(kept[key], cut[key]) for key in cut)
    assert not (tmp_path / "iter_01" / "finetune").exists()
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        FinetuneConfig(epochs=-1)
