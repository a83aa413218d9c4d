"""Speed measurement: what it reports and how it refuses bad settings (no timing thresholds: see bench/)."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.models.darknet import Darknet
from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.speed import measure_side_by_side, measure_speed


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    out = tmp_path_factory.mktemp("speed")
    model = Darknet.from_cfg("demo")
    names = ["a", "b", "c"]
    small = export_onnx(model, names, out / "demo.onnx").path
    low = export_onnx(model.at_input_size(128, 128), names, out / "demo128.onnx").path
    return {"192": Detector(small, conf_threshold=0.9), "128": Detector(low, conf_threshold=0.9)}


def test_side_by_side_reports_every_detector_with_all_stages(detectors):
    frames = [np.full((120, 160, 3), v, np.uint8) for v in (40, 200)]
    speeds = measure_side_by_side(detectors, frames, runs=7, warmup=1, block=3)
    assert set(speeds) == {"192", "128"}
    for speed in speeds.values():
        assert speed.runs == 7
        assert min(speed.preprocess_ms, speed.inference_ms, speed.postprocess_ms) > 0
        assert speed.total_p95_ms >= speed.total_ms > 0
        assert speed.hz == pytest.approx(1000 / speed.total_ms)
        assert set(speed.to_dict()) >= {"total_ms", "inference_ms", "hz", "runs"}


def test_single_detector_and_bad_settings(detectors):
    frames = [np.zeros((64, 64, 3), np.uint8)]
    assert measure_speed(detectors["128"], frames, runs=2, warmup=0).runs == 2
    with pytest.raises(ValueError, match="at least one frame"):
        measure_speed(detectors["128"], [], runs=2)
    with pytest.raises(ValueError, match="runs >= 1"):
        measure_side_by_side(detectors, frames, runs=0)
