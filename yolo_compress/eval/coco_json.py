"""COCO-format files: ground truth (images, annotations, categories) and detection results.

Loading checks every field the evaluation reads and names file, record and field when one is wrong,
because a silently skipped box changes AP without a trace. Beyond pycocotools (which would fail on
them), `area` defaults to the box area and `iscrowd` to 0 when absent. A detection whose image or
category is not in the ground truth is an error here, where pycocotools would assert or drop it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.eval.annotations import ImageDT, ImageGT
from yolo_compress.eval.files import InputFileError, read_json
from yolo_compress.models.atomic import write_json

_MISSING = object()


@dataclass(frozen=True)
class CocoGroundTruth:
    """A COCO ground-truth file, in COCOeval's orders.

    Images are sorted by id (the order that breaks score ties across images), each keeping its
    annotations in file order; classes are the categories sorted by id.
    """

    images: list[ImageGT]
    class_names: list[str]
    category_ids: list[int]


def load_coco_gt(path: str | os.PathLike) -> CocoGroundTruth:
    """Read a COCO ground-truth JSON with boxes (`bbox` [x, y, width, height] in pixels)."""
    doc = _Record(read_json(path), str(path))
    categories, image_records = doc.records("categories"), doc.records("images")
    category_ids = _unique(categories, "id", [c.integer("id") for c in categories])
    names = dict(zip(category_ids, _unique(categories, "name", [c.text("name") for c in categories]), strict=True))
    image_ids = _unique(image_records, "id", [image.integer("id") for image in image_records])
    image_index = {image_id: i for i, image_id in enumerate(sorted(image_ids))}
    class_index = {cat: k for k, cat in enumerate(sorted(category_ids))}
    rows: list[list[tuple]] = [[] for _ in image_index]
    for ann in doc.records("annotations"):
        box, cls = ann.bbox(), ann.lookup("category_id", class_index)
        area = ann.number("area", default=box[2] * box[3])
        rows[ann.lookup("image_id", image_index)].append((box, cls, area, ann.flag()))
    images = []
    for image_id, image_rows in zip(image_index, rows, strict=True):
        boxes, classes, area, crowd = _columns(image_rows, 4)
        images.append(ImageGT(np.reshape(boxes, (-1, 4)), np.array(classes, np.int64), crowd, area, image_id))
    return CocoGroundTruth(images, [names[c] for c in class_index], list(class_index))


def load_coco_detections(path: str | os.PathLike, gt: CocoGroundTruth) -> list[ImageDT]:
    """Read COCO detection results ([{image_id, category_id, bbox, score}]) as one ImageDT per gt image."""
    doc = read_json(path)
    if not isinstance(doc, list):
        raise InputFileError(
            f"{path}: expected a JSON list of detections [{{image_id, category_id, bbox, score}}], "
            f"got {type(doc).__name__}"
        )
    image_index = {g.image_id: i for i, g in enumerate(gt.images)}
    class_index = {cat: k for k, cat in enumerate(gt.category_ids)}
    rows: list[list[tuple]] = [[] for _ in gt.images]
    for i, value in enumerate(doc):
        det = _Record(value, str(path), f"[{i}]")
        box, score = det.bbox(), det.number("score")
        rows[det.lookup("image_id", image_index)].append((box, score, det.lookup("category_id", class_index)))
    detections = []
    for g, image_rows in zip(gt.images, rows, strict=True):
        boxes, scores, classes = _columns(image_rows, 3)
        detections.append(ImageDT(np.reshape(boxes, (-1, 4)), scores, np.array(classes, np.int64), g.image_id))
    return detections


def write_coco_gt(
    path: str | os.PathLike,
    images: Sequence[ImageGT],
    class_names: Sequence[str],
    category_ids: Sequence[int] | None = None,
) -> Path:
    """Write ground truth as COCO JSON (atomically). Image ids: each ImageGT's, else its 1-based position.

    Category ids default to class index + 1 (COCO keeps 0 free); annotation ids start at 1, because
    pycocotools takes a match with id 0 for no match.
    """
    annotations = [
        {
            "image_id": _image_id(g, i),
            "category_id": _category_id(int(cls), category_ids),
            "bbox": [float(v) for v in box],
            "area": float(area),
            "iscrowd": int(crowd),
        }
        for i, g in enumerate(images)
        for box, cls, crowd, area in zip(g.xywh, g.classes, g.crowd, g.area, strict=True)
    ]
    categories = [{"id": _category_id(k, category_ids), "name": name} for k, name in enumerate(class_names)]
    doc = {
        "images": [{"id": _image_id(g, i)} for i, g in enumerate(images)],
        "annotations": [{"id": n, **ann} for n, ann in enumerate(annotations, start=1)],
        "categories": categories,
    }
    return write_json(path, doc)


def write_coco_detections(
    path: str | os.PathLike, detections: Sequence[ImageDT], category_ids: Sequence[int] | None = None
) -> Path:
    """Write detections as a COCO results list (atomically), ids numbered as write_coco_gt numbers them."""
    results = [
        {
            "image_id": _image_id(d, i),
            "category_id": _category_id(int(cls), category_ids),
            "bbox": [float(v) for v in box],
            "score": float(score),
        }
        for i, d in enumerate(detections)
        for box, score, cls in zip(d.xywh, d.scores, d.classes, strict=True)
    ]
    return write_json(path, results)


def _image_id(item: ImageGT | ImageDT, index: int) -> int:
    return index + 1 if item.image_id is None else int(item.image_id)


def _category_id(cls: int, category_ids: Sequence[int] | None) -> int:
    return cls + 1 if category_ids is None else int(category_ids[cls])


def _columns(rows: list[tuple], n_fields: int) -> list[list]:
    """Rows of per-box fields to one list per field (empty lists for an image without boxes)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(n_fields)]


def _unique(records: list[_Record], key: str, values: list) -> list:
    """`values` (field `key` of each record), or an error at the first one that repeats."""
    seen: set[Any] = set()
    for record, value in zip(records, values, strict=True):
        if value in seen:
            raise record.error(key, "a value no other record has", value)
        seen.add(value)
    return values


class _Record:
    """One JSON object of a file; its accessors raise InputFileError naming file, record and field."""

    def __init__(self, value: Any, path: str, location: str = "") -> None:
        if not isinstance(value, dict):
            where = f"{path}: {location}" if location else path
            raise InputFileError(f"{where}: expected a JSON object, got {type(value).__name__}")
        self.value, self.path, self.location = value, path, location

    def name(self, key: str) -> str:
        """The field's place in the file, e.g. `annotations[3].bbox`."""
        return f"{self.location}.{key}" if self.location else key

    def error(self, key: str, expected: str, value: Any) -> InputFileError:
        return InputFileError(f"{self.path}: {self.name(key)}: expected {expected}, got {value!r}")

    def get(self, key: str, default: Any = _MISSING) -> Any:
        if key in self.value:
            return self.value[key]
        if default is _MISSING:
            raise InputFileError(f"{self.path}: {self.name(key)}: missing")
        return default

    def records(self, key: str) -> list[_Record]:
        value = self.get(key)
        if not isinstance(value, list):
            raise self.error(key, "a list", value)
        return [_Record(item, self.path, f"{self.name(key)}[{i}]") for i, item in enumerate(value)]

    def integer(self, key: str) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "an integer", value)
        return value

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value:
            raise self.error(key, "a non-empty string", value)
        return value

    def number(self, key: str, default: Any = _MISSING) -> float:
        value = self.get(key, default)
        if not _is_number(value) or value < 0:
            raise self.error(key, "a finite number >= 0", value)
        return float(value)

    def flag(self, key: str = "iscrowd") -> bool:
        value = self.get(key, 0)
        if value not in (0, 1):
            raise self.error(key, "0 or 1", value)
        return bool(value)

    def bbox(self, key: str = "bbox") -> list[float]:
        value = self.get(key)
        if not (isinstance(value, list) and len(value) == 4 and all(map(_is_number, value))) or min(value[2:]) < 0:
            raise self.error(key, "[x, y, width, height]: 4 finite numbers, width and height >= 0", value)
        return [float(v) for v in value]

    def lookup(self, key: str, index: dict[int, int]) -> int:
        """Position of this record's id field in `index`, which must list it."""
        value = self.integer(key)
        if value not in index:
            raise self.error(key, f"one of the {len(index)} ids of the ground truth", value)
        return index[value]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
