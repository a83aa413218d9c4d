"""validate() scores a torch model the way the robot's Detector scores its ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_compress.data import load_dataset
from yolo_compress.eval.annotations import ImageDT
from yolo_compress.eval.evaluate import evaluate
from yolo_compress.models.darknet import Darknet
from yolo_compress.runtime.detector import Detector
from yolo_compress.train.validate import AP_CONF, validate

from _data import real_model
from conftest import shared_path, yolo_fastest_files


def test_validate_equals_the_onnx_detector_on_real_data(exported_yolo_fastest):
    model, _, _ = real_model("yolo-fastest-1.1")
    _, _, names_file = yolo_fastest_files("yolo-fastest-1.1")
    names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    data = load_dataset(f"yolo:{shared_path('coco128-train')}", ["person"])[:32]
    detector = Detector(exported_yolo_fastest("yolo-fastest-1.1"), conf_threshold=AP_CONF, classes=["person"])
    person = names.index("person")
    detections = []
    for sample in data:
        found = detector.detect(sample.load_image()).detections
        assert (found.class_ids == person).all()
        detections.append(ImageDT.from_xyxy(found.boxes, found.scores, np.zeros(len(found), np.int64)))
    expected = evaluate(data.image_gts(), detections, ["person"])
    measured = validate(model, names, data, batch_size=5)
    assert measured["n_gt"] == expected["n_gt"] > 0 and measured["ap50"] > 0.2
    for key in ("ap50", "ap50_95", "precision", "recall"):
        assert measured[key] == pytest.approx(expected[key], abs=2e-3), key


def test_dataset_classes_must_be_model_classes():
    data = load_dataset("synthetic:2:0")
    with pytest.raises(ValueError, match="unknown classes square, triangle"):
        validate(Darknet.from_cfg("demo"), ["circle", "disc", "cone"], data)
