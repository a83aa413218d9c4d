"""The finetune loop: a Darknet model, a training set and a validation set in; a better model and its log out.

It is a library call first (the pruning tool finetunes with a low lr for a few epochs between pruning
steps) and the body of tools/finetune.py second. What it writes to `out_dir`, after every epoch:

- `last.pt`, and `best.pt` when validation AP improves: self-describing checkpoints (models.checkpoint)
  of the weights that are validated (the EMA's when EMA is on);
- `train_state.pt`: everything a resume needs (model, optimizer, scheduler, AMP scaler, EMA, epoch,
  log); random draws are a function of (seed, epoch, rank, item), so no RNG state needs saving and a
  resumed run repeats the uninterrupted one;
- `log.csv`, `log.json`, `curves.png` (history.py).

Optimizer: SGD with momentum, weight decay on conv weights only, a linear warmup then cosine decay per
batch. That is Darknet's own update rule, so pretrained weights are finetuned by the rule that trained
them; an adaptive optimizer would also need its moment estimates warmed up, which a few-epoch finetune
cannot afford. The loss has ultralytics' normalization (loss.py), so learning rates are on its scale:
1e-4..1e-3 to finetune a pretrained model, a few 1e-2 to train the demo cfg from scratch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from yolo_compress.data.augment import AugmentConfig
from yolo_compress.data.dataset import DatasetError, DetectionDataset
from yolo_compress.data.torch_dataset import TorchDetectionDataset, collate
from yolo_compress.models.atomic import atomic_path, with_defaults
from yolo_compress.models.checkpoint import save_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.train.distill import DistillLoss
from yolo_compress.train.distributed import DistContext, init_distributed
from yolo_compress.train.ema import DEFAULT_DECAY, ModelEMA
from yolo_compress.train.history import write_history
from yolo_compress.train.loss import DetectionLoss
from yolo_compress.train.precise_bn import freeze_bn_stats, recompute_bn_stats
from yolo_compress.train.schedule import warmup_cosine
from yolo_compress.train.validate import validate

STATE_FILE = "train_state.pt"
STATE_FORMAT = "yolo_compress.train_state/1"
BEST_METRICS = ("ap50", "ap50_95")
# Settings that change where or how fast a run goes, not what it computes: a resume may change them.
RESUMABLE_CHANGES = ("device", "workers", "progress")


@dataclass
class FinetuneConfig:
    """How to finetune. `batch` is the global batch (split over torchrun processes); `lr` is the peak of the
    schedule, reached after `warmup_epochs` and decayed by a cosine to lr * final_lr_ratio. AMP runs on CUDA
    only. Validation runs every `eval_every` epochs and after the last; best.pt follows `best_metric`.
    `augment=None` trains on the runtime's plain preprocessing. Before each validation and after the last
    epoch, the BN statistics of the model that is validated and saved are recomputed over
    `precise_bn_batches` batches of training images without augmentation (precise_bn.py; 0: keep BN's
    running averages). `freeze_bn_stats` instead keeps the model's BN statistics as they are (BN normalizes
    with them in training too; its scale and shift still learn): a small finetune set then cannot pull the
    statistics of a pretrained model toward its own domain. `validate_first` measures the starting model
    (epoch 0 of the log; it is also a candidate for best.pt, so a finetune never leaves a best.pt worse than
    its start). `multi_scale` lists other input sizes (H, W) to train at: each batch is resized to one of
    them or the model's own, drawn uniformly per (seed, epoch, batch), with loss and teacher at that size
    (YOLO's multi-scale training). A model finetuned at one size alone loses accuracy at the lower sizes
    the tiers serve it at (BENCHMARKS.md); validation stays at the model's own size. `epochs=0` trains
    nothing: a prune schedule then keeps each cut as it is (on 1.1-xl the best depth cut was the
    unfinetuned one)."""

    epochs: int = 10
    lr: float = 1e-3
    batch: int = 16
    warmup_epochs: float = 1.0
    final_lr_ratio: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    ema: bool = True
    ema_decay: float = DEFAULT_DECAY
    amp: bool = True
    device: str = "auto"
    workers: int = 2
    eval_every: int = 1
    seed: int = 0
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    resize: str = "stretch"
    # the distillation part is a mean like the loss parts, ~1e-3 where a pruned or finetuned student starts;
    # at 100 it is a quarter of the loss on the person finetune, where it kept the sequences' AP (README)
    distill_weight: float = 100.0
    max_grad_norm: float | None = 10.0
    best_metric: str = "ap50"
    precise_bn_batches: int = 8
    freeze_bn_stats: bool = False
    validate_first: bool = True
    progress: bool = True
    multi_scale: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.augment, Mapping):  # as read back from a checkpoint's JSON metadata
            self.augment = AugmentConfig(**self.augment)
        self.multi_scale = tuple((int(h), int(w)) for h, w in self.multi_scale)  # JSON gives lists
        if int(self.epochs) < 0:
            raise ValueError(f"FinetuneConfig.epochs must be >= 0, got {self.epochs}")
        for name in ("batch", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_epochs < 0 or self.workers < 0:
            raise ValueError(f"FinetuneConfig: need lr > 0, warmup_epochs >= 0, workers >= 0; got {self}")
        if self.best_metric not in BEST_METRICS:
            raise ValueError(f"FinetuneConfig.best_metric must be one of {BEST_METRICS}, got {self.best_metric!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (checkpoint metadata, the resume check)."""
        return asdict(self)


@dataclass
class FinetuneResult:
    """The finetuned model (holding the final weights: the EMA's when EMA is on), the per-epoch log and
    the checkpoints written. Under torchrun, history and best are rank 0's; other ranks get them empty."""

    model: Darknet
    names: list[str]
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    out_dir: Path

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path | None:
        path = self.out_dir / "best.pt"
        return path if self.best is not None else None


EpochCallback = Callable[[dict[str, Any]], None]


def finetune(
    model: Darknet,
    names: list[str],
    train: DetectionDataset,
    val: DetectionDataset | None,
    config: FinetuneConfig,
    out_dir: str | Path,
    resume: bool = False,
    teacher: Darknet | None = None,
    metadata: Mapping[str, Any] | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> FinetuneResult:
    """Finetune `model` (in place) on `train`; validate on `val` (None: no AP, no best.pt).

    Dataset classes are matched to `names` by name (e.g. coco128's 80 classes for a person model). With
    `teacher` (same heads as `model`), a distillation term of weight config.distill_weight is added.
    `metadata` goes into every checkpoint (e.g. the pruning parent and step). `resume` continues from
    out_dir/train_state.pt, which must come from the same model and config. `on_epoch_end` gets each
    epoch's log record (rank 0 only). Under torchrun, every process calls this with the same arguments.
    """
    context = init_distributed(config.device)
    try:
        run = _Run(model, names, train, val, config, Path(out_dir), teacher, context, dict(metadata or {}))
        if resume:
            run.restore()
        run.wrap()
        if config.validate_first and val is not None and not run.history and run.epoch == 0:
            run.end_epoch({"epoch": 0, "seconds": 0.0})
        for epoch in range(run.epoch, config.epochs):
            record = run.train_epoch(epoch)
            run.end_epoch(record)
            if on_epoch_end is not None and context.is_main:
                on_epoch_end(record)
        return run.result()
    finally:
        context.close()


class _Run:
    """The state of one finetune; methods in the order an epoch uses them."""

    def __init__(
        self,
        model: Darknet,
        names: list[str],
        train: DetectionDataset,
        val: DetectionDataset | None,
        config: FinetuneConfig,
        out_dir: Path,
        teacher: Darknet | None,
        context: DistContext,
        metadata: dict[str, Any],
    ):
        self.names, self.config, self.out_dir, self.context = list(names), config, out_dir, context
        self.metadata = metadata
        self.val = _val_set(val, self.names)
        self.device = context.device
        self.model = model.to(self.device)
        self.sizes = training_sizes(model, config.multi_scale)
        self.losses = {size: _size_losses(model, teacher, size, config.distill_weight).to(self.device)
                       for size in self.sizes}
        self.dataset = TorchDetectionDataset(_train_set(train, self.names), model.input_size, config.resize,
                                             config.augment, config.seed)
        self.sampler = DistributedSampler(self.dataset, context.world_size, context.rank, shuffle=True,
                                          seed=config.seed)
        self.loader = DataLoader(self.dataset, _rank_batch(config.batch, context.world_size), sampler=self.sampler,
                                 num_workers=config.workers, collate_fn=collate, pin_memory=self.device.type == "cuda")
        self.bn_loader = _precise_bn_loader(self.dataset.dataset, model.input_size, config)
        self.optimizer = _sgd(model, config)
        total = config.epochs * len(self.loader)
        self.scheduler = warmup_cosine(self.optimizer, total, min(round(config.warmup_epochs * len(self.loader)),
                                                                  total), config.final_lr_ratio)
        self.amp = config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ema = ModelEMA(model, config.ema_decay) if config.ema else None
        self.net: torch.nn.Module = model
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None

    @property
    def eval_model(self) -> Darknet:
        return self.ema.module if self.ema is not None else self.model

    def wrap(self) -> None:
        """DDP under torchrun, after any resume so that every rank starts from the loaded weights."""
        if self.context.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=device_ids)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training set; the epoch's mean losses (this rank's batches)."""
        start = time.perf_counter()
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        torch.manual_seed(_epoch_seed(self.config.seed, epoch, self.context.rank))  # dropout draws
        self.model.train()
        if self.config.freeze_bn_stats:
            freeze_bn_stats(self.model)
        sums: dict[str, float] = {}
        batches = tqdm(self.loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch", leave=False,
                       disable=not (self.config.progress and self.context.is_main))
        for step, (images, targets) in enumerate(batches):
            parts = self._step(images, targets, self._batch_size(epoch, step))
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            batches.set_postfix(loss=f"{parts['loss']:.4g}")
        steps = max(len(self.loader), 1)
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
        record.update({key: value / steps for key, value in sums.items()})
        record["seconds"] = time.perf_counter() - start
        return record

    def _batch_size(self, epoch: int, step: int) -> tuple[int, int]:
        """The input size of batch `step` of `epoch`: the same on every rank and on a resumed run."""
        if len(self.sizes) == 1:
            return self.sizes[0]
        return self.sizes[int(np.random.default_rng([self.config.seed, epoch, step]).integers(len(self.sizes)))]

    def _step(self, images: torch.Tensor, targets: torch.Tensor, size: tuple[int, int]) -> dict[str, float]:
        images = images.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)  # normalized to the input: valid at any size
        if tuple(images.shape[-2:]) != size:
            images = nn.functional.interpolate(images, size=size, mode="bilinear", align_corners=False)
        with torch.autocast(self.device.type, enabled=self.amp):
            outputs = self.net(images)
        losses = self.losses[size]
        loss, parts = losses.detection(outputs, targets)  # batch size x the sum of the parts (loss.py)
        if losses.distill is not None:
            distill = losses.distill(images, outputs)
            loss = loss + images.shape[0] * distill
            parts["distill"] = distill.detach()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at step {self.scheduler.last_epoch} "
                f"({ {k: round(v.item(), 4) for k, v in parts.items()} }): lower the learning rate"
            )
        # DDP averages gradients over ranks; the loss is a sum over images, so scale back to the global batch
        self.scaler.scale(loss * self.context.world_size).backward()
        if self.config.max_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.scheduler.step()
        values = {key: value.item() for key, value in parts.items()}
        return {"loss": sum(values.values()), **values}

    def end_epoch(self, record: dict[str, Any]) -> None:
        """Precise BN, validate, then write checkpoints, the resume state and the log (rank 0); all ranks wait."""
        start = time.perf_counter()
        self.epoch = record["epoch"]
        last = self.epoch == self.config.epochs
        validating = self.val is not None and (self.epoch % self.config.eval_every == 0 or self.epoch == 0 or last)
        recompute = self.config.precise_bn_batches and not self.config.freeze_bn_stats
        if self.context.is_main and self.epoch > 0 and (validating or last) and recompute:
            recompute_bn_stats(self.eval_model, (images for images, _ in self.bn_loader), self.device)
        self.context.sync_from_main(self.model)
        if self.ema is not None:
            self.context.sync_from_main(self.ema.module)
        if self.context.is_main:
            if validating:
                metrics = validate(self.eval_model, self.names, self.val, resize=self.config.resize,
                                   device=self.device, progress=self.config.progress)
                record.update(ap50=metrics["ap50"], ap50_95=metrics["ap50_95"])
            record["seconds"] += time.perf_counter() - start
            self.history.append(record)
            self._save(record)
        self.context.barrier()

    def _save(self, record: dict[str, Any]) -> None:
        meta = {**self.metadata, **{k: record.get(k) for k in ("epoch", "ap50", "ap50_95")},
                "resize": self.config.resize, "finetune": self.config.to_dict()}
        save_checkpoint(self.out_dir / "last.pt", self.eval_model, self.names, meta)
        metric = record.get(self.config.best_metric)
        if metric is not None and (self.best is None or metric > self.best[self.config.best_metric]):
            self.best = dict(record)
            save_checkpoint(self.out_dir / "best.pt", self.eval_model, self.names, meta)
        state = {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "cfg": self.model.cfg_text(),
            "names": self.names,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "history": self.history,
            "best": self.best,
        }
        with atomic_path(self.out_dir / STATE_FILE) as tmp:
            torch.save(state, tmp)
        write_history(self.out_dir, self.history)

    def restore(self) -> None:
        """Load out_dir/train_state.pt after checking it belongs to this model, classes and config."""
        path = self.out_dir / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"resume: {path} not found (nothing to resume; start without resume)")
        state = torch.load(path, map_location=self.device, weights_only=True)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"{path}: not a finetune state (expected format {STATE_FORMAT})")
        if state["cfg"] != self.model.cfg_text() or state["names"] != self.names:
            raise ValueError(f"{path}: written for another model (its cfg or class names differ from this one)")
        changed = _config_changes(state["config"], self.config.to_dict())
        if changed:
            raise ValueError(f"{path}: resume needs the same finetune settings; changed: {', '.join(changed)}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.history, self.best = state["epoch"], state["history"], state["best"]

    def result(self) -> FinetuneResult:
        if self.ema is not None:
            self.model.load_state_dict(self.ema.module.state_dict())
        return FinetuneResult(self.model, self.names, self.history, self.best, self.out_dir)


def training_sizes(model: Darknet, multi_scale: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The model's own input size, then the other `multi_scale` sizes; each must tile every head's grid."""
    sizes = [model.input_size, *(s for s in dict.fromkeys(multi_scale) if s != model.input_size)]
    stride = max(head.stride for head in model.heads)
    for height, width in sizes:
        if height <= 0 or width <= 0 or height % stride or width % stride:
            raise ValueError(f"multi-scale size {height}x{width}: needs positive multiples of the model's "
                             f"largest head stride {stride}")
    return sizes


class _SizeLosses(nn.Module):
    """The detection loss and the optional distillation of one training input size (their grid constants)."""

    def __init__(self, detection: DetectionLoss, distill: DistillLoss | None):
        super().__init__()
        self.detection, self.distill = detection, distill


def _size_losses(model: Darknet, teacher: Darknet | None, size: tuple[int, int], weight: float) -> _SizeLosses:
    """Losses built for `size`; the model is only read for its heads and cfg (the weights train as they are)."""
    at_size = model if size == model.input_size else model.at_input_size(*size)
    distill = None
    if teacher is not None:
        teacher_at_size = teacher if size == teacher.input_size else teacher.at_input_size(*size)
        distill = DistillLoss(teacher_at_size, at_size.heads, weight)
    return _SizeLosses(DetectionLoss(at_size), distill)


def _train_set(train: DetectionDataset, names: list[str]) -> DetectionDataset:
    """The training set with the model's class ids: every model class must be a class of the set."""
    missing = [name for name in names if name not in train.names]
    if missing:
        raise DatasetError(f"training set {train.source or ''} has no class {', '.join(missing)} of the model "
                           f"(its classes: {', '.join(train.names)})")
    return train if train.names == tuple(names) else train.select_classes(names)


def _val_set(val: DetectionDataset | None, names: list[str]) -> DetectionDataset | None:
    """The validation set limited to the model's classes (validate matches them by name)."""
    if val is None:
        return None
    shared = [name for name in val.names if name in names]
    if not shared:
        raise DatasetError(f"validation set {val.source or ''} shares no class with the model "
                           f"(its classes: {', '.join(val.names)}; the model's: {', '.join(names)})")
    return val if len(shared) == len(val.names) else val.select_classes(shared)


def _precise_bn_loader(train: DetectionDataset, input_size: tuple[int, int], config: FinetuneConfig) -> DataLoader:
    """precise_bn_batches batches of training images without augmentation, spread evenly over the set (a joined
    set is in source order: its first images would all be one source's)."""
    count = min(len(train), config.precise_bn_batches * config.batch)
    indices = np.unique(np.linspace(0, len(train) - 1, count).round().astype(int)).tolist()
    plain = TorchDetectionDataset(train, input_size, config.resize)
    return DataLoader(Subset(plain, indices), config.batch, num_workers=config.workers, collate_fn=collate)


def _rank_batch(batch: int, world_size: int) -> int:
    if batch % world_size:
        raise ValueError(f"batch {batch} does not split evenly over {world_size} processes")
    return batch // world_size


def _sgd(model: Darknet, config: FinetuneConfig) -> torch.optim.SGD:
    """Darknet's update: momentum, weight decay on conv weights only (not on biases or BN scales)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def _config_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    saved = with_defaults(saved, FinetuneConfig().to_dict())  # settings added since take their defaults
    keys = sorted(set(saved) | set(current))
    return [f"{k} ({saved.get(k)!r} -> {current.get(k)!r})" for k in keys
            if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)]

