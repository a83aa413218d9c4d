"""The newest-frame replay: worked schedules on a virtual clock, and the real clock's invariants."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_compress.bag.replay import (
    Served,
    VirtualClock,
    WallClock,
    latest_served,
    replay,
    stream_duration,
)
from yolo_compress.bag.timeline import frame_timeline


def run_virtual(arrivals: list[float], service_s: list[float]) -> list[Served]:
    clock = VirtualClock()
    return replay(arrivals, lambda i: clock.advance(service_s[i]), clock)


def test_fast_tier_serves_every_frame_on_arrival():
    arrivals = [0.0, 0.1, 0.2, 0.3]
    served = run_virtual(arrivals, [0.03] * 4)
    assert [s.frame for s in served] == [0, 1, 2, 3]
    assert [s.start_s for s in served] == pytest.approx(arrivals)
    assert [s.end_s - s.start_s for s in served] == pytest.approx([0.03] * 4)


def test_slow_tier_takes_the_newest_frame_and_drops_the_rest():
    # 10 Hz camera, 250 ms per frame: frame 0 ends at 0.25 when 1 and 2 are in -> take 2 (drop 1), ends 0.5;
    # then 3, 4, 5 are in -> take 5 (drop 3, 4, and 5 arrived exactly at 0.5), ends 0.75 -> take 7, ends 1.0 -> 9.
    arrivals = [i / 10 for i in range(10)]
    served = run_virtual(arrivals, [0.25] * 10)
    assert [s.frame for s in served] == [0, 2, 5, 7, 9]
    assert [s.start_s for s in served] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_idle_tier_waits_for_the_next_frame_instead_of_spinning():
    served = run_virtual([0.0, 1.0, 5.0], [0.1, 0.1, 0.1])
    assert [(s.frame, s.start_s) for s in served] == [(0, 0.0), (1, 1.0), (2, 5.0)]


def test_frames_arriving_together_serve_only_the_last_of_them():
    served = run_virtual([0.0, 0.0, 0.0, 0.5], [0.1] * 4)
    assert [s.frame for s in served] == [2, 3]


def test_replay_rejects_unsorted_arrivals():
    with pytest.raises(ValueError, match="ascending"):
        run_virtual([0.0, 0.2, 0.1], [0.0] * 3)


def test_latest_served_is_what_was_out_at_each_moment():
    served = [Served(0, 0.0, 0.25), Served(2, 0.25, 0.5), Served(5, 0.5, 0.75)]
    # Before the first output nothing is known; a result out exactly at the moment counts.
    assert latest_served(served, [0.0, 0.1, 0.25, 0.3, 0.5, 0.9]) == [None, None, 0, 0, 2, 5]


def test_stream_duration_counts_one_period_per_frame():
    assert stream_duration([i / 25 for i in range(50)]) == pytest.approx(2.0)
    assert stream_duration([0.0]) == 0.0


def test_wall_clock_replay_keeps_the_schedule_invariants():
    """Real sleeps of >= 30 ms per frame at 50 Hz: whatever the machine load, a frame is only taken after it
    arrived, work never overlaps, and frames are dropped: service k starts after 30 (k - 1) ms, so at most
    floor(280 / 30) + 1 services start before the last arrival (280 ms), plus one for the last frame."""
    import time

    clock = WallClock()
    arrivals = [i * 0.02 for i in range(15)]
    served = replay(arrivals, lambda i: time.sleep(0.03), clock)
    frames = [s.frame for s in served]
    assert frames[0] == 0 and frames == sorted(set(frames))
    assert all(arrivals[s.frame] <= s.start_s for s in served)
    assert all(a.end_s <= b.start_s for a, b in zip(served, served[1:], strict=False))
    assert all(s.end_s - s.start_s >= 0.03 for s in served)
    assert len(served) <= 11


def test_paused_wall_clock_does_not_count_the_paused_work():
    import time

    clock = WallClock()
    with clock.paused():
        time.sleep(0.05)
    assert clock.now() < 0.05


def test_timeline_orders_by_stamp_scales_by_rate_and_says_what_it_fixed():
    stamps = np.array([100, 300, 200, 400]) * 1_000_000  # ms -> ns; frame 2 is stamped before frame 1
    timeline = frame_timeline(stamps, stamps, rate=2.0, topic="/cam")
    assert timeline.order.tolist() == [0, 2, 1, 3]
    assert timeline.arrivals == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert timeline.frame_arrivals == pytest.approx([0.0, 0.1, 0.05, 0.15])
    assert any("stamped earlier than the frame before" in note for note in timeline.notes)


def test_timeline_without_header_stamps_uses_receive_times():
    bag_ns = np.array([0, 40, 80]) * 1_000_000
    timeline = frame_timeline(np.zeros(3, np.int64), bag_ns, rate=1.0, topic="/cam")
    assert timeline.arrivals == pytest.approx([0.0, 0.04, 0.08])
    assert timeline.input_hz == pytest.approx(25.0)
    assert "no header stamp" in timeline.notes[0]
