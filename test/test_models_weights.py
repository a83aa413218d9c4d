"""Darknet .weights I/O: byte-identical round trip on the real files, both header formats, and size
mismatches reported with the layer, the counts and the file."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.weights import WeightsError, WeightsHeader, load_weights, save_weights

from _data import randomize_bn, real_model
from conftest import YOLO_FASTEST


@pytest.mark.parametrize("name", sorted(YOLO_FASTEST))
def test_real_weights_round_trip_byte_identical(name, tmp_path):
    model, _, weights = real_model(name)
    header = load_weights(model, weights)
    assert (header.major, header.minor, header.revision) == (0, 2, 5) and header.seen > 0
    save_weights(model, tmp_path / "copy.weights", header)
    assert (tmp_path / "copy.weights").read_bytes() == weights.read_bytes()


def _demo(seed: int = 0) -> Darknet:
    torch.manual_seed(seed)
    return randomize_bn(Darknet.from_cfg("demo"), seed)


@pytest.mark.parametrize(
    ("header", "seen_bytes"),
    [(WeightsHeader(0, 1, 0, 123), 4), (WeightsHeader(0, 2, 5, 2**40), 8), (WeightsHeader(1000, 2, 0, 7), 4)],
)
def test_header_formats(header, seen_bytes, tmp_path):
    model, path = _demo(), tmp_path / "demo.weights"
    save_weights(model, path, header)
    floats = sum(p.numel() for p in model.state_dict().values() if p.dim())  # BN step counters are not stored
    assert path.stat().st_size == 12 + seen_bytes + 4 * floats
    other = _demo(seed=1)
    assert load_weights(other, path) == header
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(other.state_dict()[key], value), key
    save_weights(other, tmp_path / "again.weights", header)
    assert (tmp_path / "again.weights").read_bytes() == path.read_bytes()


def _message(model: Darknet, path) -> str:
    with pytest.raises(WeightsError) as info:
        load_weights(model, path)
    return str(info.value)


def test_truncated_file_names_layer_and_counts(tmp_path):
    model, cfg, weights = real_model("yolo-fastest-1.1")
    data = weights.read_bytes()
    path = tmp_path / "short.weights"
    path.write_bytes(data[: -4 * 1000])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    message = _message(model, path)
    # the last conv (a head conv without BN: 255 biases, 255 x 120 weights) is the one 1000 floats short
    last = max(i for i, t in enumerate(model.layer_types) if t == "convolutional")
    line = model.sections[last + 1].line
    assert str(path) in message
    assert f"layer {last} [convolutional] ({cfg}:{line})" in message
    assert f"expected {255 + 255 * 120}, found {255 + 255 * 120 - 1000}" in message
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "model changed on error"


def test_extra_floats_name_counts(tmp_path):
    model, _, weights = real_model("yolo-fastest-1.1")
    path = tmp_path / "long.weights"
    path.write_bytes(weights.read_bytes() + np.zeros(3, "<f4").tobytes())
    message = _message(model, path)
    expected = (weights.stat().st_size - 20) // 4
    assert str(path) in message
    pattern = rf"3 floats too many after layer \d+ \[convolutional\].*expected {expected} .*found {expected + 3}"
    assert re.search(pattern, message)


def test_ragged_and_tiny_files(tmp_path):
    model = _demo()
    ragged = tmp_path / "ragged.weights"
    ragged.write_bytes(WeightsHeader().to_bytes() + b"\0" * 6)
    assert "6 bytes after the header are not a whole number of float32" in _message(model, ragged)
    tiny = tmp_path / "tiny.weights"
    tiny.write_bytes(b"\0" * 8)
    assert f"{tiny}: 8 bytes is too short" in _message(model, tiny)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.weights"):
        load_weights(_demo(), tmp_path / "nope.weights")
