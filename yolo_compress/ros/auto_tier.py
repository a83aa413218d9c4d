"""Auto tier: serve the most accurate tier that holds target_hz on this device, and keep it so while running.

Plain logic (no ROS, no clock of its own: every call carries `now`), so each rule is tested on its own.

- At start each tier is measured on the device; the most accurate one whose rate is at least
  SUSTAIN_MARGIN x target is served (the fastest when none is).
- Down: the output rate stays below SHORTFALL x target for HOLD_S while the input would allow the target
  (a camera slower than the target is not the model's fault, and moving down would not help).
- Up: the next more accurate tier is predicted to hold SUSTAIN_MARGIN x target for HOLD_S. The prediction is
  the live rate of the current tier (what it really sustains now, with the robot's other load) times the
  start-up speed ratio of the two tiers, so it follows load changes without ever running the other tier.
- Damping: after a move nothing is judged for SETTLE_S (the rate meters refill with the new tier); each
  time a tier had to be left for missing the target, moving back up to it needs twice the hold (up to
  MAX_BACKOFF x), so a tier the prediction flatters is retried less and less often instead of flapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SUSTAIN_MARGIN = 1.1
SHORTFALL = 0.9
HOLD_S = 3.0
SETTLE_S = 2.0
MAX_BACKOFF = 8


@dataclass(frozen=True)
class TierMove:
    """A proposed move to a neighbouring tier and the measured reason, for the log and ~/timing."""

    from_tier: str
    to_tier: str
    reason: str

    def describe(self) -> str:
        return f"{self.from_tier} -> {self.to_tier}: {self.reason}"


@dataclass(frozen=True)
class Observation:
    """Live rates while serving the current tier; capacity_hz is 1000 / mean processing ms per frame."""

    now: float
    input_hz: float
    output_hz: float
    capacity_hz: float


def initial_choice(order: Sequence[str], capacities: Mapping[str, float], target_hz: float) -> tuple[str, str]:
    """(tier, reason): the most accurate measured tier that sustains the target, else the fastest."""
    measured = [tier for tier in order if tier in capacities]
    if not measured:
        raise ValueError("auto tier: no tier could be measured on this device")
    rates = ", ".join(f"{tier} {capacities[tier]:.1f} Hz" for tier in measured)
    holding = [tier for tier in measured if capacities[tier] >= target_hz * SUSTAIN_MARGIN]
    if holding:
        return holding[-1], f"measured {rates}: {holding[-1]} is the most accurate that holds {target_hz:.3g} Hz"
    return measured[0], f"measured {rates}: none holds {target_hz:.3g} Hz, serving the fastest"


class AutoTierController:
    """Decides moves between neighbouring tiers; the node loads the model and confirms with `moved`.

    `order` lists tiers fastest first; `capacities` holds each measured tier's start-up rate in Hz (tiers
    that failed to load are simply absent and never chosen).
    """

    def __init__(self, order: Sequence[str], capacities: Mapping[str, float], target_hz: float, now: float) -> None:
        if target_hz <= 0:
            raise ValueError(f"auto tier needs target_hz > 0, got {target_hz}")
        self.order = [tier for tier in order if tier in capacities]
        self.capacities = dict(capacities)
        self.target_hz = float(target_hz)
        self.current, self.last_reason = initial_choice(self.order, self.capacities, self.target_hz)
        self._backoff = dict.fromkeys(self.order, 1)
        self._pending: TierMove | None = None
        self._settle_until = now + SETTLE_S
        self._below_since: float | None = None
        self._headroom_since: float | None = None

    def set_target(self, target_hz: float, now: float) -> None:
        """A new target: the hold timers start over so that the decision is made on rates of the new target."""
        if target_hz <= 0:
            raise ValueError(f"auto tier needs target_hz > 0, got {target_hz}")
        self.target_hz = float(target_hz)
        self._below_since = self._headroom_since = None

    def observe(self, obs: Observation) -> TierMove | None:
        """A move to propose now, or None. At most one move is outstanding until `moved` or `move_failed`."""
        if self._pending is not None or obs.now < self._settle_until:
            return None
        index = self.order.index(self.current)
        missing = obs.output_hz < self.target_hz * SHORTFALL <= obs.input_hz
        move = self._down(obs, index, missing) or self._up(obs, index, missing)
        if move is not None:
            self._pending = move
        return move

    def moved(self, tier: str, now: float) -> None:
        """The node now serves `tier`; a tier left for missing the target gets a longer hold to come back."""
        left = self.current
        if self.order.index(tier) < self.order.index(left):
            self._backoff[left] = min(self._backoff[left] * 2, MAX_BACKOFF)
        self.current = tier
        self.last_reason = self._pending.describe() if self._pending else f"serving {tier}"
        self._restart(now)

    def move_failed(self, tier: str, now: float) -> None:
        """The model of `tier` would not load: never propose it again."""
        if tier in self.order and tier != self.current:
            self.order.remove(tier)
        self._restart(now)

    def _restart(self, now: float) -> None:
        self._pending = None
        self._settle_until = now + SETTLE_S
        self._below_since = self._headroom_since = None

    def _down(self, obs: Observation, index: int, missing: bool) -> TierMove | None:
        self._below_since = _since(self._below_since, obs.now, missing and index > 0)
        if self._below_since is None or obs.now - self._below_since < HOLD_S:
            return None
        held = obs.now - self._below_since
        reason = (f"output {obs.output_hz:.1f} Hz below target {self.target_hz:.3g} Hz for {held:.1f} s "
                  f"(input {obs.input_hz:.1f} Hz)")
        return TierMove(self.current, self.order[index - 1], reason)

    def _up(self, obs: Observation, index: int, missing: bool) -> TierMove | None:
        if index + 1 >= len(self.order) or obs.capacity_hz <= 0:
            self._headroom_since = None
            return None
        upper = self.order[index + 1]
        predicted = obs.capacity_hz * self.capacities[upper] / self.capacities[self.current]
        roomy = predicted >= self.target_hz * SUSTAIN_MARGIN and not missing
        self._headroom_since = _since(self._headroom_since, obs.now, roomy)
        hold = HOLD_S * self._backoff[upper]
        if self._headroom_since is None or obs.now - self._headroom_since < hold:
            return None
        reason = (f"{self.current} sustains {obs.capacity_hz:.1f} Hz, far above target {self.target_hz:.3g} Hz; "
                  f"{upper} predicted {predicted:.1f} Hz")
        return TierMove(self.current, upper, reason)


def _since(started: float | None, now: float, holds: bool) -> float | None:
    """When a condition that holds now began holding (None once it does not)."""
    if not holds:
        return None
    return now if started is None else started
