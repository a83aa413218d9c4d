"""The ROS 2 test kit: rclpy plus the test-only vision_msgs (test/ros_interfaces) over real DDS.

Needs `scripts/ros_setup.sh VENV` and `source VENV/yolo_ros_env.sh` before python starts (native
libraries are found through LD_LIBRARY_PATH only); skips itself when that environment is missing.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _ros import DEADLINE_S, LARK_WARNING, domain_id, require_ros

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

# RIHS01 type hashes of the real ROS 2 vision_msgs 4.x messages, taken from the real package's
# rosidl-generated code. They hash field names and types recursively (not comments), so equal
# hashes mean the stand-in has exactly the real layout and talks to nodes built against the real one.
REAL_VISION_MSGS_HASHES = {
    "Point2D": "RIHS01_eab0e83f44ab4de92ceaf76dd7d0e7638f2bdd1d16ffbe16c7a136c48e407247",
    "Pose2D": "RIHS01_b0b5d1d7b4c20dd4fcde3ed1d4b289a919290572007d67a97043814db25d3648",
    "BoundingBox2D": "RIHS01_008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f",
    "ObjectHypothesis": "RIHS01_51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90",
    "ObjectHypothesisWithPose": "RIHS01_41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc",
    "Detection2D": "RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea",
    "Detection2DArray": "RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968",
    "VisionClass": "RIHS01_1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a",
    "LabelInfo": "RIHS01_3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783",
}

# The fake detector: LabelInfo once on a transient-local topic (a late subscriber must still get
# it), detections at 10 Hz (a volatile topic delivers only what is sent after matching). It prints
# "ready" once LabelInfo is out, and exits 0 on SIGTERM through rclpy's signal handler.
# argv[1]: the node namespace, which prefixes the topics.
PUBLISHER = """
import sys

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from vision_msgs.msg import Detection2D, Detection2DArray, LabelInfo, ObjectHypothesisWithPose, VisionClass

from yolo_compress.ros.shutdown import until_shutdown

rclpy.init()
node = rclpy.create_node("fake_detector", namespace=sys.argv[1])
latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
label_pub = node.create_publisher(LabelInfo, "label_info", latched)
det_pub = node.create_publisher(Detection2DArray, "detections", 10)

info = LabelInfo(threshold=0.25, class_map=[VisionClass(class_id=0, class_name="person")])
info.header.frame_id = "camera"
label_pub.publish(info)

hyp = ObjectHypothesisWithPose()
hyp.hypothesis.class_id = "person"
hyp.hypothesis.score = 0.9
det = Detection2D(results=[hyp], id="7")
det.bbox.center.position.x = 320.5
det.bbox.center.position.y = 240.0
det.bbox.size_x = 64.0
det.bbox.size_y = 128.0
msg = Detection2DArray(detections=[det])
msg.header.frame_id = "camera"
node.create_timer(0.1, lambda: det_pub.publish(msg))
print("ready", flush=True)
try:
    with until_shutdown():
        rclpy.spin(node)
finally:
    node.destroy_node()
    rclpy.try_shutdown()
"""


@pytest.fixture(scope="module")
def vision_msgs_msg():
    """vision_msgs.msg with loadable type support, or skip (fail in CI) saying what is missing."""
    require_ros()
    from vision_msgs import msg

    return msg


def test_stand_in_has_real_vision_msgs_layout(vision_msgs_msg):
    from ament_index_python.packages import get_package_share_directory

    # rosidl writes each message's type description with its hash next to the .msg it installs.
    share = Path(get_package_share_directory("vision_msgs")) / "msg"
    got = {}
    for name in REAL_VISION_MSGS_HASHES:
        description = json.loads((share / f"{name}.json").read_text())
        got[name] = next(
            h["hash_string"] for h in description["type_hashes"] if h["type_name"] == f"vision_msgs/msg/{name}"
        )
    assert got == REAL_VISION_MSGS_HASHES


def _wait_ready(proc: subprocess.Popen, deadline: float) -> None:
    """Blocks until the publisher prints "ready", fails if it dies or the deadline passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"publisher exited with {proc.returncode}: {proc.stderr.read()}")
        readable, _, _ = select.select([proc.stdout], [], [], 0.2)
        if readable and proc.stdout.readline().strip() == "ready":
            return
    pytest.fail("publisher not ready before the deadline")


def test_detections_and_label_info_round_trip(vision_msgs_msg, monkeypatch):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    domain = domain_id()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))  # read by rclpy.init() here and in the child
    # Topics of this process too, so that a domain shared by chance with another run mixes nothing.
    namespace = f"/ros_kit_test_{os.getpid()}"
    deadline = time.monotonic() + DEADLINE_S
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Own context: no global rclpy state (or SIGINT handler) left behind for other tests.
    context = rclpy.Context()
    try:
        # Subscribe only after LabelInfo went out, so that receiving it proves transient-local delivery.
        _wait_ready(proc, deadline)
        rclpy.init(context=context)
        assert context.get_domain_id() == domain
        node = rclpy.create_node("kit_probe", namespace=namespace, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        detections, labels = [], []
        node.create_subscription(vision_msgs_msg.Detection2DArray, "detections", detections.append, 10)
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        node.create_subscription(vision_msgs_msg.LabelInfo, "label_info", labels.append, latched)
        while not (detections and labels) and time.monotonic() < deadline and proc.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        assert proc.poll() is None, f"publisher exited with {proc.returncode}: {proc.stderr.read()}"
        assert labels, "no LabelInfo (transient local) from the publisher"
        assert detections, "no Detection2DArray from the publisher"

        # The type hash the publisher announces over DDS is the real vision_msgs one.
        (endpoint,) = node.get_publishers_info_by_topic(f"{namespace}/detections")
        assert str(endpoint.topic_type_hash) == REAL_VISION_MSGS_HASHES["Detection2DArray"]
        node.destroy_node()
    finally:
        context.try_shutdown()
        proc.send_signal(signal.SIGTERM)  # SIGINT may be ignored by children of CI shells
        try:
            proc.wait(timeout=10)
        finally:
            proc.kill()  # no-op once exited; never leave a publisher behind

    info = labels[0]
    assert info.header.frame_id == "camera"
    assert [(c.class_id, c.class_name) for c in info.class_map] == [(0, "person")]
    assert info.threshold == pytest.approx(0.25)

    msg = detections[0]
    assert msg.header.frame_id == "camera"
    assert len(msg.detections) == 1
    det = msg.detections[0]
    assert (det.bbox.center.position.x, det.bbox.center.position.y) == (320.5, 240.0)
    assert (det.bbox.size_x, det.bbox.size_y, det.bbox.center.theta) == (64.0, 128.0, 0.0)
    assert det.id == "7"
    assert len(det.results) == 1
    assert det.results[0].hypothesis.class_id == "person"
    assert det.results[0].hypothesis.score == pytest.approx(0.9)
    assert proc.returncode == 0, proc.stderr.read()
