"""Self-describing checkpoints: cfg text with the real channel counts + state_dict + names + metadata.

Because the cfg is regenerated from the modules (Darknet.to_sections), a pruned model loads with
no pruning history: the file alone rebuilds the network. Metadata (parent, criterion, iteration,
AP, FLOPs, ...) must be JSON-serializable so the file loads with torch.load(weights_only=True),
which runs no pickled code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from yolo_compress.models.atomic import atomic_path
from yolo_compress.models.cfg import parse_cfg
from yolo_compress.models.darknet import Darknet

FORMAT = "yolo_compress.checkpoint/1"
_KEYS = ("format", "cfg", "state_dict", "names", "metadata")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (eval mode), its class names and metadata."""

    model: Darknet
    names: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike, model: Darknet, names: Sequence[str], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write the checkpoint atomically (a reader never sees half a file); returns the path."""
    names = [str(name) for name in names]
    classes = {head.num_classes for head in model.heads}
    if classes != {len(names)}:
        raise ValueError(f"{len(names)} class names given but the model's heads have {sorted(classes)} classes")
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata must be JSON-serializable: {exc}") from None
    payload = {
        "format": FORMAT,
        "cfg": model.cfg_text(),
        "state_dict": model.state_dict(),
        "names": names,
        "metadata": metadata,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Rebuild the model from the checkpoint's own cfg and load its weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a bad file
        raise ValueError(f"{path}: not a readable checkpoint: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a yolo_compress checkpoint (expected format {FORMAT})")
    missing = [key for key in _KEYS if key not in payload]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {', '.join(missing)}")
    model = Darknet(parse_cfg(payload["cfg"], f"{path} (cfg)"))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: the state_dict does not fit the checkpoint's cfg: {exc}") from None
    return Checkpoint(model.eval(), list(payload["names"]), dict(payload["metadata"]))
