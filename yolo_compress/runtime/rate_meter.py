"""Event rate over a sliding window (frames in, detections out), cheap enough to tick on every frame."""

from __future__ import annotations

import threading
from collections import deque


class RateMeter:
    """Events per second among those of the last `window_s` seconds.

    The rate is (events - 1) / (time from the first to the last), which is exact for a steady stream from
    the second event on; it falls to 0 once no event came for a whole window. Thread-safe: the input meter
    is ticked by the subscription callback and read by the inference thread.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        with self._lock:
            self._times.append(now)
            self._forget(now)

    def rate(self, now: float) -> float:
        with self._lock:
            self._forget(now)
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        with self._lock:
            self._times.clear()

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
