"""VOC AP, operating-point metrics and latency statistics on examples worked out by hand; in-memory API errors."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_compress.eval import ImageDT, ImageGT, evaluate, latency_stats, xyxy_to_xywh
from yolo_compress.eval import matching as matching_module
from yolo_compress.eval.voc_ap import voc07_ap, voc_ap

# One image. Four 10x10 "person" boxes in a row (the last is never found) and a crowd region.
GT = ImageGT(
    xywh=[[0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10], [60, 0, 10, 10], [0, 100, 100, 100]],
    classes=[0, 0, 0, 0, 0],
    crowd=[0, 0, 0, 0, 1],
)
# By descending score: inside the crowd (ignored), TP IoU 0.8, FP, TP IoU 0.6, FP, duplicate of the
# first TP (FP), TP IoU 1.  Counted sequence: TP FP TP FP FP TP over 4 ground truths.
DT = ImageDT(
    xywh=[
        [10, 110, 20, 20],
        [0, 0, 10, 8],
        [200, 200, 10, 10],
        [20, 0, 10, 6],
        [300, 300, 10, 10],
        [0, 0, 10, 10],
        [40, 0, 10, 10],
    ],
    scores=[0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
    classes=[0] * 7,
)


def test_voc_ap_by_hand():
    # recall .25 .25 .5 .5 .5 .75, precision 1 1/2 2/3 1/2 2/5 1/2
    result = evaluate([GT], [DT], ["person", "car"], op_conf=0.25)
    # all-point: envelope 1 on [0, .25], 2/3 on (.25, .5], 1/2 on (.5, .75], 0 beyond = 13/24
    assert result["voc_ap50"] == pytest.approx(13 / 24, abs=1e-12)
    # 11-point: 1 at r = 0, .1, .2; 2/3 at .3, .4, .5; 1/2 at .6, .7; 0 at .8, .9, 1 -> 6/11
    assert result["voc07_ap50"] == pytest.approx(6 / 11, abs=1e-12)
    # COCO's 101 points: 26 at 1, 25 at 2/3, 25 at 1/2, 25 at 0
    assert result["ap50"] == pytest.approx((26 + 25 * 2 / 3 + 25 / 2) / 101, abs=1e-12)
    assert result["per_class"]["person"]["voc_ap50"] == result["voc_ap50"]
    assert "car" not in result["per_class"]  # neither ground truth nor detections
    assert result["ap_medium"] == result["ap_large"] == -1.0  # all counted boxes are small


def test_voc_functions_on_curve_edges():
    assert voc_ap(np.array([]), np.array([])) == 0.0
    assert voc07_ap(np.array([]), np.array([])) == 0.0
    # a single perfect detection of the only object
    assert voc_ap(np.array([1.0]), np.array([1.0])) == voc07_ap(np.array([1.0]), np.array([1.0])) == 1.0
    # recall exactly 3/10 reaches the 0.3 point: 1 at r = 0, .1, .2, .3 -> 4/11
    assert voc07_ap(np.array([0.3]), np.array([1.0])) == pytest.approx(4 / 11)


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        # kept: crowd (ignored), TP .8, FP, TP .6, FP
        (0.55, {"tp": 2, "fp": 2, "fn": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5, "mean_iou": 0.7}),
        # all: 3 TP (IoU .8, .6, 1), 3 FP, 1 missed
        (0.25, {"tp": 3, "fp": 3, "fn": 1, "precision": 0.5, "recall": 0.75, "f1": 0.6, "mean_iou": 0.8}),
        (0.99, {"tp": 0, "fp": 0, "fn": 4, "precision": 0.0, "recall": 0.0, "f1": 0.0, "mean_iou": 0.0}),
    ],
)
def test_operating_point_by_hand(conf, expected):
    result = evaluate([GT], [DT], ["person"], op_conf=conf)
    assert {key: result[key] for key in expected} == pytest.approx(expected, abs=1e-12)
    assert {key: result["per_class"]["person"][key] for key in expected} == pytest.approx(expected, abs=1e-12)
    assert result["n_gt"] == 4 and result["n_dt"] == 7 and result["op_conf"] == conf


def test_corner_boxes_give_the_same_result():
    def corners(xywh):
        return np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]

    gt = ImageGT.from_xyxy(corners(GT.xywh), GT.classes, GT.crowd)
    dt = ImageDT.from_xyxy(corners(DT.xywh), DT.scores, DT.classes)
    assert evaluate([gt], [dt], ["person"]) == evaluate([GT], [DT], ["person"])
    np.testing.assert_array_equal(xyxy_to_xywh([[1, 2, 4, 8]]), [[1, 2, 3, 6]])


def test_result_has_every_documented_key():
    result = evaluate([GT, ImageGT(np.zeros((0, 4)), [])], [DT, ImageDT([], [], [])], ["person"])
    required = [
        "ap50",
        "ap50_95",
        "ap75",
        "ap_small",
        "ap_medium",
        "ap_large",
        "voc07_ap50",
        "voc_ap50",
        "precision",
        "recall",
        "f1",
        "mean_iou",
        "op_conf",
        "per_class",
        "n_images",
    ]
    assert set(required) <= set(result) and result["n_images"] == 2
    assert {"ap50", "ap50_95", "precision", "recall", "f1", "n_gt", "n_dt"} <= set(result["per_class"]["person"])


def test_small_chunks_give_the_same_matches(monkeypatch):
    rng = np.random.default_rng(3)
    gts, dts = [], []
    for _ in range(30):
        n = int(rng.integers(0, 12))
        boxes = np.c_[rng.uniform(0, 100, (n, 2)), rng.uniform(5, 60, (n, 2))]
        gts.append(ImageGT(boxes, rng.integers(0, 2, n), rng.random(n) < 0.2))
        dets = np.concatenate([boxes + rng.normal(0, 3, boxes.shape), boxes[: n // 2]])
        dets[:, 2:] = np.abs(dets[:, 2:])
        dts.append(ImageDT(dets, rng.random(len(dets)), rng.integers(0, 2, len(dets))))
    whole = evaluate(gts, dts, ["a", "b"])
    monkeypatch.setattr(matching_module, "_CHUNK_CELLS", 30)  # forces many chunks per bucket
    assert evaluate(gts, dts, ["a", "b"]) == whole


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: evaluate([GT], [DT, DT], ["person"]), "gt has 1 images but dt has 2"),
        (lambda: evaluate([GT], [DT], []), "class_names"),
        (lambda: evaluate([GT], [DT], ["a", "a"]), "repeat: ['a']"),
        (lambda: evaluate([ImageGT([[0, 0, 1, 1]], [3])], [DT], ["person"]), "gt[0].classes: class index 3"),
        (lambda: evaluate([GT, GT], [DT, ImageDT([[0, 0, 1, 1]], [1], [-1])], ["p"]), "dt[1].classes: class index -1"),
        (lambda: evaluate([ImageGT([], [], image_id=1)], [ImageDT([], [], [], image_id=2)], ["p"]), "image_id"),
        (lambda: ImageGT([[0, 0, 1]], [0]), "ImageGT.xywh: expected shape (N, 4)"),
        (lambda: ImageGT([[0, 0, -1, 1]], [0]), "ImageGT.xywh: box 0"),
        (lambda: ImageGT([[0, 0, 1, 1]], [0.5]), "ImageGT.classes: expected integer"),
        (lambda: ImageGT([[0, 0, 1, 1]], [0], area=[-2]), "ImageGT.area"),
        (lambda: ImageDT([[0, 0, 1, 1]], [np.nan], [0]), "ImageDT.scores: must be finite"),
        (lambda: ImageDT([[0, 0, 1, 1]], [0.5, 0.4], [0]), "ImageDT.scores: expected shape (1,)"),
    ],
)
def test_bad_in_memory_input_is_named(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


def test_latency_stats_by_hand():
    stats = latency_stats([10, 20, 30, 40])
    assert stats == pytest.approx(
        {"n": 4, "mean_ms": 25, "p50_ms": 25, "p95_ms": 38.5, "min_ms": 10, "max_ms": 40, "hz": 40}
    )
    with pytest.raises(ValueError, match="latency_stats"):
        latency_stats([])
