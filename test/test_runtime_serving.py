"""Bringing a tier up for the node: thresholds from the tier unless overridden, settings all-or-nothing,
named errors for an unknown tier or a bad model, and the on-device speed of each tier."""

from __future__ import annotations

import shutil

import pytest

from yolo_compress.runtime.contract import ContractError
from yolo_compress.runtime.providers import SPIN_US
from yolo_compress.runtime.serving import ServeSettings, measure_tiers, open_model, open_tier
from yolo_compress.runtime.tiers import TiersError, load_tiers

from _ros import demo_model, write_tiers_file


@pytest.fixture(scope="module")
def tiers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serving")
    shutil.copyfile(demo_model(192), folder / "fast.onnx")
    (folder / "broken.onnx").write_bytes(b"junk")
    models = {"fast": folder / "fast.onnx", "broken": folder / "broken.onnx", "missing": folder / "missing.onnx"}
    return load_tiers(write_tiers_file(folder / "tiers.yaml", models, conf=0.9, default="fast"), environ={})


def test_the_tiers_thresholds_apply_unless_overridden(tiers):
    served = open_tier(tiers, "fast", ServeSettings())
    assert (served.tier, served.detector.conf_threshold, served.detector.iou_threshold) == ("fast", 0.9, 0.45)
    served.apply(ServeSettings(conf_threshold=0.95, iou_threshold=0.3, classes=("class_2",), max_detections=7))
    detector = served.detector
    assert (detector.conf_threshold, detector.iou_threshold, detector.classes, detector.max_detections) == (
        0.95, 0.3, (2,), 7)
    served.apply(ServeSettings())
    assert (detector.conf_threshold, detector.classes, detector.max_detections) == (0.9, None, 100)


def test_settings_are_all_or_nothing(tiers):
    served = open_tier(tiers, "fast", ServeSettings())
    with pytest.raises(ValueError, match="classes for tier fast .*unknown class 'dog'"):
        served.apply(ServeSettings(conf_threshold=0.99, classes=("dog",)))
    assert served.detector.conf_threshold == 0.9  # nothing of the rejected change was applied
    with pytest.raises(ValueError, match="max_detections must be >= 1"):
        served.apply(ServeSettings(conf_threshold=0.99, max_detections=0))
    assert served.detector.conf_threshold == 0.9


def _session_entry(tiers, settings: ServeSettings, key: str) -> str | None:
    options = open_tier(tiers, "fast", settings).detector._session.get_session_options()
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # no entry: ONNX Runtime's default
        return None


def test_served_sessions_spin_briefly_then_sleep_unless_told_otherwise(tiers):
    bound, off = "session.intra_op.spin_duration_us", "session.intra_op.allow_spinning"
    assert _session_entry(tiers, ServeSettings(), bound) == str(SPIN_US)
    assert _session_entry(tiers, ServeSettings(), off) is None
    assert _session_entry(tiers, ServeSettings(spin_us=0), off) == "0"
    assert _session_entry(tiers, ServeSettings(spin_us=None), bound) is None  # ORT's own unbounded spin
    with pytest.raises(ValueError, match="spin_us must be >= 0"):
        open_tier(tiers, "fast", ServeSettings(spin_us=-5))


def test_an_explicit_model_is_served_under_its_own_name(tiers):
    served = open_model("custom", tiers.tier("fast").model, 0.25, 0.45, ServeSettings(conf_threshold=0.8))
    assert served.tier == "custom" and served.detector.conf_threshold == 0.8


def test_unknown_tier_and_bad_models_are_named(tiers):
    with pytest.raises(TiersError, match="unknown tier 'turbo'"):
        open_tier(tiers, "turbo", ServeSettings())
    with pytest.raises(FileNotFoundError, match=r"tier missing: model not found: .*missing\.onnx \(tiers file"):
        open_tier(tiers, "missing", ServeSettings())
    with pytest.raises(ContractError, match="broken.onnx: not a loadable ONNX model"):
        open_tier(tiers, "broken", ServeSettings())


def test_measure_tiers_times_the_good_ones_and_names_the_bad(tiers):
    rates, failures = measure_tiers(tiers, ServeSettings())
    assert list(rates) == ["fast"] and rates["fast"] > 0
    assert set(failures) == {"broken", "missing"} and "not found" in failures["missing"]
