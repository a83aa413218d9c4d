"""Markdown summary of an `evaluate` result, for reports and BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_SUMMARY = (
    ("AP50:95", "ap50_95"),
    ("AP50", "ap50"),
    ("AP75", "ap75"),
    ("VOC07 AP50", "voc07_ap50"),
    ("P", "precision"),
    ("R", "recall"),
    ("F1", "f1"),
    ("mIoU", "mean_iou"),
)
_PER_CLASS = (("n_gt", "n_gt"), ("n_dt", "n_dt"), *_SUMMARY[:2], *_SUMMARY[3:])


def format_markdown(result: Mapping[str, Any], title: str, notes: Sequence[str] = ()) -> str:
    """A heading, `notes` as a list, the headline metrics and one row per class; "-" marks COCO's -1."""
    lines = [f"# {title}", ""]
    lines += [f"- {note}" for note in notes]
    lines += [
        f"- {result['n_images']} images, {result['n_gt']} ground-truth boxes, {result['n_dt']} detections; "
        f"P/R/F1/mIoU at score >= {result['op_conf']:g}, IoU {result['op_iou']:g}",
        "",
        *_table(["all"], [result], _SUMMARY),
        "",
        *_table(list(result["per_class"]), list(result["per_class"].values()), _PER_CLASS, "class"),
    ]
    return "\n".join(lines) + "\n"


def _table(labels: list[str], rows: list[Mapping[str, Any]], columns: Sequence[tuple[str, str]],
           first: str = "") -> list[str]:  # fmt: skip
    header = f"| {first} | " + " | ".join(title for title, _ in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    body = [f"| {label} | " + " | ".join(_cell(row[key]) for _, key in columns) + " |"
            for label, row in zip(labels, rows, strict=True)]  # fmt: skip
    return [header, rule, *body]


def _cell(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "-" if value == -1 else f"{value:.4f}"
