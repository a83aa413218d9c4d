"""python -m yolo_compress.eval --gt GT.json --dt DT.json [--json OUT] [--op-conf 0.25] [--plot PR.png]"""

from __future__ import annotations

import argparse
import sys

from yolo_compress.eval.evaluate import evaluate_coco_files
from yolo_compress.eval.files import InputFileError
from yolo_compress.eval.pr_plot import plot_pr_curves
from yolo_compress.eval.report import format_report
from yolo_compress.models.atomic import write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m yolo_compress.eval",
        description="COCO bbox AP (equal to pycocotools), VOC AP, and precision/recall/F1/mean IoU at a threshold.",
    )
    parser.add_argument("--gt", required=True, help="COCO ground-truth JSON (images, annotations, categories)")
    parser.add_argument("--dt", required=True, help="COCO results JSON [{image_id, category_id, bbox, score}]")
    parser.add_argument("--json", help="write the full result here")
    parser.add_argument("--op-conf", type=float, default=0.25, help="score threshold of the operating point")
    parser.add_argument("--plot", help="write precision-recall curves (PNG) here")
    args = parser.parse_args(argv)
    try:
        result = evaluate_coco_files(args.gt, args.dt, args.op_conf)
    except InputFileError as e:
        parser.exit(2, f"error: {e}\n")
    print(format_report(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    if args.plot:
        print(f"wrote {plot_pr_curves(result, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
