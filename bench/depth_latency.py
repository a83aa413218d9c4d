#!/usr/bin/env python3
"""Latency of yolo-fastest-1.1-xl with residual blocks removed (depth pruning), side by side in one run.

Blocks are taken from the widest stages first (448, 272, 192 channels, then earlier), the model otherwise
untouched (no finetune: this is the speed lever alone), each at 320x320 and 256x256, timed through the
runtime on 640x480 TUD-Campus frames in alternating blocks (runtime/speed.measure_side_by_side).

    python bench/depth_latency.py --json bench/results/depth_latency.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yolo_compress.export.onnx_export import export_onnx  # noqa: E402
from yolo_compress.models.source import load_model_source  # noqa: E402
from yolo_compress.models.zoo import YOLO_FASTEST  # noqa: E402
from yolo_compress.prune.depth import named_blocks, remove_blocks  # noqa: E402
from yolo_compress.runtime.detector import Detector  # noqa: E402
from yolo_compress.runtime.speed import measure_side_by_side  # noqa: E402

ZOO = ROOT.parent / "shared" / "data" / "yolo-fastest" / "ModelZoo"
FRAMES = ROOT.parent / "shared" / "data" / "sequence" / "TUD-Campus" / "images"
# widest stages first, one block per stage in turn
ORDER = ["99-103", "71-75", "48-52", "104-108", "76-80", "53-57", "89-93", "66-70", "43-47",
         "94-98", "30-34", "17-21"]
COUNTS = (0, 3, 6, 9, 12)
SIZES = (320, 256)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="timed calls per model (default 300)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not ZOO.is_dir():
        print(f"error: the Yolo-Fastest models are not here: {ZOO}", file=sys.stderr)
        return 1
    cfg, weights, names = YOLO_FASTEST["yolo-fastest-1.1-xl"].files(ZOO)
    source = load_model_source(str(cfg), weights, names=names)
    model = source.model.eval()
    frames = [cv2.resize(cv2.imread(str(p)), (640, 480)) for p in sorted(FRAMES.glob("*.jpg"))[:20]]
    detectors = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in COUNTS:
            shallow = remove_blocks(model, named_blocks(ORDER[:count], model))
            for size in SIZES:
                sized = shallow if size == 320 else shallow.at_input_size(size, size)
                path = export_onnx(sized, source.names, Path(tmp) / f"minus{count}_{size}.onnx").path
                detectors[f"-{count} blocks @{size}"] = Detector(path)
        speeds = measure_side_by_side(detectors, frames, runs=args.runs)
    base = speeds["-0 blocks @320"].total_ms
    rows = {name: {"total_ms": s.total_ms, "inference_ms": s.inference_ms, "speedup": base / s.total_ms}
            for name, s in speeds.items()}
    print("| blocks removed | input | ms (median, image -> boxes) | speed-up |\n|---|---|---|---|")
    for name, row in rows.items():
        blocks, size = name.split(" @")
        print(f"| {blocks.split()[0].lstrip('-')} | {size} | {row['total_ms']:.2f} | {row['speedup']:.2f}x |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"order": ORDER, "runs": args.runs, "models": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
