"""Sliding-window rates as the node reports input_hz / output_hz."""

from __future__ import annotations

import pytest

from yolo_compress.runtime.rate_meter import RateMeter


def test_steady_stream_rate_is_exact():
    meter = RateMeter(window_s=2.0)
    for i in range(50):
        meter.tick(i / 10)
    assert meter.rate(4.9) == pytest.approx(10.0)


def test_only_the_window_counts():
    meter = RateMeter(window_s=1.0)
    for i in range(10):
        meter.tick(i / 10)  # 10 Hz for 1 s
    for i in range(40):
        meter.tick(1.0 + i / 40)  # then 40 Hz
    assert meter.rate(1.975) == pytest.approx(40.0)


def test_rate_falls_to_zero_when_events_stop_and_after_reset():
    meter = RateMeter(window_s=2.0)
    for i in range(10):
        meter.tick(i / 10)
    assert meter.rate(0.95) > 0 and meter.rate(3.0) == 0.0
    meter.tick(5.0)
    meter.tick(5.1)
    meter.reset()
    assert meter.rate(5.1) == 0.0


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window_s"):
        RateMeter(0)
