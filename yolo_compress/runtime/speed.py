"""Measure how fast a Detector runs on this device, stage by stage, on real frames.

Pruning picks tiers by measured latency (channel counts off the fast layout can make a smaller model
slower), and the node's auto tier picks what this robot sustains, so both measure the same way here:
warm-up runs first (ONNX Runtime and TensorRT build kernels on the first calls), then the median of
repeated end-to-end calls, frames taken in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    return measure_side_by_side({"model": detector}, frames, runs, warmup)["model"]


def measure_side_by_side(detectors: Mapping[str, Detector], frames: Sequence[np.ndarray], runs: int = 50,
                         warmup: int = 5) -> dict[str, Speed]:
    """Speed of every detector, calls interleaved (A B C A B C ...) so that machine noise, which reaches
    1.8x between runs on a shared CPU, hits all of them alike and their ratios hold."""
    if not frames:
        raise ValueError("measuring speed needs at least one frame")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for i in range(warmup):
        for detector in detectors.values():
            detector.detect(frames[i % len(frames)])
    samples = {name: np.empty((runs, len(STAGES))) for name in detectors}
    for i in range(runs):
        for name, detector in detectors.items():
            timing = detector.detect(frames[i % len(frames)]).timing
            samples[name][i] = [getattr(timing, stage) for stage in STAGES]
    return {name: _speed(values) for name, values in samples.items()}


def _speed(samples: np.ndarray) -> Speed:
    medians = np.median(samples, axis=0)
    return Speed(*(float(v) for v in medians), total_p95_ms=float(np.percentile(samples[:, -1], 95)),
                 runs=len(samples))
