"""tools/detect.py end to end: a folder, a video and an unreadable file, as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
from test_runtime_contract import contract_model

from conftest import REPO

NAMES = ["person", "car"]


def write_video(path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for _ in range(frames):
        writer.write(np.full((64, 96, 3), 255, np.uint8))
    writer.release()


def test_folder_video_and_unreadable_file(tmp_path):
    model = contract_model(tmp_path / "m.onnx", [[0, 0, 48, 32], [60, 40, 90, 60]], [[0.9, 0.0], [0.0, 0.6]],
                           names=NAMES)
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "b.png"), np.full((128, 192, 3), 255, np.uint8))
    cv2.imwrite(str(photos / "a.jpg"), np.zeros((50, 50, 3), np.uint8))
    (photos / "notes.txt").write_text("not an image, not listed")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    video = tmp_path / "clip.avi"
    write_video(video, 3)
    out = tmp_path / "out" / "dets.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "detect.py"), "--model", str(model), "--classes", "car,person",
         "--json", str(out), "--save-dir", str(tmp_path / "annotated"), str(photos), str(broken), str(video)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"{broken}: not a readable image" in proc.stderr
    records = json.loads(out.read_text())
    names = [r["image"] for r in records]
    assert names == [str(photos / "a.jpg"), str(photos / "b.png")] + [f"{video}#{i:06d}" for i in range(3)]
    by_name = {r["image"]: r for r in records}
    assert by_name[str(photos / "a.jpg")]["detections"] == []
    b = by_name[str(photos / "b.png")]
    assert (b["width"], b["height"]) == (192, 128)
    assert [d["class_name"] for d in b["detections"]] == ["person", "car"]
    assert b["detections"][0]["box"] == [0.0, 0.0, 96.0, 64.0]
    assert by_name[f"{video}#000002"]["detections"][1] == {
        "class_id": 1, "class_name": "car", "score": 0.6000000238418579, "box": [60.0, 40.0, 90.0, 60.0]
    }
    saved = sorted(p.name for p in (tmp_path / "annotated").iterdir())
    assert saved == ["a.jpg", "b.png", "clip_000000.jpg", "clip_000001.jpg", "clip_000002.jpg"]
    assert list(out.parent.iterdir()) == [out], "no temp file left behind"


def test_unknown_class_is_a_clear_error(tmp_path):
    model = contract_model(tmp_path / "m.onnx", [[0, 0, 1, 1]], [[0.9, 0.0]], names=NAMES)
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "detect.py"), "--model", str(model), "--classes", "cat", "x.jpg"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown class 'cat'; the model's classes are: person, car" in proc.stderr
