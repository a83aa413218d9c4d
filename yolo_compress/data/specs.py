"""Dataset specs: one string names any dataset the tools take with `--data` (or `--val`).

    yolo:DIR[?names=person,car | ?names=FILE]    YOLO-txt folder (images/ + labels/, or side by side)
    voc:DIR[?split=NAME]                         Pascal VOC (Annotations/, JPEGImages/, ImageSets/Main/NAME.txt)
    coco:ANN.json,IMGDIR                         COCO instances file and its image folder
    synthetic:N[:SEED][?size=S|HxW&classes=K]    N generated scenes (default seed 0, 192x192, 3 classes)

Specs joined by `+` (e.g. `yolo:../shared/data/pennfudan+yolo:../shared/data/coco128-train`) or given
as a list are one dataset, names merged by name. Quote a spec with `?` in a shell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from yolo_compress.data.coco_files import load_coco
from yolo_compress.data.dataset import DatasetError, DetectionDataset, join
from yolo_compress.data.synthetic import SyntheticConfig, synthetic_dataset
from yolo_compress.data.voc_xml import load_voc
from yolo_compress.data.yolo_txt import load_yolo, read_names_file

SCHEMES = ("yolo", "voc", "coco", "synthetic")
_JOIN = re.compile(rf"\+(?=(?:{'|'.join(SCHEMES)}):)")  # a '+' only joins when a spec follows it


def load_dataset(spec: str | Sequence[str], classes: str | Sequence[str] | None = None) -> DetectionDataset:
    """The dataset of `spec` (see the module doc), limited to `classes` (names, or one comma-separated
    string) renumbered 0.. in the order given; None keeps every class."""
    parts = split_specs(spec)
    datasets = [_load_one(part) for part in parts]
    dataset = datasets[0] if len(datasets) == 1 else join(datasets)
    wanted = _class_list(classes)
    return dataset.select_classes(wanted) if wanted else dataset


def split_specs(spec: str | Sequence[str]) -> list[str]:
    """A '+'-joined spec or a list of specs -> the single specs."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    parts = [part.strip() for s in specs for part in _JOIN.split(s)]
    if not parts or not all(parts):
        raise DatasetError(f"dataset spec {spec!r}: empty")
    return parts


def _load_one(spec: str) -> DetectionDataset:
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in SCHEMES or not rest:
        raise DatasetError(f"dataset spec {spec!r}: expected one of {', '.join(s + ':...' for s in SCHEMES)}")
    body, _, query = rest.partition("?")
    if scheme == "yolo":
        options = _options(query, ("names",), spec)
        return load_yolo(body, _names_option(options.get("names"), spec))
    if scheme == "voc":
        return load_voc(body, _options(query, ("split",), spec).get("split"))
    if scheme == "coco":
        annotations, comma, images = body.partition(",")
        if not comma or not annotations or not images:
            raise DatasetError(f"dataset spec {spec!r}: expected coco:ANNOTATIONS.json,IMAGE_DIR")
        _options(query, (), spec)
        return load_coco(annotations, images)
    return _synthetic(body, _options(query, ("size", "classes"), spec), spec)


def _synthetic(body: str, options: dict[str, str], spec: str) -> DetectionDataset:
    count, _, seed = body.partition(":")
    height, width = _size_option(options.get("size", "192"), spec)
    try:
        config = SyntheticConfig(height=height, width=width, num_classes=_integer(options.get("classes", "3"), spec))
    except ValueError as exc:
        raise DatasetError(f"dataset spec {spec!r}: {exc}") from None
    return synthetic_dataset(_integer(count, spec), _integer(seed or "0", spec), config)


def _options(query: str, allowed: tuple[str, ...], spec: str) -> dict[str, str]:
    """`key=value&key=value` after '?' -> dict; an unknown key is an error listing the allowed ones."""
    options = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            valid = ", ".join(f"{k}=..." for k in allowed) or "none"
            raise DatasetError(f"dataset spec {spec!r}: unknown option {item!r} (options: {valid})")
        options[key] = value
    return options


def _names_option(value: str | None, spec: str) -> list[str] | None:
    """names=FILE (an existing file) or names=a,b,c."""
    if value is None:
        return None
    if Path(value).is_file():
        return read_names_file(Path(value))
    names = [n.strip() for n in value.split(",")]
    if not all(names):
        raise DatasetError(f"dataset spec {spec!r}: names={value!r} has an empty name")
    return names


def parse_size(text: str) -> tuple[int, int]:
    """'256x320' (H x W, as the tools' size options are written) or '256' (square) -> (H, W)."""
    height, _, width = text.strip().lower().partition("x")
    width = width or height
    if not (height.isdigit() and width.isdigit()):
        raise ValueError(f"expected a size HxW or N (non-negative integers), got {text!r}")
    return int(height), int(width)


def parse_sizes(text: str | None) -> list[tuple[int, int]]:
    """'288x288,256x256' -> [(288, 288), (256, 256)]; None or '' -> []."""
    return [parse_size(item) for item in (text or "").split(",") if item.strip()]


def _size_option(value: str, spec: str) -> tuple[int, int]:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise DatasetError(f"dataset spec {spec!r}: {exc}") from None


def _integer(text: str, spec: str) -> int:
    if not text.strip().isdigit():
        raise DatasetError(f"dataset spec {spec!r}: expected a non-negative integer, got {text!r}")
    return int(text)


def _class_list(classes: str | Sequence[str] | None) -> list[str] | None:
    if classes is None:
        return None
    items = classes.split(",") if isinstance(classes, str) else list(classes)
    return [c.strip() for c in items if c.strip()] or None
