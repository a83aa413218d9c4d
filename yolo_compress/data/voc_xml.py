"""Pascal VOC folders: `Annotations/*.xml` with images in `JPEGImages/`, difficult flags kept.

VOC boxes are 1-based inclusive pixel indices (xmin=1 is the first column), converted here to the
0-based continuous corners every other loader gives: [xmin - 1, ymin - 1, xmax, ymax].
Class names are the 20 VOC classes in their standard order (the order of yolov2-tiny-voc's outputs)
when every object belongs to them, else the sorted names found in the files.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from yolo_compress.data.dataset import DatasetError, DetectionDataset, Sample
from yolo_compress.data.image_size import image_size

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def load_voc(root: str | os.PathLike, split: str | None = None) -> DetectionDataset:
    """All annotations of `root` (or those listed in `ImageSets/Main/<split>.txt`), sorted by file name."""
    root = Path(root)
    annotations = root / "Annotations"
    if not annotations.is_dir():
        raise DatasetError(f"voc dataset {root}: no Annotations/ folder")
    paths = _split_files(root, split) if split else sorted(annotations.glob("*.xml"))
    if not paths:
        raise DatasetError(f"voc dataset {root}: no .xml files in {annotations}")
    records = [_read_annotation(path, root) for path in paths]
    found = {name for record in records for name in record["names"]}
    names = list(VOC_CLASSES) if found <= set(VOC_CLASSES) else sorted(found)
    samples = [
        Sample(
            r["image"], r["boxes"], [names.index(n) for n in r["names"]], r["width"], r["height"], r["difficult"]
        )
        for r in records
    ]
    return DetectionDataset(names, samples, f"voc:{root}")


def _split_files(root: Path, split: str) -> list[Path]:
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"voc dataset {root}: split {split!r} needs {listing}, which does not exist")
    ids = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [root / "Annotations" / f"{image_id}.xml" for image_id in ids]


def _read_annotation(path: Path, root: Path) -> dict:
    """Image path, size and objects (names, xyxy boxes, difficult) of one annotation file."""
    try:
        tree = ET.parse(path).getroot()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read annotation: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        raise DatasetError(f"{path}:{exc.position[0]}: not valid XML: {exc}") from exc
    filename = _text(tree, "filename", path)
    image = root / "JPEGImages" / filename
    if not image.is_file():
        raise DatasetError(f"{path}: filename {filename!r}: image {image} does not exist")
    width, height = _size(tree, path) or image_size(image)
    names, boxes, difficult = [], [], []
    for i, obj in enumerate(tree.findall("object")):
        where = f"{path}: object {i}"
        names.append(_text(obj, "name", where))
        boxes.append(_box(obj, where))
        difficult.append(_flag(obj, "difficult", where))
    xyxy = np.array(boxes, np.float64).reshape(-1, 4)
    xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
    return {"image": image, "width": width, "height": height, "names": names, "boxes": xyxy, "difficult": difficult}


def _text(node: ET.Element, tag: str, where: object) -> str:
    child = node.find(tag)
    if child is None or not (child.text or "").strip():
        raise DatasetError(f"{where}: <{tag}> missing or empty")
    return child.text.strip()


def _size(tree: ET.Element, path: Path) -> tuple[int, int] | None:
    """(width, height) from <size>, or None when absent or zero (some exports write 0); read the file then."""
    size = tree.find("size")
    if size is None or size.find("width") is None:
        return None
    width, height = (_number(size, tag, f"{path}: size") for tag in ("width", "height"))
    return (int(width), int(height)) if width > 0 and height > 0 else None


def _box(obj: ET.Element, where: str) -> list[float]:
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise DatasetError(f"{where}: <bndbox> missing")
    xmin, ymin, xmax, ymax = (_number(bndbox, tag, f"{where} bndbox") for tag in ("xmin", "ymin", "xmax", "ymax"))
    if xmax < xmin or ymax < ymin:
        raise DatasetError(f"{where}: bndbox has xmax < xmin or ymax < ymin: {xmin}, {ymin}, {xmax}, {ymax}")
    return [xmin - 1, ymin - 1, xmax, ymax]


def _number(node: ET.Element, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{where}: <{tag}> is not a number: {text!r}") from None
    if not np.isfinite(value):
        raise DatasetError(f"{where}: <{tag}> is not finite: {text!r}")
    return value


def _flag(obj: ET.Element, tag: str, where: str) -> bool:
    child = obj.find(tag)
    text = "0" if child is None or child.text is None else child.text.strip()
    if text not in ("0", "1"):
        raise DatasetError(f"{where}: <{tag}> must be 0 or 1, got {text!r}")
    return text == "1"
