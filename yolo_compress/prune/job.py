"""A whole tools/prune.py job: load the model and data, adapt and train the start model, run the pipeline.

The start model is what every tier is compared with, so it gets the same treatment a user would give it
before pruning: classes cut to the wanted ones (keeping their trained weights) and `pretrain_epochs` of
finetuning on the training set (for the built-in demo: training from scratch). That stage writes its own
resumable folder, like every later stage.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.data.specs import load_dataset
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.prune.depth import choose_blocks
from yolo_compress.prune.pipeline import PipelineConfig, PipelineData, run_pipeline
from yolo_compress.train.finetune import FinetuneConfig, finetune
from yolo_compress.train.job import start_model, train_val_sets

log = logging.getLogger(__name__)


@dataclass
class ModelSpec:
    """Where the start model comes from: a cfg (+ weights) or a checkpoint, and optional class names."""

    cfg: str | None = None
    weights: str | None = None
    checkpoint: str | None = None
    names: str | None = None


@dataclass
class DataSpec:
    """Training and validation sets: `val` a spec of its own, or `val_fraction` held out of `val_from`
    (then the rest of it trains too). `tests` are further specs every tier is scored on in the report."""

    data: str
    val: str | None = None
    val_from: str | None = None
    val_fraction: float = 0.25
    split_seed: int = 0
    tests: list[str] = field(default_factory=list)


@dataclass
class PruneJob:
    model: ModelSpec
    data: DataSpec
    out: Path
    classes: list[str] | None = None
    pretrain: FinetuneConfig | None = None
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    latency_frames: int = 20
    calibration_frames: int = 200
    progress: bool = True
    drop_blocks: str | None = None  # --drop-blocks: a count or block names (depth.choose_blocks)


def sample_frames(dataset: DetectionDataset, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over `dataset` (latency and int8 calibration frames)."""
    step = max(1, len(dataset) // max(count, 1))
    return [dataset[i].load_image() for i in range(0, len(dataset), step)][:count]


def prepared_model(job: PruneJob, train: DetectionDataset, val: DetectionDataset) -> tuple[Darknet, list[str]]:
    """The adapted (and, with job.pretrain, finetuned) model every tier is measured against."""
    torch.manual_seed(job.pipeline.schedule.seed)  # a cfg without weights starts from a reproducible init
    spec = job.model
    model, names, _ = start_model(spec.cfg, spec.weights, spec.checkpoint, spec.names, job.classes, train.names)
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


def data_record(job: PruneJob) -> dict[str, Any]:
    """What report.json says the sets were: runs validated on the same sets can pick tiers together."""
    return {**asdict(job.data), "classes": job.classes, "latency_frames": job.latency_frames}


def run_job(job: PruneJob) -> dict[str, Any]:
    """Run (or resume) the whole job; returns the report summary."""
    d = job.data
    train, val = train_val_sets(d.data, d.val, d.val_from, d.val_fraction, d.split_seed, job.classes)
    if val is None:
        raise ValueError("pruning needs a validation set: give --val or --val-from")
    model, names = prepared_model(job, train, val)
    pipeline = job.pipeline
    if job.drop_blocks:
        blocks = choose_blocks(job.drop_blocks, model, names, val, job.out / "blocks",
                               pipeline.schedule.finetune.resize, job.progress)
        log.info("depth cut first: residual blocks %s", ", ".join(blocks))
        pipeline = replace(pipeline, schedule=replace(pipeline.schedule, drop_blocks=blocks))
    tests = {spec: load_dataset(spec, job.classes) for spec in d.tests}
    data = PipelineData(names, train, val, sample_frames(val, job.latency_frames),
                        sample_frames(train, job.calibration_frames), tests, data_record(job))
    return run_pipeline(model, data, pipeline, job.out, job.progress)
