"""What a pruning run tells its user: plots, report.md and report.json, from the measured records only.

Every number printed here was measured (ORT latency on this machine, AP on the validation set); the
lever breakdown of a tier (pruning x input size x precision) divides latencies of variants measured in
the same run, so the factors multiply to the tier's speed-up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from yolo_compress.models.atomic import atomic_path
from yolo_compress.prune.tiers import Candidate, TierChoice


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_ap_vs(runs: Mapping[str, Sequence[dict[str, Any]]], key: str, label: str, path: Path) -> None:
    """AP50 per iteration of each criterion against `key` (gflops or latency_ms)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for criterion, records in runs.items():
        ax.plot([r[key] for r in records], [r["ap50"] for r in records], "o-", label=criterion)
        for r in records:
            ax.annotate(str(r["iteration"]), (r[key], r["ap50"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel(label)
    ax.set_ylabel("AP50")
    ax.grid(alpha=0.3)
    ax.legend()
    save_png(fig, path)
    plt.close(fig)


def plot_channels(runs: Mapping[str, Sequence[dict[str, Any]]], path: Path) -> None:
    """Output channels of each conv layer: unpruned vs the last iteration of each criterion."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(next(iter(runs.values()))[0]["widths"])), 4))
    first = next(iter(runs.values()))[0]["widths"]
    layers = sorted(first, key=int)
    xs = range(len(layers))
    ax.bar(xs, [first[k] for k in layers], color="lightgray", label="unpruned")
    for criterion, records in runs.items():
        ax.plot(xs, [records[-1]["widths"][k] for k in layers], "o", markersize=3,
                label=f"{criterion}, iteration {records[-1]['iteration']}")
    ax.set_xticks(list(xs), layers, fontsize=6, rotation=90)
    ax.set_xlabel("conv layer (cfg index)")
    ax.set_ylabel("output channels")
    ax.legend()
    save_png(fig, path)
    plt.close(fig)


def plot_front(candidates: Sequence[Candidate], front: Sequence[Candidate], tiers: Mapping[str, TierChoice],
               path: Path) -> None:
    """Every candidate in (latency, AP50), the Pareto front, and the three tiers."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([c.latency_ms for c in candidates], [c.ap50 for c in candidates], s=12, color="gray",
               label="candidates")
    ax.plot([c.latency_ms for c in front], [c.ap50 for c in front], "-", color="tab:blue", label="Pareto front")
    for name, choice in tiers.items():
        c = choice.candidate
        ax.scatter([c.latency_ms], [c.ap50], s=60, marker="*", zorder=3)
        ax.annotate(name, (c.latency_ms, c.ap50), xytext=(4, -10), textcoords="offset points")
    ax.set_xlabel("ORT latency per image (ms, image in -> boxes out)")
    ax.set_ylabel("AP50")
    ax.grid(alpha=0.3)
    ax.legend()
    save_png(fig, path)
    plt.close(fig)


def lever_breakdown(choice: TierChoice, baseline: Candidate, by_name: Mapping[str, Candidate]) -> dict[str, float]:
    """Speed-up of a tier split into pruning (native size, fp32), input size, precision: measured factors."""
    details = choice.candidate.details
    pruned = by_name.get(f"{details['criterion']}/{details['native']}")
    resized = by_name.get(f"{details['criterion']}/{details['resized']}")
    result = {}
    if pruned is not None:
        result["pruning"] = baseline.latency_ms / pruned.latency_ms
        if resized is not None:
            result["input_size"] = pruned.latency_ms / resized.latency_ms
            result["precision"] = resized.latency_ms / choice.candidate.latency_ms
    return result


def run_tool(work: Callable[[], Mapping[str, Any]], out_dir: Path) -> int:
    """tools/prune.py's and tools/pick_tiers.py's ending: bad input is one `error:` line and exit code 1,
    else each tier's verdict and where the files are."""
    try:
        summary = work()
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join([*summary["verdicts"], f"tiers: {out_dir / 'tiers.yaml'}; report: {out_dir / 'report.md'}"]))
    return 0


def markdown(summary: dict[str, Any]) -> str:
    """report.md from the report.json summary."""
    base = summary["baseline"]
    lines = ["# Pruning report", "",
             f"Baseline (unpruned, fused, fp32): AP50 {base['ap50']:.3f}, AP50:95 {base['ap50_95']:.3f}, "
             f"{base['latency_ms']:.2f} ms, {base['gflops']:.3f} GFLOPs, {base['params'] / 1e6:.3f} M params "
             f"({summary['machine']}).", "", "## Tiers", ""]
    lines += [f"- {verdict}" for verdict in summary["verdicts"]]
    lines += ["", "| tier | candidate | AP50 | AP50:95 | ms | speed-up | AP ratio | GFLOPs | params (M) | MB "
              "| levers |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, tier in summary["tiers"].items():
        levers = ", ".join(f"{k} {v:.2f}x" for k, v in tier["levers"].items())
        lines.append(f"| {name} | {tier['candidate']} | {tier['ap50']:.3f} | {tier['ap50_95']:.3f} | "
                     f"{tier['latency_ms']:.2f} | {tier['speedup']:.2f}x | {100 * tier['ap_ratio']:.1f}% | "
                     f"{tier['gflops']:.3f} | {tier['params'] / 1e6:.3f} | {tier['size_mb']:.2f} | {levers} |")
    if summary.get("sources"):
        lines += ["", "Candidates from the prune runs " + ", ".join(f"`{src}`" for src in summary["sources"])
                  + f"; speed-ups and AP ratios against the first one's start model ({base['candidate']})."]
    for criterion, records in summary.get("runs", {}).items():
        lines += ["", f"## Iterations: {criterion}", "",
                  "| iteration | AP50 | AP50:95 | GFLOPs | conv FLOPs ratio | params (M) | ms | channels removed |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in records:
            lines.append(f"| {r['iteration']} | {r['ap50']:.3f} | {r['ap50_95']:.3f} | {r['gflops']:.3f} | "
                         f"{r['conv_flops_ratio']:.3f} | {r['params'] / 1e6:.3f} | {r['latency_ms']:.2f} | "
                         f"{sum(r.get('removed', {}).values())} |")
        if records and records[-1].get("removed_blocks"):
            lines += ["", f"Iteration 1 is the depth cut: residual blocks {', '.join(records[-1]['removed_blocks'])} "
                      "removed (their convs count as channels removed)."]
    if summary.get("comparison"):
        lines += ["", "## Criteria at equal FLOPs", "", "| criterion | iteration | GFLOPs | AP50 | AP50:95 |",
                  "|---|---|---|---|---|"]
        for row in summary["comparison"]:
            lines.append(f"| {row['criterion']} | {row['iteration']} | {row['gflops']:.3f} | {row['ap50']:.3f} | "
                         f"{row['ap50_95']:.3f} |")
    for name, results in summary.get("tests", {}).items():
        lines += ["", f"## Test set {name}", "", "| model | AP50 | AP50:95 |", "|---|---|---|"]
        lines += [f"| {label} | {m['ap50']:.3f} | {m['ap50_95']:.3f} |" for label, m in results.items()]
    lines += ["", "## All candidates", "", "| candidate | format | input | AP50 | ms |", "|---|---|---|---|---|"]
    for c in summary["candidates"]:
        lines.append(f"| {c['name']} | {c['format']} | {c['input_size'][0]}x{c['input_size'][1]} | "
                     f"{c['ap50']:.3f} | {c['latency_ms']:.2f} |")
    if any(c["cut"] for c in summary["candidates"]):
        lines += ["", "`_cut`: the iteration's cut before its finetune (`--keep-best` kept a later epoch at the "
                  "model's own size; the cut competes at every size)."]
    plots = "ap_vs_flops.png, ap_vs_latency.png, pareto.png, channels.png" if summary.get("runs") else "pareto.png"
    lines += ["", f"Plots: {plots}.", ""]
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
