"""sensor_msgs Image / CompressedImage <-> BGR pixels, through the ROS-free runtime.image_encoding.

The message's `data` (an array.array after deserialization) is read in place through the buffer protocol,
so a bgr8 frame reaches the detector without a copy.
"""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from yolo_compress.runtime.image_encoding import compressed_to_bgr, image_data_to_bgr


def image_to_bgr(msg: Image) -> np.ndarray:
    """HxWx3 BGR pixels of a raw image message (ImageEncodingError names what is wrong with it)."""
    return image_data_to_bgr(msg.data, msg.encoding, msg.width, msg.height, msg.step, bool(msg.is_bigendian))


def compressed_to_bgr_image(msg: CompressedImage) -> np.ndarray:
    """HxWx3 BGR pixels of a JPEG/PNG CompressedImage message."""
    return compressed_to_bgr(msg.data, msg.format)


def bgr_to_image(bgr: np.ndarray, header: Header) -> Image:
    """A bgr8 Image message of `bgr` (one copy into the message's buffer)."""
    height, width = bgr.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3)
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(bgr, dtype=np.uint8).data)
    msg.data = data
    return msg
