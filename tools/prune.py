#!/usr/bin/env python3
"""Prune a YOLO into fast / medium / accurate tiers: iterative channel pruning with finetuning, measured tiers.

With no arguments this is the built-in demo: synthetic scenes, the `demo` cfg trained from scratch, then
pruned with the Taylor criterion, three tiers with a report in out/prune-demo (minutes on 2 CPU cores):

    python tools/prune.py
    python tools/prune.py --cfg yolo-fastest-1.1-xl.cfg --weights yolo-fastest-1.1-xl.weights \\
        --data yolo:../shared/data/pennfudan --val yolo:../shared/data/coco128-train --classes person \\
        --pretrain-epochs 5 --criterion taylor --iterations 10 --target-flops 0.3 --finetune-epochs 2 \\
        --lr 1e-4 --sizes 256x256 --int8 --out runs/prune-xl
    python tools/prune.py ... --compare taylor,l1          # same schedule and budget per criterion
    python tools/prune.py ... --resume                      # after an interruption (even SIGKILL)

The output folder gets models/{fast,medium,accurate}.onnx, tiers.yaml (point the node's tiers_file at
it), report.md, report.json and PNGs (AP vs FLOPs, AP vs latency, Pareto front, channels per layer).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.data.augment import AugmentConfig
from yolo_compress.data.specs import parse_sizes
from yolo_compress.models.pad import PAD_HELP, pad_multiple
from yolo_compress.prune.allocation import ROUND_TO
from yolo_compress.prune.importance import CRITERIA
from yolo_compress.prune.job import DataSpec, ModelSpec, PruneJob, run_job
from yolo_compress.prune.measure import MeasureSettings
from yolo_compress.prune.pipeline import PipelineConfig
from yolo_compress.prune.report import run_tool
from yolo_compress.prune.schedule import ScheduleConfig
from yolo_compress.prune.sensitivity import load_sensitivity
from yolo_compress.prune.variants import PRECISIONS
from yolo_compress.train.finetune import FinetuneConfig

# The built-in demo: sized to end within 10 minutes on 2 CPU cores (BENCHMARKS.md has the measured time). The
# demo model is trained from scratch for a minute or two, so it recovers from each cut only with a real
# learning rate (1e-2; measured: after a 30% FLOPs cut, 2 epochs at 3e-3 got back AP50 0.20 of 0.67, 5 at 1e-2
# got 0.67); the finetune defaults (2 epochs at 1e-4) are for pretrained models.
DEMO = {"data": "synthetic:400:0", "val": "synthetic:80:1", "out": Path("out/prune-demo"), "pretrain_epochs": 15,
        "pretrain_lr": 0.01, "iterations": 3, "target_flops": 0.35, "finetune_epochs": 5, "lr": 0.01,
        "sizes": "160x160"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("model (default: the built-in demo cfg, trained from scratch)")
    src.add_argument("--cfg", help="Darknet cfg file or built-in name")
    src.add_argument("--weights", help="Darknet .weights for --cfg")
    src.add_argument("--checkpoint", help="a yolo_compress checkpoint (.pt) instead of --cfg")
    src.add_argument("--names", help="class names file (default: beside the weights, or the checkpoint's)")
    data = p.add_argument_group("data (dataset specs: yolo:DIR, voc:DIR, coco:ANN,IMGDIR, synthetic:N[:SEED])")
    data.add_argument("--data", help="training set (finetuning and Taylor calibration)")
    data.add_argument("--val", help="validation set (AP of every candidate; with --val-from: validated together)")
    data.add_argument("--val-from", help="hold --val-fraction of this set out for validation; the rest trains")
    data.add_argument("--val-fraction", type=float, default=0.25)
    data.add_argument("--split-seed", type=int, default=0)
    data.add_argument("--test", action="append", default=[], help="a further set the tiers are scored on in "
                      "the report (repeatable), e.g. 'yolo:../shared/data/sequence/TUD-Campus?names=person'")
    data.add_argument("--classes", help="comma-separated classes to keep, e.g. person")
    sched = p.add_argument_group("schedule")
    sched.add_argument("--criterion", default="taylor", choices=[*CRITERIA, "sensitivity"])
    sched.add_argument("--compare", help="comma-separated criteria run with the same schedule, e.g. taylor,l1")
    sched.add_argument("--sensitivity", type=Path, help="tools/sensitivity.py JSON for --criterion sensitivity")
    sched.add_argument("--iterations", type=int, help="channel pruning iterations (default 10; 0 with "
                       "--drop-blocks: the depth cut alone)")
    sched.add_argument("--drop-blocks", help="remove residual blocks first, as iteration 1 (finetuned like the "
                       "others): N = N blocks chosen greedily, each the one that with those before keeps the most "
                       "AP50 on the validation set (blocks/block_sensitivity.json and .png), or cfg layer ranges "
                       "such as 94-98,99-103")
    sched.add_argument("--target-flops", type=float, help="final conv FLOPs as a ratio of the start model's")
    sched.add_argument("--step", type=float, default=0.1, help="fraction of channels per iteration without "
                       "--target-flops (default 0.1)")
    sched.add_argument("--rule", default="uniform", choices=["global", "uniform"],
                       help="uniform: every group loses the same share (default); global: one threshold on the "
                       "per-layer normalized scores, which on yolo-fastest-1.1-xl cut the wide late layers by "
                       "71%% in one step for 18%% fewer FLOPs and lost the model (BENCHMARKS.md)")
    sched.add_argument("--round-to", type=int, help="every pruned group keeps a multiple of this (default: the "
                       f"--pad-channels multiple, at least {ROUND_TO}: a width between two multiples of the padding "
                       "is padded up at export, so it would lose channels and save no time)")
    sched.add_argument("--min-channels", type=int, default=8)
    sched.add_argument("--flops-weight", type=float, default=0.0, help="FLOPs regularization of the scores "
                       "(0: off; e.g. 0.1 favours cutting expensive layers)")
    sched.add_argument("--calibration-batches", type=int, default=8, help="Taylor calibration batches")
    train = p.add_argument_group("finetuning")
    train.add_argument("--pretrain-epochs", type=int, help="finetune the start model first (demo: from scratch)")
    train.add_argument("--pretrain-lr", type=float, default=1e-3)
    train.add_argument("--finetune-epochs", type=int,
                       help="epochs after each pruning step (default 2; 0: keep each cut as it is)")
    train.add_argument("--lr", type=float, help="finetune learning rate after each step (default 1e-4)")
    train.add_argument("--batch", type=int, default=16)
    train.add_argument("--teacher", action="store_true", help="distill from the unpruned model while finetuning")
    train.add_argument("--distill-weight", type=float, default=FinetuneConfig.distill_weight,
                       help="weight of the distillation term with --teacher (default %(default)s)")
    train.add_argument("--freeze-bn", action="store_true", help="keep BN statistics while finetuning (a small "
                       "or narrow training set otherwise drags them away from the data the model was trained on)")
    train.add_argument("--mosaic", type=float, default=0.0, help="share of finetune samples made a 2x2 mosaic "
                       "of four images (their people at half size and less, as a fixed camera sees most people; "
                       "default 0)")
    train.add_argument("--multi-scale", action="store_true", help="finetune every batch at one of the model's "
                       "input and the --sizes, drawn per batch, so the lower-resolution candidates are trained too, "
                       "not only resized")
    train.add_argument("--keep-best", action="store_true", help="after each cut keep whichever of the cut model "
                       "and its finetune epochs scores best on the validation set (a finetune on data unlike the "
                       "validation set can lose what the cut kept)")
    train.add_argument("--device", default="auto")
    out = p.add_argument_group("variants, measurement and output")
    out.add_argument("--sizes", help="lower input sizes to try, e.g. 256x256,224x224")
    out.add_argument("--int8", action="store_true", help="static int8 QDQ variant of every candidate "
                     "(percentile calibration; --precisions int8-minmax for the faster, less accurate one)")
    out.add_argument("--precisions", help=f"variants to add, comma-separated: {', '.join(PRECISIONS)}")
    out.add_argument("--calibration-frames", type=int, default=200, help="training frames int8 is calibrated on")
    out.add_argument("--pad-channels", type=pad_multiple, default="auto", help=PAD_HELP)
    out.add_argument("--threads", type=int, help="ONNX Runtime threads for latency (default: ORT's)")
    out.add_argument("--conf", type=float, default=0.25, help="serving confidence threshold of the tiers")
    out.add_argument("--out", type=Path)
    out.add_argument("--resume", action="store_true", help="continue the run in --out")
    out.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    demo = args.cfg is None and args.checkpoint is None
    for key, value in (DEMO if demo else {}).items():
        if getattr(args, key) is None or (key == "pretrain_lr" and args.pretrain_lr == 1e-3):
            setattr(args, key, value)
    if demo:
        args.cfg = "demo"
    if args.data is None or (args.val is None and args.val_from is None):
        p.error("give --data and --val or --val-from (or both) with --cfg or --checkpoint")
    if args.out is None:
        p.error("--out is required with --cfg or --checkpoint")
    if args.iterations == 0 and not args.drop_blocks:
        p.error("--iterations 0 leaves nothing to prune without --drop-blocks")
    return args


def build_job(args: argparse.Namespace) -> PruneJob:
    augment, sizes = AugmentConfig(mosaic=args.mosaic), parse_sizes(args.sizes)
    multi_scale = tuple(sizes) if args.multi_scale else ()
    epochs = 2 if args.finetune_epochs is None else args.finetune_epochs
    finetune = FinetuneConfig(epochs=epochs, lr=args.lr or 1e-4, batch=args.batch,
                              warmup_epochs=0.0, device=args.device, progress=not args.no_progress,
                              freeze_bn_stats=args.freeze_bn, distill_weight=args.distill_weight,
                              augment=augment, multi_scale=multi_scale)
    pretrain = None
    if args.pretrain_epochs:
        pretrained = args.weights is not None or args.checkpoint is not None  # else: from scratch
        pretrain = FinetuneConfig(epochs=args.pretrain_epochs, lr=args.pretrain_lr, batch=args.batch,
                                  device=args.device, progress=not args.no_progress, augment=augment,
                                  multi_scale=multi_scale, validate_first=pretrained,
                                  eval_every=1 if pretrained else args.pretrain_epochs)
    sensitivity = load_sensitivity(args.sensitivity) if args.criterion == "sensitivity" else None
    target_flops = args.target_flops
    if sensitivity is not None and target_flops is None:
        target_flops = sensitivity.get("target_flops")  # the target the analysis derived its widths for
    schedule = ScheduleConfig(
        criterion=args.criterion, iterations=10 if args.iterations is None else args.iterations,
        step_amount=args.step,
        target_flops=target_flops, rule=args.rule, round_to=args.round_to or max(ROUND_TO, args.pad_channels),
        min_channels=args.min_channels,
        pad_to=args.pad_channels,
        flops_weight=args.flops_weight, calibration_batches=args.calibration_batches, calibration_batch=args.batch,
        finetune=finetune,
        distill=args.teacher, keep_best=args.keep_best,
        measure=MeasureSettings(conf_threshold=args.conf, threads=args.threads),
        sensitivity=sensitivity,
    )
    criteria = [c.strip() for c in args.compare.split(",")] if args.compare else [args.criterion]
    precisions = [p.strip() for p in (args.precisions or "").split(",") if p.strip()]
    if args.int8 and "int8" not in precisions:
        precisions.insert(0, "int8")
    pipeline = PipelineConfig(criteria=criteria, schedule=schedule, sizes=sizes, precisions=precisions)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    model = ModelSpec(args.cfg, args.weights, args.checkpoint, args.names)
    data = DataSpec(args.data, args.val, args.val_from, args.val_fraction, args.split_seed, args.test)
    return PruneJob(model, data, args.out, classes, pretrain, pipeline, calibration_frames=args.calibration_frames,
                    progress=not args.no_progress, drop_blocks=args.drop_blocks)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()) and not args.resume:
        print(f"error: {args.out} already holds a run: add --resume to continue it, or choose another --out",
              file=sys.stderr)
        return 2
    return run_tool(lambda: run_job(build_job(args)), args.out)


if __name__ == "__main__":
    sys.exit(main())
