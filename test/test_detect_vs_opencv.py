"""End to end against an independent implementation: our export + runtime vs OpenCV DNN 4.x.

OpenCV reads the original Darknet cfg/weights itself; its candidates are formed Darknet-style (one per
(box, class) pair above the threshold) and suppressed with OpenCV's own class-aware NMS, so the only
code shared with the system under test is none.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from yolo_compress.runtime.detector import Detector

from conftest import YOLO_FASTEST, shared_path, yolo_fastest_files

CONF, IOU = 0.25, 0.45


def opencv_detections(cfg: Path, weights: Path, image: np.ndarray, size: tuple[int, int]):
    """(boxes x1y1x2y2 in image pixels, scores, class ids) from cv2.dnn, stretch resize, RGB, /255."""
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    blob = cv2.dnn.blobFromImage(image, 1 / 255.0, (size[1], size[0]), swapRB=True, crop=False)
    net.setInput(blob)
    rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in net.forward(net.getUnconnectedOutLayersNames())])
    height, width = image.shape[:2]
    cx, cy, bw, bh = (rows[:, i] * s for i, s in enumerate((width, height, width, height)))
    xywh = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1)
    box_idx, class_ids = np.nonzero(rows[:, 5:] > CONF)
    scores = rows[box_idx, 5 + class_ids]
    keep = cv2.dnn.NMSBoxesBatched(xywh[box_idx].tolist(), scores.tolist(), class_ids.tolist(), CONF, IOU)
    keep = np.asarray(keep, dtype=int).reshape(-1)
    sel = xywh[box_idx[keep]]
    boxes = np.concatenate([sel[:, :2], sel[:, :2] + sel[:, 2:]], axis=1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return boxes, scores[keep], class_ids[keep]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / union)


def assert_same_detections(ours, ref, label: str) -> None:
    """Same count; each reference detection has one of ours with the same class, IoU >= .98, |dscore| <= .01."""
    ref_boxes, ref_scores, ref_classes = ref
    assert len(ours.boxes) == len(ref_boxes), f"{label}: {len(ours.boxes)} detections vs OpenCV {len(ref_boxes)}"
    unused = set(range(len(ours.boxes)))
    for box, score, cls in zip(ref_boxes, ref_scores, ref_classes, strict=True):
        match = [j for j in unused if ours.class_ids[j] == cls and iou(ours.boxes[j], box) >= 0.98
                 and abs(ours.scores[j] - score) <= 0.01]
        assert match, f"{label}: OpenCV detection class {cls} score {score:.3f} box {box.round(1)} has no match"
        unused.remove(match[0])


@pytest.mark.parametrize("name", sorted(YOLO_FASTEST))
def test_final_detections_equal_opencv(name, exported_yolo_fastest):
    cfg, weights, _ = yolo_fastest_files(name)
    photos = sorted(shared_path("photos").glob("*.jpg"))
    detector = Detector(exported_yolo_fastest(name), conf_threshold=CONF, iou_threshold=IOU)
    total = 0
    for photo in photos:
        image = cv2.imread(str(photo))
        ours = detector.detect(image).detections
        ref = opencv_detections(cfg, weights, image, detector.info.input_size)
        assert_same_detections(ours, ref, f"{name} {photo.name}")
        total += len(ref[0])
    assert total > 0, f"{name}: no detections on any photo: the comparison proved nothing"
