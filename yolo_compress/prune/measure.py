"""Measure one candidate the way the robot will run it: its ONNX file through the runtime Detector.

AP comes from yolo_compress.data.detector_eval (the node's pre/post-processing, low threshold), latency
from yolo_compress.runtime.speed on real frames at the serving threshold, so fp32, int8 and fp16 variants,
pruned or at a lower input size, are all compared on one footing. Complexity (params, GFLOPs) is read from
the contract metadata export wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.data.detector_eval import evaluate_detector
from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.speed import measure_speed

AP_CONF = 0.005


@dataclass(frozen=True)
class MeasureSettings:
    """How a candidate is measured: serving thresholds, timing runs, threads (None: ORT's default)."""

    conf_threshold: float = 0.25
    iou_threshold: float = 0.45
    speed_runs: int = 30
    speed_warmup: int = 5
    threads: int | None = None
    aliases: Mapping[str, str] | None = None


def measure_onnx(path: str | Path, val: DetectionDataset, frames: Sequence[np.ndarray],
                 settings: MeasureSettings) -> dict[str, Any]:
    """ap50, ap50_95, precision/recall/f1 at the serving threshold, ORT stage times, params, gflops, size_mb."""
    path = Path(path)
    detector = Detector(path, conf_threshold=AP_CONF, iou_threshold=settings.iou_threshold,
                        intra_op_threads=settings.threads)
    metrics = evaluate_detector(detector, val, settings.aliases, op_conf=settings.conf_threshold,
                                progress=False).result
    detector.conf_threshold = settings.conf_threshold
    speed = measure_speed(detector, frames, runs=settings.speed_runs, warmup=settings.speed_warmup)
    meta = detector.info.metadata
    return {
        "onnx": str(path),
        "ap50": float(metrics["ap50"]),
        "ap50_95": float(metrics["ap50_95"]),
        "precision": float(metrics["precision"]),
        "recall": float(metrics["recall"]),
        "f1": float(metrics["f1"]),
        "latency_ms": speed.total_ms,
        "inference_ms": speed.inference_ms,
        "speed": speed.to_dict(),
        "provider": detector.provider,
        "params": int(meta.get("params", 0)),
        "gflops": float(meta.get("gflops", 0.0)),
        "input_size": list(detector.info.input_size),
        "size_mb": path.stat().st_size / 1e6,
    }
