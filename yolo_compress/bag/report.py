"""The bag evaluation written out: report.json, report.md and the PNGs (AP vs Hz per tier, latency histograms).

Every file is written atomically. The Markdown leads with the per-tier table a robotics team compares tiers by,
says plainly when accuracy could not be measured (no ground truth), and lists every warning of the run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.models.atomic import atomic_path, write_json  # stdlib only: importing it loads no torch

_COLUMNS = (
    ("AP50", "ap50", "{:.3f}"),
    ("AP50:95", "ap50_95", "{:.3f}"),
    ("P", "precision", "{:.3f}"),
    ("R", "recall", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("mIoU", "mean_iou", "{:.3f}"),
    ("max Hz", "max_hz", "{:.1f}"),
    ("real-time Hz", "realtime_hz", "{:.1f}"),
    ("dropped %", "dropped_pct", "{:.1f}"),
    ("latency p50 ms", "latency_p50_ms", "{:.1f}"),
    ("latency p95 ms", "latency_p95_ms", "{:.1f}"),
    ("real-time AP50", "realtime_ap50", "{:.3f}"),
    ("RT AP50 before next frame", "realtime_ap50_before_next_frame", "{:.3f}"),
    ("params", "params", "{:,.0f}"),
    ("GFLOPs", "gflops", "{:.3f}"),
    ("MB", "size_mb", "{:.2f}"),
)
_STAGES = ("decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "total_ms")
PLOT_AP_VS_HZ = "ap_vs_hz.png"
PLOT_LATENCY = "latency_hist.png"


def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """report.json (without the raw latency samples), report.md and the plots; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    has_accuracy = report["bag"]["ground_truth_frames"] > 0
    written = [write_json(out / "report.json", _without_samples(report))]
    if has_accuracy:
        written.append(plot_ap_vs_hz(report, out / PLOT_AP_VS_HZ))
    written.append(plot_latency_histograms(report, out / PLOT_LATENCY))
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(format_markdown(report, has_accuracy), encoding="utf-8")
    written.append(out / "report.md")
    return written


def format_markdown(report: Mapping[str, Any], has_accuracy: bool) -> str:
    bag, tiers, details = report["bag"], report["tiers"], report["details"]
    lines = [
        f"# Bag evaluation: {Path(bag['path']).name}",
        "",
        f"{bag['frames']} frames on `{bag['image_topic']}` ({bag['image_type']}), {bag['input_hz']:.1f} Hz over "
        f"{bag['duration_s']:.1f} s at replay rate {bag['rate']:g}; replay clock: {bag['replay']}.",
    ]
    if has_accuracy:
        lines.append(
            f"Ground truth: {bag['ground_truth_frames']} frames, {bag['ground_truth_boxes']} boxes of "
            f"{', '.join(bag['classes'])} on `{bag['ground_truth_topic']}`. AP from detections at conf >= "
            f"{bag['ap_conf']:g}; precision, recall, F1 and the real-time figures at each tier's own threshold."
        )
    else:
        lines.append("**No ground truth in this bag: frequency-only report. Accuracy (AP, precision, recall, "
                     "real-time AP) was not measured.**")
    columns = [c for c in _COLUMNS if has_accuracy or c[1] not in _ACCURACY_COLUMNS]
    lines += ["", "| tier | " + " | ".join(title for title, _, _ in columns) + " |",
              "|---|" + "---:|" * len(columns)]
    for name, row in tiers.items():
        row = {**row, "realtime_ap50_before_next_frame": details[name].get("realtime_ap50_before_next_frame")}
        lines.append(f"| {name} | " + " | ".join(_cell(row[key], fmt) for _, key, fmt in columns) + " |")
    lines += ["", "Stage times per frame (mean ms, offline pass at the tier's threshold):", "",
              "| tier | provider | " + " | ".join(s.removesuffix("_ms") for s in _STAGES) + " |",
              "|---|---|" + "---:|" * len(_STAGES)]
    for name, info in details.items():
        stages = " | ".join(f"{info['stages_ms'][s]['mean_ms']:.2f}" for s in _STAGES)
        lines.append(f"| {name} | {info['provider']} | {stages} |")
    if "live" in report:
        lines += ["", *_live_table(report["live"])]
    lines += ["", _definitions(has_accuracy), ""]
    if has_accuracy:
        lines.append(f"![AP vs Hz]({PLOT_AP_VS_HZ})")
    lines += [f"![latency histograms]({PLOT_LATENCY})", ""]
    if report["notes"]:
        lines += ["## Warnings", "", *[f"- {note}" for note in report["notes"]], ""]
    return "\n".join(lines)


_ACCURACY_COLUMNS = frozenset({"ap50", "ap50_95", "precision", "recall", "f1", "mean_iou", "realtime_ap50",
                               "realtime_ap50_before_next_frame"})


_LIVE_COLUMNS = (
    *(c for c in _COLUMNS if c[1] in {"realtime_hz", "dropped_pct", "latency_p50_ms", "latency_p95_ms",
                                      "realtime_ap50"}),
    ("node latency p50 ms", "node_latency_p50_ms", "{:.1f}"),
    ("node total ms", "node_total_ms", "{:.1f}"),
)


def _live_table(live: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The running node's figures (--live): the same replay, through DDS and the node."""
    lines = ["Live, through the running node over ROS 2 (latency: frame published to detections received; node "
             "latency: what the node reported on ~/timing):", "",
             "| tier | provider | " + " | ".join(title for title, _, _ in _LIVE_COLUMNS) + " |",
             "|---|---|" + "---:|" * len(_LIVE_COLUMNS)]
    for name, row in live.items():
        cells = " | ".join(_cell(row[key], fmt) for _, key, fmt in _LIVE_COLUMNS)
        lines.append(f"| {name} | {row['provider'] or '-'} | {cells} |")
    return lines


def _definitions(has_accuracy: bool) -> str:
    text = (
        "max Hz: back-to-back frames per second (message decode + detector). Real-time: frames arrive at their "
        "recorded stamps divided by the replay rate and the tier always takes the newest one when free, as the "
        "node does; real-time Hz counts frames it published per second of stream, dropped % the frames it never "
        "processed, latency runs from a frame's arrival to its detections."
    )
    if has_accuracy:
        text += (
            " Real-time AP50 scores each ground-truth frame against the newest detections out when that frame was "
            "captured (so even an instant tier is one frame behind); RT AP50 before next frame scores it against "
            "the newest detections out just before the next frame arrives (a tier that keeps up is scored on the "
            "frame's own detections). What the robot sees over a frame's time lies between the two."
        )
    return text


def _cell(value: float | None, fmt: str) -> str:
    """'-' where there is no value, or COCO's -1 (no ground truth box to score)."""
    return "-" if value is None or value == -1 else fmt.format(value)


def _without_samples(report: Mapping[str, Any]) -> dict[str, Any]:
    details = {name: {k: v for k, v in info.items() if k != "latencies_ms"} for name, info in report["details"].items()}
    return {**report, "details": details}


def plot_ap_vs_hz(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Per tier: offline AP50 at max Hz (hollow) -> real-time AP50 at real-time Hz (filled); camera rate dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=120)
    ax = fig.add_subplot()
    for name, row in report["tiers"].items():
        (line,) = ax.plot([row["max_hz"]], [row["ap50"]], "o", mfc="none", ms=9, mew=2)
        color = line.get_color()
        if row["realtime_hz"] is not None:
            ax.plot([row["realtime_hz"]], [row["realtime_ap50"]], "o", color=color, ms=9)
            ax.annotate("", (row["realtime_hz"], row["realtime_ap50"]), (row["max_hz"], row["ap50"]),
                        arrowprops={"arrowstyle": "->", "color": color, "alpha": 0.6})
        ax.annotate(name, (row["max_hz"], row["ap50"]), textcoords="offset points", xytext=(6, 6), color=color)
    camera_hz = report["bag"]["input_hz"]
    ax.axvline(camera_hz, color="gray", ls="--", lw=1, label=f"camera {camera_hz:.1f} Hz")
    ax.plot([], [], "ko", mfc="none", label="offline: AP50 at max Hz")
    ax.plot([], [], "ko", label="real-time: AP50 at output Hz")
    rates = [camera_hz] + [row[k] for row in report["tiers"].values() for k in ("max_hz", "realtime_hz") if row[k]]
    ax.set(xlabel="frames per second", ylabel="AP50", ylim=(0, 1.02), xlim=(0, 1.2 * max(rates)))  # room for names
    ax.set_title(f"AP vs rate per tier — {Path(report['bag']['path']).name}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_latency_histograms(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """One histogram per tier of replay latency (arrival to detections), p50 and p95 marked, shared x axis."""
    from matplotlib.figure import Figure

    details: Mapping[str, Mapping[str, Any]] = report["details"]
    samples = {name: np.asarray(info["latencies_ms"]) for name, info in details.items()}
    top = max(float(s.max()) for s in samples.values())
    bins = np.linspace(0, top * 1.05 or 1.0, 40)
    fig = Figure(figsize=(7, 1.2 + 1.8 * len(samples)), dpi=120)
    axes = fig.subplots(len(samples), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, values) in zip(axes, samples.items(), strict=True):
        stats = details[name]["latency_ms"]
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        for key, style in (("p50_ms", "-"), ("p95_ms", "--")):
            ax.axvline(stats[key], color="k", ls=style, lw=1, label=f"{key[:3]} {stats[key]:.1f} ms")
        ax.set_ylabel("frames")
        ax.set_title(f"{name}: {len(values)} frames served", fontsize=9)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("latency: frame arrival to detections out (ms)")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: object, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def tier_rows(report: Mapping[str, Any]) -> Sequence[str]:
    """One line per tier for the terminal."""
    rows = []
    for name, row in report["tiers"].items():
        accuracy = "" if row["ap50"] is None else f"AP50 {row['ap50']:.3f}  AP50:95 {row['ap50_95']:.3f}  "
        realtime = "" if row["realtime_ap50"] is None else f"  real-time AP50 {row['realtime_ap50']:.3f}"
        hz = "-" if row["realtime_hz"] is None else f"{row['realtime_hz']:.1f}"
        rows.append(f"{name}: {accuracy}max {row['max_hz']:.1f} Hz  real-time {hz} Hz  dropped "
                    f"{row['dropped_pct']:.1f}%  latency p50 {row['latency_p50_ms']:.1f} ms{realtime}")
    for name, row in report.get("live", {}).items():
        cells = "  ".join(f"{title} {_cell(row[key], fmt)}" for title, key, fmt in _LIVE_COLUMNS)
        rows.append(f"{name} live: {cells}")
    return rows
