"""Layer-wise sensitivity: prune one group at a time by each ratio, measure the AP drop, derive ratios.

Li et al. (ICLR 2017) prune each layer alone (lowest-L1 filters, no finetune) to see how much it can
lose; a global FLOPs target is then met by letting every layer go as far as a common AP-drop budget
allows, the budget found by bisection. Results are written after every group (JSON, atomically), so an
interrupted analysis resumes at the next group.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.models.atomic import write_json
from yolo_compress.models.complexity import layer_costs
from yolo_compress.models.darknet import Darknet
from yolo_compress.prune.allocation import conv_flops_after, plan_from_counts
from yolo_compress.prune.groups import channel_groups, dependency_graph, prune_channels
from yolo_compress.prune.importance import L1Importance
from yolo_compress.prune.report import pyplot, save_png
from yolo_compress.train.validate import validate

DEFAULT_RATIOS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _prune_alone(model: Darknet, layer: int, ratio: float) -> Darknet:
    """A copy of `model` with `ratio` of group `layer`'s channels (lowest L1) removed, unrounded; each slice
    of the group (see allocation.slices) keeps at least one channel."""
    pruned = copy.deepcopy(model)
    graph = dependency_graph(pruned)
    group = next(g for g in channel_groups(pruned, graph) if g.layer == layer)
    scores = L1Importance(pruned).scores(group)
    keep = {group.layer: group.size - round(ratio * group.size)}
    plan = plan_from_counts([group], {group.layer: scores}, keep, round_to=1, group_floors={group.layer: 1})
    prune_channels(graph, group, plan.removals.get(group.layer, []))
    return pruned


def analyze(model: Darknet, names: list[str], val: DetectionDataset, out: Path,
            ratios: Sequence[float] = DEFAULT_RATIOS, resize: str = "stretch", progress: bool = True,
            layers: Sequence[int] | None = None) -> dict[str, Any]:
    """{"ap50": unpruned AP, "groups": [{layer, size, flops_share, ap50: {ratio: AP}}]}, saved to `out`;
    `layers` limits the analysis to those groups (default: all)."""
    result = json.loads(out.read_text()) if out.is_file() else {}
    if result and result.get("ratios") != list(ratios):
        raise ValueError(f"{out}: made with other ratios {result.get('ratios')}; use another output or the same ratios")
    model = model.eval()
    if not result:
        result = {"ratios": list(ratios), "ap50": validate(model, names, val, resize=resize)["ap50"], "groups": []}
        write_json(out, result)
    done = {g["layer"] for g in result["groups"]}
    groups = channel_groups(model)
    flops = [c.flops for c in layer_costs(model)]
    total = conv_flops_after(model, groups, {g.layer: g.size for g in groups}, flops)
    todo = [g for g in groups if layers is None or g.layer in layers]
    for group in tqdm(todo, desc="sensitivity", unit="group", disable=not progress):
        if group.layer in done:
            continue
        keep = {g.layer: g.size for g in groups} | {group.layer: 0}
        aps = {str(r): validate(_prune_alone(model, group.layer, r), names, val, resize=resize)["ap50"] for r in ratios}
        share = 1 - conv_flops_after(model, groups, keep, flops) / total
        result["groups"].append({"layer": group.layer, "size": group.size, "flops_share": share, "ap50": aps})
        write_json(out, result)
    return result


def _ratio_within(group: dict[str, Any], base_ap: float, budget: float) -> float:
    """The largest tested ratio up to which every tested ratio drops AP by at most `budget`."""
    best = 0.0
    for ratio in sorted(group["ap50"], key=float):
        if base_ap - group["ap50"][ratio] > budget:
            break
        best = float(ratio)
    return best


def derive_widths(result: dict[str, Any], model: Darknet, target_flops: float) -> dict[int, int]:
    """Channels to keep per group so that conv FLOPs come down to `target_flops` (ratio of the model's),
    each group pruned as far as a common AP-drop budget allows (bisection on the budget)."""
    groups = channel_groups(model)
    flops = [c.flops for c in layer_costs(model)]
    full = {g.layer: g.size for g in groups}
    total = conv_flops_after(model, groups, full, flops)
    by_layer = {g["layer"]: g for g in result["groups"]}
    missing = sorted(set(full) - set(by_layer))
    if missing:
        raise ValueError(f"sensitivity results lack groups {missing}: rerun the analysis on this model")

    def widths_for(budget: float) -> dict[int, int]:
        return {layer: max(1, round(size * (1 - _ratio_within(by_layer[layer], result["ap50"], budget))))
                for layer, size in full.items()}

    low, high = 0.0, 1.0
    for _ in range(30):
        middle = (low + high) / 2
        if conv_flops_after(model, groups, widths_for(middle), flops) / total > target_flops:
            low = middle
        else:
            high = middle
    return widths_for(high)


def renumbered(result: dict[str, Any], layers: Sequence[int]) -> dict[str, Any]:
    """`result` for a model whose layer i was layer `layers[i]` of the analysed one (after a depth cut);
    groups whose layer is gone are left out."""
    new = {old: i for i, old in enumerate(layers)}
    return {**result, "groups": [{**g, "layer": new[g["layer"]]} for g in result["groups"] if g["layer"] in new]}


def load_sensitivity(path: Path | None) -> dict[str, Any]:
    """The analysis tools/sensitivity.py wrote (its JSON), for --criterion sensitivity."""
    if path is None:
        raise ValueError("--criterion sensitivity needs --sensitivity FILE (written by tools/sensitivity.py)")
    if not path.is_file():
        raise FileNotFoundError(f"sensitivity results not found: {path}")
    result = json.loads(path.read_text())
    if not result.get("groups") or "ap50" not in result:
        raise ValueError(f"{path}: no per-group results; run tools/sensitivity.py to the end on this model")
    return result


def plot_sensitivity(result: dict[str, Any], path: Path) -> None:
    """AP50 against the pruned ratio, one line per group."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for group in result["groups"]:
        ratios = sorted(group["ap50"], key=float)
        ax.plot([float(r) for r in ratios], [group["ap50"][r] for r in ratios], "-", linewidth=1,
                label=f"layer {group['layer']} ({group['size']})")
    ax.axhline(result["ap50"], color="black", linestyle="--", linewidth=1, label="unpruned")
    ax.set_xlabel("fraction of the group's channels removed (alone, no finetune)")
    ax.set_ylabel("AP50")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    save_png(fig, path)
    plt.close(fig)
