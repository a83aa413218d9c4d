"""The variants every iteration competes with: which are made, what each is built from, and how a tier's
speed-up is split into levers by the variants it came from."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from yolo_compress.data.specs import load_dataset
from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.prune.pipeline import PipelineConfig, _variant_specs
from yolo_compress.prune.report import lever_breakdown
from yolo_compress.prune.schedule import PruneRun, ScheduleConfig
from yolo_compress.prune.tiers import Candidate, Goal, TierChoice
from yolo_compress.prune.variants import VariantSpec, build_variant
from yolo_compress.train.finetune import FinetuneConfig


def _names(specs: list[VariantSpec]) -> list[str]:
    return [spec.name for spec in specs]


def test_the_cut_competes_only_when_keep_best_kept_a_later_epoch():
    sizes = [(160, 160)]
    keep_best = PipelineConfig(schedule=ScheduleConfig(keep_best=True), sizes=sizes, precisions=["int8"])
    finetuned = _names(_variant_specs(1, {"finetune_epoch_kept": 2}, keep_best))
    assert finetuned == ["iter01_160x160", "iter01_cut", "iter01_cut_160x160", "iter01_int8", "iter01_160x160_int8",
                         "iter01_cut_int8", "iter01_cut_160x160_int8"]
    kept_cut = _names(_variant_specs(1, {"finetune_epoch_kept": 0}, keep_best))  # the model is the cut already
    plain = PipelineConfig(sizes=sizes, precisions=["int8"])
    assert kept_cut == _names(_variant_specs(1, {}, plain)) == ["iter01_160x160", "iter01_int8",
                                                                 "iter01_160x160_int8"]
    assert _names(_variant_specs(0, {}, keep_best)) == ["iter00_160x160", "iter00_int8", "iter00_160x160_int8"]


def test_cut_variants_are_built_from_the_cut_not_its_finetune(tmp_path):
    torch.manual_seed(0)
    names = list(load_dataset("synthetic:1:0").names)
    train, val = load_dataset("synthetic:16:0"), load_dataset("synthetic:6:1")
    config = ScheduleConfig(iterations=0, drop_blocks=["8-11"], keep_best=True, calibration_batches=1,
                            finetune=FinetuneConfig(epochs=1, lr=1e-2, batch=4, warmup_epochs=0.0,
                                                    freeze_bn_stats=True, progress=False))
    PruneRun(tmp_path, names, train, val, [val[0].load_image()], config, progress=False).run(Darknet.from_cfg("demo"))
    frames = np.random.default_rng(0).integers(0, 256, (1, 128, 160, 3), dtype=np.uint8)
    outputs = {}
    for stage, cut in (("pruned.pt", True), ("model.pt", False)):
        variant = build_variant(VariantSpec(1, (128, 160), cut=cut), tmp_path, tmp_path / "variants", names,
                                "stretch", [])
        reference = export_onnx(load_checkpoint(tmp_path / "iter_01" / stage).model.at_input_size(128, 160), names,
                                tmp_path / f"reference_{stage}.onnx").path
        outputs[stage] = [_run(variant, frames), _run(reference, frames)]
        for got, expected in zip(*outputs[stage], strict=True):
            np.testing.assert_array_equal(got, expected)
    cut, finetuned = outputs["pruned.pt"][0], outputs["model.pt"][0]
    assert not all(np.array_equal(a, b) for a, b in zip(cut, finetuned, strict=True))  # the finetune moved it


def _run(path, frames: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: frames})


def test_levers_divide_by_the_variants_a_tier_came_from():
    def candidate(name: str, ms: float, spec: VariantSpec) -> Candidate:
        return Candidate(f"taylor/{name}", 0.5, ms, {"criterion": "taylor", "native": spec.native.name,
                                                     "resized": spec.fp32.name})

    spec = VariantSpec(1, (160, 160), "int8", cut=True)
    table = [candidate("iter00", 12.0, VariantSpec(0)), candidate("iter01", 8.0, VariantSpec(1)),
             candidate("iter01_cut", 6.0, spec.native), candidate("iter01_cut_160x160", 4.0, spec.fp32),
             candidate(spec.name, 5.0, spec)]
    by_name = {c.name: c for c in table}
    chosen = TierChoice("fast", table[-1], 12.0 / 5.0, 1.0, Goal("fast", 3.0, 0.85))
    levers = lever_breakdown(chosen, table[0], by_name)
    assert levers == {"pruning": 2.0, "input_size": 1.5, "precision": 0.8}
