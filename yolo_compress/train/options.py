"""The loss settings of each head, read from its [yolo] / [region] cfg section with Darknet's defaults.

A head's loss is part of its cfg (Darknet trains from the same file it infers from), so the options
live next to the anchors and masks. Options that change the loss and are not implemented here are
refused with the cfg line, rather than silently training something else.
"""

from __future__ import annotations

from dataclasses import dataclass

from yolo_compress.models.cfg import Section
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.heads import Head
from yolo_compress.train.boxes import IOU_KINDS

# Darknet's own default box loss is MSE on (tx, ty, tw, th); every Darknet cfg that picks an IoU loss
# (yolov4, Yolo-Fastest) picks ciou with iou_normalizer=0.07. An IoU loss does not depend on the box
# scale, so it is the default here for cfgs that say nothing (yolov3-tiny, demo); iou_loss=mse is honoured.
DEFAULT_IOU_LOSS = "ciou"
_IOU_NORMALIZER = {"mse": 0.75}  # Darknet's default for mse; IoU kinds take DEFAULT_IOU_NORMALIZER
DEFAULT_IOU_NORMALIZER = 0.07
# option: the value that means "off". Darknet implements these; this loss does not.
_UNSUPPORTED = {
    "yolo": {"truth_thresh": 1.0, "focal_loss": 0.0, "objectness_smooth": 0.0, "label_smooth_eps": 0.0,
             "iou_thresh_kind": "iou", "counters_per_class": None},
    "region": {"focal_loss": 0.0, "tree": None, "map": None},
}


@dataclass(frozen=True)
class YoloLossOptions:
    """[yolo] (YOLOv3/v4): all anchors of the cfg (input pixels) and which of them this head predicts.

    A truth belongs to the head whose mask holds its best-matching anchor among all anchors; with
    iou_thresh < 1 also to every masked anchor whose shape IoU with it exceeds iou_thresh (AlexeyAB).
    Predictions whose box overlaps some truth by more than ignore_thresh get no objectness loss.
    """

    all_anchors: tuple[tuple[float, float], ...]
    mask: tuple[int, ...]
    ignore_thresh: float = 0.5
    iou_thresh: float = 1.0
    iou_loss: str = DEFAULT_IOU_LOSS
    iou_normalizer: float = DEFAULT_IOU_NORMALIZER
    cls_normalizer: float = 1.0
    obj_normalizer: float = 1.0


@dataclass(frozen=True)
class RegionLossOptions:
    """[region] (YOLOv2): Darknet's scales, rescore (objectness target = IoU) and bias_match."""

    object_scale: float = 1.0
    noobject_scale: float = 1.0
    class_scale: float = 1.0
    coord_scale: float = 1.0
    rescore: bool = False
    bias_match: bool = False
    thresh: float = 0.5


LossOptions = YoloLossOptions | RegionLossOptions


def head_loss_options(model: Darknet) -> list[LossOptions]:
    """One options object per head of `model`, in model.heads order."""
    return [_options(model.sections[head.index + 1], head) for head in model.heads]


def _options(section: Section, head: Head) -> LossOptions:
    _check_supported(section)
    if head.kind == "region":
        return RegionLossOptions(
            object_scale=section.get_float("object_scale", 1.0),
            noobject_scale=section.get_float("noobject_scale", 1.0),
            class_scale=section.get_float("class_scale", 1.0),
            coord_scale=section.get_float("coord_scale", 1.0),
            rescore=section.get_int("rescore", 0) != 0,
            bias_match=section.get_int("bias_match", 0) != 0,
            thresh=section.get_float("thresh", 0.5),
        )
    iou_loss = section.get_str("iou_loss", DEFAULT_IOU_LOSS).lower()
    if iou_loss not in ("mse", *IOU_KINDS):
        raise section.error(f"iou_loss={iou_loss} is not one of mse, {', '.join(IOU_KINDS)}", "iou_loss")
    values = section.get_floats("anchors")
    num = section.get_int("num", len(values) // 2)
    return YoloLossOptions(
        all_anchors=tuple(zip(values[0 : 2 * num : 2], values[1 : 2 * num : 2], strict=True)),
        mask=tuple(section.get_ints("mask", list(range(num)))),
        ignore_thresh=section.get_float("ignore_thresh", 0.5),
        iou_thresh=section.get_float("iou_thresh", 1.0),
        iou_loss=iou_loss,
        iou_normalizer=section.get_float("iou_normalizer", _IOU_NORMALIZER.get(iou_loss, DEFAULT_IOU_NORMALIZER)),
        cls_normalizer=section.get_float("cls_normalizer", 1.0),
        obj_normalizer=section.get_float("obj_normalizer", 1.0),
    )


def _check_supported(section: Section) -> None:
    for key, off in _UNSUPPORTED[section.type].items():
        if key not in section.options:
            continue
        value = section.get_float(key) if isinstance(off, float) else section.get_str(key)
        if off is None or value != off:
            raise section.error(f"loss option {key}={section.options[key]} is not supported by the trainer", key)
