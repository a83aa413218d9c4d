"""Which prediction of a head learns each ground-truth box, the way Darknet's [yolo] and [region] decide.

A truth lands in the grid cell holding its center; the anchor is chosen by the IoU of shapes (w, h)
sharing one center. Rows are indexed like decode(): (cell y * grid width + cell x) * anchors + anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from yolo_compress.models.heads import Head
from yolo_compress.train.boxes import cxcywh_to_xyxy, shape_iou
from yolo_compress.train.options import RegionLossOptions, YoloLossOptions


@dataclass(frozen=True)
class Truths:
    """Ground truth of a batch in input pixels, from the collate's [M,6] (batch, class, cx, cy, w, h) in 0..1."""

    batch: torch.Tensor  # int64 [M]
    classes: torch.Tensor  # int64 [M]
    cxcywh: torch.Tensor  # float [M,4] input pixels
    xyxy: torch.Tensor  # float [M,4] input pixels

    @classmethod
    def from_targets(cls, targets: torch.Tensor, input_size: tuple[int, int]) -> Truths:
        if targets.ndim != 2 or targets.shape[1] != 6:
            raise ValueError(f"targets: expected [M, 6] (batch, class, cx, cy, w, h), got {tuple(targets.shape)}")
        height, width = input_size
        scale = targets.new_tensor([width, height, width, height])
        cxcywh = targets[:, 2:6].float() * scale
        return cls(targets[:, 0].long(), targets[:, 1].long(), cxcywh, cxcywh_to_xyxy(cxcywh))

    def __len__(self) -> int:
        return len(self.batch)


@dataclass(frozen=True)
class Assignment:
    """Pairs (truth, prediction) of one head: truth index, image, anchor within the head, cell (y, x)."""

    truth: torch.Tensor
    batch: torch.Tensor
    anchor: torch.Tensor
    cell_y: torch.Tensor
    cell_x: torch.Tensor

    def rows(self, head: Head) -> torch.Tensor:
        """Prediction row of each pair in decode()'s order."""
        return (self.cell_y * head.grid[1] + self.cell_x) * head.num_anchors + self.anchor

    def __len__(self) -> int:
        return len(self.truth)


def truth_cells(truths: Truths, head: Head, input_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(cell y, cell x) holding each truth's center; a center on the far edge belongs to the last cell."""
    rows, cols = head.grid
    cell_x = (truths.cxcywh[:, 0] * cols / input_size[1]).long().clamp(0, cols - 1)
    cell_y = (truths.cxcywh[:, 1] * rows / input_size[0]).long().clamp(0, rows - 1)
    return cell_y, cell_x


def assign_yolo(truths: Truths, head: Head, options: YoloLossOptions, input_size: tuple[int, int]) -> Assignment:
    """[yolo]: each truth's best anchor among ALL the cfg's anchors, if this head's mask holds it, plus (with
    iou_thresh < 1) every masked anchor whose shape IoU with the truth exceeds iou_thresh."""
    all_anchors = truths.cxcywh.new_tensor(options.all_anchors)
    ious = shape_iou(truths.cxcywh[:, None, 2:4], all_anchors[None])  # [M, all anchors]
    best = ious.argmax(dim=1, keepdim=True)
    mask = torch.tensor(options.mask, device=ious.device)
    chosen = best == mask[None]
    if options.iou_thresh < 1.0:
        chosen |= ious[:, mask] > options.iou_thresh
    truth, anchor = chosen.nonzero(as_tuple=True)
    cell_y, cell_x = truth_cells(truths, head, input_size)
    return Assignment(truth, truths.batch[truth], anchor, cell_y[truth], cell_x[truth])


def assign_region(
    truths: Truths, head: Head, options: RegionLossOptions, input_size: tuple[int, int], boxes: torch.Tensor
) -> Assignment:
    """[region]: one anchor per truth, the best by shape IoU among the head's anchors (bias_match=1) or among
    the boxes those anchors predict in the truth's cell (bias_match=0, Darknet's default). `boxes` [B,N,4] are
    the head's decoded boxes, used only in the second case."""
    cell_y, cell_x = truth_cells(truths, head, input_size)
    anchors = truths.cxcywh.new_tensor(head.anchors)
    if options.bias_match:
        shapes = anchors[None].expand(len(truths), -1, -1)
    else:
        first = (cell_y * head.grid[1] + cell_x) * head.num_anchors
        rows = first[:, None] + torch.arange(head.num_anchors, device=first.device)
        cell_boxes = boxes.detach()[truths.batch[:, None], rows]  # [M, A, 4]
        shapes = cell_boxes[..., 2:4] - cell_boxes[..., 0:2]
    anchor = shape_iou(truths.cxcywh[:, None, 2:4], shapes).argmax(dim=1)
    truth = torch.arange(len(truths), device=anchor.device)
    return Assignment(truth, truths.batch, anchor, cell_y, cell_x)
