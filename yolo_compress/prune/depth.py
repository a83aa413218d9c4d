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
from collections.abc import Iterable, Sequence
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
        result["blocks"].append({"input": block.input, "shortcut": block.shortcut, "ap50": ap})
        write_json(out, result)
    return result


def least_sensitive(result: dict[str, Any], count: int) -> list[ResidualBlock]:
    """The `count` blocks whose removal alone cost the least AP (ties: the later block, the wider one)."""
    ranked = sorted(result["blocks"], key=lambda b: (result["ap50"] - b["ap50"], -b["shortcut"]))
    if count > len(ranked):
        raise ValueError(f"{count} blocks to remove but the analysis has only {len(ranked)}")
    return [ResidualBlock(b["input"], b["shortcut"]) for b in ranked[:count]]


def named_blocks(names: Sequence[str], model: Darknet) -> list[ResidualBlock]:
    """Blocks named by their layer ranges ("84-88"), checked against the model."""
    blocks = [ResidualBlock.from_name(name) for name in names]
    check_removable(blocks, model)
    return blocks


def check_removable(blocks: Iterable[ResidualBlock], model: Darknet) -> None:
    removable = residual_blocks(model)
    unknown = [block.name() for block in blocks if block not in set(removable)]
    if unknown:
        raise ValueError(f"not removable residual blocks: {', '.join(unknown)} (this model's: "
                         f"{', '.join(b.name() for b in removable) or 'none'})")


def choose_blocks(spec: str, model: Darknet, names: list[str], val: DetectionDataset, out_dir: Path,
                  resize: str = "stretch", progress: bool = True) -> list[str]:
    """What `--drop-blocks` names, as block names: "N" = the N least sensitive blocks on `val` (the analysis
    and its plot are written to `out_dir`, resumable), else comma-separated names such as "84-88,89-93"."""
    if spec.strip().isdigit():
        out_dir.mkdir(parents=True, exist_ok=True)
        result = block_sensitivity(model, names, val, out_dir / "block_sensitivity.json", resize, progress)
        plot_block_sensitivity(result, out_dir / "block_sensitivity.png")
        blocks = least_sensitive(result, int(spec))
    else:
        blocks = named_blocks(spec.split(","), model)
    return [block.name() for block in sorted(blocks, key=lambda b: b.shortcut)]


def plot_block_sensitivity(result: dict[str, Any], path: Path) -> None:
    """AP50 with each block removed alone, against the whole model's."""
    plt = pyplot()
    blocks = result["blocks"]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(blocks)), 4))
    ax.bar(range(len(blocks)), [b["ap50"] for b in blocks], color="tab:blue")
    ax.axhline(result["ap50"], color="black", linestyle="--", linewidth=1, label="all blocks")
    ax.set_xticks(range(len(blocks)), [ResidualBlock(b["input"], b["shortcut"]).name() for b in blocks],
                  rotation=90, fontsize=7)
    ax.set_xlabel("residual block removed alone (cfg layers), no finetune")
    ax.set_ylabel("AP50")
    ax.legend()
    save_png(fig, path)
    plt.close(fig)
