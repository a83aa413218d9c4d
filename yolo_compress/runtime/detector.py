"""One contract model behind one call: frames in, detections and per-stage timing out.

This is the whole robot-side inference path (ONNX Runtime, numpy, OpenCV; never torch) shared by the ROS
node, the detect CLI and the rosbag evaluation, so all three measure and report the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf

from yolo_compress.runtime.contract import OUTPUT_NAMES, ContractError, ModelInfo, read_contract
from yolo_compress.runtime.postprocess import Detections, postprocess
from yolo_compress.runtime.preprocess import Preprocessor
from yolo_compress.runtime.providers import SPIN_US, create_session


@dataclass(frozen=True)
class Timing:
    """Stage times in ms. In a batch, preprocess and inference are the whole batch's (shared by its results)."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    batch_size: int = 1

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


@dataclass(frozen=True)
class Result:
    """Detections of one image and what producing them cost."""

    detections: Detections
    timing: Timing


class Detector:
    """An ONNX Runtime session on a contract model with its pre/post-processing and settings.

    `providers` is a preference list ('tensorrt', 'cuda', 'cpu' or full provider names); None takes the
    fastest provider this onnxruntime build has. `provider` tells which one the session really runs on.
    `classes` (names or ids) limits detection to those classes; None detects all.
    """

    def __init__(
        self,
        model_path: str | Path,
        providers: Sequence[str] | None = None,
        provider_options: Mapping[str, Mapping[str, object]] | None = None,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        classes: Sequence[str | int] | None = None,
        max_detections: int = 100,
        intra_op_threads: int | None = None,
        spin_us: int | None = SPIN_US,
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model not found: {self.model_path}")
        self._session, self.provider = _load_session(self.model_path, providers, provider_options, intra_op_threads,
                                                     spin_us)
        self.info: ModelInfo = read_contract(self._session, str(self.model_path))
        self._preprocess = Preprocessor(self.info.input_size, self.info.resize, self.info.input_name)
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.classes = classes
        self.max_detections = max_detections

    @property
    def names(self) -> tuple[str, ...]:
        return self.info.names

    @property
    def conf_threshold(self) -> float:
        return self._conf

    @conf_threshold.setter
    def conf_threshold(self, value: float) -> None:
        self._conf = _unit_interval("conf_threshold", value)

    @property
    def iou_threshold(self) -> float:
        return self._iou

    @iou_threshold.setter
    def iou_threshold(self, value: float) -> None:
        self._iou = _unit_interval("iou_threshold", value)

    @property
    def max_detections(self) -> int:
        return self._max_detections

    @max_detections.setter
    def max_detections(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"max_detections must be >= 1, got {value}")
        self._max_detections = int(value)

    @property
    def classes(self) -> tuple[int, ...] | None:
        """Class ids detected (sorted), or None for all."""
        return None if self._class_ids is None else tuple(int(c) for c in self._class_ids)

    @classes.setter
    def classes(self, value: Sequence[str | int] | None) -> None:
        self._class_ids = None if value is None else resolve_classes(value, self.names)

    def detect(self, image: np.ndarray) -> Result:
        """Detections in `image` (BGR uint8 HxWx3 or gray HxW) in its own pixel coordinates."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Result]:
        """One session run for all `images` (any sizes); one Result per image, in order."""
        start = time.perf_counter()
        batch, transforms = self._preprocess(images)
        preprocessed = time.perf_counter()
        boxes, scores = self._session.run(list(OUTPUT_NAMES), {self.info.input_name: batch})
        inferred = time.perf_counter()
        if scores.shape[-1] != self.info.num_classes:
            raise ContractError(
                f"{self.model_path}: output 'scores' has C={scores.shape[-1]} classes but names has "
                f"{self.info.num_classes}"
            )
        results = []
        for image_boxes, image_scores, transform in zip(boxes, scores, transforms, strict=True):
            post_start = time.perf_counter()
            detections = postprocess(
                image_boxes, image_scores, transform, self._conf, self._iou, self._class_ids, self._max_detections
            )
            timing = Timing(
                preprocess_ms=(preprocessed - start) * 1e3,
                inference_ms=(inferred - preprocessed) * 1e3,
                postprocess_ms=(time.perf_counter() - post_start) * 1e3,
                batch_size=len(images),
            )
            results.append(Result(detections, timing))
        return results


def resolve_classes(classes: Sequence[str | int], names: Sequence[str]) -> np.ndarray:
    """Class names or ids -> sorted unique int ids; an unknown one raises ValueError listing the valid names."""
    ids = set()
    for item in classes:
        if isinstance(item, str) and item.strip() in names:
            ids.add(names.index(item.strip()))
        elif isinstance(item, str) and not item.strip().isdigit():
            raise ValueError(f"unknown class {item!r}; the model's classes are: {', '.join(names)}")
        elif 0 <= int(item) < len(names):
            ids.add(int(item))
        else:
            raise ValueError(f"class id {item} out of range: the model has {len(names)} classes (0..{len(names) - 1})")
    if not ids:
        raise ValueError("classes is empty: pass None to detect all classes")
    return np.array(sorted(ids), dtype=np.int64)


def _unit_interval(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _load_session(
    path: Path,
    providers: Sequence[str] | None,
    provider_options: Mapping[str, Mapping[str, object]] | None,
    intra_op_threads: int | None,
    spin_us: int | None,
) -> tuple[ort.InferenceSession, str]:
    """create_session, with a file ONNX Runtime cannot parse reported as a contract violation."""
    try:
        return create_session(str(path), providers, provider_options, intra_op_threads, spin_us)
    except (Fail, InvalidGraph, InvalidProtobuf) as exc:
        raise ContractError(f"{path}: not a loadable ONNX model: {exc}") from exc
