"""Cutting a model to some of its classes keeps their trained outputs: exactly on the demo model, and as
person AP on coco128 with the real 80-class Yolo-Fastest."""

from __future__ import annotations

import pytest
import torch

from yolo_compress.data import load_dataset
from yolo_compress.models.checkpoint import load_checkpoint, save_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import decode
from yolo_compress.train.classes import select_classes
from yolo_compress.train.validate import validate

from _data import randomize_bn, real_model
from conftest import shared_path, yolo_fastest_files

DEMO_NAMES = ["circle", "square", "triangle"]


def test_kept_classes_score_exactly_as_before_in_the_new_order(tmp_path):
    torch.manual_seed(0)
    model = randomize_bn(Darknet.from_cfg("demo")).eval()
    before = model.cfg_text()
    cut = select_classes(model, DEMO_NAMES, ["triangle", "circle"]).eval()
    assert model.cfg_text() == before  # the original is untouched
    assert [h.num_classes for h in cut.heads] == [2, 2]
    for head in cut.heads:
        conv = cut.sections[head.index]  # the conv just before the head (sections are offset by [net])
        assert conv.options["filters"] == "21" and cut.sections[head.index + 1].options["classes"] == "2"
    images = torch.rand(2, 3, 192, 192)
    with torch.no_grad():
        boxes, scores = decode(model(images), model.heads, model.input_size)
        cut_boxes, cut_scores = decode(cut(images), cut.heads, cut.input_size)
    assert torch.equal(cut_boxes, boxes)
    assert torch.equal(cut_scores, scores[..., [2, 0]])
    path = save_checkpoint(tmp_path / "cut.pt", cut, ["triangle", "circle"])
    loaded = load_checkpoint(path)
    assert loaded.names == ["triangle", "circle"] and loaded.model.cfg_text() == cut.cfg_text()


def test_unknown_repeated_or_no_classes_are_refused():
    model = Darknet.from_cfg("demo")
    with pytest.raises(ValueError, match="unknown classes hexagon; the model's classes are: circle, square"):
        select_classes(model, DEMO_NAMES, ["hexagon"])
    with pytest.raises(ValueError, match="classes named twice: circle"):
        select_classes(model, DEMO_NAMES, ["circle", "circle"])
    with pytest.raises(ValueError, match="no classes to keep"):
        select_classes(model, DEMO_NAMES, [])
    with pytest.raises(ValueError, match="2 class names for a model with 3 classes"):
        select_classes(model, DEMO_NAMES[:2], ["circle"])


def test_person_only_yolo_fastest_has_the_person_ap_of_the_coco_model():
    _, _, names_file = yolo_fastest_files("yolo-fastest-1.1")
    model, _, _ = real_model("yolo-fastest-1.1")
    names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    persons = load_dataset(f"yolo:{shared_path('coco128-train')}", ["person"])[:40]
    person_model = select_classes(model, names, ["person"])
    assert person_model.heads[0].num_classes == 1
    full = validate(model, names, persons)  # the 80-class model scored on its person column only
    cut = validate(person_model, ["person"], persons)
    assert full["n_gt"] == cut["n_gt"] > 40
    assert full["ap50"] > 0.3
    assert (cut["ap50"], cut["ap50_95"]) == (full["ap50"], full["ap50_95"])
