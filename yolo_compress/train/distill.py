"""Distillation from a teacher detector (the unpruned model) on the decoded detection outputs.

Decoded scores and boxes are what the deployed model is judged by, and they exist for any student
whose heads have the teacher's grids and anchors, whatever its inner channel counts, so a pruned
student learns to reproduce the teacher's detections, not its features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import decode, head_constants
from yolo_compress.models.heads import Head


class DistillLoss(nn.Module):
    """weight * (mean over predictions of the squared score differences summed over classes, plus the mean
    L1 distance of the boxes, in units of the input side, weighted by the teacher's best class score, so
    only boxes the teacher believes in pull on the student's). A mean like the detection loss's parts."""

    def __init__(self, teacher: Darknet, student_heads: Sequence[Head], weight: float = 1.0):
        super().__init__()
        check_compatible(teacher.heads, student_heads)
        self.teacher = teacher.eval().requires_grad_(False)
        self.heads = list(student_heads)
        self.input_size = teacher.input_size
        self.weight = weight
        for i, head in enumerate(self.heads):
            for name, tensor in zip(("grid", "cell", "anchors"), head_constants(head, self.input_size), strict=True):
                self.register_buffer(f"head{i}_{name}", tensor, persistent=False)

    def train(self, mode: bool = True) -> DistillLoss:
        """The teacher stays in eval mode (BN running statistics) whatever mode the loss is put in."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, images: torch.Tensor, student_outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        constants = [tuple(getattr(self, f"head{i}_{n}") for n in ("grid", "cell", "anchors"))
                     for i in range(len(self.heads))]
        with torch.no_grad():
            teacher_boxes, teacher_scores = decode(self.teacher(images), self.heads, self.input_size, constants)
        boxes, scores = decode([out.float() for out in student_outputs], self.heads, self.input_size, constants)
        score_term = (scores - teacher_scores.float()).pow(2).sum(dim=2).mean()
        confidence = teacher_scores.float().amax(dim=2)
        box_term = (confidence * (boxes - teacher_boxes.float()).abs().sum(dim=2)).mean() / max(self.input_size)
        return self.weight * (score_term + box_term)


def check_compatible(teacher: Sequence[Head], student: Sequence[Head]) -> None:
    """Teacher and student heads must decode to the same rows: same kinds, grids, anchors and classes."""
    def describe(heads: Sequence[Head]) -> list[tuple]:
        return [(h.kind, h.grid, h.anchors, h.num_classes, h.scale_x_y) for h in heads]

    if describe(teacher) != describe(student):
        raise ValueError(
            f"teacher and student heads differ (kind, grid, anchors, classes, scale_x_y): teacher "
            f"{describe(teacher)}, student {describe(student)}; slice the teacher to the student's classes first"
        )
