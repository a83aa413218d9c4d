"""Detection losses: IoU variants by hand, anchor assignment on hand-built truths, a perfect prediction
costs ~nothing, gradients point back to the truth, ignore_thresh, and refused cfg options."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from yolo_compress.models.cfg import CfgError
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.heads import Head
from yolo_compress.train.assign import Truths, assign_region, assign_yolo
from yolo_compress.train.boxes import pair_iou
from yolo_compress.train.loss import DetectionLoss
from yolo_compress.train.options import RegionLossOptions, head_loss_options

LOGIT = 15.0  # sigmoid(15) = 1 - 3e-7: "certain"


def test_iou_variants_match_hand_computed_values():
    a, b = torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3]])
    iou = 1 / 7  # overlap 1, union 7
    assert pair_iou(a, b, "iou").item() == pytest.approx(iou)
    assert pair_iou(a, b, "giou").item() == pytest.approx(iou - (9 - 7) / 9)  # enclosing box 3x3
    assert pair_iou(a, b, "diou").item() == pytest.approx(iou - 2 / 18)  # centers 2 apart (squared), diagonal 18
    assert pair_iou(a, b, "ciou").item() == pytest.approx(iou - 2 / 18)  # same aspect ratio: no shape term
    tall = torch.tensor([[0.0, 0, 1, 2]])  # inside a: IoU 0.5, centers 0.25 apart (squared), diagonal 8
    shape = 4 / math.pi**2 * (math.atan(1 / 2) - math.atan(1)) ** 2
    diou = 0.5 - 0.25 / 8
    assert pair_iou(a, tall, "diou").item() == pytest.approx(diou)
    assert pair_iou(a, tall, "ciou").item() == pytest.approx(diou - shape**2 / (0.5 + shape))
    with pytest.raises(ValueError, match="unknown IoU kind"):
        pair_iou(a, b, "miou")


def _targets(rows: list[list[float]], input_size: tuple[int, int]) -> torch.Tensor:
    """Collate-style targets [M,6] from (batch, class, cx, cy, w, h) rows in input pixels."""
    height, width = input_size
    return torch.tensor(rows) / torch.tensor([1.0, 1.0, width, height, width, height])


def _truths(rows: list[list[float]], input_size: tuple[int, int]) -> Truths:
    return Truths.from_targets(_targets(rows, input_size), input_size)


def test_yolo_assignment_uses_the_best_of_all_anchors_and_iou_thresh():
    model = Darknet.from_cfg("demo")  # anchors 5,6 11,12 17,27 | 37,38 62,78 159,147; head 0 masks 3,4,5 (12x12)
    coarse, fine = model.heads
    options = head_loss_options(model)
    truths = _truths([[0, 0, 100, 60, 40, 40], [1, 2, 20, 180, 10, 12]], model.input_size)
    first = assign_yolo(truths, coarse, options[0], model.input_size)
    assert first.truth.tolist() == [0] and first.anchor.tolist() == [0]  # 40x40 -> anchor 3 = head 0's first
    assert (first.cell_y.item(), first.cell_x.item()) == (60 // 16, 100 // 16)
    assert first.rows(coarse).item() == ((60 // 16) * 12 + 100 // 16) * 3
    second = assign_yolo(truths, fine, options[1], model.input_size)
    assert second.truth.tolist() == [1] and second.anchor.tolist() == [1]  # 10x12 -> anchor 1
    assert second.batch.tolist() == [1] and (second.cell_y.item(), second.cell_x.item()) == (180 // 8, 20 // 8)
    # iou_thresh 0.27: 40x40 also matches 62x78 (IoU 0.33) and 17x27 (0.29), 10x12 nothing else (17x27: 0.26)
    loose = [replace(o, iou_thresh=0.27) for o in options]
    extra = assign_yolo(truths, coarse, loose[0], model.input_size)
    assert sorted(zip(extra.truth.tolist(), extra.anchor.tolist(), strict=True)) == [(0, 0), (0, 1)]
    extra_fine = assign_yolo(truths, fine, loose[1], model.input_size)
    assert sorted(zip(extra_fine.truth.tolist(), extra_fine.anchor.tolist(), strict=True)) == [(0, 2), (1, 1)]


def test_region_assignment_by_anchor_shape_or_by_predicted_shape():
    head = Head("region", 5, ((20.0, 20.0), (60.0, 30.0)), 2, 1.0, 32, (4, 4))
    truths = _truths([[0, 1, 70, 40, 50, 30]], (128, 128))
    by_anchor = assign_region(truths, head, RegionLossOptions(bias_match=True), (128, 128), torch.empty(0))
    assert by_anchor.anchor.tolist() == [1] and (by_anchor.cell_y.item(), by_anchor.cell_x.item()) == (1, 2)
    # bias_match=0 compares with the boxes predicted in the truth's cell: make anchor 0 predict 50x30 there
    boxes = torch.zeros(1, 4 * 4 * 2, 4)
    boxes[0, :, 2:] = 5.0
    row = (1 * 4 + 2) * 2
    boxes[0, row] = torch.tensor([45.0, 25.0, 95.0, 55.0])
    by_prediction = assign_region(truths, head, RegionLossOptions(bias_match=False), (128, 128), boxes)
    assert by_prediction.anchor.tolist() == [0]


def _encode_perfect(loss: DetectionLoss, truths: Truths, batch: int) -> list[torch.Tensor]:
    """Raw head outputs that predict exactly `truths` at their assigned slots and nothing anywhere else."""
    outputs = []
    for head, options in zip(loss.heads, loss.options, strict=True):
        rows, cols = head.grid
        attrs = 5 + head.num_classes
        out = torch.full((batch, head.num_anchors, attrs, rows, cols), -LOGIT)
        out[:, :, 0:4] = 0.0
        if head.kind == "yolo":
            assigned = assign_yolo(truths, head, options, loss.input_size)
        else:
            assigned = assign_region(truths, head, options, loss.input_size, torch.empty(0))
        cell = torch.tensor([loss.input_size[1] / cols, loss.input_size[0] / rows])
        for t, b, a, y, x in zip(*(v.tolist() for v in (assigned.truth, assigned.batch, assigned.anchor,
                                                         assigned.cell_y, assigned.cell_x)), strict=True):
            offset = truths.cxcywh[t, 0:2] / cell - torch.tensor([x, y])
            out[b, a, 0:2, y, x] = torch.logit((offset + (head.scale_x_y - 1) / 2) / head.scale_x_y)
            out[b, a, 2:4, y, x] = torch.log(truths.cxcywh[t, 2:4] / torch.tensor(head.anchors[a]))
            out[b, a, 4, y, x] = LOGIT
            out[b, a, 5 + truths.classes[t], y, x] = LOGIT
        outputs.append(out.reshape(batch, -1, rows, cols))
    return outputs


TARGETS = [[0, 0, 100, 60, 40, 40], [1, 2, 20, 180, 10, 12], [1, 1, 150, 100, 120, 90]]


@pytest.mark.parametrize(("cfg", "iou_loss"), [("demo", "ciou"), ("demo", "giou"), ("demo", "mse"),
                                              ("yolov2-tiny-voc", None)])
def test_a_perfect_prediction_costs_nothing_and_gradients_point_back(cfg, iou_loss):
    model = Darknet.from_cfg(cfg)
    options = [o if iou_loss is None else replace(o, iou_loss=iou_loss) for o in head_loss_options(model)]
    loss = DetectionLoss(model, options)
    targets = _targets(TARGETS, model.input_size)
    truths = Truths.from_targets(targets, model.input_size)
    outputs = _encode_perfect(loss, truths, batch=2)
    total, parts = loss(outputs, targets)
    assert total.item() < 0.01, parts
    # shift every box's x offset right and shrink its width: the box loss grows, its gradient pushes back
    attrs = 5 + loss.heads[0].num_classes
    for out in outputs:
        view = out.view(2, -1, attrs, *out.shape[2:])
        view[:, :, 0] += 0.5
        view[:, :, 2] -= 0.3
        out.requires_grad_(True)
    shifted, shifted_parts = loss(outputs, targets)
    assert shifted_parts["box"].item() > 100 * parts["box"].item() + 1e-3
    shifted.backward()
    for out, ideal in zip(outputs, _encode_perfect(loss, truths, batch=2), strict=True):
        grad = out.grad.view(2, -1, attrs, *out.shape[2:])
        assigned = ideal.view_as(grad)[:, :, 4] == LOGIT  # [B, A, h, w]
        assert assigned.any()
        assert (grad[:, :, 2][assigned] < 0).all()
        # GIoU has no gradient for moving a box that lies inside the truth (why DIoU/CIoU exist)
        assert (grad[:, :, 0][assigned] >= 0).all() if iou_loss == "giou" else (grad[:, :, 0][assigned] > 0).all()


def test_ignore_thresh_silences_objectness_of_close_duplicates():
    model = Darknet.from_cfg("demo")
    targets = _targets(TARGETS[:1], model.input_size)
    truths = Truths.from_targets(targets, model.input_size)
    never = DetectionLoss(model, [replace(o, ignore_thresh=1.0) for o in head_loss_options(model)])
    outputs = _encode_perfect(never, truths, batch=1)
    _, base = never(outputs, targets)
    # a second, unassigned anchor of the same cell predicts the same box with objectness 5 (logit)
    out = outputs[0].view(1, 3, 8, 12, 12)
    out[0, 1, 0:2, 3, 6] = out[0, 0, 0:2, 3, 6]
    out[0, 1, 2:4, 3, 6] = torch.log(torch.tensor([40 / 62, 40 / 78]))
    out[0, 1, 4, 3, 6] = 5.0
    _, counted = never(outputs, targets)
    penalty = torch.nn.functional.softplus(torch.tensor(5.0)).item()  # BCE of logit 5 against target 0
    cells = 12 * 12 * 3  # objectness is a mean over the head's predictions
    assert counted["obj"].item() - base["obj"].item() == pytest.approx(penalty / cells, rel=1e-4)
    ignoring = DetectionLoss(model, [replace(o, ignore_thresh=0.5) for o in head_loss_options(model)])
    _, ignored = ignoring(outputs, targets)
    assert ignored["obj"].item() == pytest.approx(base["obj"].item(), abs=1e-4)


def test_region_rescore_targets_the_iou():
    model = Darknet.from_cfg("yolov2-tiny-voc")
    options = head_loss_options(model)
    assert options[0].rescore and options[0].object_scale == 5.0 and options[0].bias_match
    targets = _targets([[0, 3, 200, 200, 100, 150]], model.input_size)
    truths = Truths.from_targets(targets, model.input_size)
    plain = DetectionLoss(model, [replace(options[0], rescore=False)])
    rescored = DetectionLoss(model, options)
    outputs = _encode_perfect(plain, truths, batch=1)
    out = outputs[0].view(1, 5, 25, 13, 13)
    out[0, :, 2] += 0.4  # boxes e^0.4 wider: IoU e^-0.4 with the truth, objectness still certain
    _, with_one = plain(outputs, targets)
    _, with_iou = rescored(outputs, targets)
    iou = math.exp(-0.4)
    assert with_one["obj"].item() == pytest.approx(0.0, abs=1e-3)
    cells = 13 * 13 * 5
    assert with_iou["obj"].item() == pytest.approx(0.5 * 5.0 * (1 - iou) ** 2 / cells, rel=1e-3)


def test_bad_targets_and_unsupported_options_are_refused():
    model = Darknet.from_cfg("demo")
    loss = DetectionLoss(model)
    outputs = model(torch.zeros(1, 3, 192, 192))
    with pytest.raises(ValueError, match="class ids 3..3 but the model has 3 classes"):
        loss(outputs, torch.tensor([[0, 3, 0.5, 0.5, 0.1, 0.1]]))
    with pytest.raises(ValueError, match=r"expected \[M, 6\]"):
        loss(outputs, torch.zeros(2, 5))
    sections = model.to_sections()
    sections[19].options["focal_loss"] = "1"
    with pytest.raises(CfgError, match="focal_loss=1 is not supported"):
        DetectionLoss(Darknet(sections))
    sections[19].options.pop("focal_loss")
    sections[19].options["iou_loss"] = "eiou"
    with pytest.raises(CfgError, match="iou_loss=eiou"):
        DetectionLoss(Darknet(sections))
