"""Images and boxes to the network input, with or without detection augmentation.

Without augmentation an image goes through the runtime's own Preprocessor, so a model is trained and
validated on exactly the pixels the robot will feed it. With augmentation, the fit to the input
(letterbox or stretch, as the model's `resize` says) and a random scale/translate are one affine warp
(one interpolation), then a horizontal flip and an HSV jitter. Boxes go through the same matrix
(exact: the maps are axis-aligned), are clipped to the input, and are dropped when they end up tiny or
mostly out of frame. A mosaic puts four images, each augmented so into one quadrant, on one input: the
people of a finetune set shot up close (Penn-Fudan, COCO) then also appear at half their size and less,
which is how a robot's fixed camera sees most of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from yolo_compress.runtime.preprocess import PAD_PIXEL, Preprocessor, fit_transform

MIN_BOX_SIZE = 2.0  # px of the network input: smaller boxes are not learnable targets
MIN_VISIBLE = 0.25  # fraction of a box's area that must stay in frame after a warp


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation strengths (YOLOv5-like defaults, milder scale for small networks).

    scale: zoom factor drawn from [1 - scale, 1 + scale] about the input centre; translate: shift drawn
    from +-translate x the input side; flip: probability of a horizontal flip; hsv_h: hue shift as a
    fraction of the hue circle; hsv_s, hsv_v: saturation and value gains drawn from [1 - g, 1 + g];
    mosaic: probability that a training sample is a 2x2 mosaic of it and three other random images
    (`mosaic`; 0 keeps every draw of a run made before mosaics existed).
    """

    scale: float = 0.25
    translate: float = 0.1
    flip: float = 0.5
    hsv_h: float = 0.015
    hsv_s: float = 0.5
    hsv_v: float = 0.3
    mosaic: float = 0.0

    def __post_init__(self) -> None:
        for name in ("scale", "translate", "flip", "hsv_h", "hsv_s", "hsv_v", "mosaic"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.scale >= 1.0:
            raise ValueError(f"AugmentConfig.scale must be < 1 (zoom stays positive), got {self.scale}")


def prepare(
    image: np.ndarray,
    boxes: np.ndarray,
    input_size: tuple[int, int],
    resize: str,
    augment: AugmentConfig | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input float32 [3,H,W] RGB 0..1, boxes float32 [K',4] x1,y1,x2,y2 input pixels, keep bool [K]).

    `image` is BGR uint8 with `boxes` [K,4] in its pixels; `keep` marks which of the K boxes survive
    (index the classes with it). `augment=None` is deterministic and equals the runtime's preprocessing.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if augment is None:
        batch, _ = Preprocessor(input_size, resize)([image])
        out, kept = transform_boxes(boxes, fit_matrix(image.shape, input_size, resize)[:2], input_size)
        return batch[0].copy(), out, kept
    if rng is None:
        raise ValueError("prepare: augmentation needs a numpy Generator (rng) for reproducible draws")
    warped, out, kept = augment_geometry(image, boxes, input_size, resize, augment, rng)
    hsv_jitter(warped, augment, rng)
    return to_input(warped), out, kept


def mosaic(
    tiles: Sequence[tuple[np.ndarray, np.ndarray]],
    input_size: tuple[int, int],
    resize: str,
    augment: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Four (BGR image, boxes [K,4]) tiles -> (input [3,H,W], boxes [sum K',4], one keep mask per tile).

    Tile q fills quadrant q (row-major) of the input: fitted to the quadrant as the model's `resize` says,
    zoomed, shifted and flipped inside it, its boxes clipped to it. One HSV jitter over the whole input.
    """
    if len(tiles) != 4:
        raise ValueError(f"mosaic: needs 4 tiles, got {len(tiles)}")
    height, width = input_size
    half = (height // 2, width // 2)
    canvas = np.full((height, width, 3), PAD_PIXEL, np.uint8)
    boxes, keeps = [], []
    for quadrant, (image, tile_boxes) in enumerate(tiles):
        top, left = (quadrant // 2) * half[0], (quadrant % 2) * half[1]
        tile_boxes = np.asarray(tile_boxes, np.float32).reshape(-1, 4)
        tile, out, kept = augment_geometry(image, tile_boxes, half, resize, augment, rng)
        canvas[top : top + half[0], left : left + half[1]] = tile
        boxes.append(out + np.array([left, top, left, top], np.float32))
        keeps.append(kept)
    hsv_jitter(canvas, augment, rng)
    return to_input(canvas), np.concatenate(boxes).reshape(-1, 4), keeps


def augment_geometry(
    image: np.ndarray,
    boxes: np.ndarray,
    input_size: tuple[int, int],
    resize: str,
    augment: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fit, random zoom/shift (one warp) and flip of one image: (BGR uint8 [H,W,3], boxes, keep)."""
    matrix = random_affine(input_size, augment, rng) @ fit_matrix(image.shape, input_size, resize)
    warped = warp(image, matrix[:2], input_size)
    out, kept = transform_boxes(boxes, matrix[:2], input_size)
    if rng.random() < augment.flip:
        warped, out = hflip(warped, out)
    return warped, out, kept


def fit_matrix(shape: tuple[int, ...], input_size: tuple[int, int], resize: str) -> np.ndarray:
    """3x3 affine (continuous pixel coordinates) of the runtime's letterbox/stretch for an image of `shape`."""
    t = fit_transform(shape[0], shape[1], input_size, resize)
    return np.array([[t.scale_x, 0.0, t.pad_x], [0.0, t.scale_y, t.pad_y], [0.0, 0.0, 1.0]])


def random_affine(input_size: tuple[int, int], config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """3x3 random zoom about the input centre followed by a random shift."""
    height, width = input_size
    zoom = rng.uniform(1 - config.scale, 1 + config.scale)
    shift = rng.uniform(-config.translate, config.translate, 2) * (width, height)
    centre = np.array([width, height]) / 2
    offset = centre + shift - zoom * centre
    return np.array([[zoom, 0.0, offset[0]], [0.0, zoom, offset[1]], [0.0, 0.0, 1.0]])


def warp(image: np.ndarray, matrix: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Warp BGR uint8 `image` by the 2x3 continuous-coordinate `matrix` into the input, padded gray.

    OpenCV maps pixel indices, whose centres sit at +0.5 in continuous coordinates, so the translation is
    corrected by A·0.5 - 0.5; that is also how cv2.resize samples, so no half-pixel shift creeps in.
    """
    linear = matrix[:, :2]
    index_matrix = np.hstack([linear, (matrix[:, 2] + linear @ [0.5, 0.5] - 0.5)[:, None]])
    height, width = input_size
    return cv2.warpAffine(
        image, index_matrix, (width, height), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_PIXEL,) * 3,
    )  # fmt: skip


def transform_boxes(
    boxes: np.ndarray,
    matrix: np.ndarray,
    input_size: tuple[int, int],
    min_size: float = MIN_BOX_SIZE,
    min_visible: float = MIN_VISIBLE,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes through a 2x3 affine, clipped to the input: (kept boxes float32 [K',4], keep mask [K]).

    The new box bounds the four transformed corners. A box is dropped when, clipped, it is under
    `min_size` px wide or high or keeps under `min_visible` of its transformed area.
    """
    height, width = input_size
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2).astype(np.float64)
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    full = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    clipped = np.clip(full, 0, [width, height, width, height])
    size, full_size = clipped[:, 2:] - clipped[:, :2], full[:, 2:] - full[:, :2]
    area, full_area = size.prod(axis=1), full_size.prod(axis=1)
    keep = (size >= min_size).all(axis=1) & (area >= min_visible * np.maximum(full_area, 1e-12))
    return clipped[keep].astype(np.float32), keep


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right and its boxes with it."""
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0], flipped[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def hsv_jitter(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> None:
    """Shift hue and scale saturation and value of BGR uint8 `image` in place, through lookup tables."""
    shift = rng.uniform(-config.hsv_h, config.hsv_h) * 180
    gain_s, gain_v = rng.uniform(-1, 1, 2) * (config.hsv_s, config.hsv_v) + 1
    levels = np.arange(256, dtype=np.float64)
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    tables = (
        np.round(levels + shift) % 180,
        np.clip(np.round(levels * gain_s), 0, 255),
        np.clip(np.round(levels * gain_v), 0, 255),
    )
    channels = [cv2.LUT(c, t.astype(np.uint8)) for c, t in zip((hue, sat, val), tables, strict=True)]
    cv2.cvtColor(cv2.merge(channels), cv2.COLOR_HSV2BGR, dst=image)


def to_input(image: np.ndarray) -> np.ndarray:
    """BGR uint8 [H,W,3] -> float32 [3,H,W] RGB 0..1, the contract's input layout."""
    return np.ascontiguousarray(image.transpose(2, 0, 1)[::-1], dtype=np.float32) * np.float32(1 / 255)
