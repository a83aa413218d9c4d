"""The per-epoch log of a finetune: CSV and JSON for people and scripts, PNG curves of loss and AP.

All three are rewritten whole after every epoch, atomically, so a finetune killed at any moment leaves a
complete log of the epochs it finished (the same epochs a resume continues after).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yolo_compress.models.atomic import atomic_path

CSV_COLUMNS = ("epoch", "lr", "loss", "box", "obj", "cls", "distill", "ap50", "ap50_95", "seconds")
LOSS_KEYS = ("loss", "box", "obj", "cls", "distill")
AP_KEYS = ("ap50", "ap50_95")


def write_history(out_dir: str | Path, records: Sequence[dict[str, Any]]) -> None:
    """log.csv, log.json and curves.png in `out_dir` for `records` (one dict per finished epoch)."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "log.json") as tmp:
        tmp.write_text(json.dumps(list(records), indent=1) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(record.get(key)) for key in CSV_COLUMNS} for record in records)
    with atomic_path(out_dir / "log.csv") as tmp:
        tmp.write_text(buffer.getvalue())
    plot_curves(records, out_dir / "curves.png")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def plot_curves(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Loss parts (log scale) and AP against epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (loss_ax, ap_ax) = plt.subplots(1, 2, figsize=(11, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.92, wspace=0.22)
    epochs = [record["epoch"] for record in records]
    for key in LOSS_KEYS:
        values = [record.get(key) for record in records]
        if any(v for v in values):
            loss_ax.plot(epochs, [v if v else float("nan") for v in values], marker="o", label=key)
    loss_ax.set(xlabel="epoch", ylabel="training loss (epoch mean)", yscale="log", title="loss")
    for key in AP_KEYS:
        points = [(e, r[key]) for e, r in zip(epochs, records, strict=True) if r.get(key) is not None]
        if points:
            ap_ax.plot(*zip(*points, strict=True), marker="o", label=key)
    ap_ax.set(xlabel="epoch", ylabel="AP (validation)", ylim=(0, 1), title="validation AP")
    for ax in (loss_ax, ap_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
