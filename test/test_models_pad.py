"""Channel padding for the runtime's blocked layout: exact outputs, padded where it may be, not elsewhere."""

from __future__ import annotations

import argparse
import platform

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.models.cfg import parse_cfg
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.fuse import fuse_conv_bn
from yolo_compress.models.layers import ConvBlock
from yolo_compress.models.pad import cpu_block_size, pad_channels, pad_multiple
from yolo_compress.models.source import load_model_source
from yolo_compress.prune.importance import L1Importance
from yolo_compress.prune.step import StepSettings, prune_step

from _data import randomize_bn
from conftest import yolo_fastest_files

# Odd widths at every kind of coupling the padding must respect: a [route] concatenating two padded convs into
# a conv, a [shortcut] whose sides come from that concat and from a conv (maps differ: both stay unpadded), a
# depthwise conv, maxpool and upsample (lanes pass through), a grouped [route] and a [reorg] (channel order
# matters: unpadded), and two heads.
HEAD = """
[convolutional]
filters=18
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=10,14,23,27,37,58
classes=1
num=3
"""
EDGE_CFG = f"""
[net]
width=64
height=64
channels=3
[convolutional]
filters=5
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=3
size=1
activation=logistic
[route]
layers=-1,-2
[convolutional]
filters=8
size=1
activation=leaky
[shortcut]
from=-2
[convolutional]
filters=12
size=1
activation=leaky
[convolutional]
groups=12
filters=12
size=3
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=6
size=1
activation=leaky
[route]
layers=-1
groups=2
group_id=1
[convolutional]
filters=8
size=3
pad=1
activation=leaky
[reorg]
stride=2
{HEAD}[route]
layers=-6
[upsample]
stride=2
{HEAD}"""


def _fused(model: Darknet) -> Darknet:
    return fuse_conv_bn(randomize_bn(model).eval())


def _widths(model: Darknet) -> dict[int, int]:
    return {i: layer.conv.out_channels for i, layer in enumerate(model.layers) if isinstance(layer, ConvBlock)}


def _assert_same_outputs(model: Darknet, padded: Darknet) -> None:
    x = torch.rand(2, model.in_channels, *model.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, b in zip(model(x), padded(x), strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_edge_cfg_pads_where_exact_and_nowhere_else():
    model = _fused(Darknet(parse_cfg(EDGE_CFG, "edge.cfg")))
    padded = pad_channels(model, 16)
    _assert_same_outputs(model, padded)
    widths = _widths(padded)
    # 0 and 1 feed the concat and 3 the other side of the shortcut: their maps differ, so all stay as they are
    assert widths[0] == 5 and widths[1] == 3 and widths[3] == 8
    assert widths[5] == 16 and widths[6] == 16  # the depthwise conv follows its padded input
    assert widths[8] == 6  # read by a grouped route: channel order matters
    assert widths[10] == 8  # read by a reorg
    assert widths[12] == 18 and widths[16] == 18  # the heads' inputs are never padded


@pytest.mark.parametrize("name", ["demo", "yolov2-tiny-voc", "yolov3-tiny", "yolov4-tiny", "yolo-fastest-1.1"])
def test_padding_a_model_pruned_to_odd_widths_keeps_its_outputs(name):
    """Pruned without rounding, every coupled structure of these models has odd widths to pad around."""
    torch.manual_seed(0)
    cfg = str(yolo_fastest_files(name)[0]) if name.startswith("yolo-fastest") else name
    model = randomize_bn(Darknet.from_cfg(cfg)).eval()
    prune_step(model, L1Importance(model), StepSettings(amount=0.3, round_to=1, min_channels=3))
    model = fuse_conv_bn(model)
    odd = [w for w in _widths(model).values() if w % 16]
    padded = pad_channels(model, 16)
    _assert_same_outputs(model, padded)
    assert odd and sum(w % 16 != 0 for w in _widths(padded).values()) < len(odd)


def test_real_body_model_pads_its_stem_and_detects_the_same_in_onnx_runtime(tmp_path):
    cfg, weights, names = yolo_fastest_files("yolo-fastest-1.1-body")
    source = load_model_source(str(cfg), weights, names=names)
    plain = export_onnx(source.model, source.names, tmp_path / "plain.onnx")
    padded = export_onnx(source.model, source.names, tmp_path / "padded.onnx", pad_to=16)
    assert padded.verified and (padded.params, padded.gflops) == (plain.params, plain.gflops)  # the real model's
    frames = np.random.default_rng(1).integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)
    outputs = [ort.InferenceSession(str(r.path), providers=["CPUExecutionProvider"]).run(None, {"frames": frames})
               for r in (plain, padded)]
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    props = {p.key: p.value for p in onnx.load(str(padded.path)).metadata_props}
    assert props["pad_channels"] == "16"
    stem = [layer.conv.out_channels for layer in pad_channels(fuse_conv_bn(source.model), 16).layers[:4]]
    assert stem == [16, 16, 16, 16]  # 8, 8, 8, 4 in the cfg


def test_padding_needs_a_fused_model_and_a_positive_multiple():
    model = Darknet.from_cfg("demo")
    with pytest.raises(ValueError, match="fuse_conv_bn"):
        pad_channels(model, 16)
    with pytest.raises(ValueError, match=">= 1"):
        pad_channels(fuse_conv_bn(model), 0)
    assert _widths(pad_channels(fuse_conv_bn(model), 1)) == _widths(model)


@pytest.mark.parametrize(("flags", "block"), [("fpu avx2 avx512f avx512bw", 16), ("fpu sse4_2 avx2", 8),
                                              ("fpu sse4_2", 1)])
def test_cpu_block_size_reads_the_cpu_flags(tmp_path, monkeypatch, flags, block):
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_block_size(cpuinfo) == block
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cpu_block_size(cpuinfo) == 1


def test_pad_multiple_parses_the_command_line():
    assert pad_multiple("8") == 8 and pad_multiple("auto") == cpu_block_size()
    for bad in ("0", "x", "-8"):
        with pytest.raises(argparse.ArgumentTypeError, match="auto"):
            pad_multiple(bad)
