"""Measure how fast a Detector runs on this device, stage by stage, on real frames.

Pruning picks tiers by measured latency (channel counts off the fast layout can make a smaller model
slower), and the node's auto tier picks what this robot sustains, so both measure the same way here:
warm-up runs first (ONNX Runtime and TensorRT build kernels on the first calls), then the median of
repeated end-to-end calls, frames taken in turn.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.providers import SPIN_US

STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms")
# Pause before each block when several sessions take turns: a session started right after another one's
# block ran its own whole block slowly while the other's intra-op threads still spun (bench/session_alternation.py:
# with ORT's unbounded spin, 5.2-8.2 ms per call against 3.7-5.2 alone, 20-100 ms of pause fixed it). Sessions
# now spin SPIN_US at most (providers.session_options), so twice that is enough, and the short pause lets a
# pass run many more rounds, which spreads the machine's noise over all candidates alike (with 100 ms pauses,
# two copies of one model in a pass over 28 prune candidates measured 4.36 and 5.03 ms).
PARK_S = 2 * SPIN_US / 1e6


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
                         warmup: int = 5, block: int = 10) -> dict[str, Speed]:
    """Speed of every detector, measured in rounds (A-block B-block C-block, A-block ...) so that machine
    noise, which reaches 1.8x between runs on a shared CPU, hits all of them alike and their ratios hold.

    Blocks rather than single calls, with a pause (PARK_S) before each block when there are several:
    ONNX Runtime's intra-op threads spin for a while after each run, so calling another session right after
    one measures the two fighting for the cores (seen: 15x slower call by call, 1.9x block by block).
    Each block starts with one untimed call, as a robot's steady stream would find the threads awake.
    """
    if not frames:
        raise ValueError("measuring speed needs at least one frame")
    if runs < 1 or warmup < 0 or block < 1:
        raise ValueError(f"need runs >= 1, warmup >= 0, block >= 1; got {runs}, {warmup}, {block}")
    for detector in detectors.values():
        for i in range(warmup):
            detector.detect(frames[i % len(frames)])
    samples: dict[str, list[list[float]]] = {name: [] for name in detectors}
    for start in range(0, runs, block):
        for name, detector in detectors.items():
            if len(detectors) > 1:
                time.sleep(PARK_S)
            detector.detect(frames[start % len(frames)])
            for i in range(start, min(start + block, runs)):
                timing = detector.detect(frames[i % len(frames)]).timing
                samples[name].append([getattr(timing, stage) for stage in STAGES])
    return {name: _speed(np.asarray(values)) for name, values in samples.items()}


def _speed(samples: np.ndarray) -> Speed:
    medians = np.median(samples, axis=0)
    return Speed(*(float(v) for v in medians), total_p95_ms=float(np.percentile(samples[:, -1], 95)),
                 runs=len(samples))
