"""AP of a torch model on a dataset, through the robot's own pre- and post-processing.

Frames go through the runtime's Preprocessor, the model through the Conv+BN fusion and the decode the
ONNX graph contains, and detections through the runtime's postprocess (multi-label candidates, class-aware
NMS), so the AP measured after each finetune or pruning step is the AP the exported tier will have, up to
float error. (Fusing also halves the time of a CPU forward.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from yolo_compress.data.dataset import DetectionDataset, Sample
from yolo_compress.eval.annotations import ImageDT
from yolo_compress.eval.evaluate import evaluate
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import DecodedDarknet
from yolo_compress.models.fuse import fuse_conv_bn
from yolo_compress.runtime.postprocess import Detections, postprocess
from yolo_compress.runtime.preprocess import Preprocessor
from yolo_compress.train.classes import class_indices

AP_CONF = 0.005  # the score threshold AP is measured at (low: AP integrates over every threshold)


def validate(
    model: Darknet,
    names: Sequence[str],
    dataset: DetectionDataset,
    *,
    resize: str = "stretch",
    conf_threshold: float = AP_CONF,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
    op_conf: float = 0.25,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """yolo_compress.eval.evaluate's metrics (ap50, ap50_95, per_class, ...) of `model` on `dataset`.

    `names` are the model's classes; the dataset's classes are matched to them by name (a person-only
    dataset evaluates an 80-class model on its person scores), and every other class is ignored. `resize`
    is how the deployed model fits frames (the checkpoint's 'resize', Darknet's default 'stretch').
    A fused eval-mode copy runs; `model` itself is not touched.
    """
    model_ids = np.array(class_indices(names, dataset.names), dtype=np.int64)
    to_dataset = np.full(len(names), -1, dtype=np.int64)
    to_dataset[model_ids] = np.arange(len(model_ids))
    device = torch.device(device) if device is not None else next(model.parameters()).device
    decoded = DecodedDarknet(fuse_conv_bn(model)).to(device)
    preprocess = Preprocessor(model.input_size, resize)
    detections: list[ImageDT] = []
    for start in tqdm(range(0, len(dataset), batch_size), desc="validate", unit="batch", disable=not progress,
                      leave=False):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        found = _detect(decoded, preprocess, samples, device, conf_threshold, iou_threshold, max_detections, model_ids)
        detections.extend(ImageDT.from_xyxy(d.boxes, d.scores, to_dataset[d.class_ids]) for d in found)
    return evaluate(dataset.image_gts(), detections, list(dataset.names), op_conf)


@torch.no_grad()
def _detect(
    decoded: DecodedDarknet,
    preprocess: Preprocessor,
    samples: Sequence[Sample],
    device: torch.device,
    conf_threshold: float,
    iou_threshold: float,
    max_detections: int,
    classes: np.ndarray,
) -> list[Detections]:
    """Detector.detect_batch with the torch model in place of the ONNX Runtime session."""
    batch, transforms = preprocess([sample.load_image() for sample in samples])
    boxes, scores = decoded(torch.from_numpy(batch).to(device))
    boxes, scores = boxes.float().cpu().numpy(), scores.float().cpu().numpy()
    return [
        postprocess(b, s, t, conf_threshold, iou_threshold, classes, max_detections)
        for b, s, t in zip(boxes, scores, transforms, strict=True)
    ]
