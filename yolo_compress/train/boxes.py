"""Box overlaps in torch for the losses: IoU and its GIoU / DIoU / CIoU variants, differentiable.

Losses work on x1,y1,x2,y2 boxes in input pixels, the layout decode() returns, so predicted boxes come
straight from the decode the exported graph uses and truths are converted once.
"""

from __future__ import annotations

import math

import torch

IOU_KINDS = ("iou", "giou", "diou", "ciou")
_EPS = 1e-9


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] center x, center y, width, height -> x1, y1, x2, y2."""
    half = boxes[..., 2:4] / 2
    return torch.cat([boxes[..., 0:2] - half, boxes[..., 0:2] + half], dim=-1)


def pair_iou(a: torch.Tensor, b: torch.Tensor, kind: str = "iou") -> torch.Tensor:
    """Element-wise overlap of [N,4] boxes a[i] and b[i] (xyxy): IoU, GIoU, DIoU or CIoU, each <= 1.

    GIoU subtracts the empty share of the enclosing box, DIoU the squared center distance over the
    enclosing diagonal, CIoU also an aspect-ratio term (Zheng et al., 2020), whose trade-off weight is
    treated as a constant as in the paper.
    """
    if kind not in IOU_KINDS:
        raise ValueError(f"unknown IoU kind {kind!r} (one of {', '.join(IOU_KINDS)})")
    wh_a, wh_b = (a[:, 2:4] - a[:, 0:2]).clamp(min=0), (b[:, 2:4] - b[:, 0:2]).clamp(min=0)
    inter = (torch.minimum(a[:, 2:4], b[:, 2:4]) - torch.maximum(a[:, 0:2], b[:, 0:2])).clamp(min=0).prod(dim=1)
    union = wh_a.prod(dim=1) + wh_b.prod(dim=1) - inter
    iou = inter / (union + _EPS)
    if kind == "iou":
        return iou
    enclose = torch.maximum(a[:, 2:4], b[:, 2:4]) - torch.minimum(a[:, 0:2], b[:, 0:2])
    if kind == "giou":
        area = enclose.prod(dim=1) + _EPS
        return iou - (area - union) / area
    diagonal = enclose.pow(2).sum(dim=1) + _EPS
    distance = ((a[:, 0:2] + a[:, 2:4]) - (b[:, 0:2] + b[:, 2:4])).pow(2).sum(dim=1) / 4
    if kind == "diou":
        return iou - distance / diagonal
    angle = torch.atan(wh_a[:, 0] / (wh_a[:, 1] + _EPS)) - torch.atan(wh_b[:, 0] / (wh_b[:, 1] + _EPS))
    shape = (4 / math.pi**2) * angle.pow(2)
    with torch.no_grad():
        alpha = shape / (1 - iou + shape + _EPS)
    return iou - distance / diagonal - alpha * shape


def iou_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[len(a), len(b)] IoU of xyxy boxes; 0 where a union is empty."""
    top_left = torch.maximum(a[:, None, 0:2], b[None, :, 0:2])
    bottom_right = torch.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:4] - a[:, 0:2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:4] - b[:, 0:2]).clamp(min=0).prod(dim=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=_EPS), torch.zeros_like(inter))


def shape_iou(wh_a: torch.Tensor, wh_b: torch.Tensor) -> torch.Tensor:
    """IoU of (w, h) shapes sharing one center, broadcast over [..., 2]: how Darknet matches truths to anchors."""
    inter = torch.minimum(wh_a[..., 0], wh_b[..., 0]) * torch.minimum(wh_a[..., 1], wh_b[..., 1])
    union = wh_a[..., 0] * wh_a[..., 1] + wh_b[..., 0] * wh_b[..., 1] - inter
    return inter / union.clamp(min=_EPS)
