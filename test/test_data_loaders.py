"""Dataset loaders: the real folders of ../shared/data (counts their README states), YOLO/VOC/COCO layouts
built here, specs, class subsets, splits, joins, malformed files and the YOLO writer."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest

from yolo_compress.data import DatasetError, DetectionDataset, Sample, load_dataset, to_image_gt, write_yolo
from yolo_compress.data.image_size import image_size
from yolo_compress.data.voc_xml import VOC_CLASSES

from conftest import REPO, shared_path


def _image(path, width=64, height=48, value=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), value, np.uint8))
    return path


def _yolo_folder(root, labels: dict[str, str], names=("a", "b", "c"), names_file="names.txt", width=64, height=48):
    """images/ + labels/ folder: one image per key, label text as given (None = no label file)."""
    for stem, text in labels.items():
        _image(root / "images" / f"{stem}.jpg", width, height)
        if text is not None:
            (root / "labels").mkdir(parents=True, exist_ok=True)
            (root / "labels" / f"{stem}.txt").write_text(text)
    if names_file:
        (root / names_file).write_text("\n".join(names) + "\n")
    return root


# --- real folders --------------------------------------------------------------------------------------------


def test_coco128_person_counts_match_the_data_readme():
    root = shared_path("coco128-train")
    everything = load_dataset(f"yolo:{root}")
    assert len(everything) == 128 and len(everything.names) == 80 and everything.names[0] == "person"
    person = load_dataset(f"yolo:{root}", classes=["person"])
    assert person.names == ("person",) and len(person) == 128  # images without a person stay in as negatives
    assert person.num_boxes == 254 and sum(len(s.boxes) > 0 for s in person) == 61
    by_name = {s.image_path.stem: s for s in everything}
    assert len(by_name["000000000250"].boxes) == 0 and len(by_name["000000000508"].boxes) == 0  # no label file
    assert "000000000656" not in by_name  # label without image


def test_coco128_boxes_are_the_label_lines_in_pixels():
    root = shared_path("coco128-train")
    sample = next(s for s in load_dataset(f"yolo:{root}") if s.image_path.stem == "000000000009")
    image = cv2.imread(str(sample.image_path))
    assert (sample.width, sample.height) == (image.shape[1], image.shape[0])
    cls, cx, cy, w, h = (float(v) for v in (root / "labels" / "000000000009.txt").read_text().split("\n")[0].split())
    expected = [(cx - w / 2) * sample.width, (cy - h / 2) * sample.height, (cx + w / 2) * sample.width,
                (cy + h / 2) * sample.height]  # fmt: skip
    assert sample.classes[0] == cls
    np.testing.assert_allclose(sample.boxes[0], np.clip(expected, 0, None), atol=1e-3)


def test_pennfudan_plus_coco128_person_joins_by_name():
    pennfudan, coco = shared_path("pennfudan"), shared_path("coco128-train")
    alone = load_dataset(f"yolo:{pennfudan}")
    assert alone.names == ("person",) and len(alone) == 170 and alone.num_boxes == 423
    joined = load_dataset(f"yolo:{pennfudan}+yolo:{coco}", classes="person")
    assert joined.names == ("person",) and len(joined) == 298 and joined.num_boxes == 423 + 254
    assert load_dataset([f"yolo:{pennfudan}", f"yolo:{coco}"], ["person"]).num_boxes == 677
    assert load_dataset(f"yolo:{pennfudan}+yolo:{coco}").names[0] == "person"  # the union keeps COCO's order


@pytest.mark.parametrize(("name", "frames", "boxes"), [("TUD-Campus", 43, 225), ("PETS09-S3-MF1", 64, 319)])
def test_sequences_without_names_file(name, frames, boxes):
    root = shared_path("sequence", name)
    generic = load_dataset(f"yolo:{root}")
    assert generic.names == ("class_0",) and len(generic) == frames and generic.num_boxes == boxes
    named = load_dataset(f"yolo:{root}?names=person", classes=["person"])
    assert named.names == ("person",) and named.num_boxes == boxes
    seq = json.loads((root / "seq.json").read_text())
    assert {(s.width, s.height) for s in named} == {(seq["width"], seq["height"])}


def test_header_sizes_equal_decoded_sizes(tmp_path):
    paths = sorted(shared_path("pennfudan", "images").glob("*.jpg"))[:20] + [_image(tmp_path / "x.png", 33, 17)]
    paths.append(_image(tmp_path / "x.bmp", 21, 11))  # no header parser: decoded
    for path in paths:
        image = cv2.imread(str(path))
        assert image_size(path) == (image.shape[1], image.shape[0]), path


# --- YOLO layouts and label errors ---------------------------------------------------------------------------


def test_side_by_side_layout_names_files_and_generic_names(tmp_path):
    for stem in ("p", "q"):
        _image(tmp_path / f"{stem}.png")
    (tmp_path / "p.txt").write_text("1 0.5 0.5 0.5 0.5\n\n")
    dataset = load_dataset(f"yolo:{tmp_path}")
    assert dataset.names == ("class_0", "class_1") and [len(s.boxes) for s in dataset] == [1, 0]
    np.testing.assert_allclose(dataset[0].boxes, [[16, 12, 48, 36]])
    (tmp_path / "obj.names").write_text("cat\ndog\n")
    assert load_dataset(f"yolo:{tmp_path}").names == ("cat", "dog")
    (tmp_path / "classes.txt").write_text("x\ny\n")
    assert load_dataset(f"yolo:{tmp_path}").names == ("x", "y")  # names.txt / classes.txt before *.names
    (tmp_path / "names.txt").write_text("x\ny\n")
    with pytest.raises(DatasetError, match="several class-name files"):
        load_dataset(f"yolo:{tmp_path}")
    (tmp_path / "names.txt").unlink()
    assert load_dataset(f"yolo:{tmp_path}?names=u,v").names == ("u", "v")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", "expected 5 fields"),
        ("0 0.5 0.5 0.2 0.2 0.9", "expected 5 fields"),
        ("0 0.5 x 0.2 0.2", "expected numbers"),
        ("3 0.5 0.5 0.2 0.2", "class '3' is not a valid class id"),
        ("1.5 0.5 0.5 0.2 0.2", "class '1.5' is not a valid class id"),
        ("-1 0.5 0.5 0.2 0.2", "not a valid class id"),
        ("0 0.5 0.5 -0.2 0.2", "w, h >= 0"),
        ("0 nan 0.5 0.2 0.2", "finite"),
    ],
)
def test_malformed_label_names_file_and_line(tmp_path, line, message):
    root = _yolo_folder(tmp_path, {"img": f"0 0.5 0.5 0.1 0.1\n\n{line}\n"})
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(f"yolo:{root}")
    assert f"{root / 'labels' / 'img.txt'}:3:" in str(info.value)


def test_boxes_past_the_border_are_clipped(tmp_path):
    root = _yolo_folder(tmp_path, {"img": "0 0.95 0.5 0.3 1.2\n"})
    np.testing.assert_allclose(load_dataset(f"yolo:{root}")[0].boxes, [[51.2, 0, 64, 48]], atol=1e-4)


def test_missing_or_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(f"yolo:{tmp_path / 'nope'}")
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(f"yolo:{tmp_path}")


# --- class subsets, splits, samples --------------------------------------------------------------------------


def test_class_subset_renumbers_in_the_order_given(tmp_path):
    root = _yolo_folder(tmp_path, {"i0": "0 .5 .5 .2 .2\n2 .3 .3 .1 .1\n1 .6 .6 .1 .1\n", "i1": "1 .5 .5 .2 .2\n"})
    subset = load_dataset(f"yolo:{root}", classes=["c", "a"])
    assert subset.names == ("c", "a") and len(subset) == 2
    assert subset[0].classes.tolist() == [1, 0] and subset[1].classes.tolist() == []
    expected = [[25.6, 19.2, 38.4, 28.8], [16, 12, 22.4, 16.8]]  # c's box, then a's; b's is gone
    np.testing.assert_allclose(subset[0].boxes, expected, rtol=1e-6)
    with pytest.raises(DatasetError, match=r"unknown: \['person'\]"):
        load_dataset(f"yolo:{root}", classes=["person"])
    with pytest.raises(DatasetError, match="distinct"):
        load_dataset(f"yolo:{root}", classes=["a", "a"])


def test_split_is_deterministic_and_partitions():
    dataset = load_dataset("synthetic:50:3")
    a, b = dataset.split(0.8, seed=7)
    assert (len(a), len(b)) == (40, 10)
    ids = [id(s) for s in dataset]
    a_ids, b_ids = [id(s) for s in a], [id(s) for s in b]
    assert sorted(a_ids + b_ids) == sorted(ids) and not set(a_ids) & set(b_ids)
    assert a_ids == [i for i in ids if i in set(a_ids)]  # original order kept
    assert [id(s) for s in dataset.split(0.8, seed=7)[0]] == a_ids
    assert [id(s) for s in dataset.split(0.8, seed=8)[0]] != a_ids
    assert [id(s) for s in dataset.subset([3, 1])] == [ids[3], ids[1]] and len(dataset[2:5]) == 3


def test_sample_checks_and_image_gt(tmp_path):
    path = _image(tmp_path / "a.jpg", 40, 30)
    sample = Sample(path, [[1, 2, 11, 22], [0, 0, 5, 5]], [1, 0], 40, 30, difficult=[False, True])
    assert sample.load_image().shape == (30, 40, 3)
    gt = to_image_gt(sample)
    np.testing.assert_allclose(gt.xywh, [[1, 2, 10, 20], [0, 0, 5, 5]])
    assert gt.crowd.tolist() == [False, True] and to_image_gt(sample, False).crowd.tolist() == [False, False]
    assert pickle.loads(pickle.dumps(sample)).boxes.tolist() == sample.boxes.tolist()
    with pytest.raises(DatasetError, match="labels were made for 41x30"):
        Sample(path, [], [], 41, 30).load_image()
    with pytest.raises(ValueError, match="2 boxes but 1 classes"):
        Sample(path, [[0, 0, 1, 1], [0, 0, 1, 1]], [0], 40, 30)
    with pytest.raises(DatasetError, match="class id 2 outside 0..1"):
        DetectionDataset(["a", "b"], [Sample(path, [[0, 0, 1, 1]], [2], 40, 30)])
    with pytest.raises(DatasetError, match="repeat"):
        DetectionDataset(["a", "a"], [])


def test_write_yolo_round_trips(tmp_path):
    root = _yolo_folder(tmp_path / "src", {"i0": "0 .5 .5 .2 .2\n2 .3 .3 .1 .1\n", "i1": None})
    dataset = load_dataset(f"yolo:{root}")
    out = write_yolo(dataset, tmp_path / "out")
    again = load_dataset(f"yolo:{out}")
    assert again.names == dataset.names and [s.image_path.name for s in again] == ["i0.jpg", "i1.jpg"]
    for a, b in zip(dataset, again, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        assert a.classes.tolist() == b.classes.tolist()
        assert a.image_path.read_bytes() == b.image_path.read_bytes()
    with pytest.raises(FileExistsError):
        write_yolo(dataset, out)
    write_yolo(dataset.subset([1]), out, overwrite=True)
    assert len(load_dataset(f"yolo:{out}")) == 1 and not list(tmp_path.glob(".out*"))


# --- specs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("folder", "expected one of yolo:"),
        ("kitti:x", "expected one of yolo:"),
        ("yolo:x?split=a", "unknown option 'split=a'"),
        ("coco:ann.json", "expected coco:ANNOTATIONS.json,IMAGE_DIR"),
        ("synthetic:ten", "non-negative integer"),
        ("synthetic:4?classes=9", "num_classes must be 1..6"),
        ("synthetic:4?size=8", "max_side"),
        ("", "empty"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(spec)


def test_synthetic_spec_options():
    dataset = load_dataset("synthetic:5:2?size=128x160&classes=2")
    assert len(dataset) == 5 and dataset.names == ("circle", "square")
    assert {(s.height, s.width) for s in dataset} == {(128, 160)}
    assert load_dataset("synthetic:5")[0].boxes.tolist() == load_dataset("synthetic:5:0")[0].boxes.tolist()


# --- Pascal VOC ----------------------------------------------------------------------------------------------


def _voc_object(name, box, difficult=None):
    flag = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    return f"<object><name>{name}</name>{flag}<bndbox>{coords}</bndbox></object>"


def _voc_folder(root, annotations: dict[str, str], size=True):
    for stem, objects in annotations.items():
        _image(root / "JPEGImages" / f"{stem}.jpg", 64, 48)
        size_xml = "<size><width>64</width><height>48</height><depth>3</depth></size>" if size else ""
        xml = f"<annotation><filename>{stem}.jpg</filename>{size_xml}{objects}</annotation>"
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(xml)
    return root


def test_voc_boxes_difficult_and_names(tmp_path):
    root = _voc_folder(tmp_path, {
        "b": _voc_object("person", (1, 1, 10, 20)) + _voc_object("dog", (5, 6, 64, 48), 1),
        "a": "",
    })  # fmt: skip
    dataset = load_dataset(f"voc:{root}")
    assert dataset.names == VOC_CLASSES and [s.image_path.name for s in dataset] == ["a.jpg", "b.jpg"]
    sample = dataset[1]
    np.testing.assert_allclose(sample.boxes, [[0, 0, 10, 20], [4, 5, 64, 48]])  # 1-based inclusive -> 0-based
    assert [dataset.names[c] for c in sample.classes] == ["person", "dog"]
    assert sample.difficult.tolist() == [False, True] and to_image_gt(sample).crowd.tolist() == [False, True]
    assert load_dataset(f"voc:{root}", classes=["dog"]).num_boxes == 1
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("b\n")
    assert len(load_dataset(f"voc:{root}?split=val")) == 1
    with pytest.raises(DatasetError, match="split 'test' needs"):
        load_dataset(f"voc:{root}?split=test")


def test_voc_custom_names_and_size_from_the_image(tmp_path):
    root = _voc_folder(tmp_path, {"a": _voc_object("robot", (1, 1, 4, 4)) + _voc_object("cone", (2, 2, 3, 3))},
                       size=False)  # fmt: skip
    dataset = load_dataset(f"voc:{root}")
    assert dataset.names == ("cone", "robot") and (dataset[0].width, dataset[0].height) == (64, 48)


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ("<object><name>person</name></object>", "object 0: <bndbox> missing"),
        (_voc_object("person", (1, "x", 3, 4)), "object 0 bndbox: <ymin> is not a number"),
        (_voc_object("person", (5, 1, 3, 4)), "xmax < xmin"),
        (_voc_object("person", (1, 1, 3, 4), 2), "<difficult> must be 0 or 1"),
        (_voc_object("", (1, 1, 3, 4)), "<name> missing or empty"),
        ("<object><name>person</name>", r":1: not valid XML"),
    ],
)
def test_voc_malformed_annotation_names_file_and_field(tmp_path, objects, message):
    root = _voc_folder(tmp_path, {"img": objects})
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(f"voc:{root}")
    assert str(root / "Annotations" / "img.xml") in str(info.value)


# --- COCO json -----------------------------------------------------------------------------------------------


def _coco_files(root, images=None):
    for name in ("x.jpg", "y.jpg"):
        _image(root / "img" / name, 64, 48)
    doc = {
        "images": images or [{"id": 7, "file_name": "y.jpg", "width": 64, "height": 48},
                             {"id": 3, "file_name": "x.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [10, 5, 20, 30], "area": 600, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 64, 48], "area": 10, "iscrowd": 1},
            {"id": 3, "image_id": 3, "category_id": 18, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0},
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
    }  # fmt: skip
    ann = root / "instances.json"
    ann.write_text(json.dumps(doc))
    return ann, root / "img"


def test_coco_images_by_id_categories_by_id_crowd_as_difficult(tmp_path):
    ann, images = _coco_files(tmp_path)
    dataset = load_dataset(f"coco:{ann},{images}")
    assert dataset.names == ("person", "dog") and [s.image_path.name for s in dataset] == ["x.jpg", "y.jpg"]
    x, y = dataset
    np.testing.assert_allclose(x.boxes, [[1, 2, 4, 6]])
    assert (x.width, x.height) == (64, 48)  # read from the file when the record has no size
    np.testing.assert_allclose(y.boxes, [[10, 5, 30, 35], [0, 0, 64, 48]])
    assert y.classes.tolist() == [1, 0] and y.difficult.tolist() == [False, True]
    assert load_dataset(f"coco:{ann},{images}", ["dog"]).num_boxes == 2


def test_coco_errors_name_file_and_record(tmp_path):
    ann, images = _coco_files(tmp_path, [{"id": 7, "file_name": "y.jpg"}, {"id": 3, "file_name": "z.jpg"}])
    with pytest.raises(DatasetError, match=r"instances.json: images\[1\].file_name: image .*z.jpg does not exist"):
        load_dataset(f"coco:{ann},{images}")
    ann.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1}]}))
    with pytest.raises(DatasetError, match=r"categories\[0\].name: missing"):
        load_dataset(f"coco:{ann},{images}")


def test_loaders_and_detector_evaluation_never_import_torch():
    """Robot-side tools (bag making, evaluation of ONNX tiers) load datasets without torch."""
    code = (
        "import sys\n"
        "import yolo_compress.data, yolo_compress.data.detector_eval, yolo_compress.data.augment\n"
        "yolo_compress.data.load_dataset('synthetic:3')[0].load_image()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
