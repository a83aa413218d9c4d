"""Measure how fast a Detector runs on this device, stage by stage, on real frames.

Pruning picks tiers by measured latency (channel counts off the fast layout can make a smaller model
slower), and the node's auto tier picks what this robot sustains, so both measure the same way here:
warm-up runs first (ONNX Runtime and TensorRT build kernels on the first calls), then the median of
repeated end-to-end calls, frames taken in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from yolo_compress.runtime.detector import Detector

STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms")


@dataclass(frozen=True)
class Speed:
    """Median ms per stage over `runs` calls, p95 of the total, and the back-to-back rate it allows."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    total_ms: float
    total_p95_ms: float
    runs: int

    @property
    def hz(self) -> float:
        return 1000.0 / self.total_ms if self.total_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "hz": self.hz}


def measure_speed(detector: Detector, frames: Sequence[np.ndarray], runs: int = 50, warmup: int = 5) -> Speed:
    """Time `runs` detector.detect calls (after `warmup` untimed ones) cycling through `frames`."""
    if not frames:
        raise ValueError("measure_speed needs at least one frame")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for i in range(warmup):
        detector.detect(frames[i % len(frames)])
    samples = np.empty((runs, len(STAGES)))
    for i in range(runs):
        timing = detector.detect(frames[i % len(frames)]).timing
        samples[i] = [getattr(timing, stage) for stage in STAGES]
    medians = np.median(samples, axis=0)
    return Speed(*(float(v) for v in medians), total_p95_ms=float(np.percentile(samples[:, -1], 95)), runs=runs)
