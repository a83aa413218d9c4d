"""Detection over offline frames with JSON records and annotated copies: the logic behind tools/detect.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from yolo_compress.runtime.annotate import draw_detections
from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.sources import Frame


@dataclass
class FileDetectionRun:
    """One JSON-ready record per frame detected, and the names of the frames that failed."""

    records: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def detect_frames(
    detector: Detector,
    frames: Iterable[Frame],
    save_dir: Path | None = None,
    on_failure: Callable[[Frame], None] | None = None,
) -> FileDetectionRun:
    """Detect on every readable frame; unreadable ones are passed to `on_failure` and skipped.

    With `save_dir`, each frame is also written there annotated, named after its source (see annotated_name).
    """
    run = FileDetectionRun()
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        if frame.image is None:
            run.failures.append(frame.name)
            if on_failure is not None:
                on_failure(frame)
            continue
        detections = detector.detect(frame.image).detections
        height, width = frame.image.shape[:2]
        run.records.append(
            {"image": frame.name, "width": width, "height": height, "detections": detections.to_dicts(detector.names)}
        )
        if save_dir is not None:
            annotated = draw_detections(frame.image, detections, detector.names)
            cv2.imwrite(str(save_dir / annotated_name(frame.name)), annotated)
    return run


def annotated_name(frame_name: str) -> str:
    """'a/b/dog.jpg' -> 'dog.jpg'; 'clips/run.mp4#000012' -> 'run_000012.jpg'."""
    path, _, index = frame_name.partition("#")
    return f"{Path(path).stem}_{index}.jpg" if index else Path(path).name
