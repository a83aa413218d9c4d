#!/usr/bin/env python3
"""Finetune a Darknet model (cfg + weights, or a checkpoint) on a detection dataset; resumable.

    python tools/finetune.py --cfg yolo-fastest-1.1.cfg --weights yolo-fastest-1.1.weights \
        --data yolo:../shared/data/pennfudan --val-from yolo:../shared/data/coco128-train \
        --classes person --epochs 10 --out runs/person
    python tools/finetune.py --checkpoint runs/person/best.pt --data yolo:DIR --val yolo:DIR2 \
        --epochs 3 --lr 1e-4 --teacher unpruned.pt --out runs/recover [--resume]

Under torchrun (torchrun --nproc_per_node 2 tools/finetune.py ...) every process trains a share of each
batch; rank 0 validates and writes. Writes OUT/last.pt, best.pt, train_state.pt, log.csv, log.json, curves.png
(and tests.json with --test).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.data.augment import AugmentConfig
from yolo_compress.data.specs import parse_size, parse_sizes
from yolo_compress.export.onnx_export import RESIZE_MODES
from yolo_compress.train.finetune import BEST_METRICS, FinetuneConfig
from yolo_compress.train.job import FinetuneJob, run_job


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cfg", help="Darknet .cfg file or built-in name (e.g. demo, yolov3-tiny)")
    source.add_argument("--checkpoint", help="self-describing checkpoint (.pt) to continue from")
    parser.add_argument("--weights", help="Darknet .weights for --cfg (omitted: random init, i.e. from scratch)")
    parser.add_argument("--names", help="class names file of the model (default: checkpoint's or beside the cfg)")
    parser.add_argument("--data", required=True, help="training data spec, e.g. yolo:DIR or yolo:A+yolo:B")
    parser.add_argument("--val", help="validation data spec (with --val-from: validated together)")
    parser.add_argument("--val-from", help="data spec to hold --val-fraction of out for validation (rest trains)")
    parser.add_argument("--val-fraction", type=float, default=0.25, help="share held out by --val-from (0.25)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the --val-from split (0)")
    parser.add_argument("--classes", help="comma-separated classes to keep, e.g. person (cuts model and data)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue OUT/train_state.pt exactly")
    teacher = parser.add_mutually_exclusive_group()
    teacher.add_argument("--teacher", help="checkpoint to distill from (e.g. the unpruned model)")
    teacher.add_argument("--teacher-start", action="store_true",
                         help="distill from the starting model (keeps what it knew where the labels are silent)")
    parser.add_argument("--resize", choices=RESIZE_MODES, help="default: the checkpoint's, else stretch")
    parser.add_argument("--input-size", metavar="HxW", type=parse_size, help="train, validate and distill at this "
                        "input instead of the cfg's (the size the model will run at, e.g. 256x256)")
    parser.add_argument("--multi-scale", type=parse_sizes, default=[], metavar="HxW,...", help="other input sizes "
                        "to train at, one drawn per batch (e.g. 288x288,256x256: the tiers' lower resolutions)")
    parser.add_argument("--test", action="append", default=[], metavar="SPEC",
                        help="dataset to score before and after finetuning (repeatable; OUT/tests.json)")
    defaults = FinetuneConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"peak SGD learning rate ({defaults.lr})")
    parser.add_argument("--batch", type=int, default=defaults.batch, help="global batch size")
    parser.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--no-ema", action="store_true", help="validate and save the raw weights, not an EMA")
    parser.add_argument("--no-augment", action="store_true", help="train on the plain runtime preprocessing")
    parser.add_argument("--mosaic", type=float, default=0.0,
                        help="share of samples made a 2x2 mosaic of four images (smaller people; default 0)")
    parser.add_argument("--no-amp", action="store_true", help="float32 on CUDA too")
    parser.add_argument("--freeze-bn", action="store_true",
                        help="keep the model's BN statistics (a pretrained model on a small or other-domain set)")
    parser.add_argument("--precise-bn", type=int, default=defaults.precise_bn_batches, metavar="BATCHES",
                        help="recompute BN statistics on this many training batches before validating (0: off)")
    parser.add_argument("--distill-weight", type=float, default=defaults.distill_weight)
    parser.add_argument("--device", default=defaults.device, help="auto (cuda if available), cpu, cuda:N")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="data loader processes")
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every, help="validate every N epochs")
    parser.add_argument("--best-metric", choices=BEST_METRICS, default=defaults.best_metric)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs} (tools/evaluate.py scores a model as it is)")
    return args


def job_from_args(args: argparse.Namespace) -> FinetuneJob:
    config = FinetuneConfig(
        epochs=args.epochs, lr=args.lr, batch=args.batch, warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay, ema=not args.no_ema, amp=not args.no_amp, device=args.device,
        workers=args.workers, eval_every=args.eval_every, seed=args.seed,
        augment=None if args.no_augment else AugmentConfig(mosaic=args.mosaic), distill_weight=args.distill_weight,
        best_metric=args.best_metric, precise_bn_batches=args.precise_bn, freeze_bn_stats=args.freeze_bn,
        progress=not args.no_progress, multi_scale=tuple(args.multi_scale),
    )
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    return FinetuneJob(
        data=args.data, out=args.out, config=config, cfg=args.cfg, weights=args.weights, checkpoint=args.checkpoint,
        names=args.names, val=args.val, val_from=args.val_from, val_fraction=args.val_fraction,
        split_seed=args.split_seed, classes=classes, teacher=args.teacher, teacher_start=args.teacher_start,
        resize=args.resize, tests=args.test, resume=args.resume, input_size=args.input_size,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    if args.weights and not args.cfg:
        print("finetune: --weights needs --cfg", file=sys.stderr)
        return 2
    try:
        result, tests = run_job(job_from_args(args))
    except (OSError, ValueError, FloatingPointError) as exc:  # DatasetError, CfgError are ValueErrors
        print(f"finetune: {exc}", file=sys.stderr)
        return 1
    for record in result.history:
        aps = f"AP50 {record['ap50']:.4f} AP50:95 {record['ap50_95']:.4f}" if record.get("ap50") is not None else ""
        loss = f"loss {record['loss']:.4f}" if "loss" in record else "start"
        print(f"epoch {record['epoch']:3d}: {loss:14s} {aps}")
    if result.best is not None:
        print(f"best: epoch {result.best['epoch']} -> {result.best_path}")
    print(f"last: {result.last_path}")
    for spec, scores in tests.items():
        line = ", ".join(f"{name}{'' if name == 'before' else ' (epoch ' + str(m['epoch']) + ')'} AP50 "
                         f"{m['ap50']:.4f} AP50:95 {m['ap50_95']:.4f}" for name, m in scores.items())
        print(f"{spec} ({scores['before']['n_gt']} boxes): {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
