"""COCOeval's greedy matching of detections to ground truth, vectorized over groups and thresholds.

Per (image, class), detections are taken by descending score; each takes, among the ground truths
not yet taken (crowd regions can be taken again), the one with the highest IoU >= threshold,
preferring regular ground truth over ignored ones (crowd, or area outside the range) and, on equal
IoU, the later box, which is exactly what pycocotools' loop with its `break` does. The only sequential
axis is the detection rank (at most max_dets steps); all groups and thresholds move together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from yolo_compress.eval.iou import coco_iou
from yolo_compress.eval.tables import DtTable, GtTable

# Upper bound on groups x thresholds x padded ground truths held at once; keeps memory flat on big sets.
_CHUNK_CELLS = 1 << 20


@dataclass(frozen=True, eq=False)
class Matches:
    """Outcome of every detection (DtTable order, axis 1) at every IoU threshold (axis 0).

    `matched`: took a ground truth; `ignored`: counts neither as TP nor FP; `iou`: IoU with the
    ground truth taken (0 when unmatched).
    """

    matched: np.ndarray
    ignored: np.ndarray
    iou: np.ndarray

    @property
    def tp(self) -> np.ndarray:
        return self.matched & ~self.ignored

    @property
    def fp(self) -> np.ndarray:
        return ~self.matched & ~self.ignored


def regular_gt(gt: GtTable, area_range: tuple[float, float]) -> np.ndarray:
    """Ground truths that count towards recall in this area range (not crowd, area inside, bounds inclusive)."""
    return ~gt.crowd & (gt.area >= area_range[0]) & (gt.area <= area_range[1])


def match(gt: GtTable, dt: DtTable, area_range: tuple[float, float], thresholds: np.ndarray) -> Matches:
    """Match all detections at each IoU threshold for one area range.

    A detection is ignored (neither TP nor FP) when matched to an ignored ground truth, or when it is
    unmatched and its own box area is outside the range.
    """
    n_thr, n_dt = len(thresholds), len(dt.score)
    matched = np.zeros((n_thr, n_dt), bool)
    to_ignored = np.zeros((n_thr, n_dt), bool)
    iou = np.zeros((n_thr, n_dt))
    n_cls = int(max(gt.cls.max(initial=-1), dt.cls.max(initial=-1))) + 1
    gt_key, dt_key = gt.image * n_cls + gt.cls, dt.image * n_cls + dt.cls
    groups, counts = np.unique(gt_key, return_counts=True)
    shared = np.isin(groups, dt_key)
    ignored_gt = ~regular_gt(gt, area_range)
    # pycocotools caps the threshold just below 1 so that a perfect box still matches at t = 1.
    thr = np.minimum(thresholds, 1 - 1e-10)
    for chunk in _chunks(groups[shared], counts[shared], n_thr):
        gt_rows, dt_rows = _Layout(gt_key, chunk), _Layout(dt_key, chunk)
        hit, on_ignored, hit_iou = _match_chunk(gt, gt_rows, ignored_gt, dt, dt_rows, thr)
        valid = dt_rows.grid >= 0
        rows = dt_rows.grid[valid]
        matched[:, rows], to_ignored[:, rows], iou[:, rows] = hit[valid].T, on_ignored[valid].T, hit_iou[valid].T
    dt_area = dt.xywh[:, 2] * dt.xywh[:, 3]
    outside = (dt_area < area_range[0]) | (dt_area > area_range[1])
    return Matches(matched=matched, ignored=np.where(matched, to_ignored, outside), iou=iou)


class _Layout:
    """Where the rows of a table that belong to `chunk` sit in a padded (group, position) grid.

    Rows keep their table order within a group (input order for gt, score rank for detections).
    """

    def __init__(self, row_key: np.ndarray, chunk: np.ndarray) -> None:
        rows = np.flatnonzero(np.isin(row_key, chunk))
        self.rows = rows[np.argsort(row_key[rows], kind="stable")]
        key = row_key[self.rows]
        self.group = np.searchsorted(chunk, key)
        self.pos = np.arange(len(key)) - np.searchsorted(key, key)
        self.grid = np.full((len(chunk), int(self.pos.max()) + 1), -1)
        self.grid[self.group, self.pos] = self.rows

    def pad(self, values: np.ndarray, fill: float | bool = 0) -> np.ndarray:
        """values[rows] scattered into the grid (padding = fill)."""
        out = np.full(self.grid.shape + values.shape[1:], fill, dtype=values.dtype)
        out[self.group, self.pos] = values[self.rows]
        return out


def _chunks(groups: np.ndarray, gt_counts: np.ndarray, n_thr: int) -> Iterator[np.ndarray]:
    """Groups bucketed by ground-truth count (powers of two) so padding stays small, then cut to size."""
    width = 2 ** np.ceil(np.log2(gt_counts)).astype(np.int64)
    for w in np.unique(width):
        keys = groups[width == w]
        step = max(1, _CHUNK_CELLS // (n_thr * int(w)))
        for start in range(0, len(keys), step):
            yield keys[start : start + step]


def _match_chunk(
    gt: GtTable, gt_rows: _Layout, ignored_gt: np.ndarray, dt: DtTable, dt_rows: _Layout, thr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matched, matched to an ignored gt, IoU of the match), each (group, rank, threshold)."""
    # Groups with most detections first: step r then works on the prefix of groups that still have one.
    n_dets = (dt_rows.grid >= 0).sum(axis=1)
    order = np.argsort(-n_dets, kind="stable")
    boxes, crowd = gt_rows.pad(gt.xywh)[order], gt_rows.pad(gt.crowd, False)[order]
    valid, ignored = (gt_rows.grid >= 0)[order], gt_rows.pad(ignored_gt, True)[order]
    dt_boxes, active = dt_rows.pad(dt.xywh)[order], n_dets[order]
    n_groups, n_gt = valid.shape
    shape = (n_groups, dt_boxes.shape[1], len(thr))
    hit, on_ignored, hit_iou = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape)
    taken = np.zeros((n_groups, len(thr), n_gt), bool)
    slots = np.arange(n_gt)
    for r in range(shape[1]):
        n = int(np.count_nonzero(active > r))
        ious = coco_iou(dt_boxes[:n, r, None, :], boxes[:n], crowd[:n])
        ok = (ious[:, None, :] >= thr[:, None]) & valid[:n, None, :] & (crowd[:n, None, :] | ~taken[:n])
        regular = ok & ~ignored[:n, None, :]
        candidate = np.where(regular.any(axis=-1, keepdims=True), regular, ok)
        # argmax over the reversed axis = the last of equal best IoUs, as pycocotools' `>=` update keeps.
        best = n_gt - 1 - np.argmax(np.where(candidate, ious[:, None, :], -1.0)[..., ::-1], axis=-1)
        pick = candidate.any(axis=-1, keepdims=True) & (slots == best[..., None])
        taken[:n] |= pick
        hit[:n, r] = pick.any(axis=-1)
        on_ignored[:n, r] = (pick & ignored[:n, None, :]).any(axis=-1)
        hit_iou[:n, r] = np.where(pick, ious[:, None, :], 0.0).max(axis=-1)
    restore = np.argsort(order)
    return hit[restore], on_ignored[restore], hit_iou[restore]
