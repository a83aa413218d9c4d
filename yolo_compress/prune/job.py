"""A whole tools/prune.py job: load the model and data, adapt and train the start model, run the pipeline.

The start model is what every tier is compared with, so it gets the same treatment a user would give it
before pruning: classes cut to the wanted ones (keeping their trained weights) and `pretrain_epochs` of
finetuning on the training set (for the built-in demo: training from scratch). That stage writes its own
resumable folder, like every later stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.data.specs import load_dataset
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.source import load_model_source
from yolo_compress.prune.pipeline import PipelineConfig, PipelineData, run_pipeline
from yolo_compress.train.classes import select_classes
from yolo_compress.train.finetune import FinetuneConfig, finetune

log = logging.getLogger(__name__)


@dataclass
class ModelSpec:
    """Where the start model comes from: a cfg (+ weights) or a checkpoint, and optional class names."""

    cfg: str | None = None
    weights: str | None = None
    checkpoint: str | None = None
    names: str | None = None


@dataclass
class PruneJob:
    model: ModelSpec
    data: str
    val: str
    out: Path
    classes: list[str] | None = None
    pretrain: FinetuneConfig | None = None
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    latency_frames: int = 20
    calibration_frames: int = 200
    progress: bool = True


def _frames(dataset: DetectionDataset, count: int) -> list[np.ndarray]:
    step = max(1, len(dataset) // max(count, 1))
    return [dataset[i].load_image() for i in range(0, len(dataset), step)][:count]


def start_model(job: PruneJob, train: DetectionDataset, val: DetectionDataset) -> tuple[Darknet, list[str]]:
    """The adapted (and, with job.pretrain, finetuned) model every tier is measured against."""
    spec = job.model
    torch.manual_seed(job.pipeline.schedule.seed)  # a cfg without weights starts from a reproducible init
    source = load_model_source(spec.cfg, spec.weights, spec.checkpoint, spec.names)
    model, names = source.model, source.names
    if spec.weights is None and spec.checkpoint is None and spec.names is None:
        # trained from scratch: the classes are the training set's (same count, or the cfg does not fit it)
        if len(train.names) != len(names):
            raise ValueError(f"cfg {spec.cfg} has {len(names)} classes, the training set {len(train.names)}")
        names = list(train.names)
    if job.classes and list(job.classes) != names:
        model, names = select_classes(model, names, job.classes), list(job.classes)
    if job.pretrain is None:
        return model, names
    folder = job.out / "pretrain"
    if (folder / "done.pt").is_file():
        ckpt = load_checkpoint(folder / "done.pt")
        return ckpt.model, ckpt.names
    resume = (folder / "train_state.pt").is_file()
    result = finetune(model.train(), names, train, val, job.pretrain, folder, resume=resume)
    # the finetune's last.pt is rewritten every epoch; done.pt appears once, when the stage is complete
    result.last_path.replace(folder / "done.pt")
    return load_checkpoint(folder / "done.pt").model, names


def run_job(job: PruneJob) -> dict[str, Any]:
    """Run (or resume) the whole job; returns the report summary."""
    train = load_dataset(job.data, job.classes)
    val = load_dataset(job.val, job.classes)
    model, names = start_model(job, train, val)
    data = PipelineData(names, train, val, _frames(val, job.latency_frames), _frames(train, job.calibration_frames))
    return run_pipeline(model, data, job.pipeline, job.out, job.progress)
