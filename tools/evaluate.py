#!/usr/bin/env python3
"""AP, precision, recall, F1 and mean IoU of a model on a dataset, through the robot's own Detector.

    python tools/evaluate.py --model fast.onnx --data yolo:../shared/data/coco128-train --classes person \
        --json out/fast.json --md out/fast.md
    python tools/evaluate.py --model runs/finetune/best.pt --data "yolo:../shared/data/sequence/TUD-Campus?names=person"
    python tools/evaluate.py --model yolo-fastest-1.1_body.cfg --weights yolo-fastest-1.1_body.weights \
        --data yolo:../shared/data/pennfudan --alias body=person

A checkpoint (.pt) or Darknet cfg is first exported to a temporary ONNX model, so every model is scored by
the same post-processing. AP comes from detections at --conf; precision/recall/F1/mIoU at --op-conf.
With --json, the COCO detections, COCO ground truth and PR curve are written beside it unless named.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.data.detector_eval import DetectorEvaluation, evaluate_detector, parse_aliases
from yolo_compress.data.specs import load_dataset
from yolo_compress.eval import format_report, plot_pr_curves, write_coco_detections, write_coco_gt, write_json
from yolo_compress.eval.markdown import format_markdown
from yolo_compress.models.atomic import atomic_path
from yolo_compress.runtime.contract import ContractError
from yolo_compress.runtime.detector import Detector


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="contract .onnx, checkpoint .pt, or Darknet .cfg")
    parser.add_argument("--weights", type=Path, help="Darknet .weights for a .cfg model")
    parser.add_argument("--data", required=True, help="dataset spec: yolo:DIR, voc:DIR, coco:ANN.json,IMGDIR, "
                                                      "synthetic:N[:SEED]; join with '+'")  # fmt: skip
    parser.add_argument("--classes", help="comma-separated dataset classes to evaluate (default: all)")
    parser.add_argument("--alias", action="append", default=[], metavar="MODEL=DATASET",
                        help="score dataset class DATASET with model class MODEL, e.g. body=person (repeatable)")
    parser.add_argument("--conf", type=float, default=0.005, help="detection threshold for AP (default 0.005)")
    parser.add_argument("--op-conf", type=float, default=0.25, help="threshold of precision/recall/F1 (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--json", type=Path, help="write all metrics here")
    parser.add_argument("--md", type=Path, help="write a Markdown report here")
    parser.add_argument("--detections", type=Path, help="COCO results JSON (default with --json: *_detections.json)")
    parser.add_argument("--gt", type=Path, help="COCO ground-truth JSON (default with --json: *_gt.json)")
    parser.add_argument("--plot", type=Path, help="PR curves PNG (default with --json: *_pr.png)")
    parser.add_argument("--providers", help="comma-separated ONNX Runtime preference (default: fastest)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    _default_outputs(args)
    try:
        dataset = load_dataset(args.data, args.classes)
        with tempfile.TemporaryDirectory(prefix="evaluate_") as tmp:
            onnx_path = _as_onnx(args.model, args.weights, Path(tmp))
            providers = args.providers.split(",") if args.providers else None
            detector = Detector(onnx_path, providers=providers, conf_threshold=args.conf, iou_threshold=args.iou)
            run = evaluate_detector(detector, dataset, parse_aliases(args.alias), args.op_conf)
    except (OSError, ValueError, ContractError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    result = {"model": str(args.model), "data": args.data, "provider": detector.provider, "conf": args.conf,
              "iou": args.iou, "aliases": parse_aliases(args.alias), **run.result}  # fmt: skip
    print(format_report(result))
    _write_outputs(args, result, run, dataset.names)
    return 0


def _as_onnx(model: Path, weights: Path | None, tmp: Path) -> Path:
    """The model itself if it is ONNX, else its export (checkpoint or cfg + weights) in `tmp`."""
    if model.suffix.lower() == ".onnx":
        return model
    from yolo_compress.export.onnx_export import export_onnx  # torch: only loaded for non-ONNX models
    from yolo_compress.models.source import load_model_source

    if model.suffix.lower() == ".cfg":
        source = load_model_source(cfg=str(model), weights=weights)
    else:
        source = load_model_source(checkpoint=model)
    resize = source.metadata.get("resize", "stretch")
    return export_onnx(source.model, source.names, tmp / f"{model.stem}.onnx", resize=resize).path


def _default_outputs(args: argparse.Namespace) -> None:
    if args.json is None:
        return
    stem = args.json.with_suffix("")
    args.detections = args.detections or Path(f"{stem}_detections.json")
    args.gt = args.gt or Path(f"{stem}_gt.json")
    args.plot = args.plot or Path(f"{stem}_pr.png")


def _write_outputs(args: argparse.Namespace, result: dict, run: DetectorEvaluation, names: tuple[str, ...]) -> None:
    written = []
    if args.json:
        written.append(write_json(args.json, result))
    if args.detections:
        written.append(write_coco_detections(args.detections, run.detections))
    if args.gt:
        written.append(write_coco_gt(args.gt, run.ground_truth, names))
    if args.plot:
        written.append(plot_pr_curves(result, args.plot, f"{args.model.name} on {args.data}"))
    if args.md:
        notes = [f"model `{args.model}`, data `{args.data}`, provider {result['provider']}",
                 f"AP from detections at conf > {args.conf:g}, NMS IoU {args.iou:g}"]  # fmt: skip
        with atomic_path(args.md) as tmp:
            tmp.write_text(format_markdown(result, f"{args.model.name} on {args.data}", notes), encoding="utf-8")
        written.append(args.md)
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
