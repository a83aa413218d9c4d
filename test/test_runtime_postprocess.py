"""Candidates, class filter, class-aware NMS and the mapping back, against hand-made heads and OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolo_compress.runtime.postprocess import Detections, candidates, nms, postprocess
from yolo_compress.runtime.preprocess import Transform, fit_transform

IDENTITY = Transform(1.0, 1.0, 0, 0, 1000, 1000)
A = [100, 100, 200, 200]
A_SHIFTED = [110, 110, 210, 210]  # IoU with A = 0.68
FAR = [500, 500, 600, 600]


def run(boxes, scores, **kwargs) -> Detections:
    return postprocess(np.array(boxes, np.float32), np.array(scores, np.float32), IDENTITY, **kwargs)


def test_every_class_above_threshold_is_a_candidate():
    dets = run([A], [[0.8, 0.1, 0.6]])
    assert dets.class_ids.tolist() == [0, 2]
    np.testing.assert_allclose(dets.scores, [0.8, 0.6])
    np.testing.assert_array_equal(dets.boxes, [A, A])


def test_threshold_is_strict():
    assert len(run([A], [[0.25, 0.2500001]], conf_threshold=0.25)) == 1


def test_overlapping_boxes_of_different_classes_are_both_kept():
    dets = run([A, A_SHIFTED], [[0.9, 0.0], [0.0, 0.8]])
    assert dets.class_ids.tolist() == [0, 1]


def test_overlapping_boxes_of_one_class_are_suppressed_by_iou():
    boxes, scores = [A, A_SHIFTED], [[0.9], [0.8]]
    assert len(run(boxes, scores, iou_threshold=0.45)) == 1
    assert len(run(boxes, scores, iou_threshold=0.7)) == 2


def test_class_filter_runs_before_nms():
    """A filtered-out class's better box must not suppress the wanted class's box at the same place."""
    dets = run([A, A_SHIFTED], [[0.9, 0.0], [0.0, 0.8]], classes=np.array([1]))
    assert dets.class_ids.tolist() == [1]
    np.testing.assert_allclose(dets.scores, [0.8])
    np.testing.assert_array_equal(dets.boxes, [A_SHIFTED])


def test_max_detections_keeps_the_best():
    boxes = [[i * 20, 0, i * 20 + 10, 10] for i in range(10)]
    scores = [[0.3 + 0.05 * i] for i in range(10)]
    dets = run(boxes, scores, max_detections=3)
    np.testing.assert_allclose(dets.scores, [0.75, 0.7, 0.65])


def test_no_candidates_gives_typed_empty_detections():
    dets = run([A], [[0.1, 0.2]])
    assert len(dets) == 0
    assert dets.boxes.shape == (0, 4) and dets.boxes.dtype == np.float32 and dets.class_ids.dtype == np.int64
    assert dets.to_dicts(["a", "b"]) == []


def test_boxes_are_mapped_back_to_original_pixels():
    transform = fit_transform(240, 640, (320, 320), "letterbox")  # scale 0.5, 100 px pad on top
    dets = postprocess(np.array([[10, 110, 50, 150]], np.float32), np.array([[0.9]], np.float32), transform)
    np.testing.assert_allclose(dets.boxes, [[20, 20, 100, 100]])


def test_to_dicts():
    dets = run([A], [[0.0, 0.5]])
    assert dets.to_dicts(["cat", "dog"]) == [
        {"class_id": 1, "class_name": "dog", "score": 0.5, "box": [100.0, 100.0, 200.0, 200.0]}
    ]


@pytest.mark.parametrize(("seed", "count"), [(0, 1), (1, 40), (2, 300), (3, 300), (4, 1500), (5, 2000)])
def test_nms_equals_opencv(seed, count):
    """Counts above NMS_BLOCK exercise the suppression across blocks; the plane grows to keep overlaps alike."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 20 * np.sqrt(count), (count, 2))
    wh = rng.uniform(10, 120, (count, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0.3, 1.0, count).astype(np.float32)
    class_ids = rng.integers(0, 3, count)
    ours = nms(boxes, scores, class_ids, 0.45)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
    ref = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, scores.tolist(), class_ids.tolist(), 0.0, 0.45)).reshape(-1)
    assert count == 1 or 0.05 * count < len(ref) < 0.95 * count, "the case must suppress some, not all"
    assert sorted(ours.tolist()) == sorted(ref.tolist())
    assert (np.diff(scores[ours]) <= 0).all(), "kept boxes must come best first"


@pytest.mark.parametrize("max_keep", [1, 7, 100, 600, 5000])
def test_nms_stops_at_max_keep_with_the_same_boxes(max_keep):
    """The early stop (which bounds the work an untrained model's flood of candidates costs) changes nothing
    in the boxes kept: they are the first max_keep of the full greedy NMS, across block boundaries too."""
    rng = np.random.default_rng(9)
    count = 3000
    xy = rng.uniform(0, 20 * np.sqrt(count), (count, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 120, (count, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0.3, 1.0, count).astype(np.float32)
    class_ids = rng.integers(0, 3, count)
    full = nms(boxes, scores, class_ids, 0.45)
    assert len(full) > 600
    np.testing.assert_array_equal(nms(boxes, scores, class_ids, 0.45, max_keep=max_keep), full[:max_keep])


def test_nms_of_nothing():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.45).size == 0


def test_candidates_match_a_full_scan():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 0.3, (1500, 80)).astype(np.float32)
    box_idx, class_ids, values = candidates(scores, 0.25)
    ref_rows, ref_cols = np.nonzero(scores > 0.25)
    assert sorted(zip(box_idx.tolist(), class_ids.tolist(), strict=True)) == sorted(
        zip(ref_rows.tolist(), ref_cols.tolist(), strict=True)
    )
    np.testing.assert_array_equal(values, scores[box_idx, class_ids])
