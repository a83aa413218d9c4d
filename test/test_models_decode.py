"""Decoding raw heads: Darknet's formulas and OpenCV's row order, checked against a loop written from the
papers' equations, and the ONNX trace with a dynamic batch."""

from __future__ import annotations

import io
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import DecodedDarknet, decode
from yolo_compress.models.heads import Head


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _reference(out: np.ndarray, head: Head, input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One image, one head; rows in the order y, x, anchor."""
    rows, cols = head.grid
    attrs = 5 + head.num_classes
    s = head.scale_x_y
    boxes, scores = [], []
    for y in range(rows):
        for x in range(cols):
            for a, (anchor_w, anchor_h) in enumerate(head.anchors):
                t = out[a * attrs : (a + 1) * attrs, y, x]
                cx = (x + _sigmoid(t[0]) * s - (s - 1) / 2) / cols * input_size[1]
                cy = (y + _sigmoid(t[1]) * s - (s - 1) / 2) / rows * input_size[0]
                w, h = math.exp(t[2]) * anchor_w, math.exp(t[3]) * anchor_h
                boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                if head.kind == "region":
                    e = np.exp(t[5:] - t[5:].max())
                    probs = e / e.sum()
                else:
                    probs = [_sigmoid(v) for v in t[5:]]
                scores.append(_sigmoid(t[4]) * np.asarray(probs))
    return np.array(boxes), np.array(scores)


HEADS = [
    Head("yolo", 9, ((10, 14), (23, 27), (37, 58)), 2, 1.05, 16, (4, 5)),
    Head("region", 12, ((30.0, 40.0), (90.0, 60.0)), 3, 1.0, 32, (2, 3)),
]


@pytest.mark.parametrize("head", HEADS, ids=["yolo", "region"])
def test_decode_matches_the_equations_and_row_order(head):
    input_size = (head.grid[0] * head.stride, head.grid[1] * head.stride + 8)  # not a multiple: exact ratio
    out = torch.randn(2, head.num_anchors * (5 + head.num_classes), *head.grid)
    boxes, scores = decode([out], [head], input_size)
    assert boxes.dtype == scores.dtype == torch.float32
    assert boxes.shape == (2, head.num_anchors * head.grid[0] * head.grid[1], 4)
    for image in range(2):
        ref_boxes, ref_scores = _reference(out[image].double().numpy(), head, input_size)
        np.testing.assert_allclose(boxes[image].numpy(), ref_boxes, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(scores[image].numpy(), ref_scores, rtol=1e-5, atol=1e-7)


def test_heads_are_concatenated_in_order():
    head_a, head_b = HEADS[0], Head("yolo", 20, ((5, 5),), 2, 1.0, 8, (8, 10))
    outs = [torch.randn(1, 21, 4, 5), torch.randn(1, 7, 8, 10)]
    boxes, scores = decode(outs, [head_a, head_b], (64, 80))
    first = decode(outs[:1], [head_a], (64, 80))
    assert boxes.shape[1] == 60 + 80
    assert torch.equal(boxes[:, :60], first[0]) and torch.equal(scores[:, :60], first[1])


def test_onnx_trace_has_a_dynamic_batch():
    torch.manual_seed(0)
    wrapped = DecodedDarknet(Darknet.from_cfg("demo")).eval()
    height, width = wrapped.model.input_size
    buffer = io.BytesIO()
    torch.onnx.export(
        wrapped, (torch.zeros(1, 3, height, width),), buffer, input_names=["images"],
        output_names=["boxes", "scores"], dynamic_axes={n: {0: "batch"} for n in ("images", "boxes", "scores")},
        opset_version=17, dynamo=False,
    )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).random((3, 3, height, width), dtype=np.float32)
    boxes, scores = session.run(None, {"images": images})
    with torch.no_grad():
        ref_boxes, ref_scores = wrapped(torch.from_numpy(images))
    assert boxes.shape == (3, ref_boxes.shape[1], 4) and scores.shape == (3, ref_boxes.shape[1], 3)
    np.testing.assert_allclose(boxes, ref_boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose(scores, ref_scores.numpy(), atol=1e-5)
