#!/usr/bin/env python3
"""What timing ONNX Runtime sessions side by side does to them: one model alone, two sessions taking turns
by blocks of 10 calls with 0, 20, 50 and 100 ms (speed.PARK_S) before each block; with intra-op spinning
on (ORT's default) and off.

Why it matters: the prune run and this repository's benches time candidates in alternating blocks so
that machine noise hits all alike (runtime/speed.measure_side_by_side). ORT's intra-op threads spin
after a run; when the next session starts while they still spin, it can run its whole block slowly.

    python bench/session_alternation.py --json bench/results/session_alternation.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yolo_compress.export.onnx_export import export_onnx  # noqa: E402
from yolo_compress.models.source import load_model_source  # noqa: E402
from yolo_compress.models.zoo import YOLO_FASTEST  # noqa: E402
from yolo_compress.runtime.contract import FRAMES_INPUT  # noqa: E402
from yolo_compress.runtime.speed import PARK_S  # noqa: E402

ZOO = ROOT.parent / "shared" / "data" / "yolo-fastest" / "ModelZoo"


def export_model(work: Path) -> tuple[Path, str]:
    """yolo-fastest-1.1-xl with real weights when present, else the demo cfg (random weights)."""
    name = "yolo-fastest-1.1-xl"
    try:
        cfg, weights, names = YOLO_FASTEST[name].files(ZOO)
        src = load_model_source(str(cfg), weights, names=names)
    except FileNotFoundError:
        name, src = "demo (random weights)", load_model_source("demo")
    return export_onnx(src.model, src.names, work / "model.onnx").path, name


def session(path: Path, spinning: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 2
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def blocks(sessions: list[ort.InferenceSession], feed: dict, pause_s: float, rounds: int, block: int = 10) -> list:
    """Median ms per call of each session, taking turns by blocks (one untimed call opens each block)."""
    times: list[list[float]] = [[] for _ in sessions]
    for s in sessions:
        for _ in range(3):
            s.run(None, feed)
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            time.sleep(pause_s)
            s.run(None, feed)
            for _ in range(block):
                start = time.perf_counter()
                s.run(None, feed)
                times[i].append((time.perf_counter() - start) * 1e3)
    return [round(float(np.median(t)), 2) for t in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path, name = export_model(Path(tmp))
        height, width = (int(v) for v in dict(ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map)
                         ["input_size"].split(","))
        feed = {FRAMES_INPUT: np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)}
        result = {"model": name, "rounds": args.rounds, "park_s": PARK_S, "ms_per_call": {}}
        for spinning in (True, False):
            pair = [session(path, spinning), session(path, spinning)]
            result["ms_per_call"][f"spinning {'on' if spinning else 'off'}"] = {
                "alone": blocks(pair[:1], feed, 0.0, args.rounds),
                f"alone, {PARK_S * 1e3:.0f} ms pause": blocks(pair[:1], feed, PARK_S, args.rounds),
                **{f"two, {pause * 1e3:.0f} ms pause": blocks(pair, feed, pause, args.rounds)
                   for pause in (0.0, 0.02, 0.05, PARK_S)},
            }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
