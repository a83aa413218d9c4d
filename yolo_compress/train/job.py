"""One tools/finetune.py run as data: where the model and data come from, which classes, which settings.

The CLI only fills a FinetuneJob; everything it implies (class slicing of the model and the teacher,
holding out part of a dataset for validation, the resize mode a checkpoint was trained with) is here,
importable and tested.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from yolo_compress.data.dataset import DetectionDataset, join
from yolo_compress.data.specs import load_dataset
from yolo_compress.models.atomic import write_json
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.source import load_model_source
from yolo_compress.train.classes import select_classes, with_num_classes
from yolo_compress.train.distributed import is_main_process, resolve_device
from yolo_compress.train.finetune import FinetuneConfig, FinetuneResult, finetune
from yolo_compress.train.validate import validate


@dataclass
class FinetuneJob:
    """A model source (cfg [+ weights] or checkpoint), training data, validation data, classes and settings.

    `val` is a separate validation spec; `val_from` instead holds out `val_fraction` of that dataset
    (split by `split_seed`, the same images every run) for validation and trains on the rest as well as
    on `data`. `classes` cuts the model (keeping the kept classes' trained weights) and the datasets to
    those classes; None keeps the model's (a model trained from scratch takes the training set's).
    `teacher` is a checkpoint to distill from; `teacher_start` distills from the starting model itself
    (it keeps what the model knew where the new labels are silent, e.g. unlabelled background people).
    `resize` overrides config.resize; None takes a checkpoint's own (the mode it was trained and exported
    with). Each of `tests` (dataset specs, cut to `classes`) is scored on the starting model and on the
    last.pt and best.pt the finetune writes. `input_size` (H, W) trains, validates and distills at another
    input than the cfg's: a model that will run at 256x256 learns the smaller people it then sees.
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
    teacher_start: bool = False
    resize: str | None = None
    tests: list[str] = field(default_factory=list)
    resume: bool = False
    input_size: tuple[int, int] | None = None


def job_model(job: FinetuneJob, data_names: Sequence[str]) -> tuple[Darknet, list[str], dict]:
    """The model to finetune (at the job's input size), its class names and its source metadata (see start_model)."""
    model, names, metadata = start_model(job.cfg, job.weights, job.checkpoint, job.names, job.classes, data_names)
    return _at_job_size(model, job), names, metadata


def _at_job_size(model: Darknet, job: FinetuneJob) -> Darknet:
    return model if job.input_size is None else model.at_input_size(*job.input_size)


def start_model(cfg: str | None, weights: str | None, checkpoint: str | None, names_file: str | None,
                classes: Sequence[str] | None, data_names: Sequence[str]) -> tuple[Darknet, list[str], dict]:
    """A model to train, its class names and its source metadata; the pruning tool starts the same way.

    A pretrained model (weights or checkpoint) is cut to `classes`, keeping their weights. A cfg without
    weights trains from scratch: it predicts the training set's classes (`data_names`), whatever its cfg's
    classes= says.
    """
    if checkpoint is None and weights is None and cfg is not None:
        model = Darknet.from_cfg(cfg)
        if model.heads[0].num_classes != len(data_names):
            model = with_num_classes(model, len(data_names))
        return model, list(data_names), {"cfg": cfg}
    source = load_model_source(cfg, weights, checkpoint, names_file)
    model, names = source.model, list(source.names)
    if classes and list(classes) != names:
        model, names = select_classes(model, names, classes), list(classes)
    return model, names, source.metadata


def job_datasets(job: FinetuneJob) -> tuple[DetectionDataset, DetectionDataset | None]:
    """(training set, validation set or None) of the job (see train_val_sets)."""
    return train_val_sets(job.data, job.val, job.val_from, job.val_fraction, job.split_seed, job.classes)


def train_val_sets(data: str, val: str | None, val_from: str | None, val_fraction: float, split_seed: int,
                   classes: Sequence[str] | None) -> tuple[DetectionDataset, DetectionDataset | None]:
    """(training set, validation set or None): `val` is a separate spec; `val_from` holds out `val_fraction`
    of that dataset (the same images for the same `split_seed`) and trains on the rest too. Given both, the
    validation set is the held-out part plus `val`: a model trained on the `val_from` images (COCO models
    on coco128) scores them too well, and an unseen set beside them keeps that from deciding alone."""
    train = load_dataset(data, classes)
    extra = load_dataset(val, classes) if val else None
    if not val_from:
        return train, extra
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    held, rest = load_dataset(val_from, classes).split(val_fraction, split_seed)
    return join([train, rest]), held if extra is None else join([held, extra])


def job_teacher(job: FinetuneJob, names: list[str], start: Darknet) -> Darknet | None:
    """The teacher: a copy of the starting model `start`, or the teacher checkpoint's model cut to the
    student's classes (by name) when it has others."""
    if job.teacher is not None and job.teacher_start:
        raise ValueError("give a teacher checkpoint or teacher_start, not both")
    if job.teacher_start:
        return copy.deepcopy(start).eval()
    if job.teacher is None:
        return None
    source = load_model_source(checkpoint=job.teacher)
    teacher = source.model if list(source.names) == names else select_classes(source.model, source.names, names)
    return _at_job_size(teacher, job)


def run_job(job: FinetuneJob) -> tuple[FinetuneResult, dict[str, dict[str, Any]]]:
    """Load everything the job names and finetune; the checkpoints carry the model source as `parent`.

    Returns the result and, per test spec, the metrics of the starting model ("before"), of last.pt
    ("last", the finetuned weights) and of best.pt ("best", by validation AP; it can be the start), each
    with its "epoch" (also written to out/tests.json; under torchrun by rank 0 only); metrics are
    yolo_compress.eval.evaluate's, without the PR curves.
    """
    train, val = job_datasets(job)
    model, names, source_meta = job_model(job, train.names)
    metadata = {"parent": job.checkpoint or job.weights or job.cfg, "data": job.data,
                "val": job.val or (f"{job.val_from} (held out: {job.val_fraction}, seed {job.split_seed})"
                                   if job.val_from else None)}
    config = replace(job.config, resize=job.resize or source_meta.get("resize") or job.config.resize)
    tests = {spec: load_dataset(spec, job.classes) for spec in job.tests} if is_main_process() else {}
    before = {spec: _test_metrics(model, names, data, config) for spec, data in tests.items()}
    result = finetune(model.train(), names, train, val, config, job.out, resume=job.resume,
                      teacher=job_teacher(job, names, model), metadata=metadata)
    finals = {"last": result.last_path, "best": result.best_path}
    report = {}
    for spec, data in tests.items():
        report[spec] = {"before": before[spec]}
        for name, path in finals.items():
            if path is not None:
                checkpoint = load_checkpoint(path)
                report[spec][name] = {"epoch": checkpoint.metadata.get("epoch"),
                                      **_test_metrics(checkpoint.model, names, data, config)}
    if report:
        write_json(result.out_dir / "tests.json", report)
    return result, report


def _test_metrics(model: Darknet, names: list[str], data: DetectionDataset, config: FinetuneConfig
                  ) -> dict[str, Any]:
    metrics = validate(model, names, data, resize=config.resize, device=resolve_device(config.device),
                       progress=config.progress)
    metrics.pop("pr_curves")
    return metrics
