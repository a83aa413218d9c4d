"""Depth pruning: remove whole residual blocks, the lever channel pruning lacks on a CPU.

On ONNX Runtime's CPU kernels the latency of these small detectors follows the number of ops more than
their FLOPs (yolo-fastest-1.1-xl: 84 convs; 63% of the conv FLOPs ran only 1.29x faster). A residual
block y = x + f(x) whose branch f is dropped becomes y = x: the network stays valid, the block's three
convs are gone, and the rest of the weights are kept, so a short finetune recovers what f added
(layer pruning in the manner of Chen and Zhao, "Shallowing deep networks", and of the residual-network
ablations of Veit et al., NeurIPS 2016, which found single blocks of residual networks largely removable).

A block is removable only when nothing outside it reads its branch and its [shortcut] is linear, so
that removing it is exactly replacing its output by its input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from tqdm import tqdm

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.models.atomic import write_json
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import Shortcut
from yolo_compress.prune.report import pyplot, save_png
from yolo_compress.train.validate import validate

# cfg options that name earlier layers (negative = relative to the section's own index)
_LAYER_REFERENCES = {"route": "layers", "shortcut": "from"}


@dataclass(frozen=True)
class ResidualBlock:
    """Layers `input + 1 .. shortcut` of the cfg: a branch reading layer `input`, added back to it."""

    input: int
    shortcut: int

    @property
    def layers(self) -> range:
        return range(self.input + 1, self.shortcut + 1)

    def name(self) -> str:
        """"84-88": the cfg layers it spans, as --drop-blocks names it."""
        return f"{self.input + 1}-{self.shortcut}"

    @classmethod
    def from_name(cls, name: str) -> ResidualBlock:
        first, sep, last = name.strip().partition("-")
        if not (sep and first.isdigit() and last.isdigit() and int(first) <= int(last)):
            raise ValueError(f"a residual block is named by its cfg layers, e.g. '84-88'; got {name!r}")
        return cls(int(first) - 1, int(last))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ResidualBlock:
        """The block of a block_sensitivity.json row."""
        return cls(record["input"], record["shortcut"])

    def record(self, ap50: float) -> dict[str, Any]:
        """A block_sensitivity.json row: this block and the AP50 measured without it."""
        return {"input": self.input, "shortcut": self.shortcut, "ap50": ap50}


def surviving_layers(count: int, blocks: Iterable[ResidualBlock]) -> list[int]:
    """The cfg indices, in a model of `count` layers, of the layers left once `blocks` are removed: entry i
    is the original index of layer i of the shallower model."""
    removed = {i for block in blocks for i in block.layers}
    return [i for i in range(count) if i not in removed]


def residual_blocks(model: Darknet) -> list[ResidualBlock]:
    """Every block whose removal leaves an identity, in cfg order."""
    readers: dict[int, set[int]] = {}
    for index, sources in enumerate(model.sources):
        for source in sources:
            readers.setdefault(source, set()).add(index)
    found = []
    for index, (layer, sources) in enumerate(zip(model.layers, model.sources, strict=True)):
        if not isinstance(layer, Shortcut) or not isinstance(layer.act, nn.Identity):
            continue
        block = ResidualBlock(input=sources[1], shortcut=index)
        branch = block.layers[:-1]
        reads_inside = all(set(model.sources[i]) <= {block.input, *branch} for i in branch)
        read_outside = any(readers.get(i, set()) - set(block.layers) for i in branch)
        if branch and model.sources[branch[0]] == (block.input,) and reads_inside and not read_outside:
            found.append(block)
    return found


def remove_blocks(model: Darknet, blocks: Iterable[ResidualBlock]) -> Darknet:
    """A new model without `blocks` (each one of residual_blocks(model)): later references to a removed
    block's output point at its input, every other layer keeps its weights."""
    blocks = sorted(set(blocks), key=lambda b: b.shortcut)
    check_removable(blocks, model)
    alias = {block.shortcut: block.input for block in blocks}

    def resolve(layer: int) -> int:
        while layer in alias:  # consecutive removed blocks: the input of the first
            layer = alias[layer]
        return layer

    kept = surviving_layers(len(model.layers), blocks)
    new_index = {old: new for new, old in enumerate(kept)}
    sections = model.to_sections()
    out = [sections[0]]
    for old in kept:
        section = sections[old + 1]
        key = _LAYER_REFERENCES.get(section.type)
        if key is not None and key in section.options:
            values = section.get_ints(key)
            section.options[key] = ",".join(
                str(_reference(old, v, new_index[old], new_index, resolve)) for v in values)
        out.append(section)
    shallow = Darknet(out)
    shallow.load_state_dict(_renumbered(model.state_dict(), new_index))
    return shallow.train(model.training)


def _reference(old: int, value: int, new: int, new_index: dict[int, int], resolve) -> int:
    """`value` (relative if negative) of layer `old`, rewritten for the same layer at index `new`."""
    target = new_index[resolve(old + value if value < 0 else value)]
    return target - new if value < 0 else target


def _renumbered(state: dict[str, Any], new_index: dict[int, int]) -> dict[str, Any]:
    """The state_dict entries of kept layers, under their new layer numbers."""
    result = {}
    for key, value in state.items():
        match = re.match(r"layers\.(\d+)\.(.*)", key)
        if match is None:
            result[key] = value
        elif int(match.group(1)) in new_index:
            result[f"layers.{new_index[int(match.group(1))]}.{match.group(2)}"] = value
    return result


def block_sensitivity(model: Darknet, names: list[str], val: DetectionDataset, out: Path,
                      resize: str = "stretch", progress: bool = True) -> dict[str, Any]:
    """{"ap50": the model's AP, "blocks": [{input, shortcut, ap50}]}: each block removed alone, no
    finetune; saved to `out` after every block, so an interrupted analysis resumes at the next one."""
    result = json.loads(out.read_text()) if out.is_file() else {}
    model = model.eval()
    if not result:
        result = {"ap50": validate(model, names, val, resize=resize)["ap50"], "blocks": []}
        write_json(out, result)
    done = {(b["input"], b["shortcut"]) for b in result["blocks"]}
    for block in tqdm(residual_blocks(model), desc="block sensitivity", unit="block", disable=not progress):
        if (block.input, block.shortcut) in done:
            continue
        ap = validate(remove_blocks(model, [block]), names, val, resize=resize)["ap50"]
        result["blocks"].append(block.record(ap))
        write_json(out, result)
    return result


def greedy_blocks(model: Darknet, names: list[str], val: DetectionDataset, out: Path, count: int,
                  resize: str = "stretch", progress: bool = True) -> list[ResidualBlock]:
    """`count` blocks chosen one at a time: each step removes the block that, with those chosen before,
    keeps the most AP50 on `val` (ties: the later, wider block). Single-block drops do not add up (on
    1.1-xl the 8 blocks that cost least alone left AP50 0.664 of 0.747; chosen greedily, 0.709), so
    every step measures the blocks left again. The path is saved under "greedy" in `out` after each step
    (the analysis of block_sensitivity is its first step); a rerun resumes it, and a smaller count reuses it."""
    result = block_sensitivity(model, names, val, out, resize, progress)
    removable = residual_blocks(model)
    if count > len(removable):
        raise ValueError(f"{count} blocks to remove but the model has only {len(removable)} removable ones")
    steps = result.setdefault("greedy", [])
    chosen = [ResidualBlock.from_record(step) for step in steps]
    with tqdm(total=count, initial=min(len(chosen), count), desc="greedy blocks", unit="block",
              disable=not progress) as bar:
        while len(chosen) < count:
            left = [block for block in removable if block not in chosen]
            if chosen:
                scores = {b: validate(remove_blocks(model, [*chosen, b]), names, val, resize=resize)["ap50"]
                          for b in left}
            else:
                scores = {ResidualBlock.from_record(row): row["ap50"] for row in result["blocks"]}
            best = max(left, key=lambda b: (scores[b], b.shortcut))
            chosen.append(best)
            steps.append(best.record(scores[best]))
            write_json(out, result)
            bar.update()
    return chosen[:count]


def named_blocks(names: Sequence[str], model: Darknet) -> list[ResidualBlock]:
    """Blocks named by their layer ranges ("84-88"), checked against the model."""
    blocks = [ResidualBlock.from_name(name) for name in names]
    check_removable(blocks, model)
    return blocks


def check_removable(blocks: Iterable[ResidualBlock], model: Darknet) -> None:
    removable = residual_blocks(model)
    known = set(removable)
    unknown = [block.name() for block in blocks if block not in known]
    if unknown:
        raise ValueError(f"not removable residual blocks: {', '.join(unknown)} (this model's: "
                         f"{', '.join(b.name() for b in removable) or 'none'})")


def choose_blocks(spec: str, model: Darknet, names: list[str], val: DetectionDataset, out_dir: Path,
                  resize: str = "stretch", progress: bool = True) -> list[str]:
    """What `--drop-blocks` names, as block names: "N" = N blocks chosen greedily on `val` (greedy_blocks;
    the analysis and its plot are written to `out_dir`, resumable), else names such as "84-88,89-93"."""
    if spec.strip().isdigit():
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "block_sensitivity.json"
        blocks = greedy_blocks(model, names, val, path, int(spec), resize, progress)
        plot_block_sensitivity(json.loads(path.read_text()), out_dir / "block_sensitivity.png")
    else:
        blocks = named_blocks(spec.split(","), model)
    return [block.name() for block in sorted(blocks, key=lambda b: b.shortcut)]


def plot_block_sensitivity(result: dict[str, Any], path: Path) -> None:
    """Left: AP50 with each block removed alone. Right: AP50 along the greedy path. No finetune in either."""
    plt = pyplot()
    blocks, steps = result["blocks"], result.get("greedy", [])
    fig, (alone, greedy) = plt.subplots(1, 2, figsize=(max(10, 0.6 * len(blocks)), 4))
    for ax, rows, label in ((alone, blocks, "block removed alone"), (greedy, steps, "blocks removed so far")):
        ax.plot(range(len(rows)), [row["ap50"] for row in rows], "o" if ax is alone else "o-", color="tab:blue")
        ax.axhline(result["ap50"], color="black", linestyle="--", linewidth=1, label="all blocks")
        names = [ResidualBlock.from_record(row).name() for row in rows]
        ax.set_xticks(range(len(rows)), names if ax is alone else [f"+{name}" for name in names],
                      rotation=90, fontsize=7)
        ax.set_xlabel(f"{label} (cfg layers)")
        ax.set_ylabel("AP50 (no finetune)")
        ax.grid(alpha=0.3)
        ax.legend()
    greedy.set_title("greedy: each step the block that keeps the most AP50", fontsize=9)
    save_png(fig, path)
    plt.close(fig)
