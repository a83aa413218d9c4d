"""Every number of yolo_compress.eval against pycocotools' COCOeval (bbox) on the same COCO files.

COCO AP/AR and the full precision/recall arrays come straight from COCOeval; the VOC APs and the
operating-point precision/recall/F1/mean IoU are recomputed with plain loops from COCOeval's own
per-image matches (evalImgs, ious), so they check our matching as well as our arithmetic.
Data: coco128 labels with synthetic detections (real box statistics), and random sets built to hit
every special case (crowd, empty images, ties, maxDets, exact-threshold IoUs, area ranges).
"""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolo_compress.eval import ImageDT, ImageGT, evaluate, evaluate_coco_files, write_coco_detections, write_coco_gt
from yolo_compress.eval.coco_ap import STAT_NAMES, coco_curves
from yolo_compress.eval.tables import DtTable, GtTable

from conftest import shared_path

TOL = 1e-9  # the brief asks for 1e-4; the implementation reproduces COCOeval's arithmetic, so demand more
ALL_AREAS = [0, 1e10]


def _cocoeval(gt_path, dt_path) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(str(dt_path)), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def _reference_rows(coco_eval: COCOeval, cat_id: int) -> tuple[list[tuple[float, bool, float]], int]:
    """COCOeval's counted detections of a category at IoU 0.5, area all, maxDets 100, in its
    accumulation order: (score, is TP, IoU of the match); and the number of counted ground truths."""
    rows, n_gt = [], 0
    for e in coco_eval.evalImgs:
        if e is None or e["category_id"] != cat_id or e["aRng"] != ALL_AREAS:
            continue
        n_gt += int(np.count_nonzero(e["gtIgnore"] == 0))
        ious = coco_eval.ious[e["image_id"], cat_id]
        columns = [g["id"] for g in coco_eval._gts[e["image_id"], cat_id]]
        for d, (score, gt_id, ignored) in enumerate(
            zip(e["dtScores"], e["dtMatches"][0], e["dtIgnore"][0], strict=True)
        ):
            if not ignored:
                rows.append((score, bool(gt_id), float(ious[d, columns.index(gt_id)]) if gt_id else 0.0))
    order = np.argsort([-r[0] for r in rows], kind="mergesort")
    return [rows[i] for i in order], n_gt


def _reference_voc(hits: list[bool], n_gt: int) -> tuple[float, float]:
    """(VOC07 11-point, all-point) AP by the textbook loops."""
    recall, precision, tp = [], [], 0
    for i, hit in enumerate(hits):
        tp += hit
        recall.append(tp / n_gt)
        precision.append(tp / (i + 1))
    voc07 = (
        sum(max([p for r, p in zip(recall, precision, strict=True) if r >= t / 10], default=0.0) for t in range(11))
        / 11
    )
    mrec, mpre = [0.0, *recall, 1.0], [0.0, *precision, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return voc07, sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1))


def _reference_operating_point(rows, n_gt: int, conf: float) -> dict[str, float]:
    kept = [r for r in rows if r[0] >= conf]
    tp = sum(r[1] for r in kept)
    precision = tp / len(kept) if kept else 0.0
    recall = tp / n_gt if n_gt else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if tp else 0.0,
        "mean_iou": sum(r[2] for r in kept if r[1]) / tp if tp else 0.0,
        "tp": tp,
        "fp": len(kept) - tp,
        "fn": n_gt - tp,
    }


def _assert_close(ours: dict, reference: dict, where: str) -> None:
    for key, expected in reference.items():
        assert ours[key] == pytest.approx(expected, abs=TOL), f"{where}: {key}"


def assert_matches_pycocotools(gts: list[ImageGT], dts: list[ImageDT], names: list[str], tmp_path, op_conf) -> dict:
    """Write COCO files (images shuffled, sparse category ids), evaluate with both, compare everything."""
    category_ids = [3 * k + 2 for k in range(len(names))]
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    write_coco_gt(gt_path, gts, names, category_ids)
    write_coco_detections(dt_path, dts, category_ids)
    doc = json.loads(gt_path.read_text())
    np.random.default_rng(0).shuffle(doc["images"])  # loaders must order images by id, as COCOeval does
    gt_path.write_text(json.dumps(doc))

    result = evaluate_coco_files(gt_path, dt_path, op_conf)
    assert result == evaluate(gts, dts, names, op_conf)  # image ids ascend, so list order = COCOeval order
    coco_eval = _cocoeval(gt_path, dt_path)
    _assert_close(result, dict(zip(STAT_NAMES, coco_eval.stats, strict=True)), "stats")

    curves = coco_curves(GtTable.stack(gts, len(names)), DtTable.stack(dts, len(names), 100), len(names))
    np.testing.assert_allclose(curves.precision, coco_eval.eval["precision"][..., -1], rtol=0, atol=TOL)
    np.testing.assert_allclose(curves.recall, coco_eval.eval["recall"], rtol=0, atol=TOL)

    all_rows, n_gt_total = [], 0
    for k, name in enumerate(names):
        rows, n_gt = _reference_rows(coco_eval, category_ids[k])
        all_rows += rows
        n_gt_total += n_gt
        ours = result["per_class"].get(name)
        if ours is None:
            assert n_gt == 0 and not rows, f"{name} missing from per_class"
            continue
        p = coco_eval.eval["precision"][:, :, k, 0, -1]
        reference = {"n_gt": n_gt, "ap50_95": p.mean(), "ap50": p[0].mean(), "ap75": p[5].mean()} if n_gt else {}
        if n_gt:
            reference["voc07_ap50"], reference["voc_ap50"] = _reference_voc([r[1] for r in rows], n_gt)
        _assert_close(ours, {**reference, **_reference_operating_point(rows, n_gt, op_conf)}, name)
    _assert_close(result, _reference_operating_point(all_rows, n_gt_total, op_conf), "operating point")
    return result


def _random_set(seed: int, n_images: int = 24) -> tuple[list[ImageGT], list[ImageDT]]:
    """Random boxes over 4 classes: "dog" has ground truth but no detections, "kite" detections only.

    Image 0 has no ground truth, image 1 no detections, image 2 has 130 detections of one class
    (maxDets); even images use integer boxes and add half-width detections (IoU exactly 0.5);
    every third image rounds scores to 0.1 (ties within and across images); 10% of boxes are crowd,
    half carry an annotation area below the box area, and sizes span small, medium and large.
    """
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for i in range(n_images):
        n = 0 if i == 0 else int(rng.integers(1, 7))
        boxes = np.concatenate([rng.uniform(0, 400, (n, 2)), np.exp(rng.uniform(np.log(3), np.log(300), (n, 2)))], 1)
        if i % 2 == 0:
            boxes = np.round(boxes)
        classes = rng.choice(3, n, p=[0.5, 0.3, 0.2])
        area = boxes[:, 2] * boxes[:, 3] * np.where(rng.random(n) < 0.5, rng.uniform(0.4, 1.0, n), 1.0)
        gts.append(ImageGT(boxes, classes, rng.random(n) < 0.1, area, image_id=10 * i + 7))

        det_boxes, det_classes = [], []
        for box, cls in zip(boxes, classes, strict=True):
            if cls == 2:
                continue
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                det = box + rng.normal(0, 0.12, 4) * box[[2, 3, 2, 3]]
                det[2:] = np.abs(det[2:])
                det_boxes.append(np.round(det) if i % 2 == 0 else det)
                det_classes.append(cls if rng.random() > 0.05 else 3)
            if i % 2 == 0 and box[2] % 2 == 0:
                det_boxes.append(np.r_[box[:2], box[2] / 2, box[3]])
                det_classes.append(cls)
        for _ in range(int(rng.poisson(2)) + (130 if i == 2 else 0)):
            det_boxes.append(np.r_[rng.uniform(0, 400, 2), np.exp(rng.uniform(np.log(3), np.log(300), 2))])
            det_classes.append(0 if i == 2 else int(rng.choice([0, 1, 3])))
        if i == 1:
            det_boxes, det_classes = [], []
        scores = rng.random(len(det_boxes))
        if i % 3 == 0:
            scores = np.round(scores, 1)
        dts.append(ImageDT(np.reshape(det_boxes, (-1, 4)), scores, np.array(det_classes, int), image_id=10 * i + 7))
    return gts, dts


@pytest.mark.parametrize("seed", range(6))
def test_random_sets_match_pycocotools(seed, tmp_path):
    gts, dts = _random_set(seed)
    result = assert_matches_pycocotools(gts, dts, ["person", "car", "dog", "kite"], tmp_path, op_conf=0.5)
    assert result["per_class"]["dog"]["ap50"] == 0.0 and result["per_class"]["dog"]["n_dt"] == 0
    assert result["per_class"]["kite"]["ap50"] == -1.0 and result["per_class"]["kite"]["n_gt"] == 0
    assert sum(d.scores.size for d in dts) > result["n_dt"]  # maxDets cut image 2


def _coco128() -> tuple[list[ImageGT], list[str]]:
    """coco128-train labels (YOLO txt, normalized) as pixel ground truth, image by image."""
    root = shared_path("coco128-train")
    names = (root / "names.txt").read_text().split("\n")[:80]
    gts = []
    for i, image in enumerate(sorted((root / "images").glob("*.jpg"))):
        height, width = cv2.imread(str(image)).shape[:2]
        label = root / "labels" / f"{image.stem}.txt"
        rows = np.loadtxt(label, ndmin=2) if label.exists() else np.zeros((0, 5))
        cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
        gts.append(ImageGT(np.stack([cx - w / 2, cy - h / 2, w, h], 1), rows[:, 0].astype(int), image_id=i + 1))
    return gts, names


def _jittered(gts: list[ImageGT], seed: int) -> list[ImageDT]:
    """Detections a decent detector might give: jittered gt boxes, 15% dropped, some duplicates,
    class confusions and random false positives, all with random scores."""
    rng = np.random.default_rng(seed)
    dts = []
    for g in gts:
        keep = rng.random(len(g.classes)) > 0.15
        boxes = np.concatenate([g.xywh[keep], g.xywh[keep][: int(rng.integers(0, 3))]])
        classes = np.concatenate([g.classes[keep], g.classes[keep][: len(boxes) - int(keep.sum())]])
        boxes = boxes + rng.normal(0, 0.08, boxes.shape) * boxes[:, [2, 3, 2, 3]]
        classes = np.where(rng.random(len(classes)) < 0.05, rng.integers(0, 80, len(classes)), classes)
        n_fp = int(rng.poisson(3))
        fp = np.concatenate([rng.uniform(0, 500, (n_fp, 2)), rng.uniform(5, 200, (n_fp, 2))], 1)
        boxes, classes = np.concatenate([boxes, fp]), np.concatenate([classes, rng.integers(0, 80, n_fp)])
        boxes[:, 2:] = np.abs(boxes[:, 2:])
        dts.append(ImageDT(boxes, rng.random(len(boxes)), classes, image_id=g.image_id))
    return dts


@pytest.mark.parametrize("seed", [0, 1])
def test_coco128_with_synthetic_detections_matches_pycocotools(seed, tmp_path):
    gts, names = _coco128()
    result = assert_matches_pycocotools(gts, _jittered(gts, seed), names, tmp_path, op_conf=0.25)
    assert result["n_images"] == 128 and result["per_class"]["person"]["n_gt"] == 254
    assert 0.1 < result["ap50_95"] < result["ap50"] < 1
