"""Augmentation: boxes follow the pixels exactly (painted-colour test), the no-augmentation path equals the
runtime's preprocessing, flips, HSV jitter, mosaics and the dropping of tiny and out-of-frame boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolo_compress.data.augment import (
    MIN_BOX_SIZE,
    AugmentConfig,
    hflip,
    mosaic,
    prepare,
    random_affine,
    transform_boxes,
)
from yolo_compress.runtime.preprocess import Preprocessor

COLORS = np.array([[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255], [255, 0, 255]], np.uint8)  # BGR
GEOMETRY_ONLY = AugmentConfig(scale=0.5, translate=0.3, flip=0.5, hsv_h=0, hsv_s=0, hsv_v=0)


def _painted(height=300, width=420):
    """Black image with five boxes painted in pure colours (touching the borders too); boxes [5, 4]."""
    boxes = np.array([[10, 20, 110, 140], [200, 30, 260, 60], [0, 200, 80, 300], [300, 150, 420, 290],
                      [150, 100, 190, 250]], np.float32)  # fmt: skip
    image = np.zeros((height, width, 3), np.uint8)
    for box, color in zip(boxes.astype(int), COLORS, strict=True):
        image[box[1] : box[3], box[0] : box[2]] = color
    return image, boxes


def _rgb_to_bgr_uint8(chw: np.ndarray) -> np.ndarray:
    return np.round(chw[::-1].transpose(1, 2, 0) * 255).astype(np.uint8)


def _assert_colours_fill_their_boxes(out: np.ndarray, colors: np.ndarray, boxes: np.ndarray) -> None:
    """Each box bounds, to a pixel, the pixels of its colour in BGR uint8 `out`, and is filled by them."""
    for color, box in zip(colors, boxes, strict=True):
        mask = np.all(np.abs(out.astype(int) - color) < 40, axis=2)  # pixels of this colour (interpolation aside)
        ys, xs = np.nonzero(mask)
        extent = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        np.testing.assert_allclose(extent, box, atol=1.01)  # the box bounds its colour to a pixel
        x1, y1, x2, y2 = np.round(box).astype(int)
        assert mask[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].mean() > 0.97  # and is filled by it


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
@pytest.mark.parametrize("seed", range(12))
def test_colour_lands_in_the_new_boxes(resize, seed):
    image, boxes = _painted()
    net, out_boxes, keep = prepare(image, boxes, (192, 256), resize, GEOMETRY_ONLY, np.random.default_rng(seed))
    assert net.shape == (3, 192, 256) and net.dtype == np.float32
    out = _rgb_to_bgr_uint8(net)
    _assert_colours_fill_their_boxes(out, COLORS[keep], out_boxes)
    for color in COLORS[~keep]:  # a dropped box is tiny or cut by the frame: what is left of it touches a border
        ys, xs = np.nonzero(np.all(np.abs(out.astype(int) - color) < 40, axis=2))
        if len(xs):
            tiny = min(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) <= MIN_BOX_SIZE + 1
            assert tiny or xs.min() == 0 or ys.min() == 0 or xs.max() == 255 or ys.max() == 191


def test_some_boxes_are_dropped_and_some_kept_over_many_draws():
    image, boxes = _painted()
    kept = [prepare(image, boxes, (192, 256), "letterbox", GEOMETRY_ONLY, np.random.default_rng(s))[2]
            for s in range(40)]  # fmt: skip
    counts = np.sum(kept, axis=0)
    assert counts.min() < 40 and counts.max() == 40 and counts.sum() > 100


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_without_augmentation_equals_the_runtime_preprocessing(resize):
    image, boxes = _painted(277, 391)
    net, out_boxes, keep = prepare(image, boxes, (160, 224), resize)
    batch, (transform,) = Preprocessor((160, 224), resize)([image])
    assert np.array_equal(net, batch[0]) and keep.all()
    inside = np.clip(boxes, 0, [391, 277, 391, 277])  # the painted boxes, cut by this smaller image
    np.testing.assert_allclose(transform.to_original(out_boxes), inside, atol=1e-3)  # the runtime maps them back


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_identity_augmentation_warps_the_pixels_cv2_resize_gives(resize):
    """The warp samples like cv2.resize (no half-pixel shift), so train-time pixels match the runtime's."""
    image = np.random.default_rng(0).integers(0, 256, (277, 391, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 3)
    identity = AugmentConfig(scale=0, translate=0, flip=0, hsv_h=0, hsv_s=0, hsv_v=0)
    warped, _, _ = prepare(image, np.zeros((0, 4)), (160, 224), resize, identity, np.random.default_rng(0))
    plain, _, _ = prepare(image, np.zeros((0, 4)), (160, 224), resize)
    assert np.abs(warped - plain).max() <= 2 / 255


def test_stretch_fills_the_input_and_letterbox_keeps_aspect():
    image, boxes = _painted(300, 600)
    _, stretched, _ = prepare(image, np.array([[0, 0, 600, 300]]), (200, 200), "stretch")
    _, boxed, _ = prepare(image, np.array([[0, 0, 600, 300]]), (200, 200), "letterbox")
    np.testing.assert_allclose(stretched, [[0, 0, 200, 200]])
    np.testing.assert_allclose(boxed, [[0, 50, 200, 150]])


def test_flip_mirrors_pixels_and_boxes():
    image, boxes = _painted()
    flip_only = AugmentConfig(scale=0, translate=0, flip=1, hsv_h=0, hsv_s=0, hsv_v=0)
    flipped, f_boxes, _ = prepare(image, boxes, (192, 256), "stretch", flip_only, np.random.default_rng(0))
    plain, p_boxes, _ = prepare(image, boxes, (192, 256), "stretch")
    assert np.abs(flipped - plain[:, :, ::-1]).max() <= 3 / 255  # warpAffine vs cv2.resize rounding at edges
    np.testing.assert_allclose(f_boxes[:, [2, 0]], 256 - p_boxes[:, [0, 2]], atol=1e-4)
    twice, back = hflip(*hflip(_rgb_to_bgr_uint8(plain), p_boxes))
    assert np.array_equal(twice, _rgb_to_bgr_uint8(plain)) and np.allclose(back, p_boxes)


def test_hsv_jitter_changes_colour_not_geometry():
    image, boxes = _painted()
    colour_only = AugmentConfig(scale=0, translate=0, flip=0, hsv_h=0.5, hsv_s=0.9, hsv_v=0.9)
    plain, p_boxes, _ = prepare(image, boxes, (192, 256), "stretch")
    changed = [prepare(image, boxes, (192, 256), "stretch", colour_only, np.random.default_rng(s)) for s in range(5)]
    for net, out_boxes, keep in changed:
        assert keep.all()
        np.testing.assert_allclose(out_boxes, p_boxes, atol=1e-4)
        assert np.array_equal(net.sum(axis=0) == 0, plain.sum(axis=0) == 0)  # black stays black, shapes stay
    assert all(np.abs(net - plain).max() > 0.2 for net, _, _ in changed)


def test_same_generator_seed_same_result():
    image, boxes = _painted()
    a = prepare(image, boxes, (192, 256), "letterbox", AugmentConfig(), np.random.default_rng(9))
    b = prepare(image, boxes, (192, 256), "letterbox", AugmentConfig(), np.random.default_rng(9))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="needs a numpy Generator"):
        prepare(image, boxes, (192, 256), "letterbox", AugmentConfig())


def test_tiny_and_out_of_frame_boxes_are_dropped():
    shift = np.array([[1.0, 0, 90], [0, 1.0, 0]])  # moves x by +90 px in a 100x100 input
    boxes = np.array([[0, 0, 40, 40], [5, 5, 6.5, 30], [70, 50, 90, 60], [0, 60, 60, 90]], np.float32)
    out, keep = transform_boxes(boxes, shift, (100, 100))
    # box 0: 10 of 40 px wide left (25%, kept); 1: 1.5 px wide (dropped); 2: fully out; 3: 10 of 60 px left
    assert keep.tolist() == [True, False, False, False]
    np.testing.assert_allclose(out, [[90, 0, 100, 40]])
    assert transform_boxes(np.zeros((0, 4), np.float32), shift, (100, 100))[0].shape == (0, 4)


def test_random_affine_stays_within_its_ranges():
    config = AugmentConfig(scale=0.3, translate=0.1)
    for seed in range(50):
        m = random_affine((100, 200), config, np.random.default_rng(seed))
        assert 0.7 <= m[0, 0] == m[1, 1] <= 1.3
        centre = m[:2, :2] @ [100, 50] + m[:2, 2]  # where the input centre goes
        assert abs(centre[0] - 100) <= 20 + 1e-9 and abs(centre[1] - 50) <= 10 + 1e-9


def test_bad_config():
    with pytest.raises(ValueError, match="scale must be < 1"):
        AugmentConfig(scale=1.0)
    with pytest.raises(ValueError, match="flip must be in"):
        AugmentConfig(flip=1.5)


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
@pytest.mark.parametrize("seed", range(6))
def test_mosaic_tiles_keep_their_boxes_in_their_quadrant(resize, seed):
    """Each tile's colours land in its boxes, and its boxes and pixels stay inside its own quadrant."""
    tiles = [_painted(), _painted(300, 520), _painted(360, 420), _painted(420, 600)]  # every box inside
    net, boxes, keeps = mosaic(tiles, (192, 256), resize, GEOMETRY_ONLY, np.random.default_rng(seed))
    assert net.shape == (3, 192, 256) and len(keeps) == 4 and len(boxes) == sum(k.sum() for k in keeps)
    out, start = _rgb_to_bgr_uint8(net), 0
    for quadrant, keep in enumerate(keeps):
        top, left = (quadrant // 2) * 96, (quadrant % 2) * 128
        tile_boxes = boxes[start : start + keep.sum()]
        start += keep.sum()
        assert (tile_boxes[:, [0, 2]] >= left).all() and (tile_boxes[:, [0, 2]] <= left + 128).all()
        assert (tile_boxes[:, [1, 3]] >= top).all() and (tile_boxes[:, [1, 3]] <= top + 96).all()
        quarter = out[top : top + 96, left : left + 128]  # the colours repeat across tiles: look in the quadrant
        _assert_colours_fill_their_boxes(quarter, COLORS[keep], tile_boxes - [left, top, left, top])


def test_mosaic_needs_four_tiles_and_is_reproducible():
    tiles = [_painted()] * 4
    a = mosaic(tiles, (192, 256), "letterbox", AugmentConfig(), np.random.default_rng(3))
    b = mosaic(tiles, (192, 256), "letterbox", AugmentConfig(), np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="needs 4 tiles, got 3"):
        mosaic(tiles[:3], (192, 256), "letterbox", AugmentConfig(), np.random.default_rng(3))
    with pytest.raises(ValueError, match="mosaic must be in"):
        AugmentConfig(mosaic=1.5)
