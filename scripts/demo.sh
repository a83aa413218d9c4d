#!/usr/bin/env bash
# The README's main job on built-in defaults, runnable on a fresh machine (creates .venv first).
# Until tools/prune.py lands, this is the foundation pipeline on the built-in `demo` cfg: export to the
# ONNX contract (verified against torch), then torch-free detection over frames with stage timing.
# Frames: ../shared/data/photos when present, else a few generated frames.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT="${1:-out/demo}"
mkdir -p "$OUT"
python tools/export.py --cfg demo --out "$OUT/demo.onnx"
FRAMES=../shared/data/photos
if [ ! -d "$FRAMES" ]; then
  FRAMES="$OUT/frames"
  python - "$FRAMES" <<'PY'
import sys
from pathlib import Path

import cv2
import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for i in range(8):
    frame = np.full((480, 640, 3), 90, np.uint8)
    for _ in range(4):
        x, y = (int(v) for v in rng.integers(0, 560, 2))
        cv2.rectangle(frame, (x, y % 400), (x + 60, y % 400 + 80), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    cv2.imwrite(str(out / f"frame_{i:03d}.jpg"), frame)
PY
fi
python tools/detect.py --model "$OUT/demo.onnx" --json "$OUT/detections.json" --save-dir "$OUT/annotated" "$FRAMES"
echo "demo: model, detections.json and annotated frames in $OUT"
