"""COCO instance files (`instances_*.json` + an image folder) as a DetectionDataset.

The annotations are read and checked by yolo_compress.eval's COCO reader (the one the AP numbers are
computed from), so a file the evaluation accepts loads here with the very same boxes, classes and
crowd flags. This module only adds what a dataset needs on top: each image's file and size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.data.dataset import DatasetError, DetectionDataset, Sample
from yolo_compress.data.image_size import image_size
from yolo_compress.eval.coco_json import load_coco_gt
from yolo_compress.eval.files import InputFileError, read_json


def load_coco(annotations: str | os.PathLike, image_dir: str | os.PathLike) -> DetectionDataset:
    """Images in id order (COCOeval's order), classes = the categories sorted by id, crowd = difficult."""
    annotations, image_dir = Path(annotations), Path(image_dir)
    if not image_dir.is_dir():
        raise DatasetError(f"coco dataset: image folder {image_dir} is not a directory")
    try:
        gt = load_coco_gt(annotations)
        records = {record["id"]: (i, record) for i, record in enumerate(read_json(annotations)["images"])}
    except InputFileError as exc:
        raise DatasetError(str(exc)) from exc
    samples = []
    for image_gt in gt.images:
        index, record = records[image_gt.image_id]
        image, width, height = _image_file(record, image_dir, f"{annotations}: images[{index}]")
        xyxy = np.concatenate([image_gt.xywh[:, :2], image_gt.xywh[:, :2] + image_gt.xywh[:, 2:]], axis=1)
        samples.append(Sample(image, xyxy, image_gt.classes, width, height, image_gt.crowd))
    return DetectionDataset(gt.class_names, samples, f"coco:{annotations},{image_dir}")


def _image_file(record: dict[str, Any], image_dir: Path, where: str) -> tuple[Path, int, int]:
    """(path, width, height) of an images[] record; the size is read from the file when not given."""
    name = record.get("file_name")
    if not isinstance(name, str) or not name:
        raise DatasetError(f"{where}.file_name: expected a file name, got {name!r}")
    path = image_dir / name
    if not path.is_file():
        raise DatasetError(f"{where}.file_name: image {path} does not exist")
    width, height = record.get("width"), record.get("height")
    if width is None and height is None:
        return (path, *image_size(path))
    for key, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise DatasetError(f"{where}.{key}: expected a positive integer, got {value!r}")
    return path, width, height
