"""Boxes and class maps <-> vision_msgs messages, as the node publishes them and as ground truth travels in a bag.

The convention is the node's (DESIGN.md): bbox center and full size in image pixels, one hypothesis per box
whose class_id is the class *name*. Corner boxes survive the trip bit for bit: from float32 corners the float64
center and size are exact, and so is the way back, so AP on a bag equals AP on the files it was made from.
Ground truth that evaluation must ignore (VOC `difficult`, COCO `iscrowd`) is marked by the detection id
"difficult", a field that ground truth has no other use for (on the node's output it is a tracker id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from yolo_compress.bag.typestore import DETECTION_ARRAY, LABEL_INFO, typestore

NS_PER_S = 1_000_000_000
DIFFICULT_ID = "difficult"


@dataclass(frozen=True, eq=False)
class LabeledBoxes:
    """Boxes of one image: corners [K,4] x1,y1,x2,y2 (float64 px), a class name, a score and a difficult flag
    per box."""

    boxes: np.ndarray
    labels: tuple[str, ...]
    scores: np.ndarray
    difficult: np.ndarray

    @classmethod
    def ground_truth(
        cls, boxes: np.ndarray, labels: Sequence[str], difficult: np.ndarray | None = None
    ) -> LabeledBoxes:
        """Ground truth: every box has score 1; `difficult` (default none) marks boxes evaluation ignores."""
        flags = np.zeros(len(labels), bool) if difficult is None else np.asarray(difficult, bool).reshape(-1)
        return cls(np.asarray(boxes, np.float64).reshape(-1, 4), tuple(labels), np.ones(len(labels)), flags)

    def __len__(self) -> int:
        return len(self.labels)


def header(stamp_ns: int, frame_id: str) -> object:
    """std_msgs/Header of a message stamped `stamp_ns` (ns since the epoch)."""
    types = typestore().types
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec, nanosec), frame_id=frame_id)


def stamp_ns(msg_header: object) -> int:
    """A header's stamp in ns."""
    return int(msg_header.stamp.sec) * NS_PER_S + int(msg_header.stamp.nanosec)


def detection_array(boxes: LabeledBoxes, msg_header: object) -> object:
    """vision_msgs/Detection2DArray of `boxes`; every detection carries the array's header."""
    types = typestore().types
    detections = []
    rows = zip(boxes.boxes.tolist(), boxes.labels, boxes.scores.tolist(), boxes.difficult.tolist(), strict=True)
    for (x1, y1, x2, y2), label, score, difficult in rows:
        center = types["vision_msgs/msg/Pose2D"](types["vision_msgs/msg/Point2D"]((x1 + x2) / 2, (y1 + y2) / 2), 0.0)
        hypothesis = types["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=types["vision_msgs/msg/ObjectHypothesis"](class_id=label, score=score), pose=_no_pose()
        )
        detections.append(
            types["vision_msgs/msg/Detection2D"](
                header=msg_header,
                results=[hypothesis],
                bbox=types["vision_msgs/msg/BoundingBox2D"](center=center, size_x=x2 - x1, size_y=y2 - y1),
                id=DIFFICULT_ID if difficult else "",
            )
        )
    return types[DETECTION_ARRAY](header=msg_header, detections=detections)


def boxes_of(msg: object) -> LabeledBoxes:
    """The boxes of a Detection2DArray (a detection without results keeps an empty class name)."""
    corners, labels, scores, difficult = [], [], [], []
    for det in msg.detections:
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        half_w, half_h = det.bbox.size_x / 2, det.bbox.size_y / 2
        corners.append((cx - half_w, cy - half_h, cx + half_w, cy + half_h))
        best = max(det.results, key=lambda r: r.hypothesis.score, default=None)
        labels.append(best.hypothesis.class_id if best else "")
        scores.append(best.hypothesis.score if best else 0.0)
        difficult.append(det.id == DIFFICULT_ID)
    return LabeledBoxes(np.asarray(corners, np.float64).reshape(-1, 4), tuple(labels), np.asarray(scores, np.float64),
                        np.asarray(difficult, bool))


def label_info(class_names: Sequence[str], msg_header: object, threshold: float = 0.0) -> object:
    """vision_msgs/LabelInfo mapping id i to class_names[i]: which classes the boxes beside it are about."""
    types = typestore().types
    class_map = [types["vision_msgs/msg/VisionClass"](class_id=i, class_name=n) for i, n in enumerate(class_names)]
    return types[LABEL_INFO](header=msg_header, class_map=class_map, threshold=threshold)


def class_names_of(msg: object) -> list[str]:
    """Class names of a LabelInfo, in class-id order."""
    return [c.class_name for c in sorted(msg.class_map, key=lambda c: c.class_id)]


def _no_pose() -> object:
    """The default PoseWithCovariance (identity orientation, zero covariance): 2D boxes have no 3D pose."""
    types = typestore().types
    pose = types["geometry_msgs/msg/Pose"](
        types["geometry_msgs/msg/Point"](0.0, 0.0, 0.0), types["geometry_msgs/msg/Quaternion"](0.0, 0.0, 0.0, 1.0)
    )
    return types["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36))
