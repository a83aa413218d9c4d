"""The node's serialized-frame reader against rclpy's own serializer (the real rosidl type support): every
field of Image and CompressedImage, for headers whose frame_id lengths shift the alignment of what follows,
and clear errors for bytes that are not a whole message."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from yolo_compress.runtime.image_encoding import ImageEncodingError, bgr_to_compressed, bgr_to_image_data

from _ros import LARK_WARNING, require_ros

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

FRAME_IDS = ["", "c", "cam", "camera", "camera_optical_frame", "kamera_\u00fc"]  # 0..20 chars, and UTF-8


@pytest.fixture(autouse=True)
def _ros():
    require_ros()


def _header(frame_id: str, sec: int = 1700000000, nanosec: int = 987654321):
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def _bgr(height: int = 5, width: int = 6) -> np.ndarray:
    return np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("encoding,padding", [("bgr8", 0), ("rgba8", 3), ("mono8", 1), ("yuv422_yuy2", 0)])
def test_image_fields_equal_the_message_rclpy_serialized(frame_id, encoding, padding):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from yolo_compress.ros.cdr_frames import parse_image
    from yolo_compress.runtime.image_encoding import image_data_to_bgr

    bgr = _bgr()
    data, step = bgr_to_image_data(bgr, encoding, row_padding=padding)
    msg = Image(header=_header(frame_id, sec=-5), height=5, width=6, encoding=encoding, is_bigendian=1, step=step,
                data=list(data))
    frame = parse_image(serialize_message(msg))
    assert frame.header == msg.header
    assert (frame.height, frame.width, frame.encoding, frame.is_bigendian, frame.step) == (5, 6, encoding, True, step)
    assert bytes(frame.data) == bytes(msg.data)
    np.testing.assert_array_equal(frame.to_bgr(), image_data_to_bgr(bytes(msg.data), encoding, 6, 5, step))


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_compressed_fields_equal_the_message_rclpy_serialized(frame_id, kind):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CompressedImage

    from yolo_compress.ros.cdr_frames import parse_compressed

    fmt, payload = bgr_to_compressed(_bgr(16, 16), kind)
    msg = CompressedImage(header=_header(frame_id), format=fmt, data=list(payload))
    frame = parse_compressed(serialize_message(msg))
    assert (frame.header, frame.format, bytes(frame.data)) == (msg.header, fmt, payload)
    assert frame.to_bgr().shape == (16, 16, 3)


def test_bgr8_pixels_are_a_view_of_the_received_bytes():
    from rclpy.serialization import serialize_message

    from yolo_compress.ros.cdr_frames import parse_image
    from yolo_compress.ros.image_msgs import bgr_to_image

    serialized = serialize_message(bgr_to_image(_bgr(), _header("cam")))
    pixels = parse_image(serialized).to_bgr()
    assert np.shares_memory(pixels, np.frombuffer(serialized, np.uint8))


def test_big_endian_cdr_is_read_too():
    """rclpy writes little endian; a big-endian writer's bytes (built field by field here) read the same."""
    from yolo_compress.ros.cdr_frames import parse_compressed

    body = struct.pack(">iI", 7, 8) + struct.pack(">I", 4) + b"cam\0" + struct.pack(">I", 5) + b"jpeg\0"
    body += b"\0" * (-len(body) % 4) + struct.pack(">I", 3) + b"\xff\xd8\xff"
    frame = parse_compressed(b"\x00\x00\x00\x00" + body)
    assert (frame.header.stamp.sec, frame.header.stamp.nanosec, frame.header.frame_id) == (7, 8, "cam")
    assert (frame.format, bytes(frame.data)) == ("jpeg", b"\xff\xd8\xff")


def test_every_truncation_is_a_named_error_never_a_crash():
    from rclpy.serialization import serialize_message

    from yolo_compress.ros.cdr_frames import MalformedMessage, parse_image
    from yolo_compress.ros.image_msgs import bgr_to_image

    serialized = serialize_message(bgr_to_image(_bgr(2, 2), _header("camera")))
    for end in range(len(serialized) - 1):
        with pytest.raises(MalformedMessage, match="sensor_msgs/Image") as caught:
            parse_image(serialized[:end])
        assert isinstance(caught.value, ImageEncodingError)  # the node counts it as a bad frame
    with pytest.raises(MalformedMessage, match="truncated at data"):
        parse_image(serialized[:-1])
