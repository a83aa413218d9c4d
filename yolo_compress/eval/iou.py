"""Box IoU with COCO's crowd rule, computed exactly as pycocotools' `bbIou` does.

The same operations in the same order (double precision) give bit-identical IoUs, so a detection
sitting exactly on a threshold (IoU 0.5 from integer boxes is common) is matched the same way.
"""

from __future__ import annotations

import numpy as np


def coco_iou(dt: np.ndarray, gt: np.ndarray, gt_crowd: np.ndarray) -> np.ndarray:
    """IoU of `[x, y, w, h]` boxes (last axis), broadcast over the leading axes.

    Against a crowd region the union is the detection's own area: a detection inside a crowd is
    fully "covered" however large the region is.
    """
    dx, dy, dw, dh = np.moveaxis(dt, -1, 0)
    gx, gy, gw, gh = np.moveaxis(gt, -1, 0)
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    overlap = (w > 0) & (h > 0)
    inter = w * h
    dt_area = dw * dh
    union = np.where(gt_crowd, dt_area, dt_area + gw * gh - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, inter / union, 0.0)
