"""Make a camera bag from a labeled dataset (image folders, synthetic scenes) or from a video.

Frames are stamped at a fixed rate from a start time, the image and its ground truth with the same stamp. A
YOLO folder with a `seq.json` (the real camera sequences in ../shared/data) is a video: its recorded fps is
the default rate. Compressed bags carry JPEG/PNG files byte for byte; raw bags carry the decoded pixels in the
chosen encoding.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from yolo_compress.bag.errors import BagError
from yolo_compress.bag.images import compressed_message, image_message
from yolo_compress.bag.messages import NS_PER_S, LabeledBoxes, header
from yolo_compress.bag.typestore import COMPRESSED_IMAGE, IMAGE
from yolo_compress.bag.writer import CameraBagWriter, CameraTopics
from yolo_compress.data.dataset import DetectionDataset, Sample
from yolo_compress.data.specs import split_specs
from yolo_compress.runtime.image_encoding import compressed_to_bgr

log = logging.getLogger(__name__)

DEFAULT_RATE_HZ = 10.0
_FILE_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


@dataclass(frozen=True)
class BagSpec:
    """How to write the bag: output, storage, image message (`compressed` 'jpeg'/'png' or None for a raw Image
    in `encoding`), topics, frame id, rate (None: the source's own) and the stamp of the first frame."""

    out: Path
    storage: str = "mcap"
    compressed: str | None = None
    encoding: str = "bgr8"
    topics: CameraTopics = CameraTopics()
    frame_id: str = "camera"
    rate: float | None = None
    start_ns: int | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class _Frame:
    """One frame to write: pixels (or the file's bytes, already in the compressed format asked for), and its
    ground truth."""

    image: np.ndarray | None
    encoded: bytes | None
    truth: LabeledBoxes | None


def sequence_fps(spec: str | Sequence[str]) -> float | None:
    """The fps in the seq.json of a single `yolo:DIR` spec, or None."""
    parts = split_specs(spec)
    if len(parts) != 1 or not parts[0].startswith("yolo:"):
        return None
    seq = Path(parts[0].removeprefix("yolo:").partition("?")[0]) / "seq.json"
    if not seq.is_file():
        return None
    try:
        fps = float(json.loads(seq.read_text(encoding="utf-8"))["fps"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BagError(f"{seq}: cannot read its fps: {exc}") from exc
    if not fps > 0:
        raise BagError(f"{seq}: fps must be > 0, got {fps}")
    return fps


def bag_from_dataset(dataset: DetectionDataset, spec: BagSpec, default_rate: float | None = None) -> dict:
    """Write every sample of `dataset` with its ground truth; returns a summary of the bag."""
    frames = (_dataset_frame(sample, dataset.names, spec.compressed) for sample in dataset)
    return _write(frames, len(dataset), list(dataset.names), spec, default_rate)


def bag_from_video(video: str | os.PathLike, spec: BagSpec) -> dict:
    """Write every frame of a video (no ground truth); the default rate is the container's fps."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise BagError(f"{video}: not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    try:
        return _write(_video_frames(capture), count, None, spec, fps if fps > 0 else None)
    finally:
        capture.release()


def _write(
    frames: Iterator[_Frame], count: int, class_names: list[str] | None, spec: BagSpec, default_rate: float | None
) -> dict:
    rate = spec.rate if spec.rate is not None else default_rate or DEFAULT_RATE_HZ
    if not rate > 0:
        raise ValueError(f"rate must be > 0 Hz, got {rate}")
    if spec.rate is None and default_rate is None:
        log.info("no --rate and no recorded fps: stamping frames at %.0f Hz", rate)
    start = spec.start_ns if spec.start_ns is not None else time.time_ns()
    image_type = IMAGE if spec.compressed is None else COMPRESSED_IMAGE
    boxes = 0
    with CameraBagWriter(spec.out, image_type, class_names, spec.topics, spec.storage, spec.overwrite) as writer:
        for index, frame in enumerate(tqdm(frames, total=count, desc="writing bag", unit="frame", leave=False)):
            stamp = start + round(index * NS_PER_S / rate)
            writer.write_frame(stamp, _image_msg(frame, spec, header(stamp, spec.frame_id)), frame.truth)
            boxes += len(frame.truth) if frame.truth is not None else 0
        if writer.frames == 0:
            raise BagError(f"{spec.out}: the source has no frames; no bag written")
    return {"path": str(spec.out), "frames": writer.frames, "boxes": boxes, "rate_hz": rate, "classes": class_names,
            "image_topic": spec.topics.image, "image_type": image_type, "storage": spec.storage}


def _image_msg(frame: _Frame, spec: BagSpec, msg_header: object) -> object:
    if spec.compressed is None:
        return image_message(frame.image, spec.encoding, msg_header)
    return compressed_message(spec.compressed, msg_header, bgr=frame.image, data=frame.encoded)


def _dataset_frame(sample: Sample, names: Sequence[str], compressed: str | None) -> _Frame:
    """The sample's frame: its file's own bytes when they already are the compressed format asked for and the
    node decodes them to the very pixels the labels are on (an EXIF rotation would turn them: then re-encode)."""
    truth = LabeledBoxes.ground_truth(sample.boxes, [names[c] for c in sample.classes], sample.difficult)
    image = sample.load_image()
    path = sample.image_path
    if compressed is not None and path is not None and _FILE_FORMATS.get(path.suffix.lower()) == compressed:
        data = path.read_bytes()
        if np.array_equal(compressed_to_bgr(data, compressed), image):
            return _Frame(None, data, truth)
        log.warning("%s: decodes differently as a message (EXIF orientation?); re-encoded from its pixels", path)
    return _Frame(image, None, truth)


def _video_frames(capture: cv2.VideoCapture) -> Iterator[_Frame]:
    while True:
        ok, image = capture.read()
        if not ok:
            return
        yield _Frame(image, None, None)

