#!/usr/bin/env python3
"""What padding the exported models' channels to ONNX Runtime's block gives (models/pad.py), side by side.

yolo-fastest-1.1_body has 4- and 8-channel layers at 160x160 (xl: 8 and 16), off the blocked NCHWc layout
that ORT's CPU convolutions use (16 channels with AVX-512, 8 with AVX2). Each model is exported with
its real weights unpadded and padded to 8 and 16, at 320x320 and 256x256, and timed through the runtime
on 640x480 TUD-Campus frames in alternating blocks (runtime/speed.measure_side_by_side). The padded
exports are checked to give the same boxes as the unpadded one on every frame.

    python bench/channel_padding.py --json bench/results/channel_padding.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
from _real_data import camera_frames, require_real_data, zoo_source

from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.models.pad import cpu_block_size
from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.speed import measure_side_by_side

MODELS = ("yolo-fastest-1.1-body", "yolo-fastest-1.1-xl")
PADS = (1, 8, 16)
SIZES = (320, 256)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="timed calls per model (default 300)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    require_real_data()
    frames = camera_frames()
    with tempfile.TemporaryDirectory() as tmp:
        detectors = _export_all(Path(tmp))
        _check_same_boxes(detectors, frames)
        speeds = measure_side_by_side(detectors, frames, runs=args.runs)
    rows = {}
    print("| model | input | pad | inference ms | image -> boxes ms | inference speed-up |\n|---|---|---|---|---|---|")
    for name, speed in speeds.items():
        model, size, pad = name.split()
        base = speeds[f"{model} {size} 1"]
        rows[name] = {"inference_ms": speed.inference_ms, "total_ms": speed.total_ms,
                      "inference_speedup": base.inference_ms / speed.inference_ms,
                      "total_speedup": base.total_ms / speed.total_ms}
        print(f"| {model} | {size} | {pad} | {speed.inference_ms:.2f} | {speed.total_ms:.2f} | "
              f"{rows[name]['inference_speedup']:.2f}x |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                   "block": cpu_block_size()}
        args.json.write_text(json.dumps({"runs": args.runs, "machine": machine, "models": rows}, indent=2) + "\n")
    return 0


def _export_all(tmp: Path) -> dict[str, Detector]:
    """'MODEL SIZE PAD' -> a Detector on that export."""
    detectors = {}
    for model in MODELS:
        source = zoo_source(model)
        for size in SIZES:
            sized = source.model if size == 320 else source.model.at_input_size(size, size)
            for pad in PADS:
                path = export_onnx(sized, source.names, tmp / f"{model}_{size}_{pad}.onnx", pad_to=pad).path
                detectors[f"{model} {size} {pad}"] = Detector(path)
    return detectors


def _check_same_boxes(detectors: dict[str, Detector], frames: list[np.ndarray]) -> None:
    for name, detector in detectors.items():
        base = detectors[name.rsplit(" ", 1)[0] + " 1"]
        for frame in frames:
            want, got = base.detect(frame).detections, detector.detect(frame).detections
            if len(want.boxes) != len(got.boxes) or not np.allclose(want.boxes, got.boxes, atol=0.05):
                raise SystemExit(f"error: {name} detects other boxes than the unpadded export")


if __name__ == "__main__":
    sys.exit(main())
