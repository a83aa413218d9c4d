"""Tier selection on the (latency, AP) Pareto front, with goals that can be missed and must say so."""

from __future__ import annotations

from yolo_compress.prune.allocation import allowed_keep
from yolo_compress.prune.tiers import Candidate, pareto_front, select_tiers

BASE = Candidate("base", ap50=0.60, latency_ms=30.0)


def test_pareto_front_drops_dominated_candidates():
    cands = [BASE, Candidate("a", 0.59, 15.0), Candidate("b", 0.50, 16.0), Candidate("c", 0.55, 9.0),
             Candidate("d", 0.61, 40.0)]
    assert [c.name for c in pareto_front(cands)] == ["c", "a", "base", "d"]


def test_goals_met_pick_the_most_accurate_qualifying_candidate():
    cands = [BASE, Candidate("2.0x", 0.58, 15.0), Candidate("2.5x", 0.575, 12.0), Candidate("3.3x", 0.52, 9.0),
             Candidate("4x", 0.40, 7.5)]
    tiers = select_tiers(cands, BASE)
    assert tiers["accurate"].candidate.name == "base"
    assert tiers["medium"].candidate.name == "2.0x" and tiers["medium"].met
    assert tiers["fast"].candidate.name == "3.3x" and tiers["fast"].met
    assert "met" in tiers["fast"].verdict() and "NOT" not in tiers["fast"].verdict()


def test_missed_goal_takes_the_closest_and_says_so_plainly():
    cands = [BASE, Candidate("1.8x", 0.59, 16.7), Candidate("2.2x", 0.40, 13.6)]
    tiers = select_tiers(cands, BASE)
    fast = tiers["fast"]
    assert not fast.met
    assert "NOT met" in fast.verdict() and "goal >= 3x" in fast.verdict()
    assert tiers["medium"].candidate.name == "1.8x"  # misses speed by 10% rather than AP by 30%


def test_allowed_keep_rounds_to_multiples_of_eight_within_bounds():
    assert allowed_keep(64, 30, 8, 8) == 32
    assert allowed_keep(64, 28, 8, 8) == 32  # tie 24/32 -> keep more
    assert allowed_keep(64, 2, 8, 16) == 16
    assert allowed_keep(12, 5, 8, 8) == 8
    assert allowed_keep(12, 11, 8, 8) == 12  # the unrounded original width is always allowed
    assert allowed_keep(6, 1, 8, 8) == 6  # narrower than the floor: untouched
