"""Load a model from whatever a user has: a Darknet cfg (+ .weights) or a self-describing checkpoint.

Every offline tool (export, evaluate, finetune, prune) accepts the same two sources, so the rules for
finding class names live here once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.weights import load_weights

log = logging.getLogger(__name__)


@dataclass
class ModelSource:
    """A model plus the class names and metadata that travel with it."""

    model: Darknet
    names: list[str]
    metadata: dict = field(default_factory=dict)


def read_names(path: str | Path) -> list[str]:
    """Darknet .names file: one class name per line; blank lines ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class names file not found: {path}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: no class names in file")
    return names


def load_model_source(
    cfg: str | None = None,
    weights: str | Path | None = None,
    checkpoint: str | Path | None = None,
    names: str | Path | None = None,
) -> ModelSource:
    """Build the model from `checkpoint`, or from `cfg` (+ optional `weights`); resolve class names.

    Names come from `names` if given, else from the checkpoint, else from a single *.names file
    beside the weights or cfg; generic `class_<i>` names are the last resort (with a warning).
    """
    if (checkpoint is None) == (cfg is None):
        raise ValueError("give exactly one of a checkpoint or a cfg (with optional weights)")
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint)
        found = read_names(names) if names else list(ckpt.names)
        return ModelSource(ckpt.model, found, dict(ckpt.metadata))
    model = Darknet.from_cfg(cfg)
    metadata: dict = {"cfg": str(cfg)}
    if weights is not None:
        load_weights(model, weights)
        metadata["weights"] = str(weights)
    found = read_names(names) if names else _names_beside(model, cfg, weights)
    return ModelSource(model, found, metadata)


def _names_beside(model: Darknet, cfg: str, weights: str | Path | None) -> list[str]:
    num_classes = model.heads[0].num_classes
    for anchor in (weights, cfg):
        if anchor is None or not Path(anchor).is_file():
            continue
        candidates = sorted(Path(anchor).parent.glob("*.names"))
        if len(candidates) == 1:
            found = read_names(candidates[0])
            if len(found) == num_classes:
                log.info("class names from %s", candidates[0])
                return found
    log.warning("no class names given or found beside %s: using class_0..class_%d", cfg, num_classes - 1)
    return [f"class_{i}" for i in range(num_classes)]
