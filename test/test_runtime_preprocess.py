"""Frames to the contract input and boxes back: OpenCV DNN equivalence, letterbox geometry, round trips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolo_compress.export.frame_input import frames_to_images
from yolo_compress.runtime.contract import FRAMES_INPUT
from yolo_compress.runtime.preprocess import PAD_PIXEL, Preprocessor, fit_transform

from conftest import shared_path

PAD_VALUE = PAD_PIXEL / 255
RNG = np.random.default_rng(0)


def random_frame(height: int, width: int) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_stretch_equals_opencv_blob():
    frame = random_frame(480, 640)
    batch, _ = Preprocessor((320, 416), "stretch")([frame])
    blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (416, 320), swapRB=True, crop=False)
    assert batch.shape == (1, 3, 320, 416) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, blob, atol=1e-6)


def test_stretch_equals_opencv_blob_on_real_photos():
    preprocess = Preprocessor((320, 320), "stretch")
    for photo in sorted(shared_path("photos").glob("*.jpg")):
        frame = cv2.imread(str(photo))
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (320, 320), swapRB=True, crop=False)
        np.testing.assert_allclose(preprocess([frame])[0], blob, atol=1e-6, err_msg=photo.name)


def test_letterbox_keeps_aspect_and_pads_centered_gray():
    frame = random_frame(240, 640)  # 2.67:1 into 320x320 -> 320x120 image, 100 px gray above and below
    batch, (transform,) = Preprocessor((320, 320), "letterbox")([frame])
    assert (transform.scale_x, transform.scale_y, transform.pad_x, transform.pad_y) == (0.5, 0.5, 0, 100)
    np.testing.assert_allclose(batch[0, :, :100], PAD_VALUE)
    np.testing.assert_allclose(batch[0, :, 220:], PAD_VALUE)
    expected = cv2.resize(frame, (320, 120), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].transpose(2, 0, 1) / 255
    np.testing.assert_allclose(batch[0, :, 100:220], expected, atol=1e-6)


def test_letterbox_pads_stale_buffer_regions():
    """A tall frame after a wide one: the reused buffer must not keep the previous image in the new pads."""
    preprocess = Preprocessor((320, 320), "letterbox")
    preprocess([np.full((100, 400, 3), 255, np.uint8)])
    batch, (transform,) = preprocess([np.zeros((400, 100, 3), np.uint8)])
    assert transform.pad_x == 120 and transform.pad_y == 0
    np.testing.assert_allclose(batch[0, :, :, :120], PAD_VALUE)
    np.testing.assert_allclose(batch[0, :, :, 200:], PAD_VALUE)
    assert not batch[0, :, :, 120:200].any()


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (333, 517)])
def test_boxes_round_trip(resize, shape):
    transform = fit_transform(*shape, (320, 416), resize)
    height, width = shape
    boxes = np.array([[0, 0, width, height], [10.5, 20.25, 100, 200], [width / 3, height / 4, width / 2, height / 2]])
    net = boxes.copy()
    net[:, 0::2] = boxes[:, 0::2] * transform.scale_x + transform.pad_x
    net[:, 1::2] = boxes[:, 1::2] * transform.scale_y + transform.pad_y
    assert net[:, 0::2].max() <= 416 and net[:, 1::2].max() <= 320
    np.testing.assert_allclose(transform.to_original(net), boxes, atol=1e-3)


def test_boxes_outside_the_image_are_clipped():
    transform = fit_transform(100, 200, (320, 320), "letterbox")  # image occupies rows 80..240
    out = transform.to_original(np.array([[-10, 0, 400, 300]], np.float32))
    np.testing.assert_array_equal(out, [[0, 0, 200, 100]])


def test_gray_frames_give_three_equal_channels():
    gray = RNG.integers(0, 256, (120, 160), dtype=np.uint8)
    for frame in (gray, gray[:, :, None]):
        batch, _ = Preprocessor((64, 64), "letterbox")([frame])
        np.testing.assert_array_equal(batch[0, 0], batch[0, 1])
        np.testing.assert_array_equal(batch[0, 0], batch[0, 2])


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("shape", [(480, 640, 3), (333, 517, 3), (120, 160)])
def test_frames_form_holds_the_same_pixels_as_bgr_bytes(resize, shape):
    """The `frames` input is the resized BGR image itself: reversed and scaled, it is the `images` batch
    (both come from one cv2.resize of the same uint8 frame; float rounding of the pad gray aside)."""
    frame = RNG.integers(0, 256, shape, dtype=np.uint8)
    images, (t_images,) = Preprocessor((320, 416), resize)([frame])
    frames, (t_frames,) = Preprocessor((320, 416), resize, FRAMES_INPUT)([frame])
    assert frames.shape == (1, 320, 416, 3) and frames.dtype == np.uint8 and t_frames == t_images
    np.testing.assert_allclose(frames_to_images(frames), images, rtol=0, atol=1e-7)
    if resize == "letterbox" and shape[0] * 416 != shape[1] * 320:
        assert (frames == PAD_PIXEL).all(axis=-1).any()


def test_frames_buffer_is_reused_and_grows_with_batch():
    preprocess = Preprocessor((64, 64), "stretch", FRAMES_INPUT)
    first, _ = preprocess([random_frame(50, 60)])
    second, _ = preprocess([random_frame(70, 30)])
    assert np.shares_memory(first, second)
    batch, _ = preprocess([random_frame(50, 60), random_frame(70, 30)])
    assert batch.shape == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="input_name must be"):
        Preprocessor((64, 64), "stretch", "pixels")


def test_buffer_is_reused_and_grows_with_batch():
    preprocess = Preprocessor((64, 64))
    first, _ = preprocess([random_frame(50, 60)])
    second, _ = preprocess([random_frame(70, 30)])
    assert np.shares_memory(first, second)
    batch, transforms = preprocess([random_frame(50, 60), random_frame(70, 30), random_frame(10, 10)])
    assert batch.shape == (3, 3, 64, 64) and len(transforms) == 3
    assert [t.width for t in transforms] == [60, 30, 10]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "frame 0: expected uint8"),
        (np.zeros((10, 10, 4), np.uint8), r"frame 0: expected an HxWx3 BGR or HxW gray image, got shape \(10, 10, 4\)"),
        (np.zeros((0, 10, 3), np.uint8), "got shape"),
    ],
)
def test_bad_frames_are_explained(frame, message):
    with pytest.raises(ValueError, match=message):
        Preprocessor((64, 64))([frame])


def test_bad_resize_mode():
    with pytest.raises(ValueError, match="resize must be one of"):
        Preprocessor((64, 64), "crop")
