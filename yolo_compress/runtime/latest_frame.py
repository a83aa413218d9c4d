"""Newest-item hand-off between a subscription callback and one inference thread.

A camera publishes faster than a small CPU can detect. Queueing frames would make every detection
later than the last one, so only the newest frame is kept: a frame replaced before the consumer took it
is dropped and counted. Latency then stays at most one inference period plus one frame interval.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; `put` replaces (and counts as dropped) an item nobody took yet."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> None:
        """Store `item` as the newest; never blocks on the consumer."""
        with self._cond:
            if self._full:
                self.dropped += 1
            self._item, self._full = item, True
            self.received += 1
            self._cond.notify()

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to `timeout` s for one; None on timeout or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._full or self._closed, timeout)
            if self._closed or not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake the consumer for good: every later `take` returns None at once."""
        with self._cond:
            self._closed = True
            self._item, self._full = None, False
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
