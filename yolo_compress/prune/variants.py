"""More candidates from each pruned model: a lower input size, int8 or fp16, each measured like the rest.

Latency of these small models flattens out as channels go (a floor of memory traffic and per-layer
overhead), so a lower input resolution is the other lever; int8 static QDQ is the lever on GPUs and some
CPUs (on the 2-core development machine it is slower, with VNNI or without: the report says so instead of
hiding it). Each variant is a
file plus its measurement JSON; an existing measurement is reused, so a resumed run redoes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.export.quantize import convert_fp16, quantize_int8_dynamic, quantize_int8_static
from yolo_compress.models.atomic import write_json
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.prune.measure import MeasureSettings, measure_onnx

log = logging.getLogger(__name__)

# "int8" calibrates with percentiles: on 1.1-xl person (TUD-Campus, 64 COCO calibration frames) AP50 0.805
# vs fp32 0.795, where minmax lost 3 points (BENCHMARKS.md); it takes ~4x longer to calibrate.
PRECISIONS = ("int8", "int8-minmax", "int8-s8", "int8-entropy", "int8-dynamic", "fp16")


@dataclass(frozen=True)
class VariantSpec:
    """Which variant of which iteration: `size` (H, W) None = the model's own; `precision` 'fp32' or one of
    PRECISIONS; `cut` = made from the iteration's cut before its finetune (pruned.pt), not its model."""

    iteration: int
    size: tuple[int, int] | None = None
    precision: str = "fp32"
    cut: bool = False

    @property
    def name(self) -> str:
        cut = "_cut" if self.cut else ""
        size = f"_{self.size[0]}x{self.size[1]}" if self.size else ""
        precision = "" if self.precision == "fp32" else f"_{self.precision}"
        return f"iter{self.iteration:02d}{cut}{size}{precision}"

    @property
    def native(self) -> VariantSpec:
        """The same model at its own size in fp32: what the pruning lever of this variant is measured on."""
        return replace(self, size=None, precision="fp32")

    @property
    def fp32(self) -> VariantSpec:
        """The same model at the same size in fp32: what the precision lever is measured against."""
        return replace(self, precision="fp32")


def _quantizer(precision: str, calibration: Sequence[np.ndarray]) -> Callable[[Path, Path], Path]:
    table: dict[str, Callable[[Path, Path], Path]] = {
        "int8": lambda src, dst: quantize_int8_static(src, dst, calibration, "percentile", "u8"),
        "int8-minmax": lambda src, dst: quantize_int8_static(src, dst, calibration, "minmax", "u8"),
        "int8-s8": lambda src, dst: quantize_int8_static(src, dst, calibration, "minmax", "s8"),
        "int8-entropy": lambda src, dst: quantize_int8_static(src, dst, calibration, "entropy", "u8"),
        "int8-dynamic": quantize_int8_dynamic,
        "fp16": convert_fp16,
    }
    if precision not in table:
        raise ValueError(f"unknown precision {precision!r} (fp32 or one of {', '.join(PRECISIONS)})")
    return table[precision]


def build_variant(spec: VariantSpec, run_dir: Path, out_dir: Path, names: list[str], resize: str,
                  calibration: Sequence[np.ndarray], *, pad_to: int = 1) -> Path:
    """The ONNX file of `spec` in `out_dir` (made from the iteration's checkpoint if missing)."""
    path = out_dir / f"{spec.name}.onnx"
    if path.is_file():
        return path
    fp32 = _fp32_onnx(spec.fp32, run_dir, out_dir, names, resize, pad_to)
    if spec.precision == "fp32":
        return fp32
    return _quantizer(spec.precision, calibration)(fp32, path)


def _fp32_onnx(spec: VariantSpec, run_dir: Path, out_dir: Path, names: list[str], resize: str, pad_to: int) -> Path:
    folder = run_dir / f"iter_{spec.iteration:02d}"
    if spec == VariantSpec(spec.iteration):
        return folder / "model.onnx"  # the iteration itself: the schedule exported it
    path = out_dir / f"{spec.name}.onnx"
    if not path.is_file():
        model = load_checkpoint(folder / ("pruned.pt" if spec.cut else "model.pt")).model
        if spec.size is not None:
            model = model.at_input_size(*spec.size)
        export_onnx(model, names, path, resize=resize, metadata={"iteration": spec.iteration, "cut": int(spec.cut)},
                    pad_to=pad_to)
    return path


def measure_variant(spec: VariantSpec, run_dir: Path, out_dir: Path, names: list[str], resize: str,
                    val: DetectionDataset, frames: Sequence[np.ndarray], calibration: Sequence[np.ndarray],
                    settings: MeasureSettings, *, pad_to: int = 1) -> dict[str, Any]:
    """The variant's measurement (cached in out_dir/NAME.json), with its spec."""
    cache = out_dir / f"{spec.name}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    path = build_variant(spec, run_dir, out_dir, names, resize, calibration, pad_to=pad_to)
    record = {"name": spec.name, "iteration": spec.iteration, "format": spec.precision,
              **measure_onnx(path, val, frames, settings)}
    write_json(cache, record)
    log.info("%s: AP50 %.3f, %.2f ms", spec.name, record["ap50"], record["latency_ms"])
    return record
