"""`python -m yolo_compress.eval` end to end, and the module's import boundary (no torch, no pycocotools)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from yolo_compress.eval import ImageDT, ImageGT, evaluate_coco_files, write_coco_detections, write_coco_gt

from conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def _write_files(tmp_path):
    rng = np.random.default_rng(0)
    gts, dts = [], []
    for _ in range(6):
        boxes = np.c_[rng.uniform(0, 200, (4, 2)), rng.uniform(10, 120, (4, 2))]
        classes = rng.integers(0, 2, 4)
        gts.append(ImageGT(boxes, classes))
        dts.append(ImageDT(boxes + rng.normal(0, 4, boxes.shape), rng.random(4), classes))
    gt, dt = tmp_path / "gt.json", tmp_path / "dt.json"
    write_coco_gt(gt, gts, ["person", "bicycle"])
    write_coco_detections(dt, dts)
    return gt, dt


def test_cli_prints_table_and_writes_json_and_plot(tmp_path):
    gt, dt = _write_files(tmp_path)
    out, png = tmp_path / "res" / "result.json", tmp_path / "pr.png"
    args = ["--gt", gt, "--dt", dt, "--json", out, "--op-conf", "0.3", "--plot", png]
    run = _run("-m", "yolo_compress.eval", *map(str, args))
    assert run.returncode == 0, run.stderr
    assert "AP50:95" in run.stdout and "person" in run.stdout and "bicycle" in run.stdout
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(evaluate_coco_files(gt, dt, 0.3)))
    assert result["op_conf"] == 0.3 and set(result["per_class"]) == {"person", "bicycle"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_cli_reports_bad_input_without_traceback(tmp_path):
    gt, dt = _write_files(tmp_path)
    dt.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}]))
    run = _run("-m", "yolo_compress.eval", "--gt", str(gt), "--dt", str(dt))
    assert run.returncode == 2
    assert f"{dt}: [0].bbox: expected [x, y, width, height]" in run.stderr and "Traceback" not in run.stderr


def test_import_and_evaluate_never_load_torch_pycocotools_or_matplotlib(tmp_path):
    gt, dt = _write_files(tmp_path)
    code = (
        "import sys\n"
        "import yolo_compress.eval as e\n"
        f"e.format_report(e.evaluate_coco_files({str(gt)!r}, {str(dt)!r}))\n"
        "print(sorted(m for m in ('torch', 'pycocotools', 'matplotlib') if m in sys.modules))\n"
    )
    run = _run("-c", code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
