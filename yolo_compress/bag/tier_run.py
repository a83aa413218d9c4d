"""One tier's detector on a bag's frames: the AP pass, the operating-point pass and their per-frame records.

Each frame is detected twice: at the low `ap_conf` that AP is always measured at, and at the tier's own
conf_threshold, which is what the robot runs, so only that call is timed and only its detections count for
the real-time figures. Model classes are matched by name to the ground truth's classes (an alias scores a class
under another name, e.g. body=person), exactly as tools/evaluate.py matches them; the detector only looks for
those. Without ground truth (class_names None) a tier detects all its classes, as the node does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from yolo_compress.data.dataset import DatasetError
from yolo_compress.data.detector_eval import match_classes
from yolo_compress.eval.annotations import ImageDT
from yolo_compress.runtime.detector import Detector, Result
from yolo_compress.runtime.tiers import TierSpec

NO_DETECTIONS = ImageDT(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))  # immutable, shared


@dataclass(frozen=True)
class FrameCost:
    """ms the node spends on one frame: message to BGR image, then the detector's stages."""

    decode_ms: float
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.preprocess_ms + self.inference_ms + self.postprocess_ms


class TierRun:
    """A tier's Detector bound to the evaluation's class list, with what it found on every frame."""

    def __init__(
        self,
        tier: TierSpec,
        class_names: Sequence[str] | None,
        aliases: Mapping[str, str],
        ap_conf: float,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.tier = tier
        self.ap_conf = ap_conf
        self.detector = Detector(tier.model, providers=providers, conf_threshold=tier.conf_threshold,
                                 iou_threshold=tier.iou_threshold, intra_op_threads=threads)
        self.to_eval, model_ids = _class_mapping(self.detector.names, class_names, aliases, tier.name)
        self.detector.classes = model_ids or None
        self.ap_dets: list[ImageDT] = []
        self.op_dets: list[ImageDT] = []
        self.costs: list[FrameCost | None] = []

    def warm_up(self, image: np.ndarray) -> None:
        """One untimed call: ONNX Runtime finishes building its kernels on the first run."""
        self.detect(image, self.tier.conf_threshold)

    def observe(self, image: np.ndarray | None, decode_ms: float) -> None:
        """Record the frame's AP and operating-point detections; None (undecodable) is a frame with nothing."""
        if image is None:
            self.ap_dets.append(NO_DETECTIONS)
            self.op_dets.append(NO_DETECTIONS)
            self.costs.append(None)
            return
        result = self.detect(image, self.tier.conf_threshold)  # first: timed on a frame not seen before, as live
        self.op_dets.append(self.to_image_dt(result))
        self.ap_dets.append(self.to_image_dt(self.detect(image, self.ap_conf)))
        timing = result.timing
        self.costs.append(FrameCost(decode_ms, timing.preprocess_ms, timing.inference_ms, timing.postprocess_ms))

    def detect(self, image: np.ndarray, conf: float) -> Result:
        self.detector.conf_threshold = conf
        return self.detector.detect(image)

    def to_image_dt(self, result: Result) -> ImageDT:
        """Detections of the evaluated classes, with class ids of the evaluation's class list."""
        found = result.detections
        classes = self.to_eval[found.class_ids]
        kept = classes >= 0
        return ImageDT.from_xyxy(found.boxes[kept], found.scores[kept], classes[kept])

    @property
    def model_facts(self) -> dict[str, float | None]:
        """params, GFLOPs (from the model's metadata, None if absent) and file size in MB (10^6 bytes)."""
        meta = self.detector.info.metadata
        params = _number(meta.get("params"))
        return {
            "params": None if params is None else round(params),
            "gflops": _number(meta.get("gflops")),
            "size_mb": os.path.getsize(self.tier.model) / 1e6,
        }


def _class_mapping(
    model_names: Sequence[str], class_names: Sequence[str] | None, aliases: Mapping[str, str], tier: str
) -> tuple[np.ndarray, list[int]]:
    """(model id -> evaluation id, -1 for classes not evaluated; model ids to detect, [] for all), matched by name
    exactly as tools/evaluate.py matches them."""
    if class_names is None:
        return np.arange(len(model_names), dtype=np.int64), []
    own = {name: target for name, target in aliases.items() if name in model_names}  # tiers differ in classes
    try:
        model_ids = match_classes(model_names, class_names, own)
    except DatasetError as exc:
        raise ValueError(f"tier {tier}: {exc}") from None
    to_eval = np.full(len(model_names), -1, np.int64)
    to_eval[model_ids] = np.arange(len(model_ids))
    return to_eval, model_ids.tolist()


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
