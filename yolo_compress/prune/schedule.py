"""The iterative schedule: K times (score, prune, finetune at a low learning rate, measure), resumable.

Each iteration lives in its own folder and every step of it leaves a finished file behind before the next
starts (all written atomically), so a run killed at any moment, even by SIGKILL, resumes where it stopped
and ends with the same result:

    iter_00/model.pt                 the starting model (iteration 0 is never pruned)
    iter_k/pruned.pt, pruned.json    right after pruning (channels removed per layer)
    iter_k/finetune/                 the finetune's own resumable state (train.finetune)
    iter_k/model.pt, model.onnx      the finetuned model and its fused, verified ONNX export
    iter_k/metrics.json              AP, params, FLOPs, ORT latency: written last, it marks k as done

`run_log.jsonl` (one line per finished iteration) is regenerated from the metrics files after each one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.models.atomic import atomic_path, plain_number, with_defaults, write_json
from yolo_compress.models.checkpoint import load_checkpoint, save_checkpoint
from yolo_compress.models.complexity import layer_costs
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.prune.allocation import ROUND_TO
from yolo_compress.prune.calibration import make_importance
from yolo_compress.prune.depth import ResidualBlock, remove_blocks, surviving_layers
from yolo_compress.prune.groups import channel_groups
from yolo_compress.prune.importance import FlopsRegularized
from yolo_compress.prune.measure import MeasureSettings, measure_onnx
from yolo_compress.prune.sensitivity import derive_widths, renumbered
from yolo_compress.prune.step import StepSettings, conv_widths, prune_step
from yolo_compress.train.finetune import RESUMABLE_CHANGES, FinetuneConfig, finetune

log = logging.getLogger(__name__)


@dataclass
class ScheduleConfig:
    """What one pruning run does. Each iteration either removes `step_amount` of the prunable channels left
    (in proportion to the current size) or, with `target_flops` (ratio of the starting conv FLOPs), cuts
    down a geometric path that reaches it at the last iteration. Criterion "sensitivity" needs
    `sensitivity` (tools/sensitivity.py's per-group AP curves) and `target_flops`: every iteration's widths
    are derived from the curves for that iteration's point on the path (sensitivity.derive_widths), so the
    groups that cost nothing go first and the fragile ones only when the target needs them; channels are
    chosen by L1 norm within a group, as in the analysis. `flops_weight` > 0 subtracts that weight x each
    channel's relative FLOPs from the scores (importance.FlopsRegularized).

    `drop_blocks` (residual blocks named by their cfg layers, "84-88") adds a depth iteration first:
    iteration 1 removes those blocks (depth.remove_blocks) and finetunes, then the `iterations` channel
    iterations follow on the shallower model, on the same FLOPs path (the depth cut counts towards it).
    Records keep the start model's layer numbering: a removed conv has width 0.

    `keep_best` validates the cut model and every finetune epoch on the validation set and keeps the best
    (train.finetune's best.pt): on 1.1-xl the finetune on Penn-Fudan + coco128 took a depth cut's
    validation AP50 from 0.709 down to 0.664, and this keeps the cut instead."""

    criterion: str = "taylor"
    iterations: int = 10
    step_amount: float = 0.1
    target_flops: float | None = None
    rule: str = "uniform"
    round_to: int = ROUND_TO
    min_channels: int = 8
    pad_to: int = 1  # exported ONNX channels padded to multiples of this (models/pad.py), the ONNX only
    flops_weight: float = 0.0
    calibration_batches: int = 8
    calibration_batch: int = 8
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(epochs=2, lr=1e-4, warmup_epochs=0.0))
    distill: bool = False
    seed: int = 0
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    sensitivity: dict[str, Any] | None = None
    drop_blocks: list[str] = field(default_factory=list)
    keep_best: bool = False

    def __post_init__(self) -> None:
        if (self.criterion == "sensitivity") != (self.sensitivity is not None):
            raise ValueError("criterion 'sensitivity' needs the results of tools/sensitivity.py, and only it")
        if self.criterion == "sensitivity" and self.target_flops is None:
            raise ValueError("criterion 'sensitivity' needs a target FLOPs ratio (--target-flops)")
        if isinstance(self.finetune, dict):
            self.finetune = FinetuneConfig(**self.finetune)
        if isinstance(self.measure, dict):
            self.measure = MeasureSettings(**self.measure)
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.target_flops is not None and not 0 < self.target_flops < 1:
            raise ValueError(f"target_flops is a ratio of the starting FLOPs in (0, 1), got {self.target_flops}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def dropped(self) -> list[ResidualBlock]:
        """The residual blocks `drop_blocks` names."""
        return [ResidualBlock.from_name(name) for name in self.drop_blocks]

    @property
    def depth_iterations(self) -> int:
        """1 when the run starts by removing blocks, else 0."""
        return 1 if self.drop_blocks else 0

    @property
    def total_iterations(self) -> int:
        return self.depth_iterations + self.iterations

    def path_point(self, k: int) -> float:
        """Iteration k's point on the FLOPs path (a ratio of the start model's conv FLOPs)."""
        assert self.target_flops is not None
        return math.pow(self.target_flops, (k - self.depth_iterations) / max(self.iterations, 1))


def conv_flops(model: Darknet) -> float:
    return float(sum(c.flops for c, b in zip(layer_costs(model), model.layers, strict=True)
                     if isinstance(b, ConvBlock)))


def iteration_dir(out_dir: Path, k: int) -> Path:
    return out_dir / f"iter_{k:02d}"


@dataclass(frozen=True)
class Origin:
    """What every iteration is recorded against: the start model's conv widths and conv FLOPs, and for each
    layer of the pruned models (after the depth cut, if any) its index in the start model's cfg."""

    widths: dict[int, int]
    flops: float
    layers: list[int]

    def widths_of(self, model: Darknet) -> dict[int, int]:
        """`model`'s conv widths in the start model's numbering; a removed conv has width 0."""
        return {layer: 0 for layer in self.widths} | {self.layers[i]: w for i, w in conv_widths(model).items()}


@dataclass
class PruneRun:
    """One criterion's run in `out_dir`: the model, the data it finetunes and measures on, and its config."""

    out_dir: Path
    names: list[str]
    train: DetectionDataset
    val: DetectionDataset
    frames: Sequence[np.ndarray]
    config: ScheduleConfig
    progress: bool = True

    def run(self, start: Darknet) -> list[dict[str, Any]]:
        """Every iteration's record, running only those not finished yet (resume is the default)."""
        if self.config.total_iterations < 1:
            raise ValueError("nothing to prune: 0 iterations and no blocks to drop")
        self._check_config()
        teacher = None
        model = self._iteration_zero(start)
        if self.config.distill:
            teacher = load_checkpoint(iteration_dir(self.out_dir, 0) / "model.pt").model
        origin = Origin(conv_widths(model), conv_flops(model), surviving_layers(len(model.layers), self.config.dropped))
        for k in range(1, self.config.total_iterations + 1):
            if (iteration_dir(self.out_dir, k) / "metrics.json").is_file():
                model = load_checkpoint(iteration_dir(self.out_dir, k) / "model.pt").model
                continue
            model = self._iteration(k, model, teacher, origin)
        return self.records()

    def records(self) -> list[dict[str, Any]]:
        """Metrics of the finished iterations, in order."""
        found = []
        for k in range(self.config.total_iterations + 1):
            path = iteration_dir(self.out_dir, k) / "metrics.json"
            if not path.is_file():
                break
            found.append(json.loads(path.read_text()))
        return found

    def _check_config(self) -> None:
        """A resumed run must be the same run: refuse to mix iterations made with other settings."""
        path = self.out_dir / "schedule.json"
        current = json.loads(json.dumps(self.config.to_dict(), default=plain_number))
        if path.is_file():
            defaults = json.loads(json.dumps(ScheduleConfig().to_dict(), default=plain_number))
            saved = with_defaults(json.loads(path.read_text()), defaults)
            for settings in (saved, current):  # where and how visibly it runs may change on resume
                for key in RESUMABLE_CHANGES:
                    settings["finetune"].pop(key, None)
            if saved != current:
                changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
                raise ValueError(f"{path}: this output folder holds a run with other settings ({', '.join(changed)});"
                                 " use another --out, or the same settings to resume")
        else:
            write_json(path, current)

    def _iteration_zero(self, start: Darknet) -> Darknet:
        folder = iteration_dir(self.out_dir, 0)
        if not (folder / "model.pt").is_file():
            save_checkpoint(folder / "model.pt", start, self.names, {"iteration": 0})
        model = load_checkpoint(folder / "model.pt").model
        if not (folder / "metrics.json").is_file():
            self._finish(0, model, conv_widths(model), {}, conv_flops(model))
        return model

    def _iteration(self, k: int, model: Darknet, teacher: Darknet | None, origin: Origin) -> Darknet:
        folder = iteration_dir(self.out_dir, k)
        if (folder / "pruned.pt").is_file():
            model = load_checkpoint(folder / "pruned.pt").model
            removed = {int(layer): n for layer, n in json.loads((folder / "pruned.json").read_text()).items()}
        else:
            model, removed = self._prune(k, model, origin)
            write_json(folder / "pruned.json", removed)  # before pruned.pt, whose presence marks the cut done
            save_checkpoint(folder / "pruned.pt", model, self.names, {"iteration": k, "stage": "pruned"})
        finetuned, extra = self._finetune(k, model, teacher, folder / "finetune")
        widths = origin.widths_of(finetuned)
        total_removed = {layer: origin.widths[layer] - widths[layer] for layer in origin.widths
                         if widths[layer] != origin.widths[layer]}
        extra |= {"removed": removed, "removed_total": total_removed}
        if self.config.drop_blocks:
            extra["removed_blocks"] = self.config.drop_blocks
        self._finish(k, finetuned.eval(), widths, extra, origin.flops)
        return finetuned

    def _finetune(self, k: int, model: Darknet, teacher: Darknet | None,
                  ft_dir: Path) -> tuple[Darknet, dict[str, Any]]:
        """Iteration k's cut model after its finetune (the cut itself with 0 epochs) and what the log records."""
        if self.config.finetune.epochs == 0:
            return model, {}
        resume = (ft_dir / "train_state.pt").is_file()
        # Without keep_best no validation inside the finetune: the ONNX measurement below is the AP that counts.
        val = self.val if self.config.keep_best else None
        result = finetune(model.train(), self.names, self.train, val, self.config.finetune, ft_dir,
                          resume=resume, teacher=teacher, metadata={"iteration": k, "criterion": self.config.criterion})
        if self.config.keep_best and result.best_path is not None:
            return load_checkpoint(result.best_path).model, {"finetune_epoch_kept": result.best["epoch"]}
        return result.model, {}

    def _prune(self, k: int, model: Darknet, origin: Origin) -> tuple[Darknet, dict[int, int]]:
        """The cut of iteration k and the channels it removed per conv, in the start model's numbering."""
        cfg = self.config
        if k <= cfg.depth_iterations:
            shallow = remove_blocks(model, cfg.dropped)  # which checks the blocks against the model
            removed = {i: model.layers[i].conv.out_channels for block in cfg.dropped for i in block.layers
                       if isinstance(model.layers[i], ConvBlock)}
            log.info("iteration %d: removed %d residual blocks (%d convs)", k, len(cfg.dropped), len(removed))
            return shallow, removed
        criterion = "l1" if cfg.criterion == "sensitivity" else cfg.criterion
        importance = make_importance(criterion, model, self.train, cfg.calibration_batches,
                                     cfg.calibration_batch, cfg.finetune.resize, cfg.seed + k, self.progress)
        if cfg.flops_weight:
            importance = FlopsRegularized(importance, model, channel_groups(model), cfg.flops_weight)
        if cfg.sensitivity is not None:
            settings = StepSettings(rule=cfg.rule, widths=self._sensitivity_widths(k, origin), round_to=cfg.round_to,
                                    min_channels=cfg.min_channels)
        elif cfg.target_flops is not None:
            target = origin.flops * cfg.path_point(k)
            settings = StepSettings(rule=cfg.rule, target_flops=target, round_to=cfg.round_to,
                                    min_channels=cfg.min_channels)
        else:
            settings = StepSettings(rule=cfg.rule, amount=cfg.step_amount, round_to=cfg.round_to,
                                    min_channels=cfg.min_channels)
        removed = prune_step(model, importance, settings)
        log.info("iteration %d: removed %d channels in %d layers", k, sum(removed.values()), len(removed))
        return model, {origin.layers[layer]: n for layer, n in removed.items()}

    def _sensitivity_widths(self, k: int, origin: Origin) -> dict[int, int]:
        """Widths derived from the curves for iteration k's point on the path, relative to the model channel
        pruning starts from (iteration 0, or the depth cut: its groups are renumbered to match)."""
        cfg = self.config
        assert cfg.sensitivity is not None
        reference = load_checkpoint(iteration_dir(self.out_dir, cfg.depth_iterations) / "model.pt").model
        target = origin.flops * cfg.path_point(k) / conv_flops(reference)
        if target >= 1:
            return {}  # the depth cut alone is already past this point
        return derive_widths(renumbered(cfg.sensitivity, origin.layers), reference, target)

    def _finish(self, k: int, model: Darknet, widths: dict[int, int], extra: dict[str, Any], flops0: float) -> None:
        """Save, export, measure; metrics.json last (it marks the iteration done), then the run log."""
        folder = iteration_dir(self.out_dir, k)
        save_checkpoint(folder / "model.pt", model, self.names, {"iteration": k, "criterion": self.config.criterion})
        onnx_path = export_onnx(model, self.names, folder / "model.onnx", resize=self.config.finetune.resize,
                                metadata={"iteration": k, "criterion": self.config.criterion},
                                pad_to=self.config.pad_to).path
        measured = measure_onnx(onnx_path, self.val, self.frames, self.config.measure)
        record = {"iteration": k, "criterion": self.config.criterion, **measured,
                  "conv_flops_ratio": conv_flops(model) / flops0, "widths": widths, **extra}
        write_json(folder / "metrics.json", record)
        lines = "".join(json.dumps(r, default=plain_number) + "\n" for r in self.records())
        with atomic_path(self.out_dir / "run_log.jsonl") as tmp:
            tmp.write_text(lines)
        log.info("iteration %d: AP50 %.3f, %.2f GFLOPs, %.2f ms", k, record["ap50"], record["gflops"],
                 record["latency_ms"])
