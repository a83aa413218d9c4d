"""COCO bbox AP/AR exactly as pycocotools' COCOeval (evaluate, accumulate, summarize) computes them.

Same thresholds (built with linspace, as np.arange drifts), 101-point interpolation of the precision
envelope, maxDets 1/10/100, area ranges from the ground truth's `area` field, crowd regions ignored,
and -1 for a class without counted ground truth, which the means leave out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolo_compress.eval.matching import Matches, match, regular_gt
from yolo_compress.eval.tables import DtTable, GtTable

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = (1, 10, 100)
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
IOU50, IOU75 = (int(np.flatnonzero(np.isclose(IOU_THRESHOLDS, t))[0]) for t in (0.5, 0.75))  # their indices
ALL = 0  # index of the "all" area range
# COCOeval.stats in its order.
STAT_NAMES = (
    "ap50_95",
    "ap50",
    "ap75",
    "ap_small",
    "ap_medium",
    "ap_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)


@dataclass(frozen=True, eq=False)
class CocoCurves:
    """COCOeval.eval arrays: precision (T, R, K, A) at maxDets 100 and recall (T, K, A, M), -1 = no gt.

    `n_gt` (K, A) counts the ground truth of each class that counts in each area range; `matches` are
    those of the "all" range, which the VOC and operating-point metrics reuse.
    """

    precision: np.ndarray
    recall: np.ndarray
    n_gt: np.ndarray
    matches: Matches


def coco_curves(gt: GtTable, dt: DtTable, n_classes: int) -> CocoCurves:
    """Match every area range and accumulate per class, as COCOeval.evaluate + accumulate."""
    shape = (len(IOU_THRESHOLDS), n_classes, len(AREA_RANGES))
    precision = -np.ones((shape[0], len(RECALL_THRESHOLDS), *shape[1:]))
    recall = -np.ones((*shape, len(MAX_DETS)))
    n_gt = np.zeros(shape[1:], np.int64)
    order, bounds = dt.by_class(n_classes)
    rank = dt.rank[order]
    per_area = [match(gt, dt, area_range, IOU_THRESHOLDS) for area_range in AREA_RANGES.values()]
    for a, (area_range, matches) in enumerate(zip(AREA_RANGES.values(), per_area, strict=True)):
        n_gt[:, a] = np.bincount(gt.cls[regular_gt(gt, area_range)], minlength=n_classes)
        tp, fp = matches.tp[:, order], matches.fp[:, order]
        for k in np.flatnonzero(n_gt[:, a]):
            cls = slice(bounds[k], bounds[k + 1])
            precision[:, :, k, a] = interpolated_precision(tp[:, cls], fp[:, cls], n_gt[k, a])
            for m, max_dets in enumerate(MAX_DETS):
                recall[:, k, a, m] = (tp[:, cls] & (rank[cls] < max_dets)).sum(axis=1) / n_gt[k, a]
    return CocoCurves(precision=precision, recall=recall, n_gt=n_gt, matches=per_area[ALL])


def interpolated_precision(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> np.ndarray:
    """(T, R) precision envelope sampled at RECALL_THRESHOLDS; 0 beyond the highest recall reached.

    tp, fp: (T, D) flags of one class's detections in descending score order.
    """
    tp_sum = np.cumsum(tp, axis=1).astype(np.float64)
    fp_sum = np.cumsum(fp, axis=1).astype(np.float64)
    recall = tp_sum / n_gt
    precision = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    sampled = np.zeros((len(tp), len(RECALL_THRESHOLDS)))
    for t in range(len(tp)):
        idx = np.searchsorted(recall[t], RECALL_THRESHOLDS, side="left")
        reached = idx < tp.shape[1]
        sampled[t, reached] = envelope[t, idx[reached]]
    return sampled


def summarize(curves: CocoCurves) -> dict[str, float]:
    """The 12 COCOeval.stats, named as STAT_NAMES."""
    p, r = curves.precision, curves.recall
    area = {name: i for i, name in enumerate(AREA_RANGES)}
    m100 = MAX_DETS.index(100)
    stats = [
        mean_valid(p[..., ALL]),
        mean_valid(p[IOU50, ..., ALL]),
        mean_valid(p[IOU75, ..., ALL]),
        *(mean_valid(p[..., area[name]]) for name in ("small", "medium", "large")),
        *(mean_valid(r[:, :, ALL, m]) for m in range(len(MAX_DETS))),
        *(mean_valid(r[:, :, area[name], m100]) for name in ("small", "medium", "large")),
    ]
    return dict(zip(STAT_NAMES, stats, strict=True))


def mean_valid(values: np.ndarray) -> float:
    """Mean over entries > -1, or -1 when there are none (COCOeval's convention for "no ground truth")."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0
