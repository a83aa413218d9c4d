"""Detection metrics (numpy only): COCO AP, VOC AP, precision/recall/F1, IoU.

COCO numbers equal pycocotools' COCOeval bbox stats (tests compare them on real and random data);
pycocotools, torch and matplotlib are never imported here (plots import matplotlib when drawn).
"""

from yolo_compress.eval.annotations import ImageDT, ImageGT, xyxy_to_xywh
from yolo_compress.eval.coco_json import (
    CocoGroundTruth,
    load_coco_detections,
    load_coco_gt,
    write_coco_detections,
    write_coco_gt,
)
from yolo_compress.eval.evaluate import evaluate, evaluate_coco_files
from yolo_compress.eval.files import InputFileError
from yolo_compress.eval.latency import latency_stats
from yolo_compress.eval.pr_plot import plot_pr_curves
from yolo_compress.eval.report import format_report
from yolo_compress.models.atomic import write_json

__all__ = [
    "CocoGroundTruth",
    "ImageDT",
    "ImageGT",
    "InputFileError",
    "evaluate",
    "evaluate_coco_files",
    "format_report",
    "latency_stats",
    "load_coco_detections",
    "load_coco_gt",
    "plot_pr_curves",
    "write_coco_detections",
    "write_coco_gt",
    "write_json",
    "xyxy_to_xywh",
]
