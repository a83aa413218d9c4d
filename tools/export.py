#!/usr/bin/env python3
"""Export a Darknet model (cfg + weights, or a checkpoint) to the fused, decoded ONNX contract.

    python tools/export.py --cfg yolo-fastest-1.1.cfg --weights yolo-fastest-1.1.weights \
        --names coco.names --out yolo-fastest-1.1.onnx
    python tools/export.py --checkpoint runs/prune/iter_03.pt --out medium.onnx
"""

from __future__ import annotations

import argparse
import logging
import sys

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.export.onnx_export import RESIZE_MODES, ExportError, export_onnx
from yolo_compress.models.pad import PAD_HELP, pad_multiple
from yolo_compress.models.source import load_model_source
from yolo_compress.runtime.contract import FRAMES_INPUT, IMAGES_INPUT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cfg", help="Darknet .cfg file or built-in name (e.g. yolov3-tiny, demo)")
    source.add_argument("--checkpoint", help="self-describing checkpoint (.pt) written by the offline tools")
    parser.add_argument("--weights", help="Darknet .weights (with --cfg; omitted = random init)")
    parser.add_argument("--names", help="class names file, one per line (default: from checkpoint or beside cfg)")
    parser.add_argument("--resize", choices=RESIZE_MODES, default=None,
                        help="how the runtime fits frames to the input (default: checkpoint's, else stretch "
                             "as darknet models trained with letter_box=0 expect)")
    parser.add_argument("--input", choices=[FRAMES_INPUT, IMAGES_INPUT], default=FRAMES_INPUT,
                        help="input form: frames = uint8 BGR [B,H,W,3], the camera's bytes, scaling in the graph "
                             "(default: the fastest on the robot); images = float32 RGB 0..1 [B,3,H,W]")
    parser.add_argument("--pad-channels", type=pad_multiple, default="auto", help=PAD_HELP)
    parser.add_argument("--tier", help="tier name stored in the model metadata")
    parser.add_argument("--out", required=True, help="output .onnx path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    if args.weights and not args.cfg:
        print("export: --weights needs --cfg", file=sys.stderr)
        return 2
    try:
        src = load_model_source(args.cfg, args.weights, args.checkpoint, args.names)
        resize = args.resize or src.metadata.get("resize", "stretch")
        extra = {"tier": args.tier} if args.tier else {}
        report = export_onnx(src.model, src.names, args.out, resize=resize, metadata=extra, input_name=args.input,
                             pad_to=args.pad_channels)
    except (OSError, ValueError, ExportError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {report.path}: input {args.input} {report.input_size[0]}x{report.input_size[1]}, "
        f"{report.num_boxes} boxes, "
        f"{len(src.names)} classes, {report.params / 1e6:.3f} M params, {report.gflops:.3f} GFLOPs; "
        f"ONNX Runtime == torch (max abs diff boxes / input side {report.max_abs_diff_boxes:.1e}, "
        f"scores {report.max_abs_diff_scores:.1e})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
