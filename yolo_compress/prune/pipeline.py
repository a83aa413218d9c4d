"""From one model to three served tiers: run the schedule per criterion, add variants, pick, write it all.

Output folder:

    runs/<criterion>/            the resumable iterations of each criterion (schedule.py)
    variants/<criterion>/        lower-input-size and int8/fp16 variants with their measurements
    models/{fast,medium,accurate}.onnx, tiers.yaml      what the node serves (config/tiers.yaml format)
    report.md, report.json, ap_vs_flops.png, ap_vs_latency.png, pareto.png, channels.png
"""

from __future__ import annotations

import copy
import os
import platform
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.data.detector_eval import evaluate_detector
from yolo_compress.models.atomic import atomic_path, write_json
from yolo_compress.models.darknet import Darknet
from yolo_compress.prune import report
from yolo_compress.prune.measure import AP_CONF, MeasureSettings
from yolo_compress.prune.schedule import PruneRun, ScheduleConfig
from yolo_compress.prune.tiers import Candidate, TierChoice, pareto_front, select_tiers
from yolo_compress.prune.variants import VariantSpec, measure_variant
from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.speed import measure_side_by_side
from yolo_compress.runtime.tiers import TiersConfig, TierSpec, write_tiers


@dataclass
class PipelineConfig:
    """Criteria to run (the first one's and every other's candidates all compete for the tiers), the lower
    input sizes and precisions to try on every iteration."""

    criteria: Sequence[str] = ("taylor",)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    sizes: Sequence[tuple[int, int]] = ()
    precisions: Sequence[str] = ()


@dataclass
class PipelineData:
    names: list[str]
    train: DetectionDataset
    val: DetectionDataset
    frames: Sequence[np.ndarray]  # latency frames (real camera frames where available)
    calibration: Sequence[np.ndarray]  # int8 calibration frames
    tests: Mapping[str, DetectionDataset] = field(default_factory=dict)  # extra sets the tiers are scored on
    spec: Mapping[str, Any] = field(default_factory=dict)  # what the sets are (report.json: runs are compared by it)


# Calls per candidate in the final side-by-side timing, in rounds of 10: with 3 rounds two copies of one
# model measured 23% apart among 80 candidates on 2 cores; the tiers are picked by these figures. 20 rounds
# cost ~3 ms x 200 per candidate now that the pauses between blocks are short (speed.PARK_S).
RETIME_RUNS = 200


def run_pipeline(start: Darknet, data: PipelineData, config: PipelineConfig, out_dir: str | Path,
                 progress: bool = True) -> dict[str, Any]:
    """Everything in the module docstring; returns the report.json summary."""
    out_dir = Path(out_dir)
    runs = {}
    for criterion in config.criteria:
        schedule = replace(config.schedule, criterion=criterion)
        run = PruneRun(out_dir / "runs" / criterion, data.names, data.train, data.val, data.frames, schedule,
                       progress)
        runs[criterion] = run.run(copy.deepcopy(start))
    settings = config.schedule.measure
    candidates = retime(_candidates(runs, config, data, out_dir), data.frames, settings)
    by_name = {c.name: c for c in candidates}
    first = config.criteria[0]
    for criterion, records in runs.items():  # the logs and plots show the side-by-side latencies too
        for record in records:
            k = record["iteration"]
            record["latency_ms"] = by_name[f"{criterion if k else first}/iter{k:02d}"].latency_ms
    baseline = by_name[f"{first}/iter00"]
    tiers = select_tiers(candidates, baseline)
    write_models(tiers, settings, out_dir)
    summary = tier_summary(candidates, baseline, tiers, out_dir, settings, data.names, data.spec, data.tests)
    summary |= {"runs": runs, "comparison": _comparison(runs)}
    write_summary(summary, candidates, tiers, out_dir)
    report.plot_ap_vs(runs, "gflops", "GFLOPs", out_dir / "ap_vs_flops.png")
    report.plot_ap_vs(runs, "latency_ms", "ORT latency (ms)", out_dir / "ap_vs_latency.png")
    report.plot_channels(runs, out_dir / "channels.png")
    return summary


def _candidate(spec: VariantSpec, criterion: str, measured: Mapping[str, Any]) -> Candidate:
    """`measured` with what the report's lever breakdown divides by: the same model at its own size and at
    this size, in fp32."""
    details = {**measured, "criterion": criterion, "cut": spec.cut, "native": spec.native.name,
               "resized": spec.fp32.name}
    return Candidate(f"{criterion}/{spec.name}", details["ap50"], details["latency_ms"], details)


def _candidates(runs: dict[str, list[dict[str, Any]]], config: PipelineConfig, data: PipelineData,
                out_dir: Path) -> list[Candidate]:
    found = []
    resize = config.schedule.finetune.resize
    for criterion, records in runs.items():
        run_dir = out_dir / "runs" / criterion
        variant_dir = out_dir / "variants" / criterion
        for record in records:
            k = record["iteration"]
            if k == 0 and criterion != config.criteria[0]:
                continue  # every criterion starts from the same model: one candidate (timed twice, it "won" by noise)
            found.append(_candidate(VariantSpec(k), criterion, {**record, "format": "fp32"}))
            for spec in _variant_specs(k, record, config):
                measured = measure_variant(spec, run_dir, variant_dir, data.names, resize, data.val, data.frames,
                                           data.calibration, config.schedule.measure, pad_to=config.schedule.pad_to)
                found.append(_candidate(spec, criterion, measured))
    return found


def _variant_specs(k: int, record: Mapping[str, Any], config: PipelineConfig) -> list[VariantSpec]:
    """Iteration k's variants: each lower size, each precision at every size; with keep_best, the same again of
    the cut before its finetune when the finetune kept an epoch after it. The finetune is judged at the model's
    own size, and on 1.1-xl the epoch it kept there (mosaic, 3 epochs) was worse than the cut at 256 (75% vs
    85% of the AP50): so the cut competes for the tiers at every size too."""
    sizes = (None, *config.sizes)
    cuts = [False]
    if config.schedule.keep_best and record.get("finetune_epoch_kept", 0) > 0:
        cuts.append(True)
    specs = [VariantSpec(k, size, "fp32", cut) for cut in cuts for size in sizes]
    specs += [VariantSpec(k, size, p, cut) for cut in cuts for size in sizes for p in config.precisions]
    return [spec for spec in specs if spec != VariantSpec(k)]  # the iteration itself is already a candidate


def retime(candidates: Sequence[Candidate], frames: Sequence[np.ndarray], settings: MeasureSettings) -> list[Candidate]:
    """Every candidate's latency measured again, all side by side in one pass: the figures tiers are picked by."""
    detectors = {c.name: Detector(c.details["onnx"], conf_threshold=settings.conf_threshold,
                                  iou_threshold=settings.iou_threshold, intra_op_threads=settings.threads)
                 for c in candidates}
    speeds = measure_side_by_side(detectors, frames, max(settings.speed_runs, RETIME_RUNS), settings.speed_warmup)
    return [Candidate(c.name, c.ap50, speeds[c.name].total_ms,
                      {**c.details, "latency_ms": speeds[c.name].total_ms, "speed": speeds[c.name].to_dict()})
            for c in candidates]


def score_tests(tiers: dict[str, TierChoice], baseline: Candidate, tests: Mapping[str, DetectionDataset],
                settings: MeasureSettings) -> dict[str, dict[str, dict[str, float]]]:
    """AP50 and AP50:95 of the start model and of each tier on every test set: {set: {model: metrics}}."""
    models = {"start": baseline, **{tier: choice.candidate for tier, choice in tiers.items()}}
    found: dict[str, dict[str, dict[str, float]]] = {}
    for name, dataset in tests.items():
        found[name] = {}
        for label, candidate in models.items():
            detector = Detector(candidate.details["onnx"], conf_threshold=AP_CONF,
                                iou_threshold=settings.iou_threshold, intra_op_threads=settings.threads)
            metrics = evaluate_detector(detector, dataset, settings.aliases, settings.conf_threshold,
                                        progress=False).result
            found[name][label] = {"ap50": float(metrics["ap50"]), "ap50_95": float(metrics["ap50_95"])}
    return found


def write_models(tiers: dict[str, TierChoice], settings: MeasureSettings, out_dir: Path) -> None:
    """models/{tier}.onnx and tiers.yaml, the node's tiers file."""
    models = out_dir / "models"
    specs = {}
    for tier, choice in tiers.items():
        details = choice.candidate.details
        target = models / f"{tier}.onnx"
        with atomic_path(target) as tmp:
            shutil.copyfile(details["onnx"], tmp)
        specs[tier] = TierSpec(
            name=tier, model=target, conf_threshold=settings.conf_threshold,
            iou_threshold=settings.iou_threshold, ap50=round(details["ap50"], 4),
            ap50_95=round(details["ap50_95"], 4), gflops=round(details["gflops"], 4), params=details["params"],
            latency_ms=round(details["latency_ms"], 3), input_size=tuple(details["input_size"]),
            size_mb=round(details["size_mb"], 3),
        )
    write_tiers(out_dir / "tiers.yaml", TiersConfig(default="medium", models_dir=models, tiers=specs))


def _tier_summary(choice: TierChoice, baseline: Candidate, by_name: dict[str, Candidate]) -> dict[str, Any]:
    details = choice.candidate.details
    return {"candidate": choice.candidate.name, "met_goal": choice.met, "speedup": choice.speedup,
            "ap_ratio": choice.ap_ratio, "levers": report.lever_breakdown(choice, baseline, by_name),
            **{key: details[key] for key in ("ap50", "ap50_95", "precision", "recall", "f1", "latency_ms",
                                             "gflops", "params", "size_mb", "input_size", "format")}}


def _comparison(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each criterion's iterations side by side (same schedule, so the same iteration has about the same FLOPs)."""
    if len(runs) < 2:
        return []
    rows = []
    for k in range(1, min(len(records) for records in runs.values())):
        for criterion, records in runs.items():
            r = records[k]
            rows.append({"criterion": criterion, "iteration": k, "gflops": r["gflops"], "ap50": r["ap50"],
                         "ap50_95": r["ap50_95"]})
    return rows


# What report.json keeps of every candidate: enough to pick tiers again across runs (tools/pick_tiers.py).
CANDIDATE_FIELDS = ("ap50", "ap50_95", "precision", "recall", "f1", "latency_ms", "gflops", "params", "size_mb",
                    "input_size", "format", "provider", "criterion", "cut", "native", "resized")


def tier_summary(candidates: Sequence[Candidate], baseline: Candidate, tiers: dict[str, TierChoice], out_dir: Path,
                 settings: MeasureSettings, names: Sequence[str], spec: Mapping[str, Any],
                 tests: Mapping[str, DetectionDataset]) -> dict[str, Any]:
    """report.json without the runs: the tiers, what the sets were, every candidate with the side-by-side
    latencies (ONNX paths relative to out_dir), the front, and the tiers scored on the test sets."""
    by_name = {c.name: c for c in candidates}
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, provider {baseline.details['provider']}",
        "baseline": {"candidate": baseline.name, **{key: baseline.details[key] for key in
                                                    ("ap50", "ap50_95", "latency_ms", "gflops", "params", "size_mb")}},
        "tiers": {name: _tier_summary(choice, baseline, by_name) for name, choice in tiers.items()},
        "verdicts": [choice.verdict() for choice in tiers.values()],
        "data": dict(spec), "names": list(names), "measure": asdict(settings),
        "candidates": [{"name": c.name, "onnx": os.path.relpath(c.details["onnx"], out_dir),
                        **{key: c.details[key] for key in CANDIDATE_FIELDS}} for c in candidates],
        "pareto_front": [c.name for c in pareto_front(candidates)],
        "tests": score_tests(tiers, baseline, tests, settings),
    }


def write_summary(summary: Mapping[str, Any], candidates: Sequence[Candidate], tiers: dict[str, TierChoice],
                  out_dir: Path) -> None:
    """report.json, report.md and pareto.png."""
    write_json(out_dir / "report.json", summary)
    report.write_text(out_dir / "report.md", report.markdown(summary))
    report.plot_front(candidates, pareto_front(candidates), tiers, out_dir / "pareto.png")
