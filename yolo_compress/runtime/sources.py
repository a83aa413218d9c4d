"""Image files, folders of images and videos as one stream of named frames, for offline detection.

A frame that cannot be read arrives as a `Frame` with an error instead of an exception, so one corrupt
file in a folder of thousands costs one line on stderr, not the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"})


@dataclass(frozen=True)
class Frame:
    """One image to detect on: `image` is BGR uint8, or None with `error` saying why it could not be read."""

    name: str
    image: np.ndarray | None
    error: str = ""


def expand_sources(sources: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders replaced by the images directly inside them (sorted by name)."""
    paths: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            paths.extend(sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        else:
            paths.append(source)
    return paths


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def count_frames(paths: Sequence[Path]) -> int:
    """Expected number of frames (a video's container frame count may be approximate); for progress bars."""
    return sum(_video_length(p) if is_video(p) else 1 for p in paths)


def iter_frames(paths: Sequence[Path]) -> Iterator[Frame]:
    """Every image, and every frame of every video (named 'clip.mp4#000123'), in order."""
    for path in paths:
        if is_video(path):
            yield from _video_frames(path)
        else:
            yield _read_image(path)


def _read_image(path: Path) -> Frame:
    if not path.is_file():
        return Frame(str(path), None, "no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return Frame(str(path), None, "not a readable image") if image is None else Frame(str(path), image)


def _video_frames(path: Path) -> Iterator[Frame]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            yield Frame(str(path), None, "not a readable video")
            return
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield Frame(f"{path}#{index:06d}", image)
            index += 1
        if index == 0:
            yield Frame(str(path), None, "video has no readable frames")
    finally:
        capture.release()


def _video_length(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    try:
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        capture.release()
