"""tools/evaluate.py end to end: AP of a real Yolo-Fastest model on COCO128 person equals pycocotools on the
same detections against ground truth built here from the label files; checkpoints and cfgs take the same
ONNX path; class matching by name with explicit aliases."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from yolo_compress.data import DatasetError, load_dataset
from yolo_compress.data.detector_eval import match_classes, parse_aliases

from conftest import REPO, shared_path, yolo_fastest_files


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tools/evaluate.py", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def _coco_gt_from_labels(image_paths, labels_dir) -> dict:
    """COCO ground truth of the person lines (class 0), parsed here independently of yolo_compress.data."""
    images, annotations = [], []
    for image_id, path in enumerate(image_paths, start=1):
        height, width = cv2.imread(str(path)).shape[:2]
        images.append({"id": image_id, "width": width, "height": height})
        label = labels_dir / f"{path.stem}.txt"
        for line in label.read_text().splitlines() if label.exists() else []:
            cls, cx, cy, w, h = (float(v) for v in line.split())
            if cls == 0:
                x1, y1 = max((cx - w / 2) * width, 0), max((cy - h / 2) * height, 0)
                x2, y2 = min((cx + w / 2) * width, width), min((cy + h / 2) * height, height)
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                    "iscrowd": 0})  # fmt: skip
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


def _pycocotools_stats(gt: dict, detections: list) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(detections), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def test_coco128_person_ap_equals_pycocotools(exported_yolo_fastest, tmp_path):
    root = shared_path("coco128-train")
    model = exported_yolo_fastest("yolo-fastest-1.1")
    out = tmp_path / "res" / "person.json"
    run = _run("--model", model, "--data", f"yolo:{root}", "--classes", "person", "--json", out,
               "--md", tmp_path / "person.md")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "AP50:95" in run.stdout and "person" in run.stdout
    result = json.loads(out.read_text())
    assert result["n_images"] == 128 and result["n_gt"] == 254 and result["conf"] == 0.005
    detections = json.loads((tmp_path / "res" / "person_detections.json").read_text())
    assert len(detections) == result["n_dt"] > 254 and min(d["score"] for d in detections) > 0.005
    image_paths = [s.image_path for s in load_dataset(f"yolo:{root}")]  # image ids are 1-based positions
    stats = _pycocotools_stats(_coco_gt_from_labels(image_paths, root / "labels"), detections)
    assert stats[1] > 0.3  # a real model finds people
    ours = [result[k] for k in ("ap50_95", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10",
                                "ar100")]  # fmt: skip
    np.testing.assert_allclose(ours, stats[:9], atol=1e-4)
    assert set(result["per_class"]) == {"person"} and 0 < result["precision"] <= 1 and 0 < result["recall"] <= 1
    for key in ("f1", "mean_iou"):
        assert 0 < result["per_class"]["person"][key] <= 1
    markdown = (tmp_path / "person.md").read_text()
    assert "| person | 254 |" in markdown and f"{result['ap50']:.4f}" in markdown
    assert (tmp_path / "res" / "person_pr.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "res" / "person_gt.json").read_text())["categories"] == [{"id": 1, "name": "person"}]


@pytest.fixture(scope="module")
def evaluate_tool():
    """tools/evaluate.py imported as a module, so several runs share one torch import."""
    sys.path.insert(0, str(REPO / "tools"))
    try:
        spec = importlib.util.spec_from_file_location("evaluate_tool", REPO / "tools" / "evaluate.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(REPO / "tools"))


def test_checkpoint_cfg_and_onnx_give_the_same_numbers(evaluate_tool, exported_yolo_fastest, tmp_path, capsys):
    from yolo_compress.models.checkpoint import save_checkpoint

    from _data import real_model

    data = f"yolo:{shared_path('sequence', 'TUD-Campus')}?names=person"
    model, cfg, weights = real_model("yolo-fastest-1.1-body")
    checkpoint = save_checkpoint(tmp_path / "body.pt", model, ["body"])
    results = []
    for source in (["--model", exported_yolo_fastest("yolo-fastest-1.1-body")], ["--model", checkpoint],
                   ["--model", cfg, "--weights", weights]):  # fmt: skip
        out = tmp_path / f"{len(results)}.json"
        args = [*map(str, source), "--data", data, "--alias", "body=person", "--json", str(out)]
        assert evaluate_tool.main(args) == 0
        results.append(json.loads(out.read_text()))
    assert "wrote" in capsys.readouterr().out
    assert results[0]["n_gt"] == 225 and results[0]["ap50"] > 0.5 and results[0]["aliases"] == {"body": "person"}
    for other in results[1:]:
        for key in ("ap50_95", "ap50", "ap75", "precision", "recall", "f1", "mean_iou", "n_dt"):
            assert other[key] == pytest.approx(results[0][key], abs=1e-6), key


def test_class_mismatch_is_a_clear_error(exported_yolo_fastest):
    data = f"yolo:{shared_path('sequence', 'TUD-Campus')}?names=person"
    run = _run("--model", exported_yolo_fastest("yolo-fastest-1.1-body"), "--data", data)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "dataset class 'person': no model class is named or aliased" in run.stderr and "--alias" in run.stderr
    run = _run("--model", yolo_fastest_files("yolo-fastest-1.1")[0].parent / "missing.onnx", "--data", data)
    assert run.returncode == 2 and "model not found" in run.stderr


def test_match_classes_by_name_and_alias():
    coco = ["person", "bicycle", "car"]
    assert match_classes(coco, ["car", "person"]).tolist() == [2, 0]
    assert match_classes(["body"], ["person"], {"body": "person"}).tolist() == [0]
    with pytest.raises(DatasetError, match="no model class is named or aliased to it"):
        match_classes(["body"], ["person"])
    with pytest.raises(DatasetError, match=r"model classes \[0, 1\] all map"):
        match_classes(["person", "body"], ["person"], {"body": "person"})
    with pytest.raises(DatasetError, match="not classes of the model"):
        match_classes(coco, ["person"], {"dog": "person"})
    assert parse_aliases(["body = person", "a=b"]) == {"body": "person", "a": "b"}
    with pytest.raises(ValueError, match="expected MODEL_CLASS=DATASET_CLASS"):
        parse_aliases(["body"])
