"""Camera frames <-> sensor_msgs/Image and CompressedImage messages of a bag.

The pixel conversions are the node's own (`yolo_compress.runtime.image_encoding`), so a bag is decoded exactly as
the robot decodes the same message; this module only moves bytes between those functions and rosbags' message
objects. JPEG and PNG files go into CompressedImage byte for byte: re-encoding would change the pixels the labels
and the AP were made on.
"""

from __future__ import annotations

import numpy as np

from yolo_compress.bag.typestore import COMPRESSED_IMAGE, IMAGE, typestore
from yolo_compress.runtime import image_encoding

JPEG_QUALITY = 95  # image_transport's compressed plugin default, for frames that are not JPEG files already


def image_message(bgr: np.ndarray, encoding: str, header: object) -> object:
    """sensor_msgs/Image of a BGR frame in `encoding` (any encoding the node reads)."""
    data, step = image_encoding.bgr_to_image_data(bgr, encoding)
    height, width = bgr.shape[:2]
    return typestore().types[IMAGE](header=header, height=height, width=width, encoding=encoding,
                                    is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8))


def compressed_message(kind: str, header: object, bgr: np.ndarray | None = None, data: bytes | None = None) -> object:
    """sensor_msgs/CompressedImage in `kind` ('jpeg' or 'png'): of a file's own bytes `data`, else of `bgr`
    encoded as image_transport does."""
    if kind not in image_encoding.COMPRESSED_FORMATS:
        raise ValueError(f"compressed format must be one of {image_encoding.COMPRESSED_FORMATS}, got {kind!r}")
    if data is None:
        fmt, data = image_encoding.bgr_to_compressed(bgr, kind, JPEG_QUALITY)
    else:
        fmt = f"bgr8; {kind} compressed bgr8"  # what image_transport writes for a colour stream
    return typestore().types[COMPRESSED_IMAGE](header=header, format=fmt, data=np.frombuffer(data, np.uint8))


def to_bgr(msg: object, msgtype: str) -> np.ndarray:
    """The frame of an Image or CompressedImage message as BGR uint8, converted as the node converts it.

    Raises image_encoding.ImageEncodingError (unknown encoding, sizes that disagree, corrupt JPEG).
    """
    if msgtype == COMPRESSED_IMAGE:
        return image_encoding.compressed_to_bgr(msg.data, msg.format)
    return image_encoding.image_data_to_bgr(
        msg.data, msg.encoding, int(msg.width), int(msg.height), int(msg.step), bool(msg.is_bigendian)
    )
