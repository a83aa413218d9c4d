"""The finetune loop: the demo cfg learns synthetic scenes, an interrupted run resumes to the same weights,
pruned models finetune, distillation pulls a student toward its teacher, and what it writes."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest
import torch

from yolo_compress.data import DetectionDataset, SyntheticConfig, load_dataset, synthetic_dataset
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.train.distill import DistillLoss
from yolo_compress.train.ema import ModelEMA
from yolo_compress.train.finetune import STATE_FILE, FinetuneConfig, finetune
from yolo_compress.train.precise_bn import recompute_bn_stats
from yolo_compress.train.schedule import warmup_cosine_factor

from _data import pruned_demo, randomize_bn

SIZE = 64  # the demo cfg at a third of its input size: 9x fewer FLOPs, same layers and heads
QUIET = {"workers": 0, "progress": False}


def small_demo(seed: int = 0) -> Darknet:
    torch.manual_seed(seed)
    sections = Darknet.from_cfg("demo").sections
    sections[0].options["width"] = sections[0].options["height"] = str(SIZE)
    return Darknet(sections)


def scenes(count: int, seed: int = 1) -> DetectionDataset:
    return synthetic_dataset(count, seed, SyntheticConfig(height=SIZE, width=SIZE, max_side=48))


def test_the_demo_cfg_learns_a_small_synthetic_set(tmp_path):
    scenes_8 = scenes(8)
    train = scenes_8.subset(list(range(8)) * 8)  # 16 steps per epoch: fewer epochs of bookkeeping
    config = FinetuneConfig(epochs=3, lr=0.05, batch=4, warmup_epochs=0.5, ema=False, augment=None, **QUIET)
    result = finetune(small_demo(), list(scenes_8.names), train, scenes_8, config, tmp_path)
    start, first, last = result.history[0], result.history[1], result.history[-1]
    assert start["epoch"] == 0 and start["ap50"] < 0.05  # validate_first: the untrained model
    assert last["epoch"] == 3 and last["loss"] < first["loss"] / 5
    assert last["ap50"] > 0.3, result.history
    assert result.best is not None and result.best["epoch"] == 3
    best = load_checkpoint(result.best_path)
    assert best.names == list(scenes_8.names) and best.metadata["epoch"] == 3
    assert best.metadata["ap50"] == pytest.approx(last["ap50"])
    assert best.metadata["finetune"]["lr"] == 0.05
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(4)) and rows[0]["loss"] == ""
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
    data = load_dataset("synthetic:2:3")  # the full 192x192 demo, as pruned_demo() cuts it
    model = pruned_demo().train()
    before = model.layers[13].conv.weight.detach().clone()
    config = FinetuneConfig(epochs=1, lr=1e-3, batch=2, ema=False, **QUIET)
    result = finetune(model, list(data.names), data, data, config, tmp_path)
    assert result.model is model and not torch.equal(model.layers[13].conv.weight, before)
    saved = load_checkpoint(result.last_path).model
    assert saved.cfg_text() == model.cfg_text() and saved.layers[13].conv.out_channels == 96
    assert [r["epoch"] for r in result.history] == [0, 1] and "ap50" in result.history[-1]


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


def test_precise_bn_sets_the_statistics_of_the_weights_as_they_are():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Dropout(0.5), torch.nn.BatchNorm2d(4, momentum=0.03))
    batches = [torch.rand(2, 3, 8, 8) + i for i in range(2)]
    assert recompute_bn_stats(model, batches, torch.device("cpu")) == 2
    bn = model[2]
    with torch.no_grad():  # dropout is off while measuring: BN sees what it sees at inference
        features = [model[0](b) for b in batches]
    expected_mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in features]).mean(dim=0)
    expected_var = torch.stack([f.var(dim=(0, 2, 3)) for f in features]).mean(dim=0)  # unbiased, as BN keeps it
    torch.testing.assert_close(bn.running_mean, expected_mean)
    torch.testing.assert_close(bn.running_var, expected_var)
    assert bn.momentum == 0.03 and model.training


def test_frozen_bn_statistics_stay_while_the_weights_learn(tmp_path):
    model = randomize_bn(small_demo())
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    conv = model.layers[0].conv.weight.detach().clone()
    data = scenes(4)
    config = FinetuneConfig(epochs=1, lr=0.01, batch=2, freeze_bn_stats=True, **QUIET)
    result = finetune(model, list(data.names), data, None, config, tmp_path)
    assert not torch.equal(result.model.layers[0].conv.weight, conv)
    for key, value in stats.items():  # with EMA on, result.model holds the EMA's copy: frozen there too
        assert torch.equal(result.model.state_dict()[key], value), key


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


def _training_input_sizes(model: Darknet) -> list[tuple[int, int]]:
    """A list that fills with the input size of every training forward of `model`."""
    seen: list[tuple[int, int]] = []
    model.layers[0].register_forward_pre_hook(
        lambda module, args: seen.append(tuple(args[0].shape[-2:])) if module.training else None)
    return seen


def test_multi_scale_trains_each_batch_at_a_drawn_size_with_loss_and_teacher_there(tmp_path):
    data = scenes(8).subset(list(range(8)) * 3)  # 12 batches of 2
    teacher = randomize_bn(small_demo(seed=3)).eval()
    config = FinetuneConfig(epochs=1, lr=0.01, batch=2, ema=False, multi_scale=((32, 32), (48, 48), (64, 64)),
                            **QUIET)
    runs = []
    for name in ("a", "b"):
        model = small_demo(seed=4)
        seen = _training_input_sizes(model)
        result = finetune(model, list(data.names), data, scenes(2), config, tmp_path / name, teacher=teacher)
        runs.append(seen)
    assert set(runs[0]) == {(32, 32), (48, 48), (64, 64)} and len(runs[0]) == 12
    assert runs[0] == runs[1]  # drawn per (seed, epoch, batch): a rerun or a resume trains the same sizes
    assert result.history[-1]["distill"] > 0 and load_checkpoint(result.last_path).model.input_size == (SIZE, SIZE)
    saved = json.loads(json.dumps(config.to_dict()))  # as a checkpoint's metadata reads it back
    assert FinetuneConfig(**saved) == config
    with pytest.raises(ValueError, match="multi-scale size 40x40: needs positive multiples of .* stride 16"):
        finetune(small_demo(), list(data.names), data, None, replace(config, multi_scale=((40, 40),)), tmp_path / "c")
