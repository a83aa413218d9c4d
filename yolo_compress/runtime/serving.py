"""Which model the detector node serves and how one is brought up: tier or explicit file, settings, warm-up.

A tier swap builds the whole new ServedModel (session, contract check, class filter, warm-up) before the node
switches one reference to it, so the frame being processed when the swap happens finishes on the old model
and the next one runs on a model that has already paid its first-call costs. Everything here raises
ValueError/OSError subclasses (ContractError, TiersError) with a message that names the tier and file, which
the node returns as the reason a parameter change was rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yolo_compress.runtime.detector import Detector, resolve_classes
from yolo_compress.runtime.providers import SPIN_US
from yolo_compress.runtime.speed import measure_speed
from yolo_compress.runtime.tiers import TiersConfig, TierSpec

CUSTOM_TIER = "custom"  # the tier name reported while the `model` parameter overrides the tiers
WARMUP_RUNS = 2
MEASURE_FRAME_SHAPE = (480, 640, 3)  # a VGA camera frame: start-up speed includes a realistic resize
MEASURE_BUDGET_S = 1.0  # per tier, so that measuring three tiers delays the start by a few seconds at most
MEASURE_RUNS = (5, 30)  # fewest / most timed runs per tier


@dataclass(frozen=True)
class ServeSettings:
    """What the node's parameters say about serving, whatever the model. Negative thresholds: the tier's."""

    providers: tuple[str, ...] = ()  # empty: the fastest this onnxruntime build has
    conf_threshold: float = -1.0
    iou_threshold: float = -1.0
    classes: tuple[str, ...] = ()  # empty: all classes
    max_detections: int = 100
    spin_us: int | None = SPIN_US  # how long ORT's idle threads spin before they sleep (providers.session_options)


@dataclass(frozen=True)
class ServedModel:
    """A loaded, warmed-up detector, the tier it serves and that tier's own thresholds."""

    tier: str
    detector: Detector
    tier_conf: float
    tier_iou: float

    def apply(self, settings: ServeSettings) -> None:
        """Thresholds, class filter and detection cap, all or nothing: every value is checked before any is set."""
        conf = settings.conf_threshold if settings.conf_threshold >= 0 else self.tier_conf
        iou = settings.iou_threshold if settings.iou_threshold >= 0 else self.tier_iou
        for name, value in (("conf_threshold", conf), ("iou_threshold", iou)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] (or negative for the tier's), got {value}")
        if settings.max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {settings.max_detections}")
        if settings.classes:
            try:
                resolve_classes(settings.classes, self.detector.names)
            except ValueError as exc:
                raise ValueError(f"classes for tier {self.tier} ({self.detector.model_path}): {exc}") from exc
        detector = self.detector
        detector.conf_threshold, detector.iou_threshold = conf, iou
        detector.classes = list(settings.classes) or None
        detector.max_detections = settings.max_detections


def open_model(tier: str, model: Path, tier_conf: float, tier_iou: float, settings: ServeSettings) -> ServedModel:
    """Load `model` for `tier`, apply `settings` and run it WARMUP_RUNS times on a blank frame."""
    detector = Detector(model, providers=list(settings.providers) or None, spin_us=settings.spin_us)
    served = ServedModel(tier, detector, tier_conf, tier_iou)
    served.apply(settings)
    blank = np.full(MEASURE_FRAME_SHAPE, 114, np.uint8)
    for _ in range(WARMUP_RUNS):
        detector.detect(blank)
    return served


def open_tier(config: TiersConfig, tier: str, settings: ServeSettings) -> ServedModel:
    """The ServedModel of a tier of `config`; TiersError for an unknown tier, ContractError for a bad model."""
    spec: TierSpec = config.tier(tier)
    if not spec.model.is_file():
        raise FileNotFoundError(f"tier {tier}: model not found: {spec.model} (tiers file {config.source})")
    return open_model(tier, spec.model, spec.conf_threshold, spec.iou_threshold, settings)


def measure_tiers(
    config: TiersConfig, settings: ServeSettings, tiers: Sequence[str] | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """({tier: Hz it sustains here}, {tier: why it could not be measured}), each tier loaded in turn.

    The rate is 1000 / median end-to-end ms on a VGA frame, runs sized to about MEASURE_BUDGET_S per tier.
    Only one tier's session is alive at a time, so measuring needs no more memory than serving.
    """
    rates: dict[str, float] = {}
    failures: dict[str, str] = {}
    for tier in tiers or config.names:
        try:
            served = open_tier(config, tier, settings)
        except (OSError, ValueError) as exc:
            failures[tier] = str(exc)
            continue
        frame = np.full(MEASURE_FRAME_SHAPE, 114, np.uint8)
        first_ms = max(served.detector.detect(frame).timing.total_ms, 1e-3)
        runs = int(np.clip(MEASURE_BUDGET_S * 1e3 / first_ms, *MEASURE_RUNS))
        rates[tier] = measure_speed(served.detector, [frame], runs=runs, warmup=0).hz
    return rates, failures
