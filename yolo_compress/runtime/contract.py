"""The ONNX contract of DESIGN.md, read and checked from a live ONNX Runtime session.

Every tier (fp32, int8, pruned or not) is served by the same code, so a model that breaks the
contract must fail at load time with a message naming the file and the part that is wrong, never
later as a shape error deep in post-processing. Only the session is consulted (its inputs, outputs
and custom metadata), so this needs neither torch nor the `onnx` package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import onnxruntime as ort

# The two input forms (DESIGN.md): the classic float planes, or the camera's own bytes, with the uint8 to
# float cast, the layout change, BGR->RGB and the 1/255 inside the graph (the last two folded into the first
# conv's weights at export), so the robot's preprocessing is one cv2.resize into the input buffer.
IMAGES_INPUT = "images"  # float32 [B,3,H,W], RGB, 0..1
FRAMES_INPUT = "frames"  # uint8 [B,H,W,3], BGR
_INPUT_FORMS = {IMAGES_INPUT: ("tensor(float)", 1, "[B,3,H,W]"), FRAMES_INPUT: ("tensor(uint8)", 3, "[B,H,W,3]")}
OUTPUT_NAMES = ("boxes", "scores")
RESIZE_MODES = ("letterbox", "stretch")
REQUIRED_METADATA = ("names", "input_size", "resize")


class ContractError(ValueError):
    """The file is an ONNX model but not one this runtime can serve (it breaks the contract)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs to know about a contract model, plus its other metadata as strings."""

    names: tuple[str, ...]
    input_size: tuple[int, int]  # (H, W)
    resize: str
    metadata: dict[str, str] = field(default_factory=dict)  # tier, params, gflops, ap50, ... when present
    input_name: str = IMAGES_INPUT  # which input form the model takes

    @property
    def num_classes(self) -> int:
        return len(self.names)


def read_contract(session: ort.InferenceSession, source: str) -> ModelInfo:
    """Validate `session` against the contract; `source` (the file name) prefixes every error."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    for key in REQUIRED_METADATA:
        if key not in meta:
            raise ContractError(f"{source}: metadata '{key}' missing (present: {sorted(meta)})")
    names = _parse_names(meta["names"], source)
    input_size = _parse_input_size(meta["input_size"], source)
    if meta["resize"] not in RESIZE_MODES:
        raise ContractError(f"{source}: metadata 'resize' is {meta['resize']!r}, expected one of {RESIZE_MODES}")
    input_name = _check_input(session, source, input_size)
    _check_outputs(session, source, len(names))
    extra = {k: v for k, v in meta.items() if k not in REQUIRED_METADATA}
    return ModelInfo(tuple(names), input_size, meta["resize"], extra, input_name)


def _parse_names(text: str, source: str) -> list[str]:
    try:
        names = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{source}: metadata 'names' is not JSON ({exc}): {text[:80]!r}") from exc
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ContractError(f"{source}: metadata 'names' must be a non-empty JSON list of strings, got {text[:80]!r}")
    return names


def _parse_input_size(text: str, source: str) -> tuple[int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ContractError(f"{source}: metadata 'input_size' must be 'H,W' (two integers), got {text!r}")
    height, width = int(parts[0]), int(parts[1])
    if height <= 0 or width <= 0:
        raise ContractError(f"{source}: metadata 'input_size' must be positive, got {text!r}")
    return height, width


def _check_input(session: ort.InferenceSession, source: str, input_size: tuple[int, int]) -> str:
    """One input, `images` (float32 [B,3,H,W]) or `frames` (uint8 [B,H,W,3]), with a dynamic B and H,W
    agreeing with the metadata; returns its name."""
    inputs = {i.name: i for i in session.get_inputs()}
    forms = [name for name in _INPUT_FORMS if name in inputs]
    if len(inputs) != 1 or not forms:
        raise ContractError(
            f"{source}: expected one input, '{IMAGES_INPUT}' or '{FRAMES_INPUT}' (inputs: {sorted(inputs)})"
        )
    name = forms[0]
    arg, (dtype, channel_axis, layout) = inputs[name], _INPUT_FORMS[name]
    if arg.type != dtype:
        raise ContractError(f"{source}: input '{name}' has type {arg.type}, expected {dtype}")
    expected: list[int | None] = [None, None, None, None]
    expected[channel_axis] = 3
    if not _shape_matches(arg.shape, expected):
        raise ContractError(f"{source}: input '{name}' has shape {arg.shape}, expected {layout}")
    if isinstance(arg.shape[0], int):
        raise ContractError(f"{source}: input '{name}' batch dimension must be dynamic, got {arg.shape[0]}")
    spatial = arg.shape[2:] if channel_axis == 1 else arg.shape[1:3]
    if not _shape_matches(spatial, input_size):
        raise ContractError(
            f"{source}: metadata 'input_size' says {input_size[0]},{input_size[1]} but input '{name}' "
            f"has shape {arg.shape}"
        )
    return name


def _check_outputs(session: ort.InferenceSession, source: str, num_classes: int) -> None:
    outputs = {o.name: o for o in session.get_outputs()}
    for name in OUTPUT_NAMES:
        if name not in outputs:
            raise ContractError(f"{source}: output '{name}' missing (outputs: {sorted(outputs)})")
        if outputs[name].type != "tensor(float)":
            raise ContractError(f"{source}: output '{name}' has type {outputs[name].type}, expected tensor(float)")
    boxes, scores = (outputs[name].shape for name in OUTPUT_NAMES)
    if not _shape_matches(boxes, (None, None, 4)):
        raise ContractError(f"{source}: output 'boxes' must be [B,N,4], got {boxes}")
    if not _shape_matches(scores, (None, None, None)):
        raise ContractError(f"{source}: output 'scores' must be [B,N,C], got {scores}")
    if isinstance(scores[2], int) and scores[2] != num_classes:
        raise ContractError(f"{source}: output 'scores' has C={scores[2]} classes but names has {num_classes}")
    if isinstance(boxes[1], int) and isinstance(scores[1], int) and boxes[1] != scores[1]:
        raise ContractError(f"{source}: outputs 'boxes' {boxes} and 'scores' {scores} disagree on N")


def _shape_matches(shape: Sequence[int | str | None], expected: Sequence[int | None]) -> bool:
    """Same rank, and every fixed dim equals the expected one (None expects anything; symbolic dims pass)."""
    if len(shape) != len(expected):
        return False
    pairs = zip(shape, expected, strict=True)
    return all(want is None or not isinstance(dim, int) or dim == want for dim, want in pairs)
