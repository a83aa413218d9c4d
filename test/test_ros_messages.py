"""Message conversion with the real ROS 2 message classes (no DDS traffic): detections, label info, timing,
the annotated image; and the parameter table declared on a real rclpy node."""

from __future__ import annotations

import math

import numpy as np
import pytest

from yolo_compress.runtime.postprocess import Detections

from _ros import LARK_WARNING, domain_id, require_ros

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)


@pytest.fixture(autouse=True)
def _ros():
    require_ros()


def _header(frame_id: str = "camera"):
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = 1700000000, 123456789
    return header


def _detections_msg(detections, names, header):
    """The CDR bytes read back by rclpy's own deserializer."""
    from rclpy.serialization import deserialize_message
    from vision_msgs.msg import Detection2DArray

    from yolo_compress.ros.detection_msgs import detections_cdr

    return deserialize_message(detections_cdr(detections, names, header), Detection2DArray)


def test_detections_become_detection2d_in_image_pixels():
    detections = Detections(boxes=np.array([[10, 20, 50, 100], [0.5, 1.5, 2.5, 3.5]], np.float32),
                            scores=np.array([0.9, 0.3], np.float32), class_ids=np.array([1, 0]))
    msg = _detections_msg(detections, ["person", "car"], _header())
    assert msg.header.frame_id == "camera" and msg.header.stamp.nanosec == 123456789
    first, second = msg.detections
    assert (first.bbox.center.position.x, first.bbox.center.position.y, first.bbox.size_x, first.bbox.size_y) == (
        30.0, 60.0, 40.0, 80.0)
    assert first.bbox.center.theta == 0.0 and first.header.frame_id == "camera" and first.id == ""
    assert [r.hypothesis.class_id for d in msg.detections for r in d.results] == ["car", "person"]
    assert first.results[0].hypothesis.score == pytest.approx(0.9)
    assert (second.bbox.center.position.x, second.bbox.size_y) == (1.5, 2.0)
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    assert _detections_msg(empty, ["person"], _header()).detections == []


def test_detection_bytes_equal_what_rclpy_serializes():
    """Against rclpy's serializer of the same message built field by field, over frame ids and class names of
    every length modulo the alignments (1..8), so no padding rule goes untested: the same length, and read
    back by rclpy the same message (bytes equal but for the padding, which rclpy leaves uninitialized)."""
    from rclpy.serialization import deserialize_message, serialize_message
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from yolo_compress.ros.detection_msgs import detections_cdr

    rng = np.random.default_rng(0)
    for length in range(1, 9):
        names = ["p" * length, "ü" * length]
        header = _header("c" * (length + 3))
        count = int(rng.integers(0, 5))
        boxes = rng.uniform(0, 600, (count, 4)).astype(np.float32)
        detections = Detections(boxes, rng.uniform(0, 1, count).astype(np.float32), rng.integers(0, 2, count))
        reference = Detection2DArray(header=header)
        for (x1, y1, x2, y2), score, class_id in zip(boxes.tolist(), detections.scores.tolist(),
                                                     detections.class_ids.tolist(), strict=True):
            hypothesis = ObjectHypothesisWithPose()
            hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = names[class_id], score
            detection = Detection2D(header=header, results=[hypothesis])
            detection.bbox.center.position.x, detection.bbox.center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
            detection.bbox.size_x, detection.bbox.size_y = x2 - x1, y2 - y1
            reference.detections.append(detection)
        ours = detections_cdr(detections, names, header)
        assert len(ours) == len(serialize_message(reference)), length
        assert deserialize_message(ours, Detection2DArray) == reference, length


def test_label_info_maps_ids_to_names():
    from yolo_compress.ros.detection_msgs import label_info_msg

    info = label_info_msg(["person", "car"], 0.4, _header())
    assert [(c.class_id, c.class_name) for c in info.class_map] == [(0, "person"), (1, "car")]
    assert info.threshold == pytest.approx(0.4)


def test_timing_values_are_formatted_and_read_back():
    from diagnostic_msgs.msg import DiagnosticStatus

    from yolo_compress.ros.timing_msgs import timing_msg, timing_values

    values = {"tier": "fast", "total_ms": 3.14159, "latency_ms": math.nan, "auto": False, "dropped": 7}
    msg = timing_msg(_header("cam"), "/yolo_detector: detector", "warn", "bad frame: x", "CPU", values)
    status = msg.status[0]
    assert status.level == DiagnosticStatus.WARN and status.message == "bad frame: x" and status.hardware_id == "CPU"
    assert msg.header.frame_id == "cam"
    assert timing_values(msg) == {"tier": "fast", "total_ms": "3.142", "latency_ms": "unknown", "auto": "false",
                                  "dropped": "7"}


def test_annotated_image_message_reads_back_through_the_serialized_path():
    from rclpy.serialization import serialize_message

    from yolo_compress.ros.cdr_frames import parse_image
    from yolo_compress.ros.image_msgs import bgr_to_image

    bgr = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    msg = bgr_to_image(bgr, _header())
    assert (msg.encoding, msg.width, msg.height, msg.step, len(msg.data)) == ("bgr8", 6, 4, 18, 72)
    np.testing.assert_array_equal(parse_image(serialize_message(msg)).to_bgr(), bgr)


def test_parameters_are_declared_with_descriptors_and_read_as_settings():
    import rclpy
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import Parameter

    from yolo_compress.ros.parameters import PARAMETERS, declare_parameters

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id())
    try:
        overrides = [Parameter("tier", value="fast"), Parameter("classes", value=["person", "car"]),
                     Parameter("target_hz", value=12.5)]
        node = rclpy.create_node("param_probe", context=context, parameter_overrides=overrides)
        settings = declare_parameters(node)
        assert (settings.tier, settings.classes, settings.target_hz, settings.providers) == (
            "fast", ("person", "car"), 12.5, ())
        assert settings.conf_threshold == -1.0 and settings.max_detections == 100 and not settings.use_compressed
        descriptors = {d.name: d for d in node.describe_parameters([p.name for p in PARAMETERS])}
        assert all(d.description for d in descriptors.values())
        conf = descriptors["conf_threshold"].floating_point_range[0]
        assert (conf.from_value, conf.to_value) == (-1.0, 1.0)
        limit = descriptors["max_detections"].integer_range[0]
        assert (limit.from_value, limit.to_value) == (1, 10000)
        assert descriptors["use_compressed"].read_only
        assert descriptors["providers"].type == ParameterType.PARAMETER_STRING_ARRAY
        changed = settings.with_changes({"conf_threshold": 0.5, "classes": None})
        assert (changed.conf_threshold, changed.classes, changed.tier) == (0.5, (), "fast")
        node.destroy_node()
    finally:
        context.try_shutdown()
