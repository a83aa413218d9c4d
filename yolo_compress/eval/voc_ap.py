"""PASCAL VOC AP: the 11-point VOC2007 metric and the all-point (VOC2010+) area under the PR envelope.

Both are computed here on the same matches as COCO AP50 (IoU >= 0.5, crowd regions ignored, at most
100 detections per image and class), so the three AP50 numbers differ only by interpolation:
not by the VOC devkit's "difficult" flags or its +1 pixel box convention.
"""

from __future__ import annotations

import numpy as np

# Correctly rounded k / 10, so a recall of exactly 3/10 reaches the 0.3 point
# (np.arange(0, 1.1, 0.1), as some devkit ports write it, gives 0.30000000000000004).
VOC07_RECALLS = np.arange(11) / 10


def pr_curve(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) after each detection, from TP/FP flags in descending score order.

    Detections that are neither (ignored) add no point to the curve.
    """
    counted = tp | fp
    tp_sum = np.cumsum(tp[counted])
    return tp_sum / n_gt, tp_sum / np.arange(1, len(tp_sum) + 1)


def voc07_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Mean over recall r in {0, 0.1, ..., 1} of the best precision at recall >= r (0 if never reached)."""
    reached = recall[None, :] >= VOC07_RECALLS[:, None]
    return float(np.max(np.where(reached, precision[None, :], 0.0), axis=1, initial=0.0).mean())


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone (non-increasing) precision envelope, summed where recall steps up."""
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.maximum.accumulate(np.concatenate(([0.0], precision, [0.0]))[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))
