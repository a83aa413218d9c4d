"""tools/finetune.py and the job it fills: model source, classes, held-out validation, teacher, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from yolo_compress.models.checkpoint import load_checkpoint, save_checkpoint
from yolo_compress.models.darknet import Darknet
from yolo_compress.train.finetune import FinetuneConfig
from yolo_compress.train.job import FinetuneJob, job_datasets, job_model, job_teacher

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "finetune.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=300)


def test_cli_finetunes_from_a_cfg_and_resumes(tmp_path):
    args = ["--cfg", "demo", "--data", "synthetic:4:1", "--val", "synthetic:2:2", "--classes", "square,circle",
            "--test", "synthetic:2:5", "--epochs", "1", "--batch", "2", "--workers", "0", "--no-progress",
            "--out", str(tmp_path)]
    done = _run(*args)
    assert done.returncode == 0, done.stderr
    assert "epoch   0: start" in done.stdout and "epoch   1: loss" in done.stdout
    assert "synthetic:2:5 (" in done.stdout and "last (epoch 1) AP50 " in done.stdout
    tests = json.loads((tmp_path / "tests.json").read_text())["synthetic:2:5"]
    assert set(tests) == {"before", "last", "best"} and tests["last"]["n_images"] == 2 and tests["last"]["epoch"] == 1
    last = load_checkpoint(tmp_path / "last.pt")
    assert last.names == ["square", "circle"] and last.model.heads[0].num_classes == 2
    assert last.metadata["parent"] == "demo" and last.metadata["epoch"] == 1
    again = _run(*args, "--resume")  # already finished: nothing left to train, same log
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("epoch") == done.stdout.count("epoch")


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    done = _run("--cfg", "demo", "--data", "synthetic:2", "--classes", "hexagon", "--out", str(tmp_path))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "finetune:" in done.stderr and "hexagon" in done.stderr
    done = _run("--checkpoint", str(tmp_path / "missing.pt"), "--data", "synthetic:2", "--out", str(tmp_path))
    assert done.returncode == 1 and "checkpoint not found" in done.stderr
    done = _run("--cfg", "demo", "--data", "synthetic:2", "--epochs", "0", "--out", str(tmp_path))
    assert done.returncode == 2 and "--epochs must be >= 1" in done.stderr


def test_val_from_holds_out_the_same_images_and_trains_on_the_rest():
    job = FinetuneJob(data="synthetic:6:1", out=Path("unused"), cfg="demo", val_from="synthetic:8:2",
                      val_fraction=0.25, split_seed=3)
    train, val = job_datasets(job)
    again_train, again_val = job_datasets(job)
    assert len(val) == 2 and len(train) == 6 + 6
    assert [s.name for s in val] == [s.name for s in again_val]
    held_out = {s.name for s in val}
    assert not held_out & {s.name for s in train}
    both_train, both_val = job_datasets(FinetuneJob(data="synthetic:6:1", out=Path("unused"), cfg="demo",
                                                    val="synthetic:3:4", val_from="synthetic:8:2",
                                                    val_fraction=0.25, split_seed=3))
    assert len(both_val) == 2 + 3 and len(both_train) == 6 + 6
    assert held_out < {s.name for s in both_val}


def test_the_model_and_teacher_are_cut_to_the_job_classes(tmp_path):
    torch.manual_seed(0)
    teacher_path = save_checkpoint(tmp_path / "teacher.pt", Darknet.from_cfg("demo"), ["circle", "square", "ring"])
    job = FinetuneJob(data="synthetic:2", out=tmp_path, checkpoint=str(teacher_path), classes=["ring"],
                      teacher=str(teacher_path), config=FinetuneConfig())
    model, names, _ = job_model(job, ["ring"])
    assert names == ["ring"] and model.heads[0].num_classes == 1
    teacher = job_teacher(job, names, model)
    assert teacher is not None and teacher.cfg_text() == model.cfg_text()
    original = load_checkpoint(teacher_path).model
    conv = original.heads[0].index - 1
    ring = [*range(5), 7]  # anchor 0's box, objectness and class 2 channels
    assert torch.equal(teacher.layers[conv].conv.weight[:6], original.layers[conv].conv.weight[ring])
    start = job_teacher(FinetuneJob(data="synthetic:2", out=tmp_path, teacher_start=True), names, model)
    assert start is not model and torch.equal(start.layers[0].conv.weight, model.layers[0].conv.weight)
    scratch, names, _ = job_model(FinetuneJob(data="synthetic:2", out=tmp_path, cfg="demo"), ["a", "b", "c", "d"])
    assert names == ["a", "b", "c", "d"] and [h.num_classes for h in scratch.heads] == [4, 4]


def test_input_size_trains_and_distills_at_the_size_the_model_will_run_at(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "start.pt", Darknet.from_cfg("demo"), ["circle", "square", "triangle"])
    done = _run("--checkpoint", str(path), "--teacher", str(path), "--data", "synthetic:4:1", "--val", "synthetic:2:2",
                "--input-size", "96x128", "--mosaic", "1", "--epochs", "1", "--batch", "2", "--workers", "0",
                "--no-progress", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    last = load_checkpoint(tmp_path / "run" / "last.pt").model
    assert last.input_size == (96, 128) and [h.grid for h in last.heads] == [(6, 8), (12, 16)]
    job = FinetuneJob(data="synthetic:2", out=tmp_path, checkpoint=str(path), teacher=str(path), input_size=(96, 128))
    model, names, _ = job_model(job, ["circle", "square", "triangle"])
    assert model.input_size == job_teacher(job, names, model).input_size == (96, 128)
    bad = _run("--checkpoint", str(path), "--data", "synthetic:2", "--input-size", "96xa", "--out", str(tmp_path))
    assert bad.returncode != 0 and "96xa" in bad.stderr
