"""COCO JSON files: round trip, COCOeval defaults and order, errors naming file and field, atomic writes."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from yolo_compress.eval import (
    ImageDT,
    ImageGT,
    InputFileError,
    load_coco_detections,
    load_coco_gt,
    write_coco_detections,
    write_coco_gt,
    write_json,
)

GT_DOC = {
    "images": [{"id": 9, "file_name": "b.jpg"}, {"id": 4, "file_name": "a.jpg"}],
    "annotations": [
        {"id": 1, "image_id": 9, "category_id": 7, "bbox": [1, 2, 30, 40], "area": 900.5, "iscrowd": 0},
        {"id": 2, "image_id": 9, "category_id": 3, "bbox": [5.5, 6, 7, 8], "iscrowd": 1},
        {"id": 3, "image_id": 4, "category_id": 7, "bbox": [0, 0, 10, 10]},
    ],
    "categories": [{"id": 7, "name": "car"}, {"id": 3, "name": "person"}],
}
DT_DOC = [
    {"image_id": 4, "category_id": 3, "bbox": [0, 0, 9, 9], "score": 0.5},
    {"image_id": 9, "category_id": 7, "bbox": [1, 2, 30, 41], "score": 0.75},
]


@pytest.fixture
def files(tmp_path):
    gt, dt = tmp_path / "gt.json", tmp_path / "dt.json"
    gt.write_text(json.dumps(GT_DOC))
    dt.write_text(json.dumps(DT_DOC))
    return gt, dt


def test_load_orders_like_cocoeval_and_fills_defaults(files):
    gt = load_coco_gt(files[0])
    assert gt.class_names == ["person", "car"] and gt.category_ids == [3, 7]  # by category id
    assert [g.image_id for g in gt.images] == [4, 9]  # by image id
    np.testing.assert_array_equal(gt.images[1].xywh, [[1, 2, 30, 40], [5.5, 6, 7, 8]])  # file order within image
    np.testing.assert_array_equal(gt.images[1].classes, [1, 0])
    np.testing.assert_array_equal(gt.images[1].crowd, [False, True])
    np.testing.assert_array_equal(gt.images[1].area, [900.5, 56])  # the area field, else width * height
    dts = load_coco_detections(files[1], gt)
    assert [d.image_id for d in dts] == [4, 9]
    np.testing.assert_array_equal(dts[0].classes, [0])
    np.testing.assert_array_equal(dts[1].scores, [0.75])


def test_write_then_load_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    gts = [
        ImageGT(rng.uniform(0, 300, (n, 4)), rng.integers(0, 3, n), rng.random(n) < 0.3, rng.uniform(0, 1e4, n), i)
        for i, n in zip([5, 2, 11], [3, 0, 4], strict=True)
    ]
    dts = [
        ImageDT(rng.uniform(0, 300, (n, 4)), rng.random(n), rng.integers(0, 3, n), g.image_id)
        for g, n in zip(gts, [0, 2, 5], strict=True)
    ]
    names = ["a", "b", "c"]
    write_coco_gt(tmp_path / "gt.json", gts, names, category_ids=[10, 20, 30])
    write_coco_detections(tmp_path / "dt.json", dts, category_ids=[10, 20, 30])
    loaded = load_coco_gt(tmp_path / "gt.json")
    assert loaded.class_names == names and loaded.category_ids == [10, 20, 30]
    by_id = sorted(range(3), key=lambda i: gts[i].image_id)
    for got, want in zip(loaded.images, [gts[i] for i in by_id], strict=True):
        for field in ("xywh", "classes", "crowd", "area"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    for got, want in zip(load_coco_detections(tmp_path / "dt.json", loaded), [dts[i] for i in by_id], strict=True):
        for field in ("xywh", "scores", "classes"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field))


def test_writers_number_ids_from_one_without_image_ids(tmp_path):
    write_coco_gt(tmp_path / "gt.json", [ImageGT([[0, 0, 2, 2]], [0])], ["person"])
    doc = json.loads((tmp_path / "gt.json").read_text())
    assert doc["images"] == [{"id": 1}] and doc["categories"] == [{"id": 1, "name": "person"}]
    assert doc["annotations"][0]["id"] == 1  # pycocotools reads a match with gt id 0 as "no match"


def _gt_with(change):
    doc = copy.deepcopy(GT_DOC)
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "gt.json: expected a JSON object, got list"),
        (_gt_with(lambda d: d.pop("annotations")), "gt.json: annotations: missing"),
        (_gt_with(lambda d: d.update(images={})), "gt.json: images: expected a list"),
        (_gt_with(lambda d: d["images"].append({"id": 9})), "gt.json: images[2].id: expected a value no other"),
        (_gt_with(lambda d: d["images"][0].update(id="9")), "gt.json: images[0].id: expected an integer"),
        (_gt_with(lambda d: d["categories"][1].update(name="car")), "gt.json: categories[1].name: expected a value"),
        (_gt_with(lambda d: d["categories"][0].pop("name")), "gt.json: categories[0].name: missing"),
        (_gt_with(lambda d: d["annotations"][1].update(bbox=[1, 2, 3])), "gt.json: annotations[1].bbox: expected"),
        (_gt_with(lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4])), "gt.json: annotations[0].bbox"),
        (_gt_with(lambda d: d["annotations"][0].update(bbox="1,2,3,4")), "gt.json: annotations[0].bbox"),
        (_gt_with(lambda d: d["annotations"][2].update(image_id=5)), "gt.json: annotations[2].image_id: expected one"),
        (_gt_with(lambda d: d["annotations"][2].pop("category_id")), "gt.json: annotations[2].category_id: missing"),
        (_gt_with(lambda d: d["annotations"][0].update(area=-1)), "gt.json: annotations[0].area: expected a finite"),
        (_gt_with(lambda d: d["annotations"][0].update(iscrowd=2)), "gt.json: annotations[0].iscrowd: expected 0 or 1"),
        (_gt_with(lambda d: d["annotations"].append(7)), "gt.json: annotations[3]: expected a JSON object, got int"),
    ],
)
def test_malformed_ground_truth_names_file_and_field(tmp_path, doc, message):
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    with pytest.raises(InputFileError) as error:
        load_coco_gt(tmp_path / "gt.json")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"annotations": []}, "dt.json: expected a JSON list of detections"),
        ([{"image_id": 4, "category_id": 3, "bbox": [0, 0, 1, 1]}], "dt.json: [0].score: missing"),
        ([DT_DOC[0], {**DT_DOC[1], "score": "high"}], "dt.json: [1].score: expected a finite number"),
        ([{**DT_DOC[0], "image_id": 5}], "dt.json: [0].image_id: expected one of the 2 ids of the ground truth"),
        ([{**DT_DOC[0], "category_id": 1}], "dt.json: [0].category_id: expected one of the 2 ids"),
        ([{**DT_DOC[0], "bbox": [0, 0, 1, float("inf")]}], "dt.json: [0].bbox"),
    ],
)
def test_malformed_detections_name_file_and_field(files, doc, message):
    files[1].write_text(json.dumps(doc))
    with pytest.raises(InputFileError) as error:
        load_coco_detections(files[1], load_coco_gt(files[0]))
    assert message in str(error.value)


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(InputFileError, match="missing.json: cannot read"):
        load_coco_gt(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(InputFileError, match="broken.json: not valid JSON"):
        load_coco_gt(tmp_path / "broken.json")


def test_write_json_is_atomic(tmp_path):
    path = write_json(tmp_path / "out" / "result.json", {"ap50": 0.5})
    assert json.loads(path.read_text()) == {"ap50": 0.5}
    with pytest.raises(ValueError):
        write_json(path, {"ap50": float("nan")})  # refused before anything replaces the good file
    assert json.loads(path.read_text()) == {"ap50": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no temp file left behind
