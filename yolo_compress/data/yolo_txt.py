"""YOLO-txt folders: one `cls cx cy w h` line per box (normalized to the image), read and written.

Two layouts are read: `DIR/images/**` with `DIR/labels/**` mirroring it (COCO128, Penn-Fudan, the
sequences in ../shared/data), or images and `.txt` files side by side in DIR (Darknet's own layout).
Class names come from `names.txt`, `classes.txt` or a single `*.names` in DIR; without one they are
`class_0..class_K` (the models' fallback names), which a caller can override with real names.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from yolo_compress.data.dataset import DatasetError, DetectionDataset, Sample
from yolo_compress.data.image_size import image_size
from yolo_compress.runtime.sources import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

NAMES_FILES = ("names.txt", "classes.txt")


def load_yolo(root: str | os.PathLike, names: Sequence[str] | None = None) -> DetectionDataset:
    """Every image under `root` with the boxes of its label file (none when it has no label file)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"yolo dataset {root}: not a directory")
    pairs = image_label_pairs(root)
    if not pairs:
        raise DatasetError(f"yolo dataset {root}: no images in {root / 'images'} or in {root} itself")
    known = list(names) if names is not None else find_names(root)
    limit = len(known) if known is not None else None
    rows = [(image, image_size(image), read_label_file(label, limit)) for image, label in pairs]
    if known is None:
        top = max((int(cls.max()) for *_, (_, cls) in rows if len(cls)), default=0)
        known = [f"class_{i}" for i in range(top + 1)]
        log.warning("%s: no names.txt, classes.txt or *.names: classes are named %s", root, ", ".join(known))
    _log_orphan_labels(root, pairs)
    samples = [Sample(image, _to_pixels(boxes, w, h), cls, w, h) for image, (w, h), (boxes, cls) in rows]
    return DetectionDataset(known, samples, f"yolo:{root}")


def image_label_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, label path) of every image, sorted; the label file may not exist (no boxes)."""
    images_dir = root / "images"
    if images_dir.is_dir():
        images = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        return [(p, (root / "labels" / p.relative_to(images_dir)).with_suffix(".txt")) for p in images]
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return [(p, p.with_suffix(".txt")) for p in images]


def find_names(root: Path) -> list[str] | None:
    """Class names from names.txt / classes.txt / the single *.names file in `root`, else None."""
    candidates = [root / name for name in NAMES_FILES if (root / name).is_file()] or sorted(root.glob("*.names"))
    if len(candidates) > 1:
        raise DatasetError(f"yolo dataset {root}: several class-name files, keep one: {[p.name for p in candidates]}")
    return read_names_file(candidates[0]) if candidates else None


def read_names_file(path: Path) -> list[str]:
    """One class name per line; blank lines ignored."""
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read class names: {exc}") from exc
    if not names:
        raise DatasetError(f"{path}: no class names in file")
    return names


def read_label_file(path: Path, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(normalized cx, cy, w, h [K,4] float64, class ids [K]) of a label file; a missing file has no boxes.

    A line that is not `cls cx cy w h` (integer class within the names, finite numbers, w and h >= 0)
    is an error naming the file and the line.
    """
    if not path.is_file():
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read label file: {exc}") from exc
    boxes, classes = [], []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            cls, box = _parse_line(line, num_classes, f"{path}:{number}")
            classes.append(cls)
            boxes.append(box)
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(classes, np.int64)


def _parse_line(line: str, num_classes: int | None, where: str) -> tuple[int, list[float]]:
    fields = line.split()
    if len(fields) != 5:
        raise DatasetError(f"{where}: expected 5 fields 'class cx cy w h', got {len(fields)}: {line.strip()!r}")
    try:
        cls_value, box = float(fields[0]), [float(v) for v in fields[1:]]
    except ValueError:
        raise DatasetError(f"{where}: expected numbers 'class cx cy w h', got {line.strip()!r}") from None
    if not cls_value.is_integer() or cls_value < 0 or (num_classes is not None and cls_value >= num_classes):
        known = f" (0..{num_classes - 1}: the dataset has {num_classes} names)" if num_classes is not None else ""
        raise DatasetError(f"{where}: class {fields[0]!r} is not a valid class id{known}")
    if not np.isfinite(box).all() or box[2] < 0 or box[3] < 0:
        raise DatasetError(f"{where}: expected finite cx cy and w, h >= 0, got {' '.join(fields[1:])}")
    return int(cls_value), box


def _to_pixels(normalized: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalized cx, cy, w, h -> x1, y1, x2, y2 pixels, clipped to the image."""
    scale = np.array([width, height, width, height], np.float64)
    cxcywh = normalized * scale
    xyxy = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
    return np.clip(xyxy, 0, scale).astype(np.float32)


def _log_orphan_labels(root: Path, pairs: list[tuple[Path, Path]]) -> None:
    labels_dir = root / "labels" if (root / "images").is_dir() else root
    if not labels_dir.is_dir():
        return
    used = {label for _, label in pairs}
    orphans = [p for p in labels_dir.rglob("*.txt") if p not in used and p.name not in NAMES_FILES]
    if orphans:
        log.info("%s: %d label files have no image and are ignored (e.g. %s)", root, len(orphans), orphans[0].name)


def write_yolo(dataset: DetectionDataset, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write `dataset` as `out_dir/images`, `out_dir/labels` and `out_dir/names.txt`.

    Image files are copied byte for byte (no re-encoding); rendered samples are written as PNG. The
    folder is built beside `out_dir` and renamed into place, so readers never see half a dataset.
    Difficult flags have no place in the format and are dropped.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists: remove it or pass overwrite=True")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (build / "images").mkdir()
        (build / "labels").mkdir()
        for stem, sample in zip(_unique_stems(dataset), dataset, strict=True):
            _write_sample(build, stem, sample)
        (build / "names.txt").write_text("".join(f"{n}\n" for n in dataset.names), encoding="utf-8")
        _replace_dir(build, out_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return out_dir


def _unique_stems(dataset: DetectionDataset) -> list[str]:
    """Original file stems when they are all distinct, else zero-padded positions."""
    stems = [s.image_path.stem if s.image_path is not None else "" for s in dataset]
    if all(stems) and len(set(stems)) == len(stems):
        return stems
    return [f"{i:06d}" for i in range(len(dataset))]


def _write_sample(build: Path, stem: str, sample: Sample) -> None:
    if sample.image_path is not None:
        shutil.copyfile(sample.image_path, build / "images" / f"{stem}{sample.image_path.suffix}")
    elif not cv2.imwrite(str(build / "images" / f"{stem}.png"), sample.load_image()):
        raise OSError(f"{build}: could not write image {stem}.png")
    scale = np.array([sample.width, sample.height], np.float64)
    xyxy = sample.boxes.astype(np.float64)
    centers, sizes = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / scale, (xyxy[:, 2:] - xyxy[:, :2]) / scale
    lines = [
        f"{cls} {c[0]:.6f} {c[1]:.6f} {s[0]:.6f} {s[1]:.6f}\n"
        for cls, c, s in zip(sample.classes, centers, sizes, strict=True)
    ]
    (build / "labels" / f"{stem}.txt").write_text("".join(lines), encoding="utf-8")


def _replace_dir(build: Path, out_dir: Path) -> None:
    """Rename `build` to `out_dir`; an existing `out_dir` is moved aside first and removed after."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
    os.replace(build, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
