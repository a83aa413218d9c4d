"""The auto tier's rules without ROS: start-up choice, down on a held shortfall, up on predicted headroom,
settling, flap damping; and a simulated robot whose load changes."""

from __future__ import annotations

import pytest

from yolo_compress.ros.auto_tier import (
    HOLD_S,
    MAX_BACKOFF,
    SETTLE_S,
    AutoTierController,
    Observation,
    initial_choice,
)

ORDER = ["fast", "medium", "accurate"]
RATES = {"fast": 100.0, "medium": 40.0, "accurate": 12.0}


def test_initial_choice_is_the_most_accurate_tier_that_holds_the_target():
    assert initial_choice(ORDER, RATES, 10.0)[0] == "accurate"  # 12 >= 1.1 x 10
    assert initial_choice(ORDER, RATES, 11.0)[0] == "medium"  # 12 < 12.1
    assert initial_choice(ORDER, RATES, 36.0)[0] == "medium"
    tier, reason = initial_choice(ORDER, RATES, 500.0)
    assert tier == "fast" and "none holds 500 Hz" in reason
    assert initial_choice(ORDER, {"fast": 100.0, "accurate": 12.0}, 30.0)[0] == "fast"  # medium failed to load
    with pytest.raises(ValueError, match="no tier could be measured"):
        initial_choice(ORDER, {}, 10.0)


def _controller(target: float = 10.0) -> AutoTierController:
    return AutoTierController(ORDER, RATES, target, now=0.0)


def _feed(auto: AutoTierController, start: float, end: float, input_hz: float, output_hz: float, capacity: float):
    """Observations every 0.1 s from `start` to `end`; the first move proposed (and when), else None."""
    t = start
    while t <= end:
        move = auto.observe(Observation(t, input_hz, output_hz, capacity))
        if move is not None:
            return move, t
        t = round(t + 0.1, 6)
    return None, None


def test_moves_down_when_the_output_stays_below_target_with_enough_input():
    auto = _controller(10.0)
    assert auto.current == "accurate"
    move, at = _feed(auto, 0.0, 20.0, input_hz=30, output_hz=7.0, capacity=7.0)
    assert (move.from_tier, move.to_tier) == ("accurate", "medium")
    assert at == pytest.approx(SETTLE_S + HOLD_S)  # nothing while settling, then the full hold
    assert "output 7.0 Hz below target 10 Hz for 3.0 s (input 30.0 Hz)" in move.reason


def test_a_slow_camera_is_not_the_models_fault():
    auto = _controller(10.0)
    move, _ = _feed(auto, 0.0, 30.0, input_hz=6.0, output_hz=6.0, capacity=12.0)
    assert move is None and auto.current == "accurate"


def test_a_short_dip_does_not_move():
    auto = _controller(10.0)
    assert _feed(auto, 0.0, 3.0, 30, 10.0, 12.0)[0] is None
    assert _feed(auto, 3.1, 5.0, 30, 7.0, 7.0)[0] is None  # 2 s below target
    assert _feed(auto, 5.1, 9.0, 30, 10.0, 12.0)[0] is None  # recovered: the hold starts over
    assert _feed(auto, 9.1, 11.9, 30, 7.0, 7.0)[0] is None


def test_moves_up_when_the_next_tier_is_predicted_to_hold_the_target():
    auto = AutoTierController(ORDER, RATES, 30.0, now=0.0)
    assert auto.current == "medium"
    # Live medium at 40 Hz -> accurate predicted 40 x 12/40 = 12 Hz < 33: stay.
    assert _feed(auto, 0.0, 10.0, 60, 40.0, 40.0)[0] is None
    auto.set_target(8.0, now=10.0)
    move, at = _feed(auto, 10.0, 30.0, 60, 40.0, 40.0)
    assert (move.from_tier, move.to_tier) == ("medium", "accurate") and at == pytest.approx(10.0 + HOLD_S)
    assert "accurate predicted 12.0 Hz" in move.reason and "far above" in move.reason


def test_prediction_follows_the_live_rate():
    """The same tiers on a robot now twice as loaded: medium runs at 20 Hz live, so accurate would run at 6."""
    auto = AutoTierController(ORDER, RATES, 8.0, now=0.0)
    auto.moved("medium", now=0.0)
    assert _feed(auto, 0.0, 20.0, 60, 20.0, 20.0)[0] is None  # 6 < 8.8


def test_one_move_at_a_time_and_settling_after_it():
    auto = _controller(10.0)
    move, at = _feed(auto, 0.0, 20.0, 30, 7.0, 7.0)
    assert _feed(auto, at, at + 10, 30, 7.0, 7.0)[0] is None  # waiting for the node to load medium
    auto.moved("medium", now=at + 1)
    assert auto.current == "medium" and auto.last_reason == move.describe()
    assert _feed(auto, at + 1, at + 1 + SETTLE_S - 0.1, 30, 1.0, 1.0)[0] is None


def test_a_tier_left_for_missing_the_target_needs_a_longer_hold_to_come_back():
    auto = _controller(10.0)
    t = 0.0
    holds = []
    for _ in range(5):  # accurate is flattered by its start-up rate: it really runs at 7 Hz
        _, t = _feed(auto, t, t + 60, 30, 7.0, 7.0)
        auto.moved("medium", now=t)
        move, up = _feed(auto, t, t + 200, 30, 30.0, 40.0)
        assert move.to_tier == "accurate"
        holds.append(round(up - t - SETTLE_S, 1))
        auto.moved("accurate", now=up)
        t = up
    assert holds == [HOLD_S * min(2 ** k, MAX_BACKOFF) for k in range(1, 6)]


def test_a_tier_that_fails_to_load_is_never_proposed_again():
    auto = _controller(10.0)
    move, t = _feed(auto, 0.0, 20.0, 30, 7.0, 7.0)
    auto.move_failed(move.to_tier, now=t)
    move, t = _feed(auto, t, t + 20, 30, 7.0, 7.0)
    assert (move.from_tier, move.to_tier) == ("accurate", "fast")


def test_target_must_be_positive():
    with pytest.raises(ValueError, match="target_hz > 0"):
        AutoTierController(ORDER, RATES, 0.0, now=0.0)
    with pytest.raises(ValueError, match="target_hz > 0"):
        _controller().set_target(-1.0, now=0.0)


def test_simulated_robot_follows_its_load_without_flapping():
    """A 30 Hz camera, target 10 Hz; other software takes 60% of the CPU from t=60 s to t=180 s."""
    auto = _controller(10.0)
    visits = [auto.current]
    t = 0.0
    while t < 300:
        slowdown = 2.5 if 60 <= t < 180 else 1.0
        capacity = RATES[auto.current] / slowdown * 0.95  # the node's own overhead on top of the model
        move = auto.observe(Observation(t, 30.0, min(30.0, capacity), capacity))
        if move is not None:
            auto.moved(move.to_tier, now=t + 0.3)
            visits.append(move.to_tier)
        t = round(t + 0.1, 6)
    # accurate (12 Hz) -> under load it runs 4.3 Hz: down to medium (14 Hz under load holds 10), back up later.
    assert visits[:2] == ["accurate", "medium"] and visits[-1] == "accurate"
    assert len(visits) <= 5, visits  # no oscillation while the load lasts
