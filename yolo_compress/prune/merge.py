"""Tiers picked across several prune runs validated on the same sets (tools/pick_tiers.py).

A smaller model of the same family can beat a pruned big one at equal latency: on the person validation
set of BENCHMARKS.md, yolo-fastest-1.1_body (0.22 GFLOPs) scores the AP50 of 1.1-xl (0.69 GFLOPs) and
runs 1.4-1.6x faster. Pruning each and picking from both fronts at once is how a user finds that out. Every
candidate keeps the AP its run measured (the runs must have been validated on the same sets: checked);
the latencies are taken again, all side by side in one pass, and speed-ups and AP ratios are against the
first run's start model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from yolo_compress.data.specs import load_dataset
from yolo_compress.prune.job import sample_frames
from yolo_compress.prune.measure import MeasureSettings
from yolo_compress.prune.pipeline import retime, tier_summary, write_models, write_summary
from yolo_compress.prune.tiers import Candidate, select_tiers
from yolo_compress.train.job import train_val_sets

# report.json keys a run needs for this; reports written before them are rewritten by `tools/prune.py --resume`
_REQUIRED = ("data", "names", "measure")
# what decides a run's AP50s: its validation set and classes (the training set and test sets do not)
VALIDATION_KEYS = ("val", "val_from", "val_fraction", "split_seed", "classes")


class MergeError(ValueError):
    """Runs that cannot be compared, or a folder that holds no finished run."""


def load_report(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "report.json"
    if not path.is_file():
        raise MergeError(f"{path}: not found (is {run_dir} the --out folder of a finished tools/prune.py run?)")
    summary = json.loads(path.read_text())
    missing = [key for key in _REQUIRED if key not in summary]
    if missing or any("onnx" not in c for c in summary.get("candidates", [])):
        raise MergeError(f"{path}: written by an older tools/prune.py (no {', '.join(missing) or 'candidate files'});"
                         " rerun its command with --resume to rewrite it")
    return summary


def check_comparable(reports: Mapping[Path, Mapping[str, Any]]) -> None:
    """Refuse runs whose AP50s were measured on other sets or for other classes, naming what differs."""
    (first_dir, first), *others = reports.items()
    for run_dir, summary in others:
        if summary["names"] != first["names"]:
            raise MergeError(f"{run_dir}: classes {summary['names']} differ from {first_dir}'s {first['names']}")
        differ = [key for key in VALIDATION_KEYS if summary["data"].get(key) != first["data"].get(key)]
        if differ:
            raise MergeError(f"{run_dir}: validated on other sets than {first_dir} ({', '.join(differ)} differ);"
                             " AP50s are only comparable on the same ones")


def run_candidates(label: str, run_dir: Path, summary: Mapping[str, Any]) -> list[Candidate]:
    """A run's candidates as the tier picker takes them, named `label/criterion/variant`."""
    return [Candidate(f"{label}/{c['name']}", c["ap50"], c["latency_ms"],
                      {**c, "onnx": str(run_dir / c["onnx"]), "criterion": f"{label}/{c['criterion']}"})
            for c in summary["candidates"]]


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Each run's folder name; a repeated name gets its position too (runs/a/x and runs/b/x)."""
    names = [d.name for d in run_dirs]
    return [name if names.count(name) == 1 else f"{name}-{i + 1}" for i, name in enumerate(names)]


def pick_across_runs(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Any]:
    """models/, tiers.yaml, report.json, report.md and pareto.png in out_dir from the runs' candidates."""
    run_dirs, out_dir = [Path(d) for d in run_dirs], Path(out_dir)
    if len(run_dirs) < 2:
        raise MergeError("give at least two prune runs (one run's own tiers.yaml already holds its pick)")
    reports = {d: load_report(d) for d in run_dirs}
    check_comparable(reports)
    first = reports[run_dirs[0]]
    spec, settings = first["data"], MeasureSettings(**first["measure"])
    _, val = train_val_sets(spec["data"], spec["val"], spec["val_from"], spec["val_fraction"], spec["split_seed"],
                            spec["classes"])
    labels = run_labels(run_dirs)
    candidates = [c for label, d in zip(labels, run_dirs, strict=True) for c in run_candidates(label, d, reports[d])]
    candidates = retime(candidates, sample_frames(val, spec["latency_frames"]), settings)
    baseline = {c.name: c for c in candidates}[f"{labels[0]}/{first['baseline']['candidate']}"]
    tiers = select_tiers(candidates, baseline)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_models(tiers, settings, out_dir)
    tests = {name: load_dataset(name, spec["classes"]) for name in spec["tests"]}
    summary = tier_summary(candidates, baseline, tiers, out_dir, settings, first["names"], spec, tests)
    summary["sources"] = [str(d) for d in run_dirs]
    write_summary(summary, candidates, tiers, out_dir)
    return summary
