"""Annotation draws on a copy, in the class's color, and survives boxes at the image border."""

from __future__ import annotations

import numpy as np

from yolo_compress.runtime.annotate import class_color, draw_detections
from yolo_compress.runtime.postprocess import Detections


def test_draws_boxes_and_labels_on_a_copy():
    image = np.zeros((100, 200, 3), np.uint8)
    dets = Detections(
        boxes=np.array([[0, 0, 50, 40], [120, 60, 199, 99]], np.float32),
        scores=np.array([0.9, 0.5], np.float32),
        class_ids=np.array([0, 1]),
    )
    out = draw_detections(image, dets, ["person", "car"])
    assert not image.any(), "the input image must stay untouched"
    assert out.shape == image.shape
    assert (out[99, 150] == class_color(1)).all(), "bottom edge of the car box"
    assert (out[20, 0] == class_color(0)).all(), "left edge of the person box"


def test_class_colors_are_stable_and_distinct():
    colors = [class_color(i) for i in range(20)]
    assert colors == [class_color(i) for i in range(20)]
    assert len(set(colors)) == 20
