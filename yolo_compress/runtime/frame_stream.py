"""Endless (or counted) streams of BGR frames for tools/publish_images.py: files, videos or generated frames.

A user with no camera needs something that looks like one: frames of a fixed size at a steady rate, forever
if asked. Unreadable files are skipped with a message (like tools/detect.py), a stream of only unreadable
files raises instead of spinning forever on nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from yolo_compress.runtime.sources import expand_sources, iter_frames

SYNTHETIC_BOXES = 4


def file_frames(sources: Sequence[str | Path], loop: bool = False) -> Iterator[np.ndarray]:
    """BGR frames of images, folders of images and videos, in order; again from the start with `loop`."""
    paths = expand_sources(sources)
    if not paths:
        raise ValueError(f"no images or videos in {', '.join(map(str, sources))}")
    while True:
        produced = 0
        for frame in iter_frames(paths):
            if frame.image is None:
                print(f"publish_images: {frame.name}: {frame.error}, skipped", file=sys.stderr)
                continue
            produced += 1
            yield frame.image
        if not produced:
            raise ValueError(f"none of {', '.join(map(str, paths))} could be read")
        if not loop:
            return


def synthetic_frames(width: int, height: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Endless frames of colored boxes drifting over a gray background, with the frame number printed."""
    if width < 16 or height < 16:
        raise ValueError(f"synthetic frames need at least 16x16 pixels, got {width}x{height}")
    rng = np.random.default_rng(seed)
    sizes = rng.integers(min(width, height) // 8, min(width, height) // 3, (SYNTHETIC_BOXES, 2))
    starts = rng.uniform(0, 1, (SYNTHETIC_BOXES, 2))
    speeds = rng.uniform(-0.01, 0.01, (SYNTHETIC_BOXES, 2))
    colors = [tuple(int(c) for c in rng.integers(40, 255, 3)) for _ in range(SYNTHETIC_BOXES)]
    index = 0
    while True:
        frame = np.full((height, width, 3), 90, np.uint8)
        for size, start, speed, color in zip(sizes, starts, speeds, colors, strict=True):
            x, y = (np.abs((start + speed * index) % 2 - 1) * ([width, height] - size)).astype(int)
            cv2.rectangle(frame, (int(x), int(y)), (int(x + size[0]), int(y + size[1])), color, cv2.FILLED)
        cv2.putText(frame, str(index), (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        yield frame
        index += 1
