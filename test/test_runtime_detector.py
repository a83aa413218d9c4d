"""The Detector end to end on fixture models: boxes in image pixels, batching, settings, providers, no torch."""

from __future__ import annotations

import logging
import subprocess
import sys

import cv2
import numpy as np
import pytest
from test_runtime_contract import contract_model

from yolo_compress.runtime import providers
from yolo_compress.runtime.detector import Detector

from conftest import REPO, shared_path

NAMES = ["person", "car", "dog"]
# network input 64x96 (H,W); box 0 is a person and (less) a car, box 1 a car overlapping box 0, box 2 a dog
BOXES = [[0, 0, 48, 32], [4, 2, 50, 34], [60, 40, 90, 60]]
SCORES = [[0.9, 0.5, 0.0], [0.0, 0.7, 0.0], [0.0, 0.0, 0.3]]
WHITE = np.full((128, 192, 3), 255, np.uint8)  # 2x the input: stretch and letterbox agree


@pytest.fixture
def model(tmp_path):
    return contract_model(tmp_path / "m.onnx", BOXES, SCORES, names=NAMES, resize="stretch")


def test_detect_reports_boxes_in_image_pixels(model):
    result = Detector(model, providers=["cpu"]).detect(WHITE)
    dets = result.detections
    assert dets.class_ids.tolist() == [0, 1, 2]  # the car at box 1 suppresses the car at box 0
    np.testing.assert_allclose(dets.scores, [0.9, 0.7, 0.3])
    np.testing.assert_allclose(dets.boxes, [[0, 0, 96, 64], [8, 4, 100, 68], [120, 80, 180, 120]])
    timing = result.timing
    assert min(timing.preprocess_ms, timing.inference_ms, timing.postprocess_ms) > 0
    assert timing.total_ms == pytest.approx(timing.preprocess_ms + timing.inference_ms + timing.postprocess_ms)


def test_letterbox_model_maps_through_the_padding(tmp_path):
    model = contract_model(tmp_path / "lb.onnx", BOXES, SCORES, names=NAMES, resize="letterbox")
    frame = np.full((64, 192, 3), 255, np.uint8)  # scale 0.5 -> 96x32 image, 16 px pad above and below
    dets = Detector(model).detect(frame).detections
    np.testing.assert_allclose(dets.boxes[0], [0, 0, 96, 32])  # (0,0,48,32) net -> y (0-16)/0.5 clipped, 32
    np.testing.assert_allclose(dets.boxes[2], [120, 48, 180, 64])


def test_batch_equals_single(model):
    detector = Detector(model)
    frames = [WHITE, np.zeros((50, 70, 3), np.uint8), cv2.resize(WHITE, (300, 100))]
    batch = detector.detect_batch(frames)
    assert [len(r.detections) for r in batch] == [3, 0, 3]
    for result, frame in zip(batch, frames, strict=True):
        single = detector.detect(frame).detections
        np.testing.assert_array_equal(result.detections.boxes, single.boxes)
        np.testing.assert_array_equal(result.detections.scores, single.scores)
        np.testing.assert_array_equal(result.detections.class_ids, single.class_ids)
        assert result.timing.batch_size == 3


def test_settings_change_after_construction(model):
    detector = Detector(model)
    detector.conf_threshold = 0.6
    assert detector.detect(WHITE).detections.class_ids.tolist() == [0, 1]
    detector.conf_threshold, detector.iou_threshold = 0.25, 0.9
    assert detector.detect(WHITE).detections.class_ids.tolist() == [0, 1, 1, 2]
    detector.max_detections = 2
    assert len(detector.detect(WHITE).detections) == 2
    detector.max_detections, detector.classes = 100, ["car", 2]
    assert detector.classes == (1, 2)
    assert detector.detect(WHITE).detections.class_ids.tolist() == [1, 1, 2]
    detector.classes = None
    assert len(detector.detect(WHITE).detections) == 4


def test_class_filter_before_nms_in_the_detector(model):
    """Only cars: box 1's car (0.7) survives; the person at box 0 (0.9) plays no part."""
    dets = Detector(model, classes=["car"], iou_threshold=0.45).detect(WHITE).detections
    assert dets.class_ids.tolist() == [1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ["person", "cat"]}, "unknown class 'cat'; the model's classes are: person, car, dog"),
        ({"classes": [7]}, r"class id 7 out of range: the model has 3 classes \(0..2\)"),
        ({"classes": []}, "classes is empty"),
        ({"conf_threshold": 1.5}, r"conf_threshold must be in \[0, 1\]"),
        ({"iou_threshold": -0.1}, r"iou_threshold must be in \[0, 1\]"),
        ({"max_detections": 0}, "max_detections must be >= 1"),
        ({"intra_op_threads": 0}, "intra_op_threads must be >= 1"),
    ],
)
def test_bad_settings_are_explained(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detector(model, **kwargs)


def test_names_and_info(model):
    detector = Detector(model, intra_op_threads=1)
    assert detector.names == tuple(NAMES)
    assert detector.info.input_size == (64, 96)
    assert detector.info.metadata["tier"] == "test"


def test_unavailable_gpu_provider_falls_back_to_cpu_loudly(model, caplog):
    with caplog.at_level(logging.WARNING, logger=providers.__name__):
        detector = Detector(model, providers=["cuda", "cpu"])
    assert detector.provider == "CPUExecutionProvider"
    assert "CUDAExecutionProvider" in caplog.text and "not available" in caplog.text
    assert "expect CPU speed" in caplog.text


def test_default_providers_pick_silently(model, caplog):
    with caplog.at_level(logging.WARNING):
        detector = Detector(model)
    assert detector.provider in providers.resolve_providers(None)
    assert not caplog.records


def test_provider_resolution_and_options():
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers.resolve_providers(["cuda"], available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers.resolve_providers(None, available) == available
    assert providers.resolve_providers(None, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    options = providers.provider_options_for(
        ["TensorrtExecutionProvider", "CPUExecutionProvider"],
        {"tensorrt": {"trt_fp16_enable": False, "trt_max_workspace_size": 1 << 30}},
    )
    assert options[0]["trt_fp16_enable"] == "False"
    assert options[0]["trt_engine_cache_enable"] == "True"
    assert options[0]["trt_max_workspace_size"] == str(1 << 30)
    assert options[1] == {}


def test_real_photos_of_any_size(model):
    detector = Detector(model)
    photos = sorted(shared_path("photos").glob("*.jpg"))
    frames = [cv2.imread(str(p)) for p in photos]
    for frame, result in zip(frames, detector.detect_batch(frames), strict=True):
        height, width = frame.shape[:2]
        boxes = result.detections.boxes
        assert len(boxes) == 3
        np.testing.assert_allclose(boxes[2], [60 * width / 96, 40 * height / 64, 90 * width / 96, 60 * height / 64],
                                   rtol=1e-5)


def test_runtime_never_imports_torch(model):
    code = (
        "import sys, numpy as np\n"
        "from yolo_compress.runtime.detector import Detector\n"
        "import yolo_compress.runtime.annotate, yolo_compress.runtime.detect_files\n"
        f"d = Detector({str(model)!r})\n"
        "r = d.detect(np.full((128, 192, 3), 255, np.uint8))\n"
        "assert len(r.detections) == 3\n"
        "assert 'torch' not in sys.modules, 'the runtime imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
