"""The ONNX contract as the runtime reads it, on tiny models built here with onnx.helper.

`contract_model` is also the fixture-model builder of the other runtime tests: its outputs are constants
scaled by each image's brightest pixel (1.0 for any image containing a 255), so detections are known
exactly and a black image has none, which lets batch tests tell images apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from yolo_compress.runtime.contract import FRAMES_INPUT, ContractError, read_contract
from yolo_compress.runtime.detector import Detector

COCO_LIKE = [f"class{i}" for i in range(80)]


def contract_model(
    path: Path,
    boxes: np.ndarray,
    scores: np.ndarray,
    names: Sequence[str] | None = None,
    input_size: tuple[int, int] = (64, 96),
    resize: str = "stretch",
    metadata: dict[str, str | None] | None = None,
    input_name: str = "images",
    output_names: tuple[str, str] = ("boxes", "scores"),
    batch: int | str = "batch",
    input_type: int | None = None,
) -> Path:
    """Write a contract model: boxes [B,N,4] = `boxes`, scores [B,N,C] = `scores` x max pixel of each image
    (0..1). `input_name` "frames" makes a uint8 [B,H,W,3] input (unless `input_type` says otherwise).

    `metadata` entries override the defaults; a None value removes that key.
    """
    boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
    names = list(names) if names is not None else [f"c{i}" for i in range(scores.shape[1])]
    height, width = input_size
    frames = input_name == FRAMES_INPUT
    pixels = [
        helper.make_node("Cast", [input_name], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["as_float", "inv255"], ["pixels"]),
    ] if frames and input_type is None else []
    nodes = [
        *pixels,
        helper.make_node("ReduceMax", ["pixels" if pixels else input_name], ["peak_flat"], axes=[1, 2, 3],
                         keepdims=0),
        helper.make_node("Unsqueeze", ["peak_flat", "axes12"], ["peak"]),
        helper.make_node("Mul", ["const_scores", "peak"], [output_names[1]]),
        helper.make_node("Mul", ["peak", "zero"], ["zeros"]),
        helper.make_node("Add", ["const_boxes", "zeros"], [output_names[0]]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes12"),
        numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
        numpy_helper.from_array(np.full(1, 1 / 255, np.float32), "inv255"),
        numpy_helper.from_array(boxes[None], "const_boxes"),
        numpy_helper.from_array(scores[None], "const_scores"),
    ]
    graph = helper.make_graph(
        nodes,
        "contract_fixture",
        [helper.make_tensor_value_info(input_name, input_type or (TensorProto.UINT8 if frames else TensorProto.FLOAT),
                                       [batch, height, width, 3] if frames else [batch, 3, height, width])],
        [
            helper.make_tensor_value_info(output_names[0], TensorProto.FLOAT, [batch, *boxes.shape]),
            helper.make_tensor_value_info(output_names[1], TensorProto.FLOAT, [batch, *scores.shape]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    props = {"names": json.dumps(names), "input_size": f"{height},{width}", "resize": resize, "tier": "test"}
    props.update(metadata or {})
    helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def one_box_model(path: Path, **kwargs) -> Path:
    """One box, 3 classes, class 1 at 0.9."""
    return contract_model(path, [[10, 10, 30, 40]], [[0.0, 0.9, 0.0]], **kwargs)


def read(path: Path):
    return read_contract(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), str(path))


def test_reads_names_size_resize_and_extras(tmp_path):
    info = read(one_box_model(tmp_path / "m.onnx", names=["a", "b", "c"], resize="letterbox"))
    assert info.names == ("a", "b", "c")
    assert info.input_size == (64, 96)
    assert info.resize == "letterbox"
    assert info.metadata == {"tier": "test"}
    assert info.num_classes == 3


@pytest.mark.parametrize("key", ["names", "input_size", "resize"])
def test_missing_metadata_is_named(tmp_path, key):
    path = one_box_model(tmp_path / "m.onnx", metadata={key: None})
    with pytest.raises(ContractError, match=rf"m\.onnx: metadata '{key}' missing"):
        read(path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"names": "not json"}, "'names' is not JSON"),
        ({"names": '{"a": 1}'}, "'names' must be a non-empty JSON list"),
        ({"names": "[]"}, "'names' must be a non-empty JSON list"),
        ({"input_size": "320x320"}, "'input_size' must be 'H,W'"),
        ({"input_size": "0,64"}, "'input_size' must be positive"),
        ({"resize": "crop"}, "'resize' is 'crop'"),
        ({"input_size": "32,32"}, "metadata 'input_size' says"),
    ],
)
def test_bad_metadata_is_explained(tmp_path, metadata, message):
    with pytest.raises(ContractError, match=message):
        read(one_box_model(tmp_path / "m.onnx", metadata=metadata))


def test_class_count_mismatch(tmp_path):
    path = one_box_model(tmp_path / "m.onnx", names=COCO_LIKE)
    with pytest.raises(ContractError, match="output 'scores' has C=3 classes but names has 80"):
        read(path)


def test_boxes_must_have_four_coordinates(tmp_path):
    path = contract_model(tmp_path / "m.onnx", np.zeros((2, 5)), np.zeros((2, 3)))
    with pytest.raises(ContractError, match=r"output 'boxes' must be \[B,N,4\]"):
        read(path)


def test_missing_output_and_input_are_named(tmp_path):
    with pytest.raises(ContractError, match="output 'scores' missing"):
        read(one_box_model(tmp_path / "a.onnx", output_names=("boxes", "probs")))
    with pytest.raises(ContractError, match="expected one input, 'images' or 'frames'"):
        read(one_box_model(tmp_path / "b.onnx", input_name="data"))


def test_frames_input_is_read_and_checked(tmp_path):
    """The uint8 BGR form: recognized, its type and layout checked, and served by the Detector."""
    assert read(one_box_model(tmp_path / "f.onnx", input_name=FRAMES_INPUT)).input_name == FRAMES_INPUT
    assert read(one_box_model(tmp_path / "i.onnx")).input_name == "images"
    with pytest.raises(ContractError, match=r"input 'frames' has type tensor\(float\), expected tensor\(uint8\)"):
        read(one_box_model(tmp_path / "x.onnx", input_name=FRAMES_INPUT, input_type=TensorProto.FLOAT))
    detector = Detector(one_box_model(tmp_path / "f.onnx", input_name=FRAMES_INPUT, input_size=(64, 96)))
    white = np.full((48, 96, 3), 255, np.uint8)
    assert detector.detect(white).detections.class_ids.tolist() == [1]
    assert len(detector.detect(np.zeros_like(white)).detections.class_ids) == 0


def test_fixed_batch_is_rejected(tmp_path):
    with pytest.raises(ContractError, match="batch dimension must be dynamic"):
        read(one_box_model(tmp_path / "m.onnx", batch=1))


def test_detector_missing_file_and_non_onnx(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        Detector(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf")
    with pytest.raises(ContractError, match="garbage.onnx: not a loadable ONNX model"):
        Detector(garbage)
    with pytest.raises(ContractError, match="metadata 'names' missing"):
        Detector(one_box_model(tmp_path / "m.onnx", metadata={"names": None}))
