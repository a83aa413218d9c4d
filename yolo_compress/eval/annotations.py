"""Ground truth and detections of one image, in COCO box conventions, validated once at the boundary.

Boxes are kept as COCO `[x, y, width, height]` float64 because every number of the evaluation (IoU,
areas, area ranges) is computed from those values in the same order of operations as pycocotools:
going through corners and back would perturb the last bits and can move a box across an area or IoU
threshold. `from_xyxy` converts the runtime's corner boxes once, on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def xyxy_to_xywh(boxes: npt.ArrayLike) -> np.ndarray:
    """Corner boxes `(N, 4)` x1, y1, x2, y2 to COCO `[x, y, width, height]` float64."""
    xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)


@dataclass(frozen=True, eq=False)
class ImageGT:
    """Ground-truth boxes of one image.

    `classes` index `class_names` of the evaluation. `crowd` marks COCO `iscrowd` regions (never
    missed, and detections inside them are neither right nor wrong); default none. `area` is the
    COCO annotation area that decides small/medium/large (pycocotools reads it from the file, and
    for segmented objects it is smaller than the box); default width * height. `image_id` is only
    carried for COCO files and checked against the detections of the same image when both set it.
    """

    xywh: np.ndarray
    classes: np.ndarray
    crowd: np.ndarray | None = None
    area: np.ndarray | None = None
    image_id: int | None = None

    def __post_init__(self) -> None:
        xywh = _boxes(self.xywh, "ImageGT.xywh")
        n = len(xywh)
        crowd = np.zeros(n, bool) if self.crowd is None else _column(self.crowd, "ImageGT.crowd", n).astype(bool)
        area = xywh[:, 2] * xywh[:, 3] if self.area is None else _non_negative(self.area, "ImageGT.area", n)
        object.__setattr__(self, "xywh", xywh)
        object.__setattr__(self, "classes", _classes(self.classes, "ImageGT.classes", n))
        object.__setattr__(self, "crowd", crowd)
        object.__setattr__(self, "area", area)

    @classmethod
    def from_xyxy(
        cls,
        boxes: npt.ArrayLike,
        classes: npt.ArrayLike,
        crowd: npt.ArrayLike | None = None,
        area: npt.ArrayLike | None = None,
        image_id: int | None = None,
    ) -> ImageGT:
        """Ground truth from corner boxes (x1, y1, x2, y2 in pixels)."""
        return cls(xyxy_to_xywh(boxes), np.asarray(classes), crowd, area, image_id)


@dataclass(frozen=True, eq=False)
class ImageDT:
    """Detections of one image: boxes, confidence scores and class indices into `class_names`."""

    xywh: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    image_id: int | None = None

    def __post_init__(self) -> None:
        xywh = _boxes(self.xywh, "ImageDT.xywh")
        n = len(xywh)
        scores = _column(self.scores, "ImageDT.scores", n).astype(np.float64)
        if not np.isfinite(scores).all():
            raise ValueError(f"ImageDT.scores: must be finite, got {scores[~np.isfinite(scores)][:3]}")
        object.__setattr__(self, "xywh", xywh)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "classes", _classes(self.classes, "ImageDT.classes", n))

    @classmethod
    def from_xyxy(
        cls, boxes: npt.ArrayLike, scores: npt.ArrayLike, classes: npt.ArrayLike, image_id: int | None = None
    ) -> ImageDT:
        """Detections from corner boxes (x1, y1, x2, y2 in pixels), as the runtime returns them."""
        return cls(xyxy_to_xywh(boxes), np.asarray(scores), np.asarray(classes), image_id)


def _boxes(value: npt.ArrayLike, what: str) -> np.ndarray:
    boxes = np.asarray(value, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what}: expected shape (N, 4) [x, y, width, height], got {boxes.shape}")
    bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if bad.any():
        raise ValueError(f"{what}: box {int(np.argmax(bad))} is not finite with width, height >= 0: {boxes[bad][0]}")
    return boxes


def _column(value: npt.ArrayLike, what: str, n: int) -> np.ndarray:
    column = np.asarray(value)
    if column.size == 0 and n == 0:
        return column.reshape(0)
    if column.shape != (n,):
        raise ValueError(f"{what}: expected shape ({n},) to match the boxes, got {column.shape}")
    return column


def _classes(value: npt.ArrayLike, what: str, n: int) -> np.ndarray:
    column = _column(value, what, n)
    integral = column.dtype.kind in "iu" or (column.dtype.kind == "f" and np.array_equal(column, np.round(column)))
    if column.size and not integral:
        raise ValueError(f"{what}: expected integer class indices, got {column[:5]}")
    return column.astype(np.int64)


def _non_negative(value: npt.ArrayLike, what: str, n: int) -> np.ndarray:
    column = _column(value, what, n).astype(np.float64)
    if not (np.isfinite(column) & (column >= 0)).all():
        raise ValueError(f"{what}: must be finite and >= 0, got {column[:5]}")
    return column
