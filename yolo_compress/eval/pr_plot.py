"""Precision-recall curves of an `evaluate` result as a PNG.

matplotlib is imported inside the function, and through its object API with the Agg canvas, so
importing yolo_compress.eval stays light and no global pyplot backend is touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.models.atomic import atomic_path

_MAX_LABELED = 12  # more class curves than this only clutter: draw them faint and unlabeled


def plot_pr_curves(result: Mapping[str, Any], path: str | os.PathLike, title: str = "") -> Path:
    """Per-class interpolated PR curves at IoU 0.5 (their mean area is AP50), the mean curve, and each
    class's operating point (dot); written atomically to `path`."""
    from matplotlib.figure import Figure

    curves, per_class = result["pr_curves"], result["per_class"]
    recall = np.asarray(curves["recall"])
    fig = Figure(figsize=(7, 5.5), dpi=120)
    ax = fig.add_subplot()
    labeled = len(curves["precision"]) <= _MAX_LABELED
    for name, precision in curves["precision"].items():
        row = per_class[name]
        label = f"{name}  AP50 {row['ap50']:.3f}" if labeled else None
        (line,) = ax.plot(recall, precision, lw=1.2, alpha=1.0 if labeled else 0.3, label=label)
        ax.plot(row["recall"], row["precision"], "o", color=line.get_color(), alpha=line.get_alpha())
    if curves["precision"]:
        mean = np.mean(list(curves["precision"].values()), axis=0)
        ax.plot(recall, mean, "k", lw=2.5, label=f"all classes  AP50 {result['ap50']:.3f}")
        ax.plot(result["recall"], result["precision"], "ko", ms=8, label=f"score >= {result['op_conf']:g}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.set_title(title or f"PR at IoU 0.5 — AP50:95 {result['ap50_95']:.3f}, {result['n_images']} images")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
