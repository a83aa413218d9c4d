"""Detection losses of Darknet's two head kinds, on the raw head tensors the model returns.

Predicted boxes come from decode_head, the decode the exported graph runs, so training optimizes exactly
the boxes the robot sees. Each part is a mean (box and class over the assigned predictions, objectness
over every prediction of the head), scaled by the cfg's normalizers, and the total is batch size x their
sum (ultralytics' normalization). Darknet instead sums every element, so its thousands of background
cells outweigh the few boxes; with means, box, objectness and class pull with the weights the cfg gives
them whatever the grid size or object count, and a small model learns boxes in a few hundred steps.

- [yolo] (YOLOv3/v4, AlexeyAB): BCE objectness (target 1 for assigned predictions, 0 for the rest,
  none where the predicted box overlaps a truth by more than ignore_thresh), BCE classes (multi-hot when
  several truths share a prediction), box loss 1 - IoU/GIoU/DIoU/CIoU or MSE on (tx, ty, tw, th), each
  scaled by iou/cls/obj_normalizer. scale_x_y acts through the decode.
- [region] (YOLOv2, pjreddie): squared error on sigmoid objectness (object_scale toward 1, or toward the
  IoU with rescore; noobject_scale toward 0 unless the box overlaps a truth by more than thresh), softmax
  cross-entropy on classes (class_scale), squared error on (tx, ty, tw, th) scaled by coord_scale and
  (2 - w*h). Darknet's extra pull of every box toward its anchor during the first 12800 images is not
  implemented: it matters when training from scratch, not when finetuning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import decode_head, head_constants
from yolo_compress.models.heads import Head
from yolo_compress.train.assign import Assignment, Truths, assign_region, assign_yolo
from yolo_compress.train.boxes import iou_matrix, pair_iou
from yolo_compress.train.options import LossOptions, RegionLossOptions, YoloLossOptions, head_loss_options

LOSS_PARTS = ("box", "obj", "cls")
Parts = dict[str, torch.Tensor]


class DetectionLoss(nn.Module):
    """forward(head outputs, targets [M,6]) -> (batch size x sum of parts, {"box", "obj", "cls"} detached);
    each part is summed over heads.

    Built from the model so the loss reads the same heads and cfg options; the grid constants are buffers
    and follow .to(device).
    """

    def __init__(self, model: Darknet, options: Sequence[LossOptions] | None = None):
        super().__init__()
        self.heads: list[Head] = list(model.heads)
        self.options = list(options) if options is not None else head_loss_options(model)
        self.input_size = model.input_size
        self._check_options()
        for i, head in enumerate(self.heads):
            for name, tensor in zip(("grid", "cell", "anchors"), head_constants(head, self.input_size), strict=True):
                self.register_buffer(f"head{i}_{name}", tensor, persistent=False)

    def forward(self, outputs: Sequence[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        if len(outputs) != len(self.heads):
            raise ValueError(f"{len(outputs)} head outputs for a model with {len(self.heads)} heads")
        truths = Truths.from_targets(targets.to(outputs[0].device), self.input_size)
        self._check_classes(truths)
        totals = {part: outputs[0].new_zeros(()) for part in LOSS_PARTS}
        for i, (out, head, options) in enumerate(zip(outputs, self.heads, self.options, strict=True)):
            constants = tuple(getattr(self, f"head{i}_{name}") for name in ("grid", "cell", "anchors"))
            predictions = HeadPredictions.decode(out.float(), head, constants, self.input_size)
            head_loss = yolo_head_loss if head.kind == "yolo" else region_head_loss
            parts = head_loss(predictions, options, truths)
            totals = {part: totals[part] + parts[part] for part in LOSS_PARTS}
        total = outputs[0].shape[0] * sum(totals.values())
        return total, {part: value.detach() for part, value in totals.items()}

    def _check_options(self) -> None:
        if len(self.options) != len(self.heads):
            raise ValueError(f"{len(self.options)} loss options for {len(self.heads)} heads")
        for head, options in zip(self.heads, self.options, strict=True):
            expected = YoloLossOptions if head.kind == "yolo" else RegionLossOptions
            if not isinstance(options, expected):
                raise TypeError(f"head at layer {head.index} is [{head.kind}]: needs {expected.__name__}")

    def _check_classes(self, truths: Truths) -> None:
        num_classes = self.heads[0].num_classes
        if len(truths) and (truths.classes.min() < 0 or truths.classes.max() >= num_classes):
            raise ValueError(
                f"targets hold class ids {truths.classes.min().item()}..{truths.classes.max().item()} but the model "
                f"has {num_classes} classes"
            )


@dataclass(frozen=True)
class HeadPredictions:
    """One head's raw values [B, N, 5+C] and decoded boxes [B, N, 4] (x1,y1,x2,y2 input pixels), rows in
    decode()'s order, with the cell size (x, y) in pixels."""

    head: Head
    raw: torch.Tensor
    boxes: torch.Tensor
    cell: torch.Tensor
    input_size: tuple[int, int]

    @classmethod
    def decode(cls, out: torch.Tensor, head: Head, constants: tuple[torch.Tensor, ...],
               input_size: tuple[int, int]) -> HeadPredictions:
        """From the head's [B, A*(5+C), h, w] output and its head_constants (grid, cell, anchors)."""
        rows, cols = head.grid
        attrs = 5 + head.num_classes
        raw = out.reshape(-1, head.num_anchors, attrs, rows, cols).permute(0, 3, 4, 1, 2)
        boxes, _ = decode_head(out, head, *constants)
        return cls(head, raw.reshape(-1, rows * cols * head.num_anchors, attrs), boxes, constants[1], input_size)

    def positive(self, assigned: Assignment) -> torch.Tensor:
        """[B, N] bool: the predictions some truth is assigned to."""
        mask = torch.zeros(self.raw.shape[:2], dtype=torch.bool, device=self.raw.device)
        mask[assigned.batch, assigned.rows(self.head)] = True
        return mask


def yolo_head_loss(pred: HeadPredictions, options: YoloLossOptions, truths: Truths) -> Parts:
    """Mean box, objectness and class losses of one [yolo] head."""
    raw = pred.raw
    assigned = assign_yolo(truths, pred.head, options, pred.input_size)
    rows = assigned.rows(pred.head)
    positive = pred.positive(assigned)
    keep = positive | (best_truth_iou(pred.boxes.detach(), truths) <= options.ignore_thresh)
    obj = F.binary_cross_entropy_with_logits(raw[..., 4], positive.float(), reduction="none")
    # one class target per predicted box: the union of the classes of the truths assigned to it
    cls_target = torch.zeros_like(raw[..., 5:])
    cls_target[assigned.batch, rows, truths.classes[assigned.truth]] = 1.0
    cls = F.binary_cross_entropy_with_logits(raw[..., 5:][positive], cls_target[positive], reduction="sum")
    boxes = pred.boxes[assigned.batch, rows]
    if options.iou_loss == "mse":
        box = _mse_box_loss(boxes, truths.cxcywh[assigned.truth], pred.cell, pred.input_size)
    else:
        box = (1.0 - pair_iou(boxes, truths.xyxy[assigned.truth], options.iou_loss)).sum()
    return {
        "box": options.iou_normalizer * box / max(len(assigned), 1),
        "obj": options.obj_normalizer * (obj * keep).sum() / obj.numel(),
        "cls": options.cls_normalizer * cls / max(cls_target[positive].numel(), 1),
    }


def region_head_loss(pred: HeadPredictions, options: RegionLossOptions, truths: Truths) -> Parts:
    """Mean box, objectness and class losses of one [region] head (Darknet's half squared errors)."""
    assigned = assign_region(truths, pred.head, options, pred.input_size, pred.boxes)
    rows = assigned.rows(pred.head)
    negative = ~pred.positive(assigned) & (best_truth_iou(pred.boxes.detach(), truths) <= options.thresh)
    objectness = torch.sigmoid(pred.raw[..., 4])
    boxes = pred.boxes[assigned.batch, rows]
    target = torch.ones(len(assigned), device=boxes.device)
    if options.rescore:
        target = pair_iou(boxes.detach(), truths.xyxy[assigned.truth])
    obj_pos = (objectness[assigned.batch, rows] - target).pow(2).sum()
    obj_neg = objectness[negative].pow(2).sum()
    cls = F.cross_entropy(pred.raw[assigned.batch, rows, 5:], truths.classes[assigned.truth], reduction="sum")
    box = _mse_box_loss(boxes, truths.cxcywh[assigned.truth], pred.cell, pred.input_size)
    count = max(len(assigned), 1)
    return {
        "box": options.coord_scale * box / count,
        "obj": 0.5 * (options.object_scale * obj_pos + options.noobject_scale * obj_neg) / objectness.numel(),
        "cls": options.class_scale * cls / count,
    }


def best_truth_iou(boxes: torch.Tensor, truths: Truths) -> torch.Tensor:
    """[B, N]: each predicted box's best IoU with a truth of its own image (0 for an image without truths)."""
    best = boxes.new_zeros(boxes.shape[:2])
    for image in truths.batch.unique().tolist():
        best[image] = iou_matrix(boxes[image], truths.xyxy[truths.batch == image]).amax(dim=1)
    return best


def _mse_box_loss(
    pred: torch.Tensor, truth: torch.Tensor, cell: torch.Tensor, input_size: tuple[int, int]
) -> torch.Tensor:
    """Darknet's MSE box loss, half squared error on (tx, ty) after the sigmoid and on (tw, th), weighted by
    2 - truth area / input area. The cell and anchor offsets cancel in the differences, leaving the center
    error in cells and the log ratio of sizes. `pred` xyxy and `truth` cx,cy,w,h are paired row by row."""
    center_error = ((pred[:, 0:2] + pred[:, 2:4]) / 2 - truth[:, 0:2]) / cell
    size_error = torch.log((pred[:, 2:4] - pred[:, 0:2]).clamp(min=1e-9) / truth[:, 2:4].clamp(min=1e-9))
    weight = 2.0 - truth[:, 2] * truth[:, 3] / (input_size[0] * input_size[1])
    return 0.5 * (weight * (center_error.pow(2).sum(dim=1) + size_error.pow(2).sum(dim=1))).sum()
