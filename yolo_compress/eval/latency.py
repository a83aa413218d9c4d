"""Latency statistics for reports: percentiles rather than a mean alone, because the robot feels the tail."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def latency_stats(ms: Sequence[float]) -> dict[str, float | int]:
    """n, mean, p50, p95, min and max in milliseconds, and hz = 1000 / mean (back-to-back rate)."""
    samples = np.asarray(ms, dtype=np.float64).reshape(-1)
    if samples.size == 0 or not (np.isfinite(samples) & (samples >= 0)).all():
        raise ValueError(f"latency_stats: expected a non-empty list of finite times >= 0 ms, got {samples[:5]}")
    mean = float(samples.mean())
    p50, p95 = np.percentile(samples, [50, 95])
    return {
        "n": int(samples.size),
        "mean_ms": mean,
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "min_ms": float(samples.min()),
        "max_ms": float(samples.max()),
        "hz": 1000.0 / mean if mean > 0 else float("inf"),
    }
