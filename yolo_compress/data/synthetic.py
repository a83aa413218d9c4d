"""Deterministic synthetic scenes: filled shapes with exact boxes on a textured background.

They exist so the demo model can be trained from scratch in minutes on 2 CPU cores and tests need no
real data. Each class is one shape drawn in its own hue band (shape and colour both tell the class,
which the small demo network learns fast); sizes span the demo cfg's anchors. A scene is a function of
(seed, index) alone: image i is the same whether 10 or 10 000 are made, and its pixels are re-rendered
on demand from a few numbers, so a dataset of any length costs no memory and pickles into workers.
Boxes are the exact pixel extent of each drawn shape (continuous corners: columns 3..9 -> x1=3, x2=10),
and shapes never overlap, so every box is fully visible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from yolo_compress.data.dataset import DetectionDataset, Sample
from yolo_compress.data.yolo_txt import write_yolo

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
_MAX_TRIES = 30  # placements tried per object before the scene makes do with fewer objects


@dataclass(frozen=True)
class SyntheticConfig:
    """Scene parameters. The defaults fit the built-in demo cfg: 192x192 input, 3 classes, objects of
    12..96 px (its anchors span 5..159 px)."""

    height: int = 192
    width: int = 192
    num_classes: int = 3
    min_objects: int = 1
    max_objects: int = 6
    min_side: int = 12
    max_side: int = 96

    def __post_init__(self) -> None:
        if not 1 <= self.num_classes <= len(SHAPES):
            raise ValueError(f"num_classes must be 1..{len(SHAPES)} (shapes: {', '.join(SHAPES)})")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 4 <= self.min_side <= self.max_side <= min(self.height, self.width):
            raise ValueError(
                f"need 4 <= min_side <= max_side <= image side, got {self.min_side}, {self.max_side} "
                f"for {self.width}x{self.height}"
            )

    @property
    def names(self) -> tuple[str, ...]:
        return SHAPES[: self.num_classes]


@dataclass(frozen=True)
class Shape:
    """One object: class (index into SHAPES), integer rectangle it is drawn in, BGR colour."""

    cls: int
    x: int
    y: int
    w: int
    h: int
    color: tuple[int, int, int]


@dataclass(frozen=True)
class SyntheticScene:
    """Everything needed to re-render one image exactly: a callable returning BGR uint8 pixels."""

    height: int
    width: int
    background_seed: tuple[int, int]
    shapes: tuple[Shape, ...]

    def __call__(self) -> np.ndarray:
        image = _background(self.height, self.width, np.random.default_rng(self.background_seed))
        for shape in self.shapes:
            _draw(image, shape, shape.color)
        return image

    def __str__(self) -> str:
        return f"synthetic scene {self.background_seed[1]} (seed {self.background_seed[0]})"


def synthetic_dataset(n: int, seed: int = 0, config: SyntheticConfig | None = None) -> DetectionDataset:
    """`n` scenes; scene i depends only on (seed, i, config)."""
    config = config or SyntheticConfig()
    if n < 0:
        raise ValueError(f"number of synthetic images must be >= 0, got {n}")
    samples = [_sample(_scene(config, seed, i)) for i in range(n)]
    return DetectionDataset(config.names, samples, f"synthetic:{n}:{seed}")


def write_synthetic(
    out_dir: str | os.PathLike, n: int, seed: int = 0, config: SyntheticConfig | None = None, overwrite: bool = False
) -> Path:
    """Write `n` scenes as a YOLO-txt folder (PNG images, labels, names.txt) that `yolo:out_dir` loads back."""
    return write_yolo(synthetic_dataset(n, seed, config), out_dir, overwrite)


def _sample(scene: SyntheticScene) -> Sample:
    boxes = np.array([_tight_box(s) for s in scene.shapes], np.float32).reshape(-1, 4)
    classes = np.array([s.cls for s in scene.shapes], np.int64)
    return Sample(None, boxes, classes, scene.width, scene.height, render=scene)


def _scene(config: SyntheticConfig, seed: int, index: int) -> SyntheticScene:
    rng = np.random.default_rng([seed, index])
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    shapes: list[Shape] = []
    for _ in range(count * _MAX_TRIES):
        if len(shapes) == count:
            break
        candidate = _random_shape(config, rng)
        if not any(_overlap(candidate, other) for other in shapes):
            shapes.append(candidate)
    return SyntheticScene(config.height, config.width, (seed, index), tuple(shapes))


def _random_shape(config: SyntheticConfig, rng: np.random.Generator) -> Shape:
    cls = int(rng.integers(config.num_classes))
    side = np.exp(rng.uniform(np.log(config.min_side), np.log(config.max_side)))
    aspect = np.exp(rng.uniform(-0.35, 0.35))
    w = int(np.clip(round(side * aspect), 4, config.width))
    h = int(np.clip(round(side / aspect), 4, config.height))
    x, y = int(rng.integers(0, config.width - w + 1)), int(rng.integers(0, config.height - h + 1))
    return Shape(cls, x, y, w, h, _class_color(cls, config.num_classes, rng))


def _class_color(cls: int, num_classes: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated BGR colour in the class's own band of OpenCV hues (0..179)."""
    band = 180 / num_classes
    hue = (cls + 0.5) * band + rng.uniform(-0.25, 0.25) * band
    hsv = np.array([[[hue % 180, rng.integers(170, 256), rng.integers(150, 256)]]], np.uint8)
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _overlap(a: Shape, b: Shape, margin: int = 2) -> bool:
    return not (
        a.x + a.w + margin <= b.x or b.x + b.w + margin <= a.x or a.y + a.h + margin <= b.y or b.y + b.h + margin <= a.y
    )


def _background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A dull colour gradient with blotches and pixel noise: texture to ignore, never a class hue at full
    saturation."""
    corners = rng.uniform(40, 200, (2, 2, 3))
    gray = corners.mean(axis=2, keepdims=True)
    corners = gray + 0.3 * (corners - gray)  # low saturation
    image = cv2.resize(corners.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    blotches = cv2.resize(rng.normal(0, 18, (6, 6, 3)).astype(np.float32), (width, height))
    image += blotches.mean(axis=2, keepdims=True) + rng.normal(0, 6, (height, width, 3)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _draw(canvas: np.ndarray, shape: Shape, color: tuple[int, ...] | int) -> None:
    """Rasterize `shape` into its rectangle (no anti-aliasing, so the mask and its box are exact)."""
    x0, y0, x1, y1 = shape.x, shape.y, shape.x + shape.w - 1, shape.y + shape.h - 1
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    name = SHAPES[shape.cls]
    if name in ("circle", "ring"):
        axes = ((x1 - x0) // 2, (y1 - y0) // 2)
        thickness = -1 if name == "circle" else max(2, min(shape.w, shape.h) // 5)
        cv2.ellipse(canvas, (cx, cy), axes, 0, 0, 360, color, thickness, cv2.LINE_8)
    elif name == "square":
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, -1, cv2.LINE_8)
    elif name == "cross":
        bar_w, bar_h = max(2, shape.w // 3), max(2, shape.h // 3)
        cv2.rectangle(canvas, (cx - bar_w // 2, y0), (cx - bar_w // 2 + bar_w - 1, y1), color, -1, cv2.LINE_8)
        cv2.rectangle(canvas, (x0, cy - bar_h // 2), (x1, cy - bar_h // 2 + bar_h - 1), color, -1, cv2.LINE_8)
    else:
        points = [(cx, y0), (x1, y1), (x0, y1)] if name == "triangle" else [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
        cv2.fillPoly(canvas, [np.array(points, np.int32)], color, cv2.LINE_8)


def _tight_box(shape: Shape) -> tuple[float, float, float, float]:
    """The exact extent of the shape's drawn pixels, found by drawing it at the origin of a small mask
    (rasterizing integer coordinates is shift-invariant) and shifting the extent back."""
    mask = np.zeros((shape.h, shape.w), np.uint8)
    _draw(mask, replace(shape, x=0, y=0), 255)
    ys, xs = np.nonzero(mask)
    return float(shape.x + xs.min()), float(shape.y + ys.min()), float(shape.x + xs.max() + 1), float(
        shape.y + ys.max() + 1
    )
