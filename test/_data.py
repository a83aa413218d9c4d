"""Inputs for the models tests: real Yolo-Fastest models and photos, random BN statistics, hand-pruned convs,
made-up sensitivity curves.

Real data comes from ../shared/data through conftest's helpers, which skip the test when it is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock
from yolo_compress.models.weights import load_weights
from yolo_compress.prune.groups import channel_groups

from conftest import shared_path, yolo_fastest_files


def real_model(name: str) -> tuple[Darknet, Path, Path]:
    """(model in eval mode with its real weights, cfg path, weights path) of a Yolo-Fastest model."""
    cfg, weights, _ = yolo_fastest_files(name)
    model = Darknet.from_cfg(cfg).eval()
    load_weights(model, weights)
    return model, cfg, weights


def photo_batch(size: tuple[int, int], name: str = "person.jpg") -> torch.Tensor:
    """A real photo stretched to size (H, W), RGB, 0..1, as a [1, 3, H, W] float32 batch."""
    image = cv2.imread(str(shared_path("photos", name)))
    rgb = cv2.cvtColor(cv2.resize(image, (size[1], size[0])), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)


def randomize_bn(model: Darknet, seed: int = 0) -> Darknet:
    """Give every BN non-trivial statistics and affine terms, so fusion and loading have something to get wrong."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            if isinstance(layer, ConvBlock) and layer.bn is not None:
                bn = layer.bn
                n = bn.num_features
                bn.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                bn.running_var.copy_(torch.rand(n, generator=gen) + 0.2)
                bn.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                bn.bias.copy_(torch.randn(n, generator=gen) * 0.2)
    return model


def slice_conv(block: ConvBlock, keep_out: int | None = None, keep_in: int | None = None) -> None:
    """Keep the first output and/or input channels of a conv block (and its BN), as channel pruning does.

    A depthwise conv (groups == channels) keeps groups equal to its channels.
    """
    conv = block.conv
    depthwise = conv.groups > 1 and conv.groups == conv.out_channels
    out_n = keep_out or conv.out_channels
    in_n = out_n if depthwise else keep_in or conv.in_channels
    new = nn.Conv2d(in_n, out_n, conv.kernel_size, conv.stride, conv.padding,
                    groups=out_n if depthwise else conv.groups, bias=conv.bias is not None)
    with torch.no_grad():
        weight = conv.weight[:out_n]
        new.weight.copy_(weight if depthwise else weight[:, : in_n // new.groups])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[:out_n])
    block.conv = new
    if block.bn is not None:
        bn = nn.BatchNorm2d(out_n, eps=block.bn.eps, momentum=block.bn.momentum)
        bn.load_state_dict({k: v[:out_n] if v.dim() else v for k, v in block.bn.state_dict().items()})
        block.bn = bn
    block.train(block.training)  # the new modules take the block's mode


def pruned_demo(seed: int = 0) -> Darknet:
    """The demo model with channels pruned by hand: a plain conv (13: 128 -> 96, read by conv 15 through a
    maxpool) and an inverted-residual expand/depthwise pair (2, 3: 32 -> 24, read by conv 4)."""
    torch.manual_seed(seed)
    model = randomize_bn(Darknet.from_cfg("demo"), seed).eval()
    layers = model.layers
    slice_conv(layers[13], keep_out=96)
    slice_conv(layers[15], keep_in=96)
    slice_conv(layers[2], keep_out=24)
    slice_conv(layers[3], keep_out=24)
    slice_conv(layers[4], keep_in=24)
    return model


def fake_sensitivity(model: Darknet, fragile: int) -> dict:
    """Every group loses 0.1 AP per 10% pruned, except `fragile`, which loses everything at 10%."""
    groups = channel_groups(model)
    ratios = [0.1, 0.3, 0.5, 0.7, 0.9]
    result = {"ratios": ratios, "ap50": 1.0, "groups": []}
    for g in groups:
        aps = {str(r): (0.0 if g.layer == fragile else 1.0 - r) for r in ratios}
        result["groups"].append({"layer": g.layer, "size": g.size, "flops_share": 0.0, "ap50": aps})
    return result


def sensitivity_prune(tmp_path: Path, *extra: str) -> tuple[Darknet, int, Path, Path]:
    """tools/prune.py --criterion sensitivity on the demo cfg with fake_sensitivity curves whose largest group
    is fragile, to 40% of the FLOPs: (start model, fragile group layer, curves file, output folder)."""
    start = Darknet.from_cfg("demo")
    fragile = max(channel_groups(start), key=lambda g: g.size).layer
    path = tmp_path / "sensitivity.json"
    path.write_text(json.dumps(fake_sensitivity(start, fragile)))
    out = tmp_path / "run"
    command = [sys.executable, str(Path(__file__).resolve().parents[1] / "tools" / "prune.py"),
               "--data", "synthetic:16:0", "--val", "synthetic:4:1", "--pretrain-epochs", "0",
               "--criterion", "sensitivity", "--sensitivity", str(path), "--target-flops", "0.4",
               "--finetune-epochs", "1", "--batch", "8", "--no-progress", "--out", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return start, fragile, path, out
