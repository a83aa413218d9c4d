"""Flat per-box tables of a whole evaluation set, in the orders COCOeval processes boxes.

COCOeval's results depend on order where scores tie: detections of one (image, class) are taken by
descending score with a stable sort of their input order, cut at max_dets, and the per-class
accumulation then stable-sorts the concatenation of images (in image order) by score. These tables
carry the image index and within-group rank that reproduce both orders with plain lexsorts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from yolo_compress.eval.annotations import ImageDT, ImageGT


@dataclass(frozen=True, eq=False)
class GtTable:
    """All ground-truth boxes, image by image in input order."""

    image: np.ndarray
    cls: np.ndarray
    xywh: np.ndarray
    crowd: np.ndarray
    area: np.ndarray

    @classmethod
    def stack(cls, images: Sequence[ImageGT], n_classes: int) -> GtTable:
        image = _image_index([len(g.classes) for g in images])
        classes = _concat([g.classes for g in images], np.int64)
        _check_classes(classes, image, n_classes, "gt")
        return cls(
            image=image,
            cls=classes,
            xywh=_concat([g.xywh for g in images], np.float64).reshape(-1, 4),
            crowd=_concat([g.crowd for g in images], bool),
            area=_concat([g.area for g in images], np.float64),
        )


@dataclass(frozen=True, eq=False)
class DtTable:
    """Detections grouped by (image, class), by descending score within a group, at most max_dets each.

    `rank` is the position within the group, which the maxDets 1/10 recalls cut on.
    """

    image: np.ndarray
    cls: np.ndarray
    xywh: np.ndarray
    score: np.ndarray
    rank: np.ndarray

    @classmethod
    def stack(cls, images: Sequence[ImageDT], n_classes: int, max_dets: int) -> DtTable:
        image = _image_index([len(d.classes) for d in images])
        classes = _concat([d.classes for d in images], np.int64)
        _check_classes(classes, image, n_classes, "dt")
        score = _concat([d.scores for d in images], np.float64)
        order = np.lexsort((np.arange(len(score)), -score, classes, image))
        group = image[order] * n_classes + classes[order]
        rank = np.arange(len(order)) - np.searchsorted(group, group)
        keep = order[rank < max_dets]
        return cls(
            image=image[keep],
            cls=classes[keep],
            xywh=_concat([d.xywh for d in images], np.float64).reshape(-1, 4)[keep],
            score=score[keep],
            rank=rank[rank < max_dets],
        )

    def by_class(self, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """(order, bounds): COCOeval's accumulation order, class k at order[bounds[k]:bounds[k + 1]]."""
        order = np.lexsort((self.rank, self.image, -self.score, self.cls))
        return order, np.searchsorted(self.cls[order], np.arange(n_classes + 1))


def _image_index(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in parts] or [np.zeros(0, dtype)])


def _check_classes(classes: np.ndarray, image: np.ndarray, n_classes: int, what: str) -> None:
    bad = (classes < 0) | (classes >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{what}[{image[i]}].classes: class index {classes[i]} is outside 0..{n_classes - 1} "
            f"(class_names has {n_classes} names)"
        )
