"""ONNX export: the contract of DESIGN.md, dynamic batch, checker, and torch/ONNX Runtime agreement."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from yolo_compress.export.frame_input import frames_to_images
from yolo_compress.export.onnx_export import VERIFY_TOLERANCE, export_onnx
from yolo_compress.models.checkpoint import save_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import DecodedDarknet
from yolo_compress.runtime.contract import FRAMES_INPUT, IMAGES_INPUT

from conftest import REPO, yolo_fastest_files


def _props(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.mark.parametrize(("input_name", "dtype", "shape"), [(FRAMES_INPUT, onnx.TensorProto.UINT8, [192, 192, 3]),
                                                           (IMAGES_INPUT, onnx.TensorProto.FLOAT, [3, 192, 192])])
def test_demo_export_meets_contract(tmp_path, input_name, dtype, shape):
    torch.manual_seed(0)
    model = Darknet.from_cfg("demo").eval()
    num_classes = model.heads[0].num_classes
    names = [f"c{i}" for i in range(num_classes)]
    report = export_onnx(model, names, tmp_path / "demo.onnx", resize="letterbox", metadata={"tier": "fast"},
                         input_name=input_name)
    assert report.verified
    proto = onnx.load(str(report.path))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == [input_name]
    assert [o.name for o in proto.graph.output] == ["boxes", "scores"]
    tensor = proto.graph.input[0].type.tensor_type
    assert tensor.elem_type == dtype and [d.dim_value for d in tensor.shape.dim[1:]] == shape
    assert tensor.shape.dim[0].dim_param == "batch"
    props = _props(report.path)
    height, width = model.input_size
    assert json.loads(props["names"]) == names
    assert props["input_size"] == f"{height},{width}"
    assert props["resize"] == "letterbox"
    assert props["tier"] == "fast"
    assert int(props["params"]) == report.params > 0
    # the exported graph holds no BatchNormalization: Conv+BN were fused before export
    assert "BatchNormalization" not in {node.op_type for node in proto.graph.node}


@pytest.mark.parametrize("input_name", [FRAMES_INPUT, IMAGES_INPUT])
def test_dynamic_batch_matches_torch(tmp_path, input_name):
    """Batch of 3 against the unfused torch model fed the same pixels; the `frames` form gets the BGR bytes,
    whose channel reversal and 1/255 now live in the first conv's weights."""
    torch.manual_seed(1)
    model = Darknet.from_cfg("demo").eval()
    names = [f"c{i}" for i in range(model.heads[0].num_classes)]
    path = export_onnx(model, names, tmp_path / "demo.onnx", input_name=input_name).path
    height, width = model.input_size
    frames = np.random.default_rng(3).integers(0, 256, (3, height, width, 3), dtype=np.uint8)
    images = frames_to_images(frames)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    boxes, scores = session.run(None, {input_name: frames if input_name == FRAMES_INPUT else images})
    with torch.no_grad():
        t_boxes, t_scores = DecodedDarknet(model.eval())(torch.from_numpy(images))
    assert boxes.shape[0] == scores.shape[0] == 3
    assert scores.shape[2] == len(names)
    # against the UNFUSED torch model: fusion + export together stay within the contract tolerance
    np.testing.assert_allclose(boxes, t_boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose(scores, t_scores.numpy(), atol=VERIFY_TOLERANCE)


def test_wrong_number_of_names_is_rejected(tmp_path):
    model = Darknet.from_cfg("demo")
    with pytest.raises(ValueError, match="class names"):
        export_onnx(model, ["only-one", "two", "three", "four", "five", "six", "seven"], tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_export_cli_real_model(tmp_path):
    cfg, weights, names = yolo_fastest_files("yolo-fastest-1.1")
    out = tmp_path / "yf.onnx"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export.py"), "--cfg", str(cfg), "--weights", str(weights),
         "--names", str(names), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ONNX Runtime == torch" in proc.stdout
    props = _props(out)
    assert props["input_size"] == "320,320" and props["resize"] == "stretch"
    assert json.loads(props["names"])[0] == "person"
    assert abs(float(props["gflops"]) - 0.252) / 0.252 < 0.02


def test_export_cli_from_checkpoint(tmp_path):
    model = Darknet.from_cfg("demo")
    names = [f"k{i}" for i in range(model.heads[0].num_classes)]
    save_checkpoint(tmp_path / "m.pt", model, names, {"resize": "letterbox"})
    out = tmp_path / "m.onnx"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export.py"), "--checkpoint", str(tmp_path / "m.pt"),
         "--out", str(out), "--tier", "medium"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    props = _props(out)
    assert json.loads(props["names"]) == names
    assert props["resize"] == "letterbox" and props["tier"] == "medium"


def test_export_cli_missing_weights_names_the_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export.py"), "--cfg", "demo", "--weights",
         str(tmp_path / "nope.weights"), "--out", str(tmp_path / "x.onnx")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode != 0
    assert "nope.weights" in proc.stderr
    assert "Traceback" not in proc.stderr
