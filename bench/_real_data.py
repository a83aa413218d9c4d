"""The real models and camera frames the benchmarks run on (../shared/data, never committed), loaded one way."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yolo_compress.models.source import ModelSource, load_model_source  # noqa: E402
from yolo_compress.models.zoo import YOLO_FASTEST  # noqa: E402

ZOO = ROOT.parent / "shared" / "data" / "yolo-fastest" / "ModelZoo"
FRAMES = ROOT.parent / "shared" / "data" / "sequence" / "TUD-Campus" / "images"


def require_real_data() -> None:
    """Exit with a message naming what is missing when the models or the frames are not there."""
    missing = [str(path) for path in (ZOO, FRAMES) if not path.is_dir()]
    if missing:
        raise SystemExit(f"error: the real data is not here: {', '.join(missing)}")


def camera_frames(count: int = 20) -> list[np.ndarray]:
    """The first `count` TUD-Campus frames as 640x480 BGR, the camera size the node's benchmarks use."""
    return [cv2.resize(cv2.imread(str(p)), (640, 480)) for p in sorted(FRAMES.glob("*.jpg"))[:count]]


def zoo_source(name: str) -> ModelSource:
    """A Yolo-Fastest model of the zoo with its real weights and names."""
    cfg, weights, names = YOLO_FASTEST[name].files(ZOO)
    return load_model_source(str(cfg), weights, names=names)
