"""Boxes and "name score" labels drawn on a BGR image, for RViz (`~/annotated`) and `tools/detect.py`."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from yolo_compress.runtime.postprocess import Detections

FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_color(class_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR color per class (golden-ratio hue steps), so a class keeps its color."""
    hue = int((class_id * 0.618033988749895 % 1.0) * 180)
    pixel = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def draw_detections(image: np.ndarray, detections: Detections, names: Sequence[str]) -> np.ndarray:
    """A copy of `image` (BGR uint8) with each detection's box and label; the input is left untouched."""
    canvas = image.copy()
    scale = max(0.4, min(canvas.shape[:2]) / 1000)
    thickness = max(1, round(scale * 2))
    for box, score, cls in zip(detections.boxes, detections.scores, detections.class_ids, strict=True):
        color = class_color(int(cls))
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
        _draw_label(canvas, f"{names[cls]} {score:.2f}", (x1, y1), color, scale, thickness)
    return canvas


def _draw_label(
    canvas: np.ndarray, text: str, corner: tuple[int, int], color: tuple[int, int, int], scale: float, thickness: int
) -> None:
    """Filled label above the box's top-left corner, moved inside the box when it would leave the image."""
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = corner
    top = y - text_h - baseline if y - text_h - baseline >= 0 else y
    cv2.rectangle(canvas, (x, top), (x + text_w, top + text_h + baseline), color, cv2.FILLED)
    cv2.putText(canvas, text, (x, top + text_h), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
