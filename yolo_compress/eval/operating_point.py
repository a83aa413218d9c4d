"""Precision, recall, F1 and mean IoU at one confidence threshold: what the robot actually sees.

The counts reuse COCO's matches at IoU 0.5 (area "all") and keep detections scoring >= conf. That is
exact, not an approximation: the greedy matching takes detections by descending score, so dropping
the lower-scored ones never changes the matches of those kept. Detections matched to crowd regions
count neither as TP nor as FP; crowd regions are not missed ground truth.
"""

from __future__ import annotations

import numpy as np

from yolo_compress.eval.matching import Matches
from yolo_compress.eval.tables import DtTable


def class_counts(dt: DtTable, matches: Matches, thr_index: int, conf: float, n_classes: int) -> dict[str, np.ndarray]:
    """Per class: TP and FP among detections scoring >= conf, and the summed IoU of the TP pairs."""
    kept = dt.score >= conf
    tp, fp = matches.tp[thr_index] & kept, matches.fp[thr_index] & kept
    return {
        "tp": np.bincount(dt.cls[tp], minlength=n_classes),
        "fp": np.bincount(dt.cls[fp], minlength=n_classes),
        "iou_sum": np.bincount(dt.cls[tp], weights=matches.iou[thr_index][tp], minlength=n_classes),
    }


def rates(tp: int, fp: int, n_gt: int, iou_sum: float) -> dict[str, float]:
    """Precision, recall, F1 and mean TP IoU; 0 where the denominator is 0 (no detections, gt or TP)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n_gt if n_gt else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "mean_iou": iou_sum / tp if tp else 0.0}
