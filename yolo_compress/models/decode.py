"""Raw head tensors -> boxes and per-class scores: the decode that the ONNX contract puts in the graph.

Rows are ordered head, grid row y, column x, anchor: OpenCV DNN's yolo/region row order, so the two
compare row by row. Only reshapes with -1 for the batch and no data-dependent control flow, so
torch.onnx.export (TorchScript) keeps the batch dimension dynamic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.heads import Head

Constants = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def decode(
    outputs: Sequence[torch.Tensor],
    heads: Sequence[Head],
    input_size: tuple[int, int],
    constants: Sequence[Constants] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(boxes [B,N,4] x1,y1,x2,y2 in input pixels, scores [B,N,C] = objectness x class probability).

    `constants` (from head_constants, per head) are built on the fly when not given.
    """
    if constants is None:
        constants = [head_constants(head, input_size) for head in heads]
    decoded = [
        decode_head(out, head, *(t.to(out.device, out.dtype) for t in consts))
        for out, head, consts in zip(outputs, heads, constants, strict=True)
    ]
    boxes, scores = zip(*decoded, strict=True)
    return torch.cat(boxes, dim=1), torch.cat(scores, dim=1)


def decode_head(
    out: torch.Tensor, head: Head, grid: torch.Tensor, cell: torch.Tensor, anchors: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One head's [B, A*(5+C), h, w] -> (boxes [B, h*w*A, 4], scores [B, h*w*A, C])."""
    rows, cols = head.grid
    attrs = 5 + head.num_classes
    # [B, A, 5+C, h, w] -> [B, h, w, A, 5+C]: the row order y, x, anchor
    raw = out.reshape(-1, head.num_anchors, attrs, rows, cols).permute(0, 3, 4, 1, 2)
    raw = raw.reshape(-1, rows * cols * head.num_anchors, attrs)
    scale = head.scale_x_y
    centers = (torch.sigmoid(raw[..., 0:2]) * scale - (scale - 1.0) / 2.0 + grid) * cell
    half_sizes = torch.exp(raw[..., 2:4]) * anchors / 2.0
    boxes = torch.cat([centers - half_sizes, centers + half_sizes], dim=-1)
    logits = raw[..., 5:]
    probs = torch.softmax(logits, dim=-1) if head.kind == "region" else torch.sigmoid(logits)
    return boxes, torch.sigmoid(raw[..., 4:5]) * probs


def head_constants(head: Head, input_size: tuple[int, int]) -> Constants:
    """Per row: the cell's (x, y) [N,2], the cell size in pixels (x, y) [2] and the anchor (w, h) [N,2].

    The cell size is the exact input/grid ratio per axis: Darknet divides by the grid size and
    multiplies by the network size.
    """
    rows, cols = head.grid
    ys, xs = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2).expand(-1, head.num_anchors, 2).reshape(-1, 2)
    cell = torch.tensor([input_size[1] / cols, input_size[0] / rows])
    anchors = torch.tensor(head.anchors).repeat(rows * cols, 1)
    return grid.float(), cell, anchors


class _HeadConstants(nn.Module):
    """head_constants as buffers: they follow .to(device) and trace as graph constants."""

    def __init__(self, constants: Constants):
        super().__init__()
        for name, tensor in zip(("grid", "cell", "anchors"), constants, strict=True):
            self.register_buffer(name, tensor, persistent=False)


class DecodedDarknet(nn.Module):
    """A Darknet whose forward(images) returns (boxes, scores): the graph that export writes."""

    def __init__(self, model: Darknet):
        super().__init__()
        self.model = model
        self.constants = nn.ModuleList(
            _HeadConstants(head_constants(head, model.input_size)) for head in model.heads
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        constants = [(c.grid, c.cell, c.anchors) for c in self.constants]
        return decode(self.model(images), self.model.heads, self.model.input_size, constants)
