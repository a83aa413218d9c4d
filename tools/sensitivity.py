#!/usr/bin/env python3
"""Layer-wise pruning sensitivity: each channel group pruned alone by 5..90%, AP drop per ratio, FLOPs per group.

    python tools/sensitivity.py --checkpoint runs/prune-xl/pretrain/done.pt --val yolo:../shared/data/coco128-train \\
        --classes person --target-flops 0.3 --out runs/sensitivity-xl
    python tools/prune.py ... --criterion sensitivity --sensitivity runs/sensitivity-xl/sensitivity.json

Writes sensitivity.json (resumable: an interrupted analysis continues at the next group; with
--target-flops it also holds the derived per-group "widths") and sensitivity.png (AP vs ratio per group).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.data.specs import load_dataset
from yolo_compress.models.atomic import write_json
from yolo_compress.models.source import load_model_source
from yolo_compress.prune.sensitivity import DEFAULT_RATIOS, analyze, derive_widths, plot_sensitivity
from yolo_compress.train.classes import select_classes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", help="Darknet cfg file or built-in name")
    p.add_argument("--weights")
    p.add_argument("--checkpoint")
    p.add_argument("--names")
    p.add_argument("--val", required=True, help="dataset spec the AP is measured on")
    p.add_argument("--classes", help="comma-separated classes to keep, e.g. person")
    p.add_argument("--ratios", default=",".join(str(r) for r in DEFAULT_RATIOS))
    p.add_argument("--layers", help="comma-separated group layers to analyze (default: all)")
    p.add_argument("--target-flops", type=float, help="derive per-group widths reaching this conv FLOPs ratio")
    p.add_argument("--resize", default="stretch", choices=["stretch", "letterbox"])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if (args.cfg is None) == (args.checkpoint is None):
        p.error("give --cfg (with optional --weights) or --checkpoint")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        source = load_model_source(args.cfg, args.weights, args.checkpoint, args.names)
        classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
        model, names = source.model, source.names
        if classes and classes != names:
            model, names = select_classes(model, names, classes), classes
        val = load_dataset(args.val, classes)
        path = args.out / "sensitivity.json"
        layers = [int(v) for v in args.layers.split(",")] if args.layers else None
        result = analyze(model, names, val, path, [float(r) for r in args.ratios.split(",")], args.resize,
                         layers=layers)
        if args.target_flops is not None:
            result["target_flops"] = args.target_flops
            result["widths"] = derive_widths(result, model, args.target_flops)
            write_json(path, result)
        plot_sensitivity(result, args.out / "sensitivity.png")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"ap50": result["ap50"], "groups": len(result["groups"]), "widths": result.get("widths")}))
    print(f"wrote {path} and {args.out / 'sensitivity.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
