"""Self-describing checkpoints: round trip, pruned models without pruning history, atomic writes, errors."""

from __future__ import annotations

import os

import pytest
import torch

from yolo_compress.models.checkpoint import load_checkpoint, save_checkpoint
from yolo_compress.models.darknet import Darknet

from _data import pruned_demo, randomize_bn

NAMES = ["person", "car", "dog"]


def _assert_same_outputs(a: Darknet, b: Darknet) -> None:
    x = torch.rand(2, 3, *a.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for out_a, out_b in zip(a.eval()(x), b.eval()(x), strict=True):
            assert torch.equal(out_a, out_b)


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    model = randomize_bn(Darknet.from_cfg("demo"))
    metadata = {"parent": "demo", "criterion": "taylor", "iteration": 3, "ap": 0.41, "flops": 229883904}
    path = save_checkpoint(tmp_path / "ckpt" / "m.pt", model, NAMES, metadata)
    loaded = load_checkpoint(path)
    assert (loaded.names, loaded.metadata) == (NAMES, metadata)
    assert not loaded.model.training
    assert loaded.model.to_sections() == model.to_sections()
    _assert_same_outputs(model, loaded.model)


def test_written_files_are_readable_by_others_like_open_makes_them(tmp_path):
    """mkstemp makes 0600 files; a checkpoint or model must get 0666 minus the umask, as open() gives."""
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.pt", Darknet.from_cfg("demo"), NAMES)
        plain = tmp_path / "plain"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644


def test_pruned_model_loads_without_history(tmp_path):
    model = pruned_demo()
    path = save_checkpoint(tmp_path / "pruned.pt", model, NAMES)
    loaded = load_checkpoint(path).model
    assert loaded.layers[13].conv.out_channels == 96 and loaded.layers[15].conv.in_channels == 96
    assert loaded.layers[3].conv.groups == 24
    _assert_same_outputs(model, loaded)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    model = Darknet.from_cfg("demo")
    path = save_checkpoint(tmp_path / "m.pt", model, NAMES, {"iteration": 1})

    def broken_save(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, NAMES, {"iteration": 2})
    assert load_checkpoint(path).metadata == {"iteration": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_bad_arguments_are_rejected(tmp_path):
    model = Darknet.from_cfg("demo")
    with pytest.raises(ValueError, match="2 class names given but the model's heads have \\[3\\] classes"):
        save_checkpoint(tmp_path / "a.pt", model, ["a", "b"])
    with pytest.raises(ValueError, match="JSON-serializable"):
        save_checkpoint(tmp_path / "b.pt", model, NAMES, {"ap": object()})
    assert not list(tmp_path.iterdir())


def test_unreadable_checkpoints_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt: not a readable checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(ValueError, match="foreign.pt: not a yolo_compress checkpoint"):
        load_checkpoint(foreign)
