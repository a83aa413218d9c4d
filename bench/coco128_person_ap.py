#!/usr/bin/env python3
"""Person AP of the exported Yolo-Fastest models on ../shared/data/coco128-train, scored by pycocotools.

Each model is exported to the ONNX contract, run through the torch-free runtime exactly as the robot
runs it (stretch resize, multi-label candidates, class filter = person, class-aware NMS) at conf 0.005,
and the detections are scored with pycocotools COCOeval (bbox). The 1-class body model's only class
("body" = pedestrian) is scored as person. These COCO models were trained on COCO train2017, so AP on
coco128-train is optimistic: it checks the pipeline, it does not rank the models.

    python bench/coco128_person_ap.py --json bench/results/coco128_person_ap.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yolo_compress.export.onnx_export import export_onnx  # noqa: E402
from yolo_compress.models.source import load_model_source  # noqa: E402
from yolo_compress.models.zoo import YOLO_FASTEST  # noqa: E402
from yolo_compress.runtime.detector import Detector  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ZOO = DATA / "yolo-fastest" / "ModelZoo"
PERSON = 0  # class id of person in the COCO YOLO labels


def coco_ground_truth(data_dir: Path) -> dict:
    """COCO-format person ground truth from YOLO txt labels; an image without a label file has no boxes."""
    images, annotations = [], []
    for image_id, path in enumerate(sorted((data_dir / "images").glob("*.jpg")), start=1):
        height, width = cv2.imread(str(path)).shape[:2]
        images.append({"id": image_id, "file_name": path.name, "width": width, "height": height})
        label = data_dir / "labels" / f"{path.stem}.txt"
        rows = np.loadtxt(label, ndmin=2) if label.exists() and label.stat().st_size else np.zeros((0, 5))
        for cls, cx, cy, bw, bh in rows:
            if int(cls) != PERSON:
                continue
            w, h = bw * width, bh * height
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [cx * width - w / 2, cy * height - h / 2, w, h], "area": w * h,
                                "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


def detect_all(detector: Detector, data_dir: Path, gt: dict) -> list[dict]:
    detections = []
    for image in gt["images"]:
        frame = cv2.imread(str(data_dir / "images" / image["file_name"]))
        found = detector.detect(frame).detections
        for (x1, y1, x2, y2), score in zip(found.boxes.tolist(), found.scores.tolist(), strict=True):
            detections.append({"image_id": image["id"], "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                               "score": score})
    return detections


def pycocotools_ap(gt: dict, detections: list[dict]) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections) if detections else COCO()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"ap50_95": float(evaluator.stats[0]), "ap50": float(evaluator.stats[1]),
            "ap75": float(evaluator.stats[2])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA / "coco128-train")
    parser.add_argument("--conf", type=float, default=0.005)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    gt = coco_ground_truth(args.data)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, zoo_model in YOLO_FASTEST.items():
            cfg, weights, names = zoo_model.files(ZOO)
            src = load_model_source(str(cfg), weights, names=names)
            onnx_path = export_onnx(src.model, src.names, Path(tmp) / f"{name}.onnx").path
            detector = Detector(onnx_path, conf_threshold=args.conf, classes=[src.names[0]])
            results[name] = pycocotools_ap(gt, detect_all(detector, args.data, gt))
    print(f"person on {args.data.name}: {len(gt['images'])} images, {len(gt['annotations'])} boxes, "
          f"conf {args.conf}, stretch resize, NMS 0.45\n")
    print("| model | AP50 | AP50:95 | AP75 |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['ap50']:.3f} | {r['ap50_95']:.3f} | {r['ap75']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
