"""The torch builder: every built-in cfg runs, heads are described right, Darknet-specific layers
compute what Darknet computes, and the module traces and regenerates its own cfg (also when pruned)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from yolo_compress.models.cfg import builtin_cfg_names, parse_cfg
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import MaxPool, Reorg

from _data import pruned_demo, randomize_bn


@pytest.mark.parametrize("name", builtin_cfg_names())
def test_builtin_builds_and_runs(name):
    model = Darknet.from_cfg(name).eval()
    height, width = model.input_size
    with torch.no_grad():
        outputs = model(torch.rand(2, model.in_channels, height, width))
    assert len(outputs) == len(model.heads) > 0
    for out, head in zip(outputs, model.heads, strict=True):
        assert out.shape == (2, head.num_anchors * (5 + head.num_classes), *head.grid)
        assert head.grid == (height // head.stride, width // head.stride)


def test_heads_of_standard_models():
    region = Darknet.from_cfg("yolov2-tiny-voc").heads
    assert [(h.kind, h.index, h.num_classes, h.stride, h.grid) for h in region] == [("region", 15, 20, 32, (13, 13))]
    # grid-unit anchors become input pixels (x32 at 416 / 13)
    assert region[0].anchors[0] == pytest.approx((1.08 * 32, 1.19 * 32))
    v3 = Darknet.from_cfg("yolov3-tiny").heads
    assert [(h.index, h.stride, h.anchors) for h in v3] == [
        (16, 32, ((81, 82), (135, 169), (344, 319))),
        (23, 16, ((10, 14), (23, 27), (37, 58))),
    ]
    v4 = Darknet.from_cfg("yolov4-tiny").heads
    assert [h.scale_x_y for h in v4] == [1.05, 1.05]
    assert v4[1].anchors == ((23, 27), (37, 58), (81, 82))  # yolov4-tiny's mask = 1,2,3
    assert [h.num_classes for h in Darknet.from_cfg("demo").heads] == [3, 3]


def test_layer_indices_follow_the_cfg():
    model = Darknet.from_cfg("yolov3")
    assert len(model.layers) == 107
    assert model.layer_types[61] == "shortcut" and model.layer_types[36] == "shortcut"
    assert model.sources[86] == (85, 61)  # [route] layers = -1, 61
    assert model.describe(0) == "layer 0 [convolutional] (yolov3.cfg:26)"


def test_size_keeping_maxpool_matches_darknet():
    """size=2 stride=1: Darknet takes the max over the in-range pixels of each window, padding right/bottom."""
    x = torch.randn(2, 3, 13, 13) - 5.0  # negative, so a zero padding would show
    expected = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 1)
    assert torch.equal(MaxPool(2, 1, 1)(x), expected)
    odd = torch.randn(1, 2, 13, 13)  # size=2 stride=2 on an odd size: 7 outputs, the last window half in range
    expected = F.max_pool2d(F.pad(odd, (0, 1, 0, 1), value=float("-inf")), 2, 2)
    assert torch.equal(MaxPool(2, 2, 1)(odd), expected)


def _darknet_reorg(x: torch.Tensor, stride: int) -> torch.Tensor:
    """A transcription of Darknet's reorg_cpu(forward=0) index arithmetic, element by element."""
    batch, c, h, w = x.shape
    flat_in, out = x.flatten().tolist(), [0.0] * x.numel()
    out_c = c // (stride * stride)
    for b in range(batch):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    in_index = i + w * (j + h * (k + c * b))
                    c2, offset = k % out_c, k // out_c
                    w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                    out_index = w2 + w * stride * (h2 + h * stride * (c2 + out_c * b))
                    out[in_index] = flat_in[out_index]
    return torch.tensor(out).reshape(batch, c * stride * stride, h // stride, w // stride)


def test_reorg_uses_darknets_element_order():
    x = torch.randn(2, 8, 6, 4)
    assert torch.equal(Reorg(2)(x), _darknet_reorg(x, 2))


def test_route_groups_take_a_channel_chunk():
    model = Darknet.from_cfg("yolov4-tiny").eval()
    with torch.no_grad():
        outputs = model.layer_outputs(torch.rand(1, 3, 416, 416))
    assert torch.equal(outputs[3], outputs[2][:, 32:])  # [route] layers=-1 groups=2 group_id=1
    assert torch.equal(outputs[6], torch.cat([outputs[5], outputs[4]], dim=1))


def test_to_sections_round_trip():
    model = Darknet.from_cfg("yolov4-tiny")
    assert model.to_sections() == model.sections
    rebuilt = Darknet(parse_cfg(model.cfg_text()))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_pruned_model_rebuilds_from_its_own_cfg():
    model = pruned_demo()
    sections = model.to_sections()
    assert sections[14].options["filters"] == "96"
    assert (sections[3].options["filters"], sections[4].options["groups"]) == ("24", "24")
    rebuilt = Darknet(parse_cfg(model.cfg_text())).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, *model.input_size)
    with torch.no_grad():
        for ours, theirs in zip(model(x), rebuilt(x), strict=True):
            assert torch.equal(ours, theirs)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_traces_with_fx_and_jit():
    model = randomize_bn(Darknet.from_cfg("yolov4-tiny")).eval()
    x = torch.rand(1, 3, 128, 128)  # the raw network runs at any multiple of its stride
    with torch.no_grad():
        expected = model(x)
        for traced in (torch.fx.symbolic_trace(model), torch.jit.trace(model, x, strict=False)):
            for out, ref in zip(traced(x), expected, strict=True):
                torch.testing.assert_close(out, ref)
