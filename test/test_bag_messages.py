"""The bag's message types are the real ROS 2 ones, and boxes survive a trip through vision_msgs exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from test_ros_kit import REAL_VISION_MSGS_HASHES

from yolo_compress.bag.messages import (
    LabeledBoxes,
    boxes_of,
    class_names_of,
    detection_array,
    header,
    label_info,
    stamp_ns,
)
from yolo_compress.bag.typestore import DETECTION_ARRAY, LABEL_INFO, typestore

INTERFACES = Path(__file__).resolve().parent / "ros_interfaces" / "vision_msgs" / "msg"


def test_vision_msgs_hashes_equal_the_real_packages():
    store = typestore()
    got = {name: store.hash_rihs01(f"vision_msgs/msg/{name}") for name in REAL_VISION_MSGS_HASHES}
    assert got == REAL_VISION_MSGS_HASHES


def test_vision_msgs_layout_equals_the_ci_interface_package():
    """The .msg files CI builds the test vision_msgs from (comments and all) give the same field definitions."""
    reference = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for path in sorted(INTERFACES.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"vision_msgs/msg/{path.stem}"))
    reference.register(types)
    names = [f"vision_msgs/msg/{p.stem}" for p in sorted(INTERFACES.glob("*.msg"))]
    assert len(names) == len(REAL_VISION_MSGS_HASHES)
    assert {n: typestore().fielddefs[n] for n in names} == {n: reference.fielddefs[n] for n in names}


def test_standard_image_types_keep_their_humble_and_jazzy_hashes():
    jazzy = get_typestore(Stores.ROS2_JAZZY)
    for msgtype in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "std_msgs/msg/Header"):
        assert typestore().hash_rihs01(msgtype) == jazzy.hash_rihs01(msgtype)


def serialize_roundtrip(msg: object, msgtype: str) -> object:
    store = typestore()
    return store.deserialize_cdr(bytes(store.serialize_cdr(msg, msgtype)), msgtype)


def test_ground_truth_boxes_round_trip_bit_for_bit():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 640, (50, 2)).astype(np.float32)
    sizes = rng.uniform(0.001, 300, (50, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)
    labels = [("person", "car")[i % 2] for i in range(50)]
    difficult = np.arange(50) % 7 == 0
    truth = LabeledBoxes.ground_truth(boxes, labels, difficult)
    msg = serialize_roundtrip(detection_array(truth, header(1_700_000_000_123_456_789, "camera")), DETECTION_ARRAY)
    back = boxes_of(msg)
    assert np.array_equal(back.boxes, boxes.astype(np.float64))
    assert back.labels == tuple(labels)
    assert np.array_equal(back.difficult, difficult)
    assert np.array_equal(back.scores, np.ones(50))
    assert stamp_ns(msg.header) == 1_700_000_000_123_456_789
    assert msg.header.frame_id == "camera"
    det = msg.detections[0]
    assert det.header.stamp == msg.header.stamp
    assert det.bbox.center.theta == 0.0 and det.results[0].pose.pose.orientation.w == 1.0


def test_detections_take_the_best_hypothesis_and_keep_its_score():
    truth = LabeledBoxes(np.array([[10.0, 20.0, 30.0, 60.0]]), ("dog",), np.array([0.625]), np.zeros(1, bool))
    msg = detection_array(truth, header(0, "cam"))
    weaker = typestore().types["vision_msgs/msg/ObjectHypothesisWithPose"](
        hypothesis=typestore().types["vision_msgs/msg/ObjectHypothesis"](class_id="cat", score=0.25),
        pose=msg.detections[0].results[0].pose,
    )
    msg.detections[0].results.insert(0, weaker)
    back = boxes_of(serialize_roundtrip(msg, DETECTION_ARRAY))
    assert back.labels == ("dog",) and back.scores.tolist() == [0.625]
    assert (msg.detections[0].bbox.center.position.x, msg.detections[0].bbox.size_y) == (20.0, 40.0)


def test_empty_ground_truth_is_an_empty_array():
    msg = serialize_roundtrip(detection_array(LabeledBoxes.ground_truth(np.zeros((0, 4)), []), header(5, "c")),
                              DETECTION_ARRAY)
    assert msg.detections == [] and len(boxes_of(msg)) == 0


def test_label_info_maps_ids_to_names():
    msg = serialize_roundtrip(label_info(["person", "bicycle", "car"], header(0, "camera")), LABEL_INFO)
    assert [(c.class_id, c.class_name) for c in msg.class_map] == [(0, "person"), (1, "bicycle"), (2, "car")]
    msg.class_map.reverse()
    assert class_names_of(msg) == ["person", "bicycle", "car"]
