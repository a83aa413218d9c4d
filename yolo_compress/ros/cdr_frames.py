"""Camera frames read straight from their serialized (CDR) bytes: the node subscribes with `raw=True`.

Why not let rclpy deserialize: it turns every arriving sensor_msgs/Image into a Python message, copying
the 900 KB of a VGA frame through the C message into an array.array, and it does so for every frame,
including the ones the newest-frame slot then drops unprocessed. Taking the serialized bytes costs one
copy per arriving frame; only the frame that is processed gets parsed, and its pixels are a view of those
bytes (zero-copy for bgr8). Measured (bench/frame_receive_cost.py): 1.41 instead of 1.76 ms of CPU per
received VGA frame.

The layout is the OMG CDR (XCDR1) that every ROS 2 DDS middleware uses for these types: a 4-byte
encapsulation header (byte 1: 0 big endian, 1 little endian), then the fields in declaration order, each
aligned to its size counted from the end of that header; a string is a uint32 length including its NUL,
a uint8[] a uint32 count then the bytes. Tests check it against rclpy's own serialize_message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from yolo_compress.runtime.image_encoding import ImageEncodingError, compressed_to_bgr, image_data_to_bgr

ENCAPSULATION_BYTES = 4
_ENDIAN = {0: ">", 1: "<"}  # CDR_BE, CDR_LE (the options bytes that follow carry nothing for these types)


class MalformedMessage(ImageEncodingError):
    """Serialized bytes that do not hold the message type the topic carries (truncated, wrong type)."""


class _CdrReader:
    """Sequential reads with CDR alignment; every read checks the bounds, so bad bytes raise, never crash."""

    def __init__(self, buffer: bytes | memoryview, type_name: str) -> None:
        self._buf = memoryview(buffer)
        self._type = type_name
        if len(self._buf) < ENCAPSULATION_BYTES or self._buf[1] not in _ENDIAN or self._buf[0] != 0:
            raise MalformedMessage(f"{type_name}: {len(self._buf)} bytes without a CDR encapsulation header")
        self._endian = _ENDIAN[self._buf[1]]
        self._pos = ENCAPSULATION_BYTES

    def _take(self, size: int, align: int, what: str) -> memoryview:
        self._pos += -(self._pos - ENCAPSULATION_BYTES) % align
        end = self._pos + size
        if end > len(self._buf):
            raise MalformedMessage(f"{self._type}: truncated at {what} (needs {end} bytes, has {len(self._buf)})")
        view, self._pos = self._buf[self._pos:end], end
        return view

    def u32(self, what: str) -> int:
        return struct.unpack(self._endian + "I", self._take(4, 4, what))[0]

    def i32(self, what: str) -> int:
        return struct.unpack(self._endian + "i", self._take(4, 4, what))[0]

    def u8(self, what: str) -> int:
        return self._take(1, 1, what)[0]

    def string(self, what: str) -> str:
        raw = self._take(self.u32(what), 1, what)
        try:
            return bytes(raw).rstrip(b"\0").decode()
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"{self._type}: {what} is not UTF-8") from exc

    def octets(self, what: str) -> memoryview:
        return self._take(self.u32(what), 1, what)

    def header(self) -> Header:
        sec, nanosec = self.i32("header.stamp.sec"), self.u32("header.stamp.nanosec")
        return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=self.string("header.frame_id"))


@dataclass(frozen=True)
class ImageFrame:
    """The fields of one serialized sensor_msgs/Image; `data` is a view of the received bytes."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: memoryview

    def to_bgr(self) -> np.ndarray:
        return image_data_to_bgr(self.data, self.encoding, self.width, self.height, self.step, self.is_bigendian)


@dataclass(frozen=True)
class CompressedFrame:
    """The fields of one serialized sensor_msgs/CompressedImage; `data` is a view of the received bytes."""

    header: Header
    format: str
    data: memoryview

    def to_bgr(self) -> np.ndarray:
        return compressed_to_bgr(self.data, self.format)


def parse_image(buffer: bytes | memoryview) -> ImageFrame:
    """A serialized sensor_msgs/Image -> its fields (MalformedMessage names what is missing)."""
    r = _CdrReader(buffer, "sensor_msgs/Image")
    header = r.header()
    height, width, encoding = r.u32("height"), r.u32("width"), r.string("encoding")
    is_bigendian, step = bool(r.u8("is_bigendian")), r.u32("step")
    return ImageFrame(header, height, width, encoding, is_bigendian, step, r.octets("data"))


def parse_compressed(buffer: bytes | memoryview) -> CompressedFrame:
    """A serialized sensor_msgs/CompressedImage -> its fields (MalformedMessage names what is missing)."""
    r = _CdrReader(buffer, "sensor_msgs/CompressedImage")
    header = r.header()
    return CompressedFrame(header, r.string("format"), r.octets("data"))
