"""Export a Darknet model to the ONNX contract of DESIGN.md and prove ONNX Runtime agrees with torch.

The exported graph is the Conv+BN-fused network with the box decode inside it, so the robot side
only runs one session and a numpy NMS. Export always verifies itself: a model whose ONNX Runtime
outputs drift from torch must never reach a robot unnoticed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from yolo_compress.export.frame_input import frames_to_images, take_frames
from yolo_compress.models.complexity import total_flops, total_params
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import DecodedDarknet
from yolo_compress.models.fuse import fuse_conv_bn
from yolo_compress.models.pad import pad_channels
from yolo_compress.runtime.contract import FRAMES_INPUT, IMAGES_INPUT, OUTPUT_NAMES

log = logging.getLogger(__name__)

OPSET = 17
RESIZE_MODES = ("stretch", "letterbox")
# One bound for scores (0..1, absolute) and for boxes in units of the input side (x / max(H, W)), or of the
# coordinate itself where it lies beyond the input side: exp() of the decode makes boxes of thousands of
# pixels on random verification images and untrained heads, where float32 alone (7 significant digits)
# differs by ~2e-4 px, and a 160-pixel demo variant measured 1.01e-4 of its side.
VERIFY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportReport:
    """What export wrote and how closely ONNX Runtime matched torch on the verification batch."""

    path: Path
    input_size: tuple[int, int]
    num_boxes: int
    max_abs_diff_boxes: float  # pixels / max(H, W, |coordinate|): see VERIFY_TOLERANCE
    max_abs_diff_scores: float
    params: int
    gflops: float

    @property
    def verified(self) -> bool:
        return max(self.max_abs_diff_boxes, self.max_abs_diff_scores) <= VERIFY_TOLERANCE


class ExportError(RuntimeError):
    """Raised when the exported graph is invalid or disagrees with torch."""


def export_onnx(
    model: Darknet,
    names: Sequence[str],
    out: str | os.PathLike,
    *,
    resize: str = "stretch",
    metadata: Mapping[str, object] | None = None,
    input_name: str = FRAMES_INPUT,
    pad_to: int = 1,
) -> ExportReport:
    """Fuse, decode-wrap and export `model`; write it atomically and verify it with ONNX Runtime on random
    inputs. `input_name` is the contract's input form: `frames` (uint8 BGR pixels, the default: the robot's
    fastest path, see frame_input) or `images` (float RGB planes). `pad_to` > 1 pads channel counts to
    multiples of it with zero filters (models/pad.py: the same boxes in the runtime's blocked layout); the
    verification compares against the unpadded model. Raises ExportError when the graph fails
    onnx.checker or the outputs disagree."""
    if input_name not in (FRAMES_INPUT, IMAGES_INPUT):
        raise ValueError(f"input_name must be {FRAMES_INPUT!r} or {IMAGES_INPUT!r}, got {input_name!r}")
    _check_names(model, names)
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    out = Path(out)
    fused = fuse_conv_bn(model)
    wrapped = DecodedDarknet(fused).eval()
    height, width = model.input_size
    proto = _trace(DecodedDarknet(pad_channels(fused, pad_to)).eval(), height, width)
    if input_name == FRAMES_INPUT:
        proto = take_frames(proto)
    props = contract_metadata(model, names, resize, {"pad_channels": str(pad_to), **(metadata or {})})
    onnx.helper.set_model_props(proto, props)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{out}: onnx.checker rejected the exported graph: {exc}") from exc
    _atomic_save(proto, out)
    report = _verify(wrapped, out, _random_frames(height, width), input_name, props)
    if not report.verified:
        raise ExportError(
            f"{out}: ONNX Runtime disagrees with torch (max abs diff boxes / input side "
            f"{report.max_abs_diff_boxes:.2e}, scores {report.max_abs_diff_scores:.2e} > {VERIFY_TOLERANCE})"
        )
    log.info(
        "%s: ONNX Runtime matches torch (max abs diff boxes / input side %.1e, scores %.1e)",
        out,
        report.max_abs_diff_boxes,
        report.max_abs_diff_scores,
    )
    return report


def contract_metadata(
    model: Darknet, names: Sequence[str], resize: str, extra: Mapping[str, object] | None
) -> dict[str, str]:
    """The metadata_props the runtime reads: names, input_size, resize, plus params/gflops and extras."""
    height, width = model.input_size
    props = {
        "names": json.dumps(list(names)),
        "input_size": f"{height},{width}",
        "resize": resize,
        "params": str(total_params(model)),
        "gflops": f"{total_flops(model) / 1e9:.4f}",
    }
    for key, value in (extra or {}).items():
        props[key] = value if isinstance(value, str) else json.dumps(value)
    return props


def _check_names(model: Darknet, names: Sequence[str]) -> None:
    classes = {head.num_classes for head in model.heads}
    if classes != {len(names)}:
        raise ValueError(
            f"{len(names)} class names given but the model's heads have {sorted(classes)} classes"
        )


def _trace(wrapped: torch.nn.Module, height: int, width: int) -> onnx.ModelProto:
    """Trace with the TorchScript exporter: deterministic, no onnxscript, dynamic batch axis."""
    dummy = torch.zeros(1, 3, height, width)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(
                wrapped,
                (dummy,),
                str(path),
                input_names=[IMAGES_INPUT],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={name: {0: "batch"} for name in (IMAGES_INPUT, *OUTPUT_NAMES)},
                opset_version=OPSET,
                dynamo=False,
            )
        return onnx.load(str(path))


def _atomic_save(proto: onnx.ModelProto, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        onnx.save(proto, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _random_frames(height: int, width: int, batch: int = 2) -> np.ndarray:
    """uint8 BGR [B,H,W,3]; a batch of 2 so the dynamic batch axis is exercised, not just declared."""
    return np.random.default_rng(0).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)


def _verify(wrapped: torch.nn.Module, path: Path, frames: np.ndarray, input_name: str,
            props: dict[str, str]) -> ExportReport:
    images = frames_to_images(frames)
    with torch.no_grad():
        t_boxes, t_scores = (t.numpy() for t in wrapped(torch.from_numpy(images)))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = frames if input_name == FRAMES_INPUT else images
    o_boxes, o_scores = session.run(list(OUTPUT_NAMES), {input_name: feed})
    height, width = (int(v) for v in props["input_size"].split(","))
    return ExportReport(
        path=path,
        input_size=(height, width),
        num_boxes=int(o_boxes.shape[1]),
        max_abs_diff_boxes=float((np.abs(o_boxes - t_boxes) / np.maximum(np.abs(t_boxes), max(height, width))).max()),
        max_abs_diff_scores=float(np.abs(o_scores - t_scores).max()),
        params=int(props["params"]),
        gflops=float(props["gflops"]),
    )
