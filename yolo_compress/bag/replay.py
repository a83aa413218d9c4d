"""Real-time replay with the node's newest-frame semantics, and what a robot would have seen at each frame.

Frames arrive at their recorded times; the tier, whenever it is free, takes the newest frame that has arrived
and drops the older ones (the node never queues). One scheduler serves two clocks:

- `WallClock`: the detector really runs while the clock runs, so the replay measures the tier as deployed,
  interference of the machine included. Bag reading happens with the clock paused: a robot gets its frames
  from the middleware in memory, not from a file, so disk time must not count against the tier.
- `VirtualClock`: time advances by per-frame service times measured beforehand, which replays an hour-long bag
  in milliseconds and gives the same answer every run.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class ReplayClock(Protocol):
    def now(self) -> float:
        """Seconds since the replay started (the first frame arrives at 0)."""

    def wait_until(self, t: float) -> None:
        """Return once now() >= t."""


class WallClock:
    """The real clock, minus any time spent inside `paused()`."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._paused_s = 0.0

    def now(self) -> float:
        return time.perf_counter() - self._start - self._paused_s

    def wait_until(self, t: float) -> None:
        while (remaining := t - self.now()) > 0:
            time.sleep(remaining)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Work inside this block takes no replay time."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self._paused_s += time.perf_counter() - begin


class VirtualClock:
    """A clock that moves only when told: waiting jumps ahead, work `advance`s by its measured duration."""

    def __init__(self) -> None:
        self._t = 0.0

    def now(self) -> float:
        return self._t

    def wait_until(self, t: float) -> None:
        self._t = max(self._t, t)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot advance a clock by {seconds} s")
        self._t += seconds


@dataclass(frozen=True)
class Served:
    """One frame the tier processed: taken at `start_s`, its detections out at `end_s` (replay clock)."""

    frame: int
    start_s: float
    end_s: float


def replay(arrivals: Sequence[float], process: Callable[[int], None], clock: ReplayClock) -> list[Served]:
    """Run the newest-frame loop over frames arriving at `arrivals` (seconds, ascending); `process(i)` does
    frame i's work on `clock`. Returns the served frames in order; every other frame was dropped."""
    times = list(arrivals)
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("arrival times must be in ascending order")
    served: list[Served] = []
    last = -1
    while last < len(times) - 1:
        start = clock.now()
        newest = bisect.bisect_right(times, start) - 1
        if newest <= last:
            clock.wait_until(times[last + 1])
            continue
        process(newest)
        served.append(Served(newest, start, clock.now()))
        last = newest
    return served


def latest_served(served: Sequence[Served], moments: Sequence[float]) -> list[int | None]:
    """For each moment, the frame whose detections were the newest out by then (None before the first output)."""
    ends = [s.end_s for s in served]
    picks = []
    for moment in moments:
        count = bisect.bisect_right(ends, moment)
        picks.append(served[count - 1].frame if count else None)
    return picks


def stream_duration(arrivals: Sequence[float]) -> float:
    """How long the stream lasts: first to last arrival plus one (median) frame period, so that n frames at
    f Hz last n / f seconds; a single frame lasts 0."""
    if len(arrivals) < 2:
        return 0.0
    period = float(np.median(np.diff(np.asarray(arrivals, np.float64))))
    return float(arrivals[-1] - arrivals[0]) + period
