"""One tools/finetune.py run as data: where the model and data come from, which classes, which settings.

The CLI only fills a FinetuneJob; everything it implies (class slicing of the model and the teacher,
holding out part of a dataset for validation, the resize mode a checkpoint was trained with) is here,
importable and tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from yolo_compress.data.dataset import DetectionDataset, join
from yolo_compress.data.specs import load_dataset
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.source import load_model_source
from yolo_compress.train.classes import select_classes
from yolo_compress.train.finetune import FinetuneConfig, FinetuneResult, finetune


@dataclass
class FinetuneJob:
    """A model source (cfg [+ weights] or checkpoint), training data, validation data, classes and settings.

    `val` is a separate validation spec; `val_from` instead holds out `val_fraction` of that dataset
    (split by `split_seed`, the same images every run) for validation and trains on the rest as well as
    on `data`. `classes` cuts the model (keeping the kept classes' trained weights) and the datasets to
    those classes; None keeps the model's. `teacher` is a checkpoint to distill from. `resize` overrides
    config.resize; None takes a checkpoint's own (the mode it was trained and exported with).
    """

    data: str
    out: Path
    config: FinetuneConfig = field(default_factory=FinetuneConfig)
    cfg: str | None = None
    weights: str | None = None
    checkpoint: str | None = None
    names: str | None = None
    val: str | None = None
    val_from: str | None = None
    val_fraction: float = 0.25
    split_seed: int = 0
    classes: list[str] | None = None
    teacher: str | None = None
    resize: str | None = None
    resume: bool = False


def job_model(job: FinetuneJob) -> tuple[Darknet, list[str], dict]:
    """The model to finetune (cut to job.classes), its class names and its source metadata."""
    source = load_model_source(job.cfg, job.weights, job.checkpoint, job.names)
    model, names = source.model, list(source.names)
    if job.classes and job.classes != names:
        model, names = select_classes(model, names, job.classes), list(job.classes)
    return model, names, source.metadata


def job_datasets(job: FinetuneJob) -> tuple[DetectionDataset, DetectionDataset | None]:
    """(training set, validation set or None) of the job."""
    if job.val and job.val_from:
        raise ValueError("give a validation set (val) or a dataset to hold one out of (val_from), not both")
    train = load_dataset(job.data, job.classes)
    if not job.val_from:
        return train, load_dataset(job.val, job.classes) if job.val else None
    if not 0.0 < job.val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {job.val_fraction}")
    val, rest = load_dataset(job.val_from, job.classes).split(job.val_fraction, job.split_seed)
    return join([train, rest]), val


def job_teacher(job: FinetuneJob, names: list[str]) -> Darknet | None:
    """The teacher checkpoint's model, cut to the student's classes (by name) when it has others."""
    if job.teacher is None:
        return None
    source = load_model_source(checkpoint=job.teacher)
    if list(source.names) == names:
        return source.model
    return select_classes(source.model, source.names, names)


def run_job(job: FinetuneJob) -> FinetuneResult:
    """Load everything the job names and finetune; the checkpoints carry the model source as `parent`."""
    model, names, source_meta = job_model(job)
    train, val = job_datasets(job)
    metadata = {"parent": job.checkpoint or job.weights or job.cfg, "data": job.data,
                "val": job.val or (f"{job.val_from} (held out: {job.val_fraction}, seed {job.split_seed})"
                                   if job.val_from else None)}
    config = replace(job.config, resize=job.resize or source_meta.get("resize") or job.config.resize)
    return finetune(model.train(), names, train, val, config, job.out, resume=job.resume,
                    teacher=job_teacher(job, names), metadata=metadata)
