"""When each recorded frame reaches the detector in a replay: its header stamp, scaled by the replay rate.

Header stamps are the capture times the camera driver set, which is what the robot's node sees, so they time
the replay. A recording can break that: a driver that never sets stamps (all zero) falls back to the bag's
receive times, and stamps out of order are replayed in stamp order; either way the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Timeline:
    """Frames in arrival order: `order[k]` is the bag index of the k-th frame to arrive, at `arrivals[k]` s."""

    order: np.ndarray
    arrivals: np.ndarray
    notes: tuple[str, ...]

    @property
    def frame_arrivals(self) -> np.ndarray:
        """Arrival time of each frame by bag index."""
        by_frame = np.empty_like(self.arrivals)
        by_frame[self.order] = self.arrivals
        return by_frame

    @property
    def next_arrivals(self) -> np.ndarray:
        """By bag index, when the frame after it arrives: the end of the time it is the newest frame (the last
        frame's lasts one median frame period)."""
        ends = np.empty_like(self.arrivals)
        ends[:-1] = self.arrivals[1:]
        if len(ends):
            period = float(np.median(np.diff(self.arrivals))) if len(ends) > 1 else 0.0
            ends[-1] = self.arrivals[-1] + period
        by_frame = np.empty_like(ends)
        by_frame[self.order] = ends
        return by_frame

    @property
    def input_hz(self) -> float:
        """Mean arrival rate (frames per second after the rate scaling); 0 for fewer than 2 distinct times."""
        span = float(self.arrivals[-1] - self.arrivals[0]) if len(self.arrivals) else 0.0
        return (len(self.arrivals) - 1) / span if span > 0 else 0.0


def frame_timeline(stamps_ns: np.ndarray, bag_ns: np.ndarray, rate: float, topic: str) -> Timeline:
    """Arrival order and times (seconds from the first frame, divided by `rate`) of the frames of `topic`."""
    if not rate > 0:
        raise ValueError(f"replay rate must be > 0, got {rate}")
    stamps = np.asarray(stamps_ns, np.int64)
    notes = []
    if len(stamps) and (stamps == 0).any():
        notes.append(f"{topic}: {int((stamps == 0).sum())} of {len(stamps)} frames have no header stamp (0); "
                     f"timing the replay by the bag's receive times instead")
        stamps = np.asarray(bag_ns, np.int64)
    backwards = np.flatnonzero(np.diff(stamps) < 0)
    if len(backwards):
        notes.append(f"{topic}: {len(backwards)} frames are stamped earlier than the frame before them (first: "
                     f"frame {backwards[0] + 1}); replaying in stamp order")
    repeated = len(stamps) - len(np.unique(stamps))
    if repeated:
        notes.append(f"{topic}: {repeated} frames repeat an earlier frame's stamp; they arrive together")
    order = np.argsort(stamps, kind="stable")
    arrivals = (stamps[order] - stamps[order[0]]) / 1e9 / rate if len(stamps) else np.zeros(0)
    return Timeline(order, arrivals.astype(np.float64), tuple(notes))
