#!/usr/bin/env python3
"""Run a contract ONNX model on images, folders of images and videos (torch-free).

    python tools/detect.py --model fast.onnx --json out.json --save-dir annotated photos/ clip.mp4
    python tools/detect.py --model fast.onnx --classes person,car --conf 0.3 street.jpg

Unreadable inputs are named on stderr and skipped; the exit code is 1 at the end if any failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.models.atomic import write_json
from yolo_compress.runtime.contract import ContractError
from yolo_compress.runtime.detect_files import detect_frames
from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.sources import count_frames, expand_sources, iter_frames


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="contract .onnx model")
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--classes", help="comma-separated class names or ids to detect (default: all)")
    parser.add_argument("--max-detections", type=int, default=100, help="per image (default 100)")
    parser.add_argument("--providers", help="comma-separated preference, e.g. tensorrt,cuda,cpu (default: fastest)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: one per core)")
    parser.add_argument("--json", type=Path, help="write detections here as JSON")
    parser.add_argument("--save-dir", type=Path, help="write annotated images here")
    parser.add_argument("sources", nargs="+", help="image files, folders of images, videos")
    return parser.parse_args(argv)


def split_list(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        detector = Detector(
            args.model,
            providers=split_list(args.providers),
            conf_threshold=args.conf,
            iou_threshold=args.iou,
            classes=split_list(args.classes),
            max_detections=args.max_detections,
            intra_op_threads=args.threads,
        )
    except (OSError, ValueError, ContractError) as exc:
        print(f"detect: {exc}", file=sys.stderr)
        return 2
    paths = expand_sources(args.sources)
    frames = tqdm(iter_frames(paths), total=count_frames(paths), unit="img", file=sys.stderr)
    run = detect_frames(detector, frames, args.save_dir, on_failure=lambda f: tqdm.write(
        f"detect: {f.name}: {f.error}, skipped", file=sys.stderr))
    if args.json:
        write_json(args.json, run.records)
    detected = sum(len(r["detections"]) for r in run.records)
    print(f"{len(run.records)} images, {detected} detections on {detector.provider}"
          + (f"; {len(run.failures)} failed: {', '.join(run.failures)}" if run.failures else ""), file=sys.stderr)
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
