"""Detection datasets as plain data: samples with pixel boxes, class names, subsets, splits and joins.

Every loader (YOLO txt, VOC XML, COCO json, synthetic) produces the same `DetectionDataset`, so training,
evaluation and bag making read one structure and never a file format. Samples hold paths and small arrays
only (no open file or cv2 handle), so a dataset pickles into DataLoader workers and forked processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from yolo_compress.eval.annotations import ImageGT

# Labels are in the stored pixel orientation (COCO's width/height, YOLO's normalization), so an EXIF
# rotation must not be applied on reading, or the boxes would land on the wrong pixels.
IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


class DatasetError(ValueError):
    """A dataset spec, folder or label file that cannot be used; the message names the file, line or field."""


@dataclass(frozen=True, eq=False)
class Sample:
    """One image and its boxes.

    `boxes` float32 [K,4] x1, y1, x2, y2 in pixels of the image as stored (continuous coordinates: a box
    covering pixel columns 0..9 is x1=0, x2=10); `classes` int64 [K] index the dataset's `names`;
    `difficult` bool [K] marks boxes evaluation ignores (VOC `difficult`, COCO `iscrowd`). A synthetic
    sample has no `image_path` and a picklable `render` callable that regenerates its pixels exactly.
    """

    image_path: Path | None
    boxes: np.ndarray
    classes: np.ndarray
    width: int
    height: int
    difficult: np.ndarray | None = None
    render: Callable[[], np.ndarray] | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = len(boxes)
        classes = np.asarray(self.classes, dtype=np.int64).reshape(-1)
        difficult = np.zeros(n, bool) if self.difficult is None else np.asarray(self.difficult, bool).reshape(-1)
        if len(classes) != n or len(difficult) != n:
            raise ValueError(
                f"{self.name}: {n} boxes but {len(classes)} classes and {len(difficult)} difficult flags"
            )
        if (self.image_path is None) == (self.render is None):
            raise ValueError(f"{self.name}: a sample needs exactly one of image_path or render")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"{self.name}: image size must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "difficult", difficult)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def name(self) -> str:
        """The image file, or the synthetic scene's description, for messages and reports."""
        return str(self.image_path) if self.image_path is not None else str(self.render)

    def load_image(self) -> np.ndarray:
        """The image as BGR uint8 [height, width, 3]; an unreadable or resized file is a DatasetError."""
        if self.render is not None:
            image = self.render()
        else:
            image = cv2.imread(str(self.image_path), IMREAD_FLAGS)
            if image is None:
                raise DatasetError(f"{self.image_path}: not a readable image")
        if image.shape[:2] != (self.height, self.width):
            raise DatasetError(
                f"{self.name}: image is {image.shape[1]}x{image.shape[0]} but its labels were made for "
                f"{self.width}x{self.height}"
            )
        return image

    def keep(self, mask: npt.ArrayLike) -> Sample:
        """A copy with only the boxes where `mask` is true."""
        mask = np.asarray(mask, bool)
        return replace(self, boxes=self.boxes[mask], classes=self.classes[mask], difficult=self.difficult[mask])

    def relabel(self, class_map: np.ndarray) -> Sample:
        """A copy whose box of class c has class `class_map[c]`."""
        return replace(self, classes=class_map[self.classes])


class DetectionDataset(Sequence[Sample]):
    """Class names plus an ordered, immutable list of samples whose class ids index those names."""

    def __init__(self, names: Sequence[str], samples: Sequence[Sample], source: str = "") -> None:
        self.names: tuple[str, ...] = _check_names(names, source)
        self.samples: tuple[Sample, ...] = tuple(samples)
        self.source = source
        for sample in self.samples:
            bad = (sample.classes < 0) | (sample.classes >= len(self.names))
            if bad.any():
                raise DatasetError(
                    f"{sample.name}: class id {sample.classes[bad][0]} outside 0..{len(self.names) - 1} "
                    f"({len(self.names)} names in {source or 'the dataset'})"
                )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):  # type: ignore[override]  # int -> Sample, slice -> DetectionDataset
        if isinstance(index, slice):
            return DetectionDataset(self.names, self.samples[index], self.source)
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __repr__(self) -> str:
        counts = f"{len(self)} images, {self.num_boxes} boxes, {len(self.names)} classes"
        return f"DetectionDataset({self.source!r}: {counts})"

    @property
    def num_boxes(self) -> int:
        return sum(len(s.boxes) for s in self.samples)

    def class_counts(self) -> dict[str, int]:
        """Boxes per class name (all names, zeros included)."""
        counts = np.zeros(len(self.names), np.int64)
        for sample in self.samples:
            counts += np.bincount(sample.classes, minlength=len(self.names))
        return dict(zip(self.names, counts.tolist(), strict=True))

    def subset(self, indices: Sequence[int] | np.ndarray) -> DetectionDataset:
        """The samples at `indices`, in that order."""
        return DetectionDataset(self.names, [self.samples[int(i)] for i in indices], self.source)

    def split(self, fraction: float, seed: int = 0) -> tuple[DetectionDataset, DetectionDataset]:
        """(a, b): a random `fraction` of the images (rounded) and the rest, each in the original order.

        The same (dataset, fraction, seed) always gives the same split, so a training run and a later
        evaluation agree on which images were held out.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"split fraction must be in [0, 1], got {fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        cut = round(fraction * len(self))
        return self.subset(np.sort(order[:cut])), self.subset(np.sort(order[cut:]))

    def select_classes(self, classes: Sequence[str]) -> DetectionDataset:
        """Only the boxes of `classes` (by name), renumbered 0.. in the order given; every image is kept,
        so images without those classes stay in as negatives."""
        wanted = [str(c).strip() for c in classes]
        unknown = [c for c in wanted if c not in self.names]
        if unknown or not wanted or len(set(wanted)) != len(wanted):
            raise DatasetError(
                f"classes {wanted}: each must be one (distinct) class of {self.source or 'the dataset'}, "
                f"whose names are {list(self.names)}; unknown: {unknown}"
            )
        class_map = np.full(len(self.names), -1, np.int64)
        class_map[[self.names.index(c) for c in wanted]] = np.arange(len(wanted))
        samples = [s.keep(class_map[s.classes] >= 0).relabel(class_map) for s in self.samples]
        return DetectionDataset(wanted, samples, self.source)

    def image_gts(self, difficult_as_crowd: bool = True) -> list[ImageGT]:
        """Ground truth of every sample for yolo_compress.eval.evaluate, in dataset order."""
        return [to_image_gt(s, difficult_as_crowd) for s in self.samples]


def join(datasets: Sequence[DetectionDataset]) -> DetectionDataset:
    """One dataset of all samples in order; names are the union in order of first appearance.

    "pennfudan (person) + coco128 (80 COCO names)" becomes the 80 COCO names, with pennfudan's person
    boxes renumbered to COCO's person id.
    """
    if not datasets:
        raise DatasetError("nothing to join: no datasets given")
    names: list[str] = []
    for dataset in datasets:
        names.extend(n for n in dataset.names if n not in names)
    samples = []
    for dataset in datasets:
        class_map = np.array([names.index(n) for n in dataset.names], np.int64)
        samples.extend(s.relabel(class_map) for s in dataset)
    return DetectionDataset(names, samples, " + ".join(d.source for d in datasets))


def to_image_gt(sample: Sample, difficult_as_crowd: bool = True) -> ImageGT:
    """The sample's ground truth for yolo_compress.eval (COCO conventions, class ids unchanged).

    Difficult boxes become COCO crowd regions: never missed, and a detection on one counts neither as
    right nor wrong. That is VOC's rule for `difficult` up to the IoU a crowd match uses (intersection
    over the detection's area), so VOC AP computed here can differ slightly from the VOC devkit's.
    With `difficult_as_crowd=False` they are ordinary boxes.
    """
    crowd = sample.difficult if difficult_as_crowd else None
    return ImageGT.from_xyxy(sample.boxes, sample.classes, crowd=crowd)


def _check_names(names: Sequence[str], source: str) -> tuple[str, ...]:
    checked = tuple(str(n) for n in names)
    where = source or "dataset"
    if not checked or not all(n.strip() == n and n for n in checked):
        raise DatasetError(f"{where}: class names must be non-empty without surrounding spaces, got {list(names)}")
    if len(set(checked)) != len(checked):
        repeated = sorted({n for n in checked if checked.count(n) > 1})
        raise DatasetError(f"{where}: class names repeat: {repeated}")
    return checked
