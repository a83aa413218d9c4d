"""Detections -> vision_msgs (Detection2DArray as CDR bytes, LabelInfo), the messages a robot's planner consumes.

vision_msgs 4.x layout: bbox center and size in the input image's pixels; results[0].hypothesis holds the
class *name* as class_id (names survive a tier swap with a different class list, ids would not) and the
confidence as score. LabelInfo carries the id -> name map of the model being served.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo, VisionClass

from yolo_compress.ros.cdr_frames import ENCAPSULATION_BYTES
from yolo_compress.runtime.postprocess import Detections


def detections_cdr(detections: Detections, names: Sequence[str], header: Header) -> bytes:
    """The serialized Detection2DArray (one Detection2D per detection, best first, each stamped with the
    image's header), ready for Publisher.publish.

    Why not build the message and let rclpy serialize it: with ten people in view, building the nested
    Python messages took 0.17 ms and rclpy's conversion another 0.06 ms per frame (every field set through
    a type-checking property), against 0.05 ms for these bytes. The layout is the CDR of cdr_frames.py;
    tests read the bytes back with rclpy's deserialize_message.
    """
    writer = _CdrWriter()
    writer.header(header)
    writer.u32(len(detections))
    for (x1, y1, x2, y2), score, class_id in zip(detections.boxes.tolist(), detections.scores.tolist(),
                                                 detections.class_ids.tolist(), strict=True):
        writer.header(header)
        writer.u32(1)  # results: one hypothesis
        writer.string(names[class_id])
        writer.f64(score, *_IDENTITY_POSE_WITH_COVARIANCE)
        writer.f64((x1 + x2) / 2, (y1 + y2) / 2, 0.0, x2 - x1, y2 - y1)  # bbox: center x, y, theta, size
        writer.string("")  # id
    return writer.bytes()


# geometry_msgs/PoseWithCovariance at its defaults: position 0, orientation (0, 0, 0, 1), covariance 0
_IDENTITY_POSE_WITH_COVARIANCE = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, *([0.0] * 36))


class _CdrWriter:
    """Little-endian CDR, each value aligned to its size counted from the end of the encapsulation header."""

    def __init__(self) -> None:
        self._buf = bytearray(b"\x00\x01\x00\x00")  # CDR_LE, no options

    def _align(self, size: int) -> None:
        self._buf += bytes(-(len(self._buf) - ENCAPSULATION_BYTES) % size)

    def u32(self, value: int) -> None:
        self._align(4)
        self._buf += struct.pack("<I", value)

    def f64(self, *values: float) -> None:
        self._align(8)
        self._buf += struct.pack(f"<{len(values)}d", *values)

    def string(self, text: str) -> None:
        data = text.encode() + b"\x00"
        self.u32(len(data))
        self._buf += data

    def header(self, header: Header) -> None:
        self._align(4)
        self._buf += struct.pack("<iI", header.stamp.sec, header.stamp.nanosec)
        self.string(header.frame_id)

    def bytes(self) -> bytes:
        return bytes(self._buf)


def label_info_msg(names: Sequence[str], threshold: float, header: Header) -> LabelInfo:
    """The class map (id = index in the model's names) and the confidence threshold applied."""
    class_map = [VisionClass(class_id=i, class_name=name) for i, name in enumerate(names)]
    return LabelInfo(header=header, class_map=class_map, threshold=float(threshold))
