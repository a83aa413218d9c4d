"""Plain-text summary of an `evaluate` result, for terminals and logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_CLASS_COLUMNS = (
    ("n_gt", "n_gt"),
    ("n_dt", "n_dt"),
    ("AP50:95", "ap50_95"),
    ("AP50", "ap50"),
    ("VOC AP50", "voc_ap50"),
    ("P", "precision"),
    ("R", "recall"),
    ("F1", "f1"),
    ("mIoU", "mean_iou"),
)


def format_report(result: Mapping[str, Any]) -> str:
    """Headline metrics, then one row per class; "-" marks COCO's -1 (no ground truth to score)."""
    r = result
    lines = [
        f"{r['n_images']} images, {r['n_gt']} ground-truth boxes (crowd excluded), {r['n_dt']} detections",
        f"COCO   AP50:95 {_num(r['ap50_95'])}  AP50 {_num(r['ap50'])}  AP75 {_num(r['ap75'])}  "
        f"AP small {_num(r['ap_small'])}  medium {_num(r['ap_medium'])}  large {_num(r['ap_large'])}",
        f"       AR1 {_num(r['ar1'])}  AR10 {_num(r['ar10'])}  AR100 {_num(r['ar100'])}  "
        f"AR small {_num(r['ar_small'])}  medium {_num(r['ar_medium'])}  large {_num(r['ar_large'])}",
        f"VOC    AP50 (11-point, VOC2007) {_num(r['voc07_ap50'])}  AP50 (all-point) {_num(r['voc_ap50'])}",
        f"At score >= {r['op_conf']:g}, IoU {r['op_iou']:g}: precision {_num(r['precision'])}  "
        f"recall {_num(r['recall'])}  F1 {_num(r['f1'])}  mean IoU {_num(r['mean_iou'])}  "
        f"(TP {r['tp']}, FP {r['fp']}, FN {r['fn']})",
        "",
    ]
    width = max([len("class"), *map(len, r["per_class"])])
    lines.append(f"{'class':<{width}}" + "".join(f"{title:>10}" for title, _ in _CLASS_COLUMNS))
    for name, row in r["per_class"].items():
        lines.append(f"{name:<{width}}" + "".join(f"{_num(row[key]):>10}" for _, key in _CLASS_COLUMNS))
    return "\n".join(lines)


def _num(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "-" if value == -1 else f"{value:.4f}"
