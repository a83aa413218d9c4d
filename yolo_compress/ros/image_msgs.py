"""BGR pixels -> a sensor_msgs Image message (the node's ~/annotated). Incoming frames are read from their
serialized bytes instead (ros.cdr_frames)."""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header


def bgr_to_image(bgr: np.ndarray, header: Header) -> Image:
    """A bgr8 Image message of `bgr` (one copy into the message's buffer)."""
    height, width = bgr.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3)
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(bgr, dtype=np.uint8).data)
    msg.data = data
    return msg
