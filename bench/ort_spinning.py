#!/usr/bin/env python3
"""How long ONNX Runtime's idle threads should spin: speed back to back and behind a 30 Hz camera, side by side.

ORT's intra-op worker threads spin while they wait for work. Left at ORT's default they spin on between
runs, so behind a camera the detector keeps more than a core busy doing nothing; with spinning off they
sleep between the ops of one run too, and each op pays a wake-up. `session.intra_op.spin_duration_us`
bounds the spin. Each setting is timed through the runtime Detector on 640x480 TUD-Campus frames, in
rounds that alternate the settings: back to back (median ms per frame), then paced at 30 Hz (median ms
per frame and this process's CPU ms per frame from getrusage, all threads).

    python bench/ort_spinning.py --json bench/results/ort_spinning.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _real_data import camera_frames, require_real_data, zoo_source

from yolo_compress.export.onnx_export import export_onnx
from yolo_compress.runtime.detector import Detector

MODELS = {"yolo-fastest-1.1-xl": 320, "yolo-fastest-1.1-body": 256}
SETTINGS = {"ORT default (spin on)": None, "off (0)": 0, "50 us": 50, "200 us": 200, "500 us": 500,
            "1000 us": 1000, "2000 us": 2000}
CAMERA_HZ = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="rounds over all settings (default 6)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    require_real_data()
    frames = camera_frames()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model, size in MODELS.items():
            path = _export(model, size, Path(tmp))
            detectors = {name: Detector(path, spin_us=spin) for name, spin in SETTINGS.items()}
            results[f"{model} @{size}"] = _measure(detectors, frames, args.rounds)
    print("| model | spin | back to back ms | at 30 Hz ms | CPU ms per frame at 30 Hz |\n|---|---|---|---|---|")
    for model, rows in results.items():
        for name, row in rows.items():
            print(f"| {model} | {name} | {row['back_to_back_ms']:.2f} | {row['paced_ms']:.2f} | "
                  f"{row['cpu_ms_per_frame']:.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
        args.json.write_text(json.dumps({"rounds": args.rounds, "camera_hz": CAMERA_HZ, "machine": machine,
                                         "models": results}, indent=2) + "\n")
    return 0


def _export(model: str, size: int, tmp: Path) -> Path:
    source = zoo_source(model)
    sized = source.model if size == 320 else source.model.at_input_size(size, size)
    return export_onnx(sized, source.names, tmp / f"{model}_{size}.onnx", pad_to=16).path


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(detectors: dict[str, Detector], frames: list[np.ndarray], rounds: int,
             back_to_back: int = 30, paced: int = 15) -> dict[str, dict[str, float]]:
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in detectors}
    for _ in range(rounds):
        for name, detector in detectors.items():
            time.sleep(0.1)  # the previous setting's threads, spinning or not, are asleep by now
            for frame in frames[:3]:
                detector.detect(frame)
            fast = [detector.detect(frames[i % len(frames)]).timing.total_ms for i in range(back_to_back)]
            start_cpu, start = _cpu_s(), time.perf_counter()
            slow = []
            for i in range(paced):
                slow.append(detector.detect(frames[i % len(frames)]).timing.total_ms)
                time.sleep(max(0.0, start + (i + 1) / CAMERA_HZ - time.perf_counter()))
            samples[name].append((float(np.median(fast)), float(np.median(slow)),
                                  (_cpu_s() - start_cpu) / paced * 1e3))
    return {name: dict(zip(("back_to_back_ms", "paced_ms", "cpu_ms_per_frame"),
                           (float(v) for v in np.median(np.asarray(rows), axis=0)), strict=True))
            for name, rows in samples.items()}


if __name__ == "__main__":
    sys.exit(main())
