"""The ROS 2 message types of camera bags, with no ROS install: rosbags' Humble store plus vision_msgs 4.x.

rosbags ships the standard ROS 2 messages (sensor_msgs, std_msgs, ...) but not vision_msgs, so the vision_msgs
4.x layout (what Humble, Jazzy and later install) is registered here from its .msg text. Only field names and
types enter a type's RIHS01 hash, so the hashes this store computes, and writes into every bag, equal those of
the real packages (test_bag_typestore checks all of them). The Humble store is the oldest distro the robot runs;
the messages used here have the same layout in every later one.
"""

from __future__ import annotations

import functools

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
DETECTION_ARRAY = "vision_msgs/msg/Detection2DArray"
LABEL_INFO = "vision_msgs/msg/LabelInfo"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)

# vision_msgs 4.x, field by field (the real .msg files without their comments).
VISION_MSGS = {
    "Point2D": "float64 x\nfloat64 y\n",
    "Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "ObjectHypothesis": "string class_id\nfloat64 score\n",
    "ObjectHypothesisWithPose": "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n",
    "Detection2D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox2D bbox\n"
        "string id\n"
    ),
    "Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
    "VisionClass": "uint16 class_id\nstring class_name\n",
    "LabelInfo": "std_msgs/Header header\nvision_msgs/VisionClass[] class_map\nfloat32 threshold\n",
}


@functools.cache
def typestore() -> Typestore:
    """The shared store (built once: registering generates and compiles message classes)."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, f"vision_msgs/msg/{name}"))
    store.register(types)
    return store
