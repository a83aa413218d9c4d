"""sensor_msgs pixel layouts <-> BGR without ROS: every encoding, step padding, YUV against the BT.601 formula,
JPEG/PNG, and a named error for each kind of malformed frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolo_compress.runtime.image_encoding import (
    ENCODINGS,
    BadImageLayout,
    CorruptCompressed,
    EmptyImage,
    UnsupportedEncoding,
    bgr_to_compressed,
    bgr_to_image_data,
    compressed_to_bgr,
    image_data_to_bgr,
)

LOSSLESS = ("bgr8", "rgb8", "bgra8", "rgba8")


@pytest.fixture
def bgr() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", LOSSLESS)
@pytest.mark.parametrize("padding", [0, 5])
def test_packed_color_round_trips_exactly(bgr, encoding, padding):
    data, step = bgr_to_image_data(bgr, encoding, row_padding=padding)
    assert step == 8 * ENCODINGS[encoding].bytes_per_pixel + padding and len(data) == step * 6
    np.testing.assert_array_equal(image_data_to_bgr(data, encoding, 8, 6, step), bgr)


def test_channel_order_is_the_encodings(bgr):
    """rgb8 bytes hold R first: a pure red BGR pixel (0, 0, 255) is stored as 255, 0, 0."""
    red = np.zeros((1, 2, 3), np.uint8)
    red[..., 2] = 255
    assert bgr_to_image_data(red, "rgb8")[0][:3] == bytes([255, 0, 0])
    assert bgr_to_image_data(red, "bgra8")[0][:4] == bytes([0, 0, 255, 255])
    rgba = bytes([10, 20, 30, 99, 40, 50, 60, 99])  # alpha is dropped, the colors reordered
    np.testing.assert_array_equal(image_data_to_bgr(rgba, "rgba8", 2, 1, 8)[0], [[30, 20, 10], [60, 50, 40]])


def test_padding_bytes_are_ignored(bgr):
    data, step = bgr_to_image_data(bgr, "bgr8", row_padding=7)
    rows = np.frombuffer(data, np.uint8).reshape(6, step).copy()
    rows[:, -7:] = 255  # garbage where a driver pads
    np.testing.assert_array_equal(image_data_to_bgr(rows.tobytes(), "bgr8", 8, 6, step), bgr)


def test_bgr8_is_a_view_of_the_message_buffer(bgr):
    buffer = bytearray(bgr_to_image_data(bgr, "bgr8", row_padding=4)[0])
    pixels = image_data_to_bgr(buffer, "bgr8", 8, 6, 8 * 3 + 4)
    assert np.shares_memory(pixels, np.frombuffer(buffer, np.uint8))


def test_mono8_is_gray_in_three_channels(bgr):
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    data, step = bgr_to_image_data(bgr, "mono8", row_padding=3)
    assert data[:8] == gray[0].tobytes() and step == 11
    out = image_data_to_bgr(data, "mono8", 8, 6, step)
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


def _bt601(y: int, u: int, v: int) -> list[float]:
    """BGR of one YUV (video range) pixel by the ITU-R BT.601 formula, computed here independently."""
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    rgb = [c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d]
    return [min(max(x, 0), 255) for x in reversed(rgb)]


@pytest.mark.parametrize(("encoding", "order"), [("yuv422", "UYVY"), ("uyvy", "UYVY"),
                                                 ("yuv422_yuy2", "YUYV"), ("yuyv", "YUYV")])
def test_yuv422_decodes_by_bt601_in_its_byte_order(encoding, order):
    pairs = [(16, 128, 128, 16), (235, 128, 128, 235), (120, 60, 200, 140), (81, 90, 240, 145)]  # Y0 U V Y1
    data = b""
    for y0, u, v, y1 in pairs:
        data += bytes([u, y0, v, y1] if order == "UYVY" else [y0, u, y1, v])
    out = image_data_to_bgr(data + bytes(3), encoding, 8, 1, 16 + 3)  # with 3 padding bytes
    expected = [_bt601(y, u, v) for y0, u, v, y1 in pairs for y in (y0, y1)]
    np.testing.assert_allclose(out[0], expected, atol=2)


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_yuv422_round_trip_keeps_a_smooth_image(encoding):
    """Chroma is shared by pixel pairs: a smooth image comes back within a few levels."""
    x = np.linspace(0, 255, 16, dtype=np.float32)
    smooth = np.stack([np.tile(x, (4, 1)), np.full((4, 16), 120, np.float32), np.tile(x[::-1], (4, 1))], axis=2)
    smooth = smooth.astype(np.uint8)
    data, step = bgr_to_image_data(smooth, encoding, row_padding=2)
    out = image_data_to_bgr(data, encoding, 16, 4, step)
    assert np.abs(out.astype(int) - smooth).max() <= 12


@pytest.mark.parametrize(("fields", "error", "words"), [
    (("bayer_rggb8", 8, 6, 8), UnsupportedEncoding, "'bayer_rggb8' (supported: bgr8, rgb8"),
    (("bgr8", 8, 6, 23), BadImageLayout, "step 23 is less than width 8 x 3 bytes = 24"),
    (("rgb8", 8, 5, 24), BadImageLayout, "has 144 bytes, expected step 24 x height 5 = 120"),
    (("yuv422", 7, 6, 14), BadImageLayout, "width must be even, got 7"),
    (("bgr8", 0, 0, 0), EmptyImage, "empty bgr8 image: 0x0"),
])
def test_malformed_frames_raise_a_named_error(bgr, fields, error, words):
    data = bgr_to_image_data(bgr, "bgr8")[0]
    encoding, width, height, step = fields
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        image_data_to_bgr(data if width else b"", encoding, width, height, step)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "rgb8; jpeg compressed bgr8", "bgr8; png compressed bgr8", ""])
def test_compressed_frames_decode(bgr, fmt):
    kind = "png" if "png" in fmt else "jpeg"
    _, data = bgr_to_compressed(cv2.resize(bgr, (64, 48)), kind, quality=100)
    out = compressed_to_bgr(data, fmt)
    assert out.shape == (48, 64, 3)
    if kind == "png":
        np.testing.assert_array_equal(out, cv2.resize(bgr, (64, 48)))


def test_mono_jpeg_comes_back_as_three_channels():
    ok, data = cv2.imencode(".jpg", np.full((16, 16), 77, np.uint8))
    out = compressed_to_bgr(data.tobytes(), "mono8; jpeg compressed mono8")
    assert out.shape == (16, 16, 3) and abs(int(out[8, 8, 0]) - 77) <= 2


def test_bgr_to_compressed_writes_image_transport_format(bgr):
    fmt, data = bgr_to_compressed(bgr, "png")
    assert fmt == "bgr8; png compressed bgr8" and data.startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="one of"):
        bgr_to_compressed(bgr, "tiff")


@pytest.mark.parametrize(("make", "fmt", "error", "words"), [
    (lambda jpg, png: jpg[: len(jpg) // 2], "jpeg", CorruptCompressed, "truncated jpeg"),
    (lambda jpg, png: b"GIF89a" + bytes(20), "jpeg", CorruptCompressed, "not jpeg data: it starts with 47 49 46"),
    (lambda jpg, png: png[: len(png) // 2], "png", CorruptCompressed, "corrupt png data"),
    (lambda jpg, png: b"\xff\xd8" + bytes(200) + b"\xff\xd9", "jpeg", CorruptCompressed, "corrupt jpeg data"),
    (lambda jpg, png: png, "16UC1; compressedDepth png", UnsupportedEncoding, "depth stream"),
    (lambda jpg, png: jpg, "tiff", UnsupportedEncoding, "'tiff' \\(supported: jpeg, png\\)"),
    (lambda jpg, png: b"", "jpeg", EmptyImage, "0 bytes"),
])
def test_bad_compressed_frames_raise_a_named_error(bgr, make, fmt, error, words):
    big = cv2.resize(bgr, (64, 48), interpolation=cv2.INTER_NEAREST)
    jpg, png = bgr_to_compressed(big, "jpeg")[1], bgr_to_compressed(big, "png")[1]
    with pytest.raises(error, match=words):
        compressed_to_bgr(make(jpg, png), fmt)


def test_encoder_rejects_what_no_reader_could_read(bgr):
    with pytest.raises(ValueError, match="even"):
        bgr_to_image_data(bgr[:, :7], "yuyv")
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        bgr_to_image_data(bgr[..., 0], "bgr8")
    with pytest.raises(UnsupportedEncoding):
        bgr_to_image_data(bgr, "bgr16")
