"""Detections -> vision_msgs (Detection2DArray, LabelInfo), the messages a robot's planner consumes.

vision_msgs 4.x layout: bbox center and size in the input image's pixels; results[0].hypothesis holds the
class *name* as class_id (names survive a tier swap with a different class list, ids would not) and the
confidence as score. LabelInfo carries the id -> name map of the model being served.
"""

from __future__ import annotations

from collections.abc import Sequence

from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, LabelInfo, ObjectHypothesisWithPose, VisionClass

from yolo_compress.runtime.postprocess import Detections


def detections_to_msg(detections: Detections, names: Sequence[str], header: Header) -> Detection2DArray:
    """One Detection2D per detection, best first, each stamped with the image's header."""
    out = Detection2DArray(header=header)
    for box, score, class_id in zip(detections.boxes.tolist(), detections.scores.tolist(),
                                    detections.class_ids.tolist(), strict=True):
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = names[class_id]
        hypothesis.hypothesis.score = score
        detection = Detection2D(header=header, results=[hypothesis])
        x1, y1, x2, y2 = box
        detection.bbox.center.position.x = (x1 + x2) / 2
        detection.bbox.center.position.y = (y1 + y2) / 2
        detection.bbox.size_x = x2 - x1
        detection.bbox.size_y = y2 - y1
        out.detections.append(detection)
    return out


def label_info_msg(names: Sequence[str], threshold: float, header: Header) -> LabelInfo:
    """The class map (id = index in the model's names) and the confidence threshold applied."""
    class_map = [VisionClass(class_id=i, class_name=name) for i, name in enumerate(names)]
    return LabelInfo(header=header, class_map=class_map, threshold=float(threshold))
