"""One call from per-image boxes (or COCO files) to every accuracy number a model tier is judged by.

The result is a JSON-ready dict; its COCO numbers equal pycocotools' COCOeval bbox stats, and the
VOC and operating-point numbers are computed on the very same matches, so all of them agree on what
counted as a hit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from yolo_compress.eval.annotations import ImageDT, ImageGT
from yolo_compress.eval.coco_ap import (
    ALL,
    IOU50,
    IOU75,
    IOU_THRESHOLDS,
    MAX_DETS,
    RECALL_THRESHOLDS,
    CocoCurves,
    coco_curves,
    mean_valid,
    summarize,
)
from yolo_compress.eval.coco_json import load_coco_detections, load_coco_gt
from yolo_compress.eval.operating_point import class_counts, rates
from yolo_compress.eval.tables import DtTable, GtTable
from yolo_compress.eval.voc_ap import pr_curve, voc07_ap, voc_ap


def evaluate(
    gt: Sequence[ImageGT], dt: Sequence[ImageDT], class_names: Sequence[str], op_conf: float = 0.25
) -> dict[str, Any]:
    """All metrics of detections `dt` against ground truth `gt`, listed image by image in the same order.

    COCO keys (`ap50_95`, `ap50`, `ap75`, `ap_small|medium|large`, `ar1|10|100`, `ar_small|medium|large`)
    are -1 where no class has ground truth counted in them, as in COCOeval. Like COCOeval, only the 100
    best-scoring detections per image and class are evaluated. `voc07_ap50` / `voc_ap50` are the
    VOC interpolations of the same IoU 0.5 matches. `precision`, `recall`, `f1`, `mean_iou` (of the
    TP pairs), `tp`, `fp`, `fn` are micro-averaged over classes at score >= op_conf and IoU 0.5.
    `n_gt` counts non-crowd ground truth, `n_dt` the detections evaluated (any score). `per_class` is
    keyed by class name (classes with ground truth or detections); `pr_curves` holds the interpolated
    precision at IoU 0.5 of each class with ground truth: the curve whose mean is that class's AP50.
    """
    names = _class_names(class_names)
    _check_pairs(gt, dt)
    if not math.isfinite(op_conf):
        raise ValueError(f"op_conf: expected a finite score threshold, got {op_conf!r}")
    n_classes = len(names)
    gt_table = GtTable.stack(gt, n_classes)
    dt_table = DtTable.stack(dt, n_classes, MAX_DETS[-1])
    curves = coco_curves(gt_table, dt_table, n_classes)
    voc = _voc_per_class(curves, dt_table, n_classes)
    counts = class_counts(dt_table, curves.matches, IOU50, op_conf, n_classes)
    counts["n_dt"] = np.bincount(dt_table.cls, minlength=n_classes)
    counts["n_gt"] = curves.n_gt[:, ALL]
    present = np.flatnonzero(np.bincount(gt_table.cls, minlength=n_classes) + counts["n_dt"])
    return {
        "n_images": len(gt),
        "n_gt": int(counts["n_gt"].sum()),
        "n_dt": int(counts["n_dt"].sum()),
        **summarize(curves),
        "voc07_ap50": mean_valid(voc[:, 0]),
        "voc_ap50": mean_valid(voc[:, 1]),
        "op_conf": float(op_conf),
        "op_iou": float(IOU_THRESHOLDS[IOU50]),
        **_operating_point({key: value.sum() for key, value in counts.items()}),
        "per_class": {names[k]: _class_row(curves, voc, counts, k) for k in present},
        "pr_curves": {
            "iou": float(IOU_THRESHOLDS[IOU50]),
            "recall": RECALL_THRESHOLDS.tolist(),
            "precision": {
                names[k]: curves.precision[IOU50, :, k, ALL].tolist() for k in np.flatnonzero(counts["n_gt"])
            },
        },
    }


def evaluate_coco_files(
    gt_json: str | os.PathLike, dt_json: str | os.PathLike, op_conf: float = 0.25
) -> dict[str, Any]:
    """`evaluate` on a COCO ground-truth file and a COCO detection-results file; classes = its categories."""
    gt = load_coco_gt(gt_json)
    return evaluate(gt.images, load_coco_detections(dt_json, gt), gt.class_names, op_conf)


def _voc_per_class(curves: CocoCurves, dt: DtTable, n_classes: int) -> np.ndarray:
    """(K, 2) VOC07 and all-point AP at IoU 0.5 per class, -1 for a class without ground truth."""
    order, bounds = dt.by_class(n_classes)
    tp, fp = curves.matches.tp[IOU50, order], curves.matches.fp[IOU50, order]
    voc = -np.ones((n_classes, 2))
    for k in np.flatnonzero(curves.n_gt[:, ALL]):
        cls = slice(bounds[k], bounds[k + 1])
        recall, precision = pr_curve(tp[cls], fp[cls], curves.n_gt[k, ALL])
        voc[k] = voc07_ap(recall, precision), voc_ap(recall, precision)
    return voc


def _class_row(curves: CocoCurves, voc: np.ndarray, counts: dict[str, np.ndarray], k: int) -> dict[str, Any]:
    return {
        "n_gt": int(counts["n_gt"][k]),
        "n_dt": int(counts["n_dt"][k]),
        "ap50_95": mean_valid(curves.precision[:, :, k, ALL]),
        "ap50": mean_valid(curves.precision[IOU50, :, k, ALL]),
        "ap75": mean_valid(curves.precision[IOU75, :, k, ALL]),
        "voc07_ap50": float(voc[k, 0]),
        "voc_ap50": float(voc[k, 1]),
        **_operating_point({key: value[k] for key, value in counts.items()}),
    }


def _operating_point(counts: dict[str, Any]) -> dict[str, float | int]:
    tp, fp, n_gt = int(counts["tp"]), int(counts["fp"]), int(counts["n_gt"])
    return {**rates(tp, fp, n_gt, float(counts["iou_sum"])), "tp": tp, "fp": fp, "fn": n_gt - tp}


def _class_names(class_names: Sequence[str]) -> list[str]:
    names = list(class_names)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"class_names: expected a non-empty list of strings, got {class_names!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"class_names: per-class results are keyed by name, but these repeat: {duplicates}")
    return names


def _check_pairs(gt: Sequence[ImageGT], dt: Sequence[ImageDT]) -> None:
    if len(gt) != len(dt):
        raise ValueError(f"gt has {len(gt)} images but dt has {len(dt)}: list both image by image, in the same order")
    for i, (g, d) in enumerate(zip(gt, dt, strict=True)):
        if g.image_id is not None and d.image_id is not None and g.image_id != d.image_id:
            raise ValueError(f"gt[{i}].image_id {g.image_id} != dt[{i}].image_id {d.image_id}: images out of order")
