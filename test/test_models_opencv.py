"""Our Darknet loading against an independent implementation, OpenCV DNN 4.x.

OpenCV reads the same cfg and .weights itself. We compare the raw inputs of every head (the outputs of
the convolutions feeding [yolo]/[region], requested by name) and the decoded boxes and scores (OpenCV's
yolo/region layer rows: [cx, cy, w, h] normalized to the input, objectness, class scores). OpenCV
zeroes class scores <= the head's `thresh`, so the cfg text it reads gets thresh=0.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from yolo_compress.models.cfg import builtin_cfg_names, format_cfg, parse_cfg, resolve_cfg
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import decode
from yolo_compress.models.weights import save_weights

from _data import photo_batch, randomize_bn, real_model
from conftest import YOLO_FASTEST

TOLERANCE = 1e-3
# Boxes are compared in input pixels; a wide box is exp(logit) x anchor, where float32 agrees only to
# ~1e-5 relative (a 450 px box differs by ~1e-3 px between two correct implementations).
BOX_RTOL = 1e-5
REORG_CFG = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[reorg]
stride=2

[convolutional]
filters=30
size=1
stride=1
pad=1
activation=linear

[region]
anchors = 1.08,1.19,  3.42,4.41
classes=10
coords=4
num=2
softmax=1
"""


def opencv_outputs(cfg_text: str, weights: bytes, model: Darknet, images: torch.Tensor):
    """(raw head inputs, rows of the detection layers concatenated) from cv2.dnn for a [1,3,H,W] batch."""
    sections = parse_cfg(cfg_text)
    for section in sections:
        if section.type in ("yolo", "region"):
            section.options["thresh"] = "0"
    net = cv2.dnn.readNetFromDarknet(
        np.frombuffer(format_cfg(sections).encode(), np.uint8), np.frombuffer(weights, np.uint8)
    )
    net.setInput(images.numpy())
    head_convs = [f"conv_{head.index - 1}" for head in model.heads]
    outputs = net.forward(head_convs + list(net.getUnconnectedOutLayersNames()))
    rows = np.concatenate([out.reshape(-1, out.shape[-1]) for out in outputs[len(head_convs) :]])
    return outputs[: len(head_convs)], rows


def ours(model: Darknet, images: torch.Tensor):
    with torch.no_grad():
        raw = model(images)
        boxes, scores = decode(raw, model.heads, model.input_size)
    return [r.numpy() for r in raw], boxes[0].numpy(), scores[0].numpy()


def corner_boxes(rows: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """OpenCV's normalized cx, cy, w, h -> x1, y1, x2, y2 in input pixels."""
    height, width = input_size
    cx, cy, w, h = rows[:, 0] * width, rows[:, 1] * height, rows[:, 2] * width, rows[:, 3] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


@pytest.mark.parametrize("name", sorted(YOLO_FASTEST))
def test_real_models_equal_opencv(name):
    model, cfg, weights = real_model(name)
    images = photo_batch(model.input_size)
    ref_raw, rows = opencv_outputs(cfg.read_text(), weights.read_bytes(), model, images)
    raw, boxes, scores = ours(model, images)
    for head, ref, out in zip(model.heads, ref_raw, raw, strict=True):
        np.testing.assert_allclose(out, ref, atol=TOLERANCE, err_msg=f"{name}: input of head layer {head.index}")
    np.testing.assert_allclose(
        boxes, corner_boxes(rows, model.input_size), rtol=BOX_RTOL, atol=TOLERANCE, err_msg=name
    )
    np.testing.assert_allclose(scores, rows[:, 5:], atol=TOLERANCE, err_msg=name)
    assert scores.max() > 0.5, f"{name}: nothing confident on a real photo: the comparison proved little"


def _random_model(text: str, name: str) -> Darknet:
    torch.manual_seed(0)
    return randomize_bn(Darknet(parse_cfg(text, name)), seed=1).eval()


@pytest.mark.parametrize("name", [n for n in builtin_cfg_names() if n != "yolov3"] + ["reorg"])
def test_builtin_layers_equal_opencv(name, tmp_path):
    """Random weights exercise what the real models lack: region + softmax, reorg, route groups,
    scale_x_y, the size-keeping maxpool. OpenCV's region layer also runs its own NMS, zeroing the
    class scores of suppressed boxes, so region class scores are compared where OpenCV kept them."""
    text = REORG_CFG if name == "reorg" else resolve_cfg(name)[0]
    model = _random_model(text, name)
    save_weights(model, tmp_path / "w.weights")
    images = torch.rand(1, 3, *model.input_size, generator=torch.Generator().manual_seed(2))
    ref_raw, rows = opencv_outputs(text, (tmp_path / "w.weights").read_bytes(), model, images)
    raw, boxes, scores = ours(model, images)
    for ref, out in zip(ref_raw, raw, strict=True):
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(boxes, corner_boxes(rows, model.input_size), rtol=BOX_RTOL, atol=TOLERANCE)
    kept = rows[:, 5:] > 0
    if model.heads[0].kind == "yolo":
        assert kept.all()
    assert kept.mean() > 0.2
    np.testing.assert_allclose(scores[kept], rows[:, 5:][kept], atol=1e-5)
