"""Synthetic scenes: deterministic, exact boxes, fit the demo cfg, written as a YOLO folder that loads back."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest

from yolo_compress.data import SyntheticConfig, load_dataset, synthetic_dataset, write_synthetic
from yolo_compress.data.synthetic import SHAPES
from yolo_compress.models.darknet import Darknet


def test_same_seed_same_scenes_independent_of_count():
    short, long = synthetic_dataset(5, seed=4), synthetic_dataset(40, seed=4)
    for a, b in zip(short, long[:5], strict=True):
        assert np.array_equal(a.load_image(), b.load_image()) and np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(short[2].load_image(), short[2].load_image())  # re-rendered identically
    other = synthetic_dataset(5, seed=5)
    assert not any(np.array_equal(a.load_image(), b.load_image()) for a, b in zip(short, other, strict=True))


def test_boxes_are_the_exact_extent_of_the_drawn_shapes():
    dataset = synthetic_dataset(60, seed=1)
    for sample in dataset:
        scene = sample.render
        drawn = np.any(scene() != replace(scene, shapes=())(), axis=2)  # pixels the shapes changed
        inside = np.zeros_like(drawn)
        for box in sample.boxes.astype(int):
            x1, y1, x2, y2 = box
            region = drawn[y1:y2, x1:x2]
            assert region[0].any() and region[-1].any() and region[:, 0].any() and region[:, -1].any(), box
            inside[y1:y2, x1:x2] = True
        assert not (drawn & ~inside).any()  # nothing drawn outside the boxes


def test_scenes_have_every_class_many_sizes_and_no_overlaps():
    dataset = synthetic_dataset(200, seed=0)
    counts = dataset.class_counts()
    assert set(counts) == set(SHAPES[:3]) and min(counts.values()) > 100
    sides = np.concatenate([np.sqrt(np.prod(s.boxes[:, 2:] - s.boxes[:, :2], axis=1)) for s in dataset])
    assert sides.min() < 16 and sides.max() > 70
    for sample in dataset:
        b = sample.boxes
        ix = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
        iy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
        overlap = (ix > 0) & (iy > 0)
        assert not (overlap & ~np.eye(len(b), dtype=bool)).any()


def test_default_config_fits_the_demo_cfg():
    model = Darknet.from_cfg("demo")
    config = SyntheticConfig()
    assert (config.height, config.width) == model.input_size
    assert {head.num_classes for head in model.heads} == {len(config.names)}
    sample = synthetic_dataset(1)[0]
    assert sample.load_image().shape == (*model.input_size, 3) and sample.load_image().dtype == np.uint8


def test_all_shapes_render_and_samples_pickle():
    dataset = synthetic_dataset(30, seed=2, config=SyntheticConfig(num_classes=len(SHAPES), height=96, width=128))
    assert dataset.names == SHAPES and all(v > 0 for v in dataset.class_counts().values())
    sample = pickle.loads(pickle.dumps(dataset[3]))
    assert np.array_equal(sample.load_image(), dataset[3].load_image())
    assert sample.load_image().shape == (96, 128, 3)


def test_written_folder_loads_back_identically(tmp_path):
    dataset = synthetic_dataset(8, seed=3)
    out = write_synthetic(tmp_path / "synth", 8, seed=3)
    loaded = load_dataset(f"yolo:{out}")
    assert loaded.names == dataset.names and len(loaded) == 8
    for a, b in zip(dataset, loaded, strict=True):
        assert np.array_equal(a.load_image(), b.load_image())  # PNG is lossless
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        assert a.classes.tolist() == b.classes.tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_classes": 0}, "num_classes"), ({"min_objects": 3, "max_objects": 2}, "min_objects"),
     ({"min_side": 2}, "min_side"), ({"max_side": 500}, "max_side")],
)  # fmt: skip
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticConfig(**kwargs)
