"""Pick the fast / medium / accurate tiers from every measured candidate, by latency and AP.

Only candidates on the (latency, AP) Pareto front can be picked: anything else is both slower and less
accurate than something we already have. Each tier has a goal relative to the unpruned fused model
(the baseline): medium at least 2x faster with >= 95% of its AP, fast at least 3x faster with >= 85%.
When no candidate meets a goal, the tier takes the candidate that misses it least and says by how much:
a report must never present a missed goal as met.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """One measured model variant (a pruning iteration, an input size, a precision)."""

    name: str
    ap50: float
    latency_ms: float
    details: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Goal:
    tier: str
    min_speedup: float
    min_ap_ratio: float


GOALS = (Goal("fast", 3.0, 0.85), Goal("medium", 2.0, 0.95))


@dataclass(frozen=True)
class TierChoice:
    """The candidate a tier serves, how it compares to the baseline, and whether it met its goal."""

    tier: str
    candidate: Candidate
    speedup: float
    ap_ratio: float
    goal: Goal | None

    @property
    def met(self) -> bool:
        return self.goal is None or (self.speedup >= self.goal.min_speedup and self.ap_ratio >= self.goal.min_ap_ratio)

    def verdict(self) -> str:
        """One plain sentence for the report."""
        measured = f"{self.speedup:.2f}x faster than the unpruned model at {100 * self.ap_ratio:.1f}% of its AP50"
        if self.goal is None:
            return f"{self.tier}: best AP50 of all candidates ({self.candidate.name}), {measured}"
        goal = f"goal >= {self.goal.min_speedup:g}x at >= {100 * self.goal.min_ap_ratio:g}%"
        status = "met" if self.met else "NOT met: closest candidate"
        return f"{self.tier}: {self.candidate.name}, {measured} ({goal}: {status})"


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates that no other is at least as fast AND at least as accurate as (strictly better in one),
    fastest first."""
    front = []
    for c in sorted(candidates, key=lambda c: (c.latency_ms, -c.ap50)):
        if not front or c.ap50 > front[-1].ap50:
            front.append(c)
    return front


def _shortfall(c: Candidate, baseline: Candidate, goal: Goal) -> float:
    """0 when `c` meets `goal`; else the relative amount by which it misses speed plus AP."""
    speedup = baseline.latency_ms / c.latency_ms
    ratio = c.ap50 / baseline.ap50 if baseline.ap50 > 0 else 1.0
    return max(0.0, 1 - speedup / goal.min_speedup) + max(0.0, 1 - ratio / goal.min_ap_ratio)


def _choice(tier: str, c: Candidate, baseline: Candidate, goal: Goal | None) -> TierChoice:
    ratio = c.ap50 / baseline.ap50 if baseline.ap50 > 0 else 1.0
    return TierChoice(tier, c, baseline.latency_ms / c.latency_ms, ratio, goal)


def select_tiers(candidates: Sequence[Candidate], baseline: Candidate) -> dict[str, TierChoice]:
    """accurate = best AP; medium and fast = the most accurate front candidate meeting their goal, else the one
    missing it least (ties: more accurate)."""
    if not candidates:
        raise ValueError("no candidates to pick tiers from")
    front = pareto_front(candidates)
    chosen = {"accurate": _choice("accurate", max(front, key=lambda c: (c.ap50, -c.latency_ms)), baseline, None)}
    for goal in GOALS:
        best = min(front, key=lambda c: (_shortfall(c, baseline, goal), -c.ap50))
        chosen[goal.tier] = _choice(goal.tier, best, baseline, goal)
    return {tier: chosen[tier] for tier in ("fast", "medium", "accurate")}
