"""The finetune loop: the demo cfg learns synthetic scenes, an interrupted run resumes to the same weights,
pruned models finetune, distillation pulls a student toward its teacher, and what it writes."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest
import torch
from _data import pruned_demo, randomize_bn

from yolo_compress.data import load_dataset
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.train.distill import DistillLoss
from yolo_compress.train.ema import ModelEMA
from yolo_compress.train.finetune import STATE_FILE, FinetuneConfig, finetune
from yolo_compress.train.schedule import warmup_cosine_factor

SIZE = 96  # the demo cfg at half its input size: 4x fewer FLOPs, same layers and heads
QUIET = {"workers": 0, "progress": False}


def small_demo(seed: int = 0) -> Darknet:
    torch.manual_seed(seed)
    sections = Darknet.from_cfg("demo").sections
    sections[0].options["width"] = sections[0].options["height"] = str(SIZE)
    return Darknet(sections)


def scenes(count: int, seed: int = 1):
    return load_dataset(f"synthetic:{count}:{seed}?size={SIZE}")


def test_the_demo_cfg_learns_a_small_synthetic_set(tmp_path):
    data = scenes(16)
    config = FinetuneConfig(epochs=25, lr=0.05, batch=4, warmup_epochs=1, ema=False, augment=None, eval_every=25,
                            **QUIET)
    result = finetune(small_demo(), list(data.names), data, data, config, tmp_path)
    start, first, last = result.history[0], result.history[1], result.history[-1]
    assert start["epoch"] == 0 and start["ap50"] < 0.05  # validate_first: the untrained model
    assert last["epoch"] == 25 and last["loss"] < first["loss"] / 5
    assert last["ap50"] > 0.4, result.history
    assert result.best is not None and result.best["epoch"] == 25
    best = load_checkpoint(result.best_path)
    assert best.names == list(data.names) and best.metadata["epoch"] == 25
    assert best.metadata["ap50"] == pytest.approx(last["ap50"])
    assert best.metadata["finetune"]["lr"] == 0.05
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(26)) and rows[0]["loss"] == ""
    assert json.loads((tmp_path / "log.json").read_text())[-1]["ap50"] == last["ap50"]
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


class Interrupt(Exception):
    """Stands in for a kill right after an epoch's files are written."""


def _stop_after(epoch: int):
    def callback(record):
        if record["epoch"] == epoch:
            raise Interrupt

    return callback


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    data = scenes(8)
    # EMA, augmentation and the demo's dropout all draw random numbers; the resume must repeat them
    config = FinetuneConfig(epochs=2, lr=0.01, batch=4, warmup_epochs=0.5, ema=True, **QUIET)
    straight = finetune(small_demo(), list(data.names), data, data, config, tmp_path / "straight")
    with pytest.raises(Interrupt):
        finetune(small_demo(), list(data.names), data, data, config, tmp_path / "cut", on_epoch_end=_stop_after(1))
    torch.manual_seed(12345)  # whatever the process did in between
    resumed = finetune(small_demo(seed=7), list(data.names), data, data, replace(config, workers=1),
                       tmp_path / "cut", resume=True)
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert len(resumed.history) == len(straight.history) == 3  # epochs 0, 1, 2
    for again, first in zip(resumed.history, straight.history, strict=True):
        for key in ("epoch", "loss", "box", "obj", "cls", "lr", "ap50", "ap50_95"):
            assert again.get(key) == pytest.approx(first.get(key), rel=1e-5), key
    with pytest.raises(ValueError, match=r"changed: lr \(0.01 -> 0.02\)"):
        finetune(small_demo(), list(data.names), data, data, replace(config, lr=0.02), tmp_path / "cut", resume=True)
    with pytest.raises(ValueError, match="written for another model"):
        finetune(Darknet.from_cfg("demo"), list(data.names), data, None, config, tmp_path / "cut", resume=True)
    with pytest.raises(FileNotFoundError, match=f"{STATE_FILE} not found"):
        finetune(small_demo(), list(data.names), data, None, config, tmp_path / "none", resume=True)


def test_a_pruned_model_finetunes_and_its_checkpoint_keeps_the_channels(tmp_path):
    data = load_dataset("synthetic:4:3")  # the full 192x192 demo, as pruned_demo() cuts it
    model = pruned_demo().train()
    config = FinetuneConfig(epochs=1, lr=1e-3, batch=2, ema=False, **QUIET)
    result = finetune(model, list(data.names), data, data, config, tmp_path)
    assert result.model is model
    saved = load_checkpoint(result.last_path).model
    assert saved.cfg_text() == model.cfg_text() and saved.layers[13].conv.out_channels == 96
    assert "ap50" in result.history[-1]


def test_distillation_adds_a_term_that_pulls_the_student_to_the_teacher(tmp_path):
    teacher = randomize_bn(small_demo(seed=3)).eval()
    images = torch.rand(2, 3, SIZE, SIZE)
    distance = DistillLoss(teacher, teacher.heads, weight=1.0)
    assert distance(images, teacher(images)).item() == pytest.approx(0.0, abs=1e-6)
    data = scenes(8)
    config = FinetuneConfig(epochs=3, lr=0.01, batch=4, ema=False, augment=None, distill_weight=20.0, **QUIET)
    plain = finetune(small_demo(seed=4), list(data.names), data, None, config, tmp_path / "plain").model
    result = finetune(small_demo(seed=4), list(data.names), data, None, config, tmp_path / "distilled",
                      teacher=teacher)
    with torch.no_grad():
        plain_distance = distance(images, plain.eval()(images)).item()
        distilled_distance = distance(images, result.model.eval()(images)).item()
    assert distilled_distance < plain_distance / 2
    first = result.history[0]
    assert first["distill"] > 0
    assert first["loss"] == pytest.approx(sum(first[k] for k in ("box", "obj", "cls", "distill")), rel=1e-4)
    with pytest.raises(ValueError, match="teacher and student heads differ"):
        DistillLoss(Darknet.from_cfg("demo"), teacher.heads)


def test_warmup_then_cosine_and_the_ema_ramp():
    factors = [warmup_cosine_factor(step, 10, 3, 0.1) for step in range(10)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[-1] == pytest.approx(0.1) and all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))
    model = torch.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.9, ramp=1.0)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    decay = 0.9 * (1 - torch.exp(torch.tensor(-1.0))).item()
    expected = decay * (model.weight - 1.0) + (1 - decay) * model.weight
    torch.testing.assert_close(ema.module.weight, expected)
