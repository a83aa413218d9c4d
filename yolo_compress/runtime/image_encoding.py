"""sensor_msgs pixel layouts <-> BGR uint8, without cv_bridge (which has no ROS 2 build outside a ROS install).

The node receives whatever the camera driver publishes: packed RGB/BGR with or without alpha, mono, the two
YUV 4:2:2 byte orders that USB and CSI cameras emit, rows padded to an aligned `step`, or JPEG/PNG through
image_transport's `compressed` topic. Everything here works on the message's fields (encoding, height,
width, step, data) rather than on message objects, so it needs no ROS and is tested without a middleware.

Raw frames are zero-copy for bgr8 (a strided view of the message buffer) and one OpenCV conversion
otherwise. A malformed frame raises an ImageEncodingError subclass whose message names the problem, so the
node can count it, log it and carry on.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

JPEG_MAGIC = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Some encoders pad a JPEG after its end-of-image marker; this much trailing padding is tolerated.
JPEG_TRAILER_SLACK = 64


class ImageEncodingError(ValueError):
    """A frame that cannot be turned into pixels; the subclass says which kind of problem it is."""


class UnsupportedEncoding(ImageEncodingError):
    """The encoding (or compressed format) is not one this module converts."""


class BadImageLayout(ImageEncodingError):
    """height/width/step/data disagree with each other or with the encoding."""


class EmptyImage(ImageEncodingError):
    """No pixels at all: zero height or width, or no data."""


class CorruptCompressed(ImageEncodingError):
    """Compressed data that is truncated or not a JPEG/PNG stream."""


@dataclass(frozen=True)
class PixelLayout:
    """Bytes per pixel of a packed encoding and the OpenCV conversions to and from BGR (None: it is BGR)."""

    bytes_per_pixel: int
    to_bgr: int | None
    from_bgr: int | None

    @property
    def is_yuv422(self) -> bool:
        return self.bytes_per_pixel == 2


_UYVY = PixelLayout(2, cv2.COLOR_YUV2BGR_UYVY, getattr(cv2, "COLOR_BGR2YUV_UYVY", None))
_YUYV = PixelLayout(2, cv2.COLOR_YUV2BGR_YUYV, getattr(cv2, "COLOR_BGR2YUV_YUYV", None))

# sensor_msgs/image_encodings.hpp names. yuv422 is UYVY and yuv422_yuy2 is YUYV; Jazzy added the plain
# uyvy / yuyv names for the same layouts.
ENCODINGS: dict[str, PixelLayout] = {
    "bgr8": PixelLayout(3, None, None),
    "rgb8": PixelLayout(3, cv2.COLOR_RGB2BGR, cv2.COLOR_BGR2RGB),
    "bgra8": PixelLayout(4, cv2.COLOR_BGRA2BGR, cv2.COLOR_BGR2BGRA),
    "rgba8": PixelLayout(4, cv2.COLOR_RGBA2BGR, cv2.COLOR_BGR2RGBA),
    "mono8": PixelLayout(1, cv2.COLOR_GRAY2BGR, cv2.COLOR_BGR2GRAY),
    "yuv422": _UYVY,
    "uyvy": _UYVY,
    "yuv422_yuy2": _YUYV,
    "yuyv": _YUYV,
}
COMPRESSED_FORMATS = ("jpeg", "png")


def pixel_layout(encoding: str) -> PixelLayout:
    """The layout of a supported encoding; UnsupportedEncoding lists the supported ones otherwise."""
    layout = ENCODINGS.get(encoding)
    if layout is None:
        raise UnsupportedEncoding(f"unsupported encoding {encoding!r} (supported: {', '.join(ENCODINGS)})")
    return layout


def image_data_to_bgr(
    data: bytes | memoryview, encoding: str, width: int, height: int, step: int, is_bigendian: bool = False
) -> np.ndarray:
    """HxWx3 BGR uint8 pixels of a sensor_msgs/Image's fields; for bgr8 a view of `data` (no copy).

    Padding bytes at the end of each row (`step` > width x bytes per pixel) are skipped. Every supported
    layout is 8-bit, so `is_bigendian` (a field of every Image) cannot change the result.
    """
    del is_bigendian  # byte order only matters for 16/32-bit channels, which are not camera frames here
    layout = pixel_layout(encoding)
    if height <= 0 or width <= 0 or len(data) == 0:
        raise EmptyImage(f"empty {encoding} image: {width}x{height} with {len(data)} bytes of data")
    pixels = _packed_pixels(layout, encoding, height, width, step, np.frombuffer(data, np.uint8))
    return pixels if layout.to_bgr is None else cv2.cvtColor(pixels, layout.to_bgr)


def _packed_pixels(
    layout: PixelLayout, encoding: str, height: int, width: int, step: int, buffer: np.ndarray
) -> np.ndarray:
    """[H, W, bytes_per_pixel] view of the rows in `buffer`, after checking the sizes agree."""
    row_bytes = width * layout.bytes_per_pixel
    if layout.is_yuv422 and width % 2:
        raise BadImageLayout(f"{encoding} packs pixel pairs: width must be even, got {width}")
    if step < row_bytes:
        raise BadImageLayout(
            f"{encoding} step {step} is less than width {width} x {layout.bytes_per_pixel} bytes = {row_bytes}"
        )
    if buffer.size != step * height:
        raise BadImageLayout(
            f"{encoding} data has {buffer.size} bytes, expected step {step} x height {height} = {step * height}"
        )
    rows = buffer.reshape(height, step)[:, :row_bytes]
    return rows.reshape(height, width, layout.bytes_per_pixel)


def bgr_to_image_data(bgr: np.ndarray, encoding: str, row_padding: int = 0) -> tuple[bytes, int]:
    """(data, step) of BGR uint8 pixels in `encoding`, each row followed by `row_padding` zero bytes.

    Padding mimics drivers that align rows (step > width x bytes per pixel), so readers are tested on it.
    """
    layout = pixel_layout(encoding)
    if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 BGR pixels, got {bgr.dtype} {bgr.shape}")
    if row_padding < 0:
        raise ValueError(f"row_padding must be >= 0, got {row_padding}")
    height, width = bgr.shape[:2]
    if layout.is_yuv422 and width % 2:
        raise ValueError(f"{encoding} packs pixel pairs: width must be even, got {width}")
    if layout.is_yuv422 and layout.from_bgr is None:
        raise UnsupportedEncoding(f"encoding to {encoding} needs OpenCV >= 4.7 (this is {cv2.__version__})")
    packed = bgr if layout.from_bgr is None else cv2.cvtColor(bgr, layout.from_bgr)
    rows = np.ascontiguousarray(packed).reshape(height, width * layout.bytes_per_pixel)
    if row_padding:
        rows = np.pad(rows, ((0, 0), (0, row_padding)))
    return rows.tobytes(), rows.shape[1]


def compressed_kind(data: bytes | memoryview, format_field: str = "") -> str:
    """'jpeg' or 'png' for a CompressedImage: from its `format` field, sniffed from the data when that is empty.

    image_transport writes e.g. "jpeg", "png" or "rgb8; jpeg compressed bgr8"; compressedDepth streams are
    16-bit depth maps, not camera frames, and are rejected.
    """
    text = format_field.strip().lower()
    if "compresseddepth" in text:
        raise UnsupportedEncoding(f"compressed format {format_field!r} is a depth stream, not a camera image")
    if not text:
        head = bytes(data[:8])
        return "png" if head.startswith(PNG_MAGIC) else "jpeg"
    for kind, aliases in (("jpeg", ("jpeg", "jpg")), ("png", ("png",))):
        if any(alias in text for alias in aliases):
            return kind
    raise UnsupportedEncoding(f"unsupported compressed format {format_field!r} (supported: jpeg, png)")


def compressed_to_bgr(data: bytes | memoryview, format_field: str = "") -> np.ndarray:
    """HxWx3 BGR uint8 pixels of JPEG or PNG data (mono streams come back as gray BGR)."""
    if len(data) == 0:
        raise EmptyImage(f"empty compressed image (format {format_field!r}, 0 bytes)")
    kind = compressed_kind(data, format_field)
    buffer = np.frombuffer(data, np.uint8)
    _check_stream(kind, bytes(buffer[:8]), bytes(buffer[-JPEG_TRAILER_SLACK:]))
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise CorruptCompressed(f"corrupt {kind} data: the decoder rejected {len(buffer)} bytes")
    return image


def _check_stream(kind: str, head: bytes, tail: bytes) -> None:
    """Reject data that is not the announced stream, and truncated JPEGs.

    libjpeg decodes a truncated JPEG with a warning and gray rows at the bottom; a detector would then
    silently run on half an image, so the end-of-image marker is required.
    """
    magic = JPEG_MAGIC if kind == "jpeg" else PNG_MAGIC
    if not head.startswith(magic):
        raise CorruptCompressed(f"not {kind} data: it starts with {head.hex(' ')}")
    if kind == "jpeg" and JPEG_END not in tail:
        raise CorruptCompressed("truncated jpeg: no end-of-image marker")


def bgr_to_compressed(bgr: np.ndarray, kind: str = "jpeg", quality: int = 90) -> tuple[str, bytes]:
    """(format field, data) of a CompressedImage as image_transport's compressed plugin writes it."""
    if kind not in COMPRESSED_FORMATS:
        raise ValueError(f"compressed kind must be one of {COMPRESSED_FORMATS}, got {kind!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if kind == "jpeg" else []
    ok, encoded = cv2.imencode(".jpg" if kind == "jpeg" else ".png", bgr, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {bgr.shape} image as {kind}")
    return f"bgr8; {kind} compressed bgr8", encoded.tobytes()
