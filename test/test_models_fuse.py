"""Conv+BN fusion: same outputs as the unfused model (real weights), no BN left, and still a Darknet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yolo_compress.models.cfg import parse_cfg
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.decode import decode
from yolo_compress.models.fuse import fuse_conv_bn
from yolo_compress.models.weights import load_weights, save_weights

from _data import photo_batch, pruned_demo, real_model
from conftest import YOLO_FASTEST

TOLERANCE = 1e-4
# Float32 alone moves a raw logit of these 130-layer nets by up to 1.5e-4 (measured against the
# float64 result, fused and unfused alike, e.g. yolo-fastest-1.0-xl on person.jpg): raw logits get
# that margin, the decoded scores the contract's 1e-4, and float64 shows the folding itself is exact.
FLOAT32_LOGITS = 2e-4


def _assert_close(a: Darknet, b: Darknet, images: torch.Tensor, atol: float = FLOAT32_LOGITS) -> None:
    with torch.no_grad():
        for x, y in zip(a(images), b(images), strict=True):
            torch.testing.assert_close(y, x, atol=atol, rtol=0)


@pytest.mark.parametrize("name", sorted(YOLO_FASTEST))
def test_fused_real_model_equals_unfused(name):
    model, _, _ = real_model(name)
    fused = fuse_conv_bn(model)
    images = torch.cat([photo_batch(model.input_size), torch.rand(1, 3, *model.input_size)])
    _assert_close(model, fused, images)
    with torch.no_grad():
        scores = [decode(m(images), m.heads, m.input_size)[1] for m in (model, fused)]
    torch.testing.assert_close(scores[1], scores[0], atol=TOLERANCE, rtol=0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the original must stay unfused"


def test_fusion_is_exact_in_float64():
    """Without float32 rounding, folding BN into the conv changes nothing."""
    model, _, _ = real_model("yolo-fastest-1.1")
    model = model.double()
    _assert_close(model, fuse_conv_bn(model), photo_batch(model.input_size).double(), atol=1e-9)


def test_fused_model_is_described_by_its_cfg(tmp_path):
    model = pruned_demo()
    fused = fuse_conv_bn(model)
    sections = fused.to_sections()
    assert {s.options.get("batch_normalize") for s in sections if s.type == "convolutional"} <= {"0", None}
    save_weights(fused, tmp_path / "fused.weights")
    rebuilt = Darknet(parse_cfg(fused.cfg_text())).eval()
    load_weights(rebuilt, tmp_path / "fused.weights")
    _assert_close(model, rebuilt, torch.rand(2, 3, *model.input_size))
