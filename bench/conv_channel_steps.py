#!/usr/bin/env python3
"""How ONNX Runtime's conv time steps with the channel count: why pruning rounds channels to 16.

ORT (graph optimization ALL, CPU) runs convs in its blocked NCHWc layout and pads every channel count up to
the block: 16 floats with AVX-512, 8 with AVX2. A pruning step that leaves a layer inside the same block
(48 -> 40 channels) then saves no time at all. This times, in alternating blocks of calls so machine noise
hits every width alike, two layers typical of Yolo-Fastest at 320 input (40x40 maps): a 1x1 conv from 96
channels to C, and a 3x3 depthwise conv over C channels, each followed by a 1x1 conv to 32 channels so the
output layout conversion is part of the measurement, as it is in a network.

    python bench/conv_channel_steps.py --json bench/results/conv_channel_steps.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

WIDTHS = list(range(32, 145, 8))
SIDE = 40  # a 320x320 input's stride-8 maps
IN_CHANNELS = 96


def conv_pair(in_channels: int, channels: int, depthwise: bool) -> bytes:
    """x -> conv (1x1 from `in_channels`, or 3x3 depthwise) to `channels` -> ReLU -> 1x1 conv to 32."""
    rng = np.random.default_rng(channels)
    k, group = (3, channels) if depthwise else (1, 1)
    first = rng.standard_normal((channels, in_channels // group, k, k)).astype(np.float32)
    second = rng.standard_normal((32, channels, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group),
        helper.make_node("Relu", ["y"], ["z"]),
        helper.make_node("Conv", ["z", "w2"], ["out"], kernel_shape=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes, "conv_pair", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_channels, SIDE, SIDE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(first, "w1"), numpy_helper.from_array(second, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def session(model: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def time_widths(depthwise: bool, threads: int, rounds: int, calls: int) -> dict[int, float]:
    """Median microseconds per call of each width, from `rounds` alternating blocks of `calls` calls."""
    runs = {}
    for width in WIDTHS:
        in_channels = width if depthwise else IN_CHANNELS
        x = np.random.default_rng(0).random((1, in_channels, SIDE, SIDE), dtype=np.float32)
        runs[width] = (session(conv_pair(in_channels, width, depthwise), threads), x)
    samples: dict[int, list[float]] = {w: [] for w in WIDTHS}
    for _ in range(rounds):
        for width, (sess, x) in runs.items():
            for _ in range(calls // 5):  # warm-up: ORT's threads spin up, caches fill
                sess.run(None, {"x": x})
            start = time.perf_counter()
            for _ in range(calls):
                sess.run(None, {"x": x})
            samples[width].append((time.perf_counter() - start) / calls * 1e6)
    return {w: float(np.median(v)) for w, v in samples.items()}


def cpu_flags() -> str:
    """'avx512f' / 'avx2' / '' from /proc/cpuinfo (which NCHWc block this machine uses)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return ""
    return next((f for f in ("avx512f", "avx2") if f" {f}" in flags), "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "simd": cpu_flags(),
                    "onnxruntime": ort.__version__, "onnx": onnx.__version__, "threads": args.threads},
        "pointwise_96_to_c_us": time_widths(False, args.threads, args.rounds, args.calls),
        "depthwise_3x3_c_us": time_widths(True, args.threads, args.rounds, args.calls),
    }
    print(f"{SIDE}x{SIDE} maps, {args.threads} threads, SIMD {result['machine']['simd'] or 'unknown'}; "
          "median us per call")
    print("| channels C | 1x1 conv 96 -> C | 3x3 depthwise C |\n|---|---|---|")
    for width in WIDTHS:
        print(f"| {width} | {result['pointwise_96_to_c_us'][width]:.1f} | {result['depthwise_3x3_c_us'][width]:.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
