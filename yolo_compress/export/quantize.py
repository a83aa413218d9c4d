"""int8 and fp16 variants of a contract ONNX model, through onnxruntime.quantization; same contract.

Static QDQ int8 is calibrated on real frames fed through the runtime's own preprocessing, so the ranges
are those the robot will see. Only the network's convolutions (and the adds, pools, concats and
upsamples between them) are quantized, chosen by node name (network_nodes): the head convs and the
decode (sigmoid, exp, anchor scaling into pixels) stay float, because int8 there moves boxes by whole
pixels, by tens of them on diverse calibration frames. Weights are per channel (pruned, fused convs have very different
ranges per filter). Every variant keeps the fp32 model's metadata (names, input_size, resize, ...).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from yolo_compress.models.atomic import atomic_path
from yolo_compress.runtime.preprocess import Preprocessor

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
QUANTIZED_OPS = ["Conv", "Add", "MaxPool", "Concat", "Resize"]
# The network's nodes carry its module path (export traces DecodedDarknet.model); the decode's do not.
NETWORK_PREFIX = "/model/"


class FrameReader(CalibrationDataReader):
    """Calibration batches: `frames` (BGR uint8) through the model's own preprocessing, one frame at a time."""

    def __init__(self, frames: Sequence[np.ndarray], input_size: tuple[int, int], resize: str, input_name: str):
        self._frames = frames
        self._preprocess = Preprocessor(input_size, resize, input_name)
        self._iter: Iterator[np.ndarray] = iter(frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        frame = next(self._iter, None)
        if frame is None:
            return None
        batch, _ = self._preprocess([frame])
        return {self._preprocess.input_name: batch.copy()}

    def rewind(self) -> None:
        self._iter = iter(self._frames)


def contract_props(model: onnx.ModelProto) -> dict[str, str]:
    return {prop.key: prop.value for prop in model.metadata_props}


def _copy_props(source: Path, target: Path, extra: dict[str, str]) -> None:
    """Write the source's metadata (plus `extra`) into the target file, atomically."""
    props = {**contract_props(onnx.load(str(source), load_external_data=False)), **extra}
    model = onnx.load(str(target))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))


def network_nodes(path: Path) -> list[str]:
    """The quantizable nodes of the network except its head convs, and none of the decode.

    Op types alone would also pick the decode's Add and Concat, whose pixel ranges (to ~6000 px on diverse
    calibration frames, from exp()) quantized to steps of ~47 px and took AP50 from 0.50 to 0.09. A head
    conv's output is the raw box logits (range ~±40): 8 bits there are 0.3 steps of log box size (BENCHMARKS.md).
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    inside = {node.name for node in graph.node if node.name.startswith(NETWORK_PREFIX)}
    readers: dict[str, set[str]] = {}
    for node in graph.node:
        for tensor in node.input:
            readers.setdefault(tensor, set()).add(node.name)
    heads = {node.name for node in graph.node if node.op_type == "Conv" and node.name in inside
             and not any(readers.get(out, set()) & inside for out in node.output)}
    return [node.name for node in graph.node
            if node.op_type in QUANTIZED_OPS and node.name in inside and node.name not in heads]


def _input_settings(path: Path) -> tuple[tuple[int, int], str, str]:
    """(input size, resize, input name): what the calibration frames go through, as the runtime would."""
    proto = onnx.load(str(path), load_external_data=False)
    props = contract_props(proto)
    height, width = (int(v) for v in props["input_size"].split(","))
    return (height, width), props["resize"], proto.graph.input[0].name


def quantize_int8_static(
    fp32: str | os.PathLike,
    out: str | os.PathLike,
    frames: Sequence[np.ndarray],
    method: str = "minmax",
    activations: str = "u8",
) -> Path:
    """Static QDQ int8 of `fp32`, calibrated on `frames`; `activations` "u8" (faster on CPUs without VNNI)
    or "s8" (what TensorRT wants)."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r} (one of {', '.join(CALIBRATION_METHODS)})")
    if activations not in ("u8", "s8"):
        raise ValueError(f"activations must be 'u8' or 's8', got {activations!r}")
    if not frames:
        raise ValueError("static int8 needs calibration frames")
    fp32, out = Path(fp32), Path(out)
    input_size, resize, input_name = _input_settings(fp32)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        with atomic_path(out) as target:
            quantize_static(
                str(prepared),
                str(target),
                FrameReader(frames, input_size, resize, input_name),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=QUANTIZED_OPS,
                nodes_to_quantize=network_nodes(prepared),
                per_channel=True,
                activation_type=QuantType.QUInt8 if activations == "u8" else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATION_METHODS[method],
                extra_options={"ActivationSymmetric": activations == "s8"},
            )
    _copy_props(fp32, out, {"precision": f"int8-static-{method}-{activations}"})
    return out


def quantize_int8_dynamic(fp32: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Dynamic int8 (weights int8, activations quantized at run time): no calibration, for comparison."""
    fp32, out = Path(fp32), Path(out)
    with atomic_path(out) as target:
        quantize_dynamic(str(fp32), str(target), op_types_to_quantize=["Conv"], weight_type=QuantType.QUInt8)
    _copy_props(fp32, out, {"precision": "int8-dynamic"})
    return out


def convert_fp16(fp32: str | os.PathLike, out: str | os.PathLike) -> Path:
    """fp16 weights and compute (for GPUs), float32 input and outputs so the contract holds."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp32, out = Path(fp32), Path(out)
    model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    with atomic_path(out) as target:
        onnx.save(model, str(target))
    _copy_props(fp32, out, {"precision": "fp16"})
    return out
