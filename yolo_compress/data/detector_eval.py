"""Accuracy of a contract ONNX model on a dataset, through the robot's own Detector: the logic of
tools/evaluate.py.

Detections come from yolo_compress.runtime.detector.Detector (the pre/post-processing the ROS node runs)
and are scored by yolo_compress.eval.evaluate, so the AP reported here is the AP the robot gets. Torch-free.

Classes are matched by name: the dataset's classes (after any `--classes` subset) are the evaluation's,
each scored by the model class of the same name, and every other model class is left out before NMS.
A model whose class has another name for the same thing (Yolo-Fastest's 1-class "body" model for
"person") needs an explicit alias, {"body": "person"}, never a silent guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from yolo_compress.data.dataset import DatasetError, DetectionDataset
from yolo_compress.eval.annotations import ImageDT, ImageGT
from yolo_compress.eval.evaluate import evaluate
from yolo_compress.runtime.detector import Detector


@dataclass(frozen=True)
class DetectorEvaluation:
    """The metrics plus the per-image ground truth and detections they were computed from (dataset order)."""

    result: dict[str, Any]
    ground_truth: list[ImageGT]
    detections: list[ImageDT]


def parse_aliases(items: Sequence[str]) -> dict[str, str]:
    """["body=person", ...] -> {"body": "person"} (model class name = dataset class name)."""
    aliases = {}
    for item in items:
        model_name, eq, dataset_name = (part.strip() for part in item.partition("="))
        if not eq or not model_name or not dataset_name:
            raise ValueError(f"alias {item!r}: expected MODEL_CLASS=DATASET_CLASS, e.g. body=person")
        aliases[model_name] = dataset_name
    return aliases


def match_classes(
    model_names: Sequence[str], dataset_names: Sequence[str], aliases: Mapping[str, str] | None = None
) -> np.ndarray:
    """The model class id that scores each dataset class: the one with its name, or the one aliased to it."""
    aliases = dict(aliases or {})
    unknown = sorted(set(aliases) - set(model_names))
    if unknown:
        raise DatasetError(f"alias for {unknown}: not classes of the model ({', '.join(model_names)})")
    ids = []
    for name in dataset_names:
        found = [i for i, m in enumerate(model_names) if aliases.get(m, m) == name]
        if len(found) != 1:
            problem = "no model class is named or aliased" if not found else f"model classes {found} all map"
            raise DatasetError(
                f"dataset class {name!r}: {problem} to it; the model's classes are {', '.join(model_names[:20])}"
                f"{' ...' if len(model_names) > 20 else ''}. Pick dataset classes with --classes, or map a model "
                f"class with --alias MODEL_CLASS={name}"
            )
        ids.append(found[0])
    return np.array(ids, np.int64)


def evaluate_detector(
    detector: Detector,
    dataset: DetectionDataset,
    aliases: Mapping[str, str] | None = None,
    op_conf: float = 0.25,
    progress: bool = True,
) -> DetectorEvaluation:
    """Run `detector` (at its own conf/iou thresholds: use a low conf such as 0.005 for AP) on every image.

    The detector's `classes` is set to the matched model classes (others never reach NMS) and stays so.
    """
    model_ids = match_classes(detector.names, dataset.names, aliases)
    to_dataset = np.full(len(detector.names), -1, np.int64)
    to_dataset[model_ids] = np.arange(len(model_ids))
    detector.classes = model_ids.tolist()
    detections = []
    for sample in tqdm(dataset, desc="evaluate", unit="img", disable=not progress):
        found = detector.detect(sample.load_image()).detections
        detections.append(ImageDT.from_xyxy(found.boxes, found.scores, to_dataset[found.class_ids]))
    ground_truth = dataset.image_gts()
    return DetectorEvaluation(evaluate(ground_truth, detections, dataset.names, op_conf), ground_truth, detections)
