"""What make_bag writes is what real ROS 2 type support reads: the bytes `ros2 bag play` would publish.

rosbag2 is not installable here (no wheel), but playback only hands each stored CDR message to a publisher of
the recorded type, so a bag plays when its messages deserialize with the real rosidl type support and its type
hashes equal the installed packages'. Needs the ROS kit (skips without it, like test_ros_kit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from test_bag_roundtrip import START_NS, make, synthetic

from yolo_compress.bag.writer import CameraTopics

from _ros import LARK_WARNING, require_ros

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)


def real_hash(package: str, name: str) -> str:
    from ament_index_python.packages import get_package_share_directory

    description = json.loads((Path(get_package_share_directory(package)) / "msg" / f"{name}.json").read_text())
    return next(h["hash_string"] for h in description["type_hashes"] if h["type_name"] == f"{package}/msg/{name}")


@pytest.mark.parametrize("compressed", [None, "jpeg"])
def test_bag_messages_deserialize_with_real_type_support(tmp_path, compressed):
    require_ros()
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray, LabelInfo

    dataset = synthetic(3)
    topics = CameraTopics(image="/camera/image_raw" + ("/compressed" if compressed else ""))
    make(tmp_path, "bag", dataset, compressed=compressed, topics=topics)
    real_types = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage,
                  "vision_msgs/msg/Detection2DArray": Detection2DArray, "vision_msgs/msg/LabelInfo": LabelInfo}
    seen: dict[str, list] = {}
    with Reader(tmp_path / "bag") as reader:
        for connection in reader.connections:
            package, _, name = connection.msgtype.split("/")
            assert connection.digest == real_hash(package, name), connection.msgtype
        for connection, bag_ns, data in reader.messages():
            msg = deserialize_message(bytes(data), real_types[connection.msgtype])
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == bag_ns
            seen.setdefault(connection.topic, []).append(msg)
    images, truths = seen[topics.image], seen[topics.ground_truth]
    (labels,) = seen[topics.label_info]
    assert [c.class_name for c in labels.class_map] == list(dataset.names)
    assert images[0].header.stamp.sec * 10**9 + images[0].header.stamp.nanosec == START_NS
    for image, truth, sample in zip(images, truths, dataset, strict=True):
        if compressed is None:
            assert (image.encoding, image.height, image.width, image.step) == ("bgr8", 96, 128, 128 * 3)
            assert np.array_equal(np.asarray(image.data, np.uint8).reshape(96, 128, 3), sample.load_image())
        else:
            assert image.format == "bgr8; jpeg compressed bgr8"
        corners = [(d.bbox.center.position.x - d.bbox.size_x / 2, d.bbox.center.position.y - d.bbox.size_y / 2,
                    d.bbox.center.position.x + d.bbox.size_x / 2, d.bbox.center.position.y + d.bbox.size_y / 2)
                   for d in truth.detections]
        assert np.array_equal(np.array(corners).reshape(-1, 4), sample.boxes.astype(np.float64))
        assert [d.results[0].hypothesis.class_id for d in truth.detections] == [dataset.names[c] for c in
                                                                               sample.classes]
