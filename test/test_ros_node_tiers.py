"""The detector node's tiers over real DDS: swaps under a 30 Hz stream, rejected swaps, parameter checks,
LabelInfo, the annotated image on demand, flat memory over thousands of frames, and no torch in the node.

One node process serves a tiers file whose fast / medium / accurate tiers are copies of one demo model
(so the model path tells which tier serves), plus a corrupt and a missing model for the rejected swaps.
"""

from __future__ import annotations

import array
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _ros import LARK_WARNING, REPO, Probe, demo_model, installed_prefix, require_ros, start_detector, write_tiers_file

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

NAMESPACE = f"/tiers_{os.getpid()}"
NODE = f"{NAMESPACE}/yolo_detector"
CAMERA = f"{NAMESPACE}/cam"
STREAM_HZ = 30.0
TIERS = ("fast", "medium", "accurate")


@pytest.fixture(scope="module")
def tiers_file(tmp_path_factory) -> Path:
    require_ros()
    folder = tmp_path_factory.mktemp("tiers")
    models = {}
    for tier in TIERS:
        models[tier] = folder / f"{tier}.onnx"
        shutil.copyfile(demo_model(192), models[tier])
    models["broken"] = folder / "broken.onnx"
    models["broken"].write_bytes(b"this is not an onnx model")
    models["missing"] = folder / "missing.onnx"
    return write_tiers_file(folder / "tiers.yaml", models)


@pytest.fixture(scope="module")
def node(tiers_file, tmp_path_factory):
    log = tmp_path_factory.mktemp("tiers_logs") / "node.log"
    proc = start_detector(installed_prefix(), log, NAMESPACE, {"tier": "medium", "tiers_file": str(tiers_file)},
                          CAMERA)
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture(scope="module")
def probe(node):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray, LabelInfo

    probe = Probe("tiers_probe", NAMESPACE)
    probe.camera = probe.node.create_publisher(Image, CAMERA, 10)
    probe.detections = probe.collect(Detection2DArray, f"{NODE}/detections")
    probe.timing = probe.collect(DiagnosticArray, f"{NODE}/timing")
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    probe.labels = probe.collect(LabelInfo, f"{NODE}/label_info", latched)
    yield probe
    probe.close()


def _frame(width: int = 320, height: int = 240, seed: int = 0):
    from sensor_msgs.msg import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    msg = Image(height=height, width=width, encoding="bgr8", step=width * 3)
    msg.data = array.array("B", pixels.tobytes())
    msg.header.frame_id = "camera"
    return msg


class Stream:
    """A STREAM_HZ camera on the probe's own timer: frames go out whenever the probe spins."""

    def __init__(self, probe: Probe, hz: float = STREAM_HZ, msg=None) -> None:
        self.probe, self.msg, self.sent = probe, msg or _frame(), 0
        self.timer = probe.node.create_timer(1.0 / hz, self._tick)

    def _tick(self) -> None:
        self.msg.header.stamp = self.probe.node.get_clock().now().to_msg()
        self.probe.camera.publish(self.msg)
        self.sent += 1

    def stop(self) -> None:
        self.probe.node.destroy_timer(self.timer)


def _latest(probe: Probe) -> dict[str, str]:
    from yolo_compress.ros.timing_msgs import timing_values

    return timing_values(probe.timing[-1]) if probe.timing else {}


def _serving(probe: Probe, tier: str) -> bool:
    values = _latest(probe)
    return values.get("tier") == tier and values.get("model", "").endswith(f"{tier}.onnx")


def _more_detections(probe: Probe, count: int, what: str) -> None:
    start = len(probe.detections)
    probe.spin_until(lambda: len(probe.detections) >= start + count, what=f"{count} detections {what}")


def test_serves_the_requested_tier_and_announces_its_classes(probe):
    stream = Stream(probe)
    try:
        _more_detections(probe, 5, "at start")
        assert _serving(probe, "medium"), _latest(probe)
        probe.spin_until(lambda: bool(probe.labels), what="label_info (transient local)")
        info = probe.labels[-1]
        assert [(c.class_id, c.class_name) for c in info.class_map] == [(0, "class_0"), (1, "class_1"), (2, "class_2")]
        assert info.threshold == pytest.approx(0.9)  # the tier's conf_threshold from the tiers file
    finally:
        stream.stop()


def test_tier_swaps_under_a_30hz_stream_keep_serving(probe, node):
    detections_topic = f"{NODE}/detections"
    stream = Stream(probe)
    try:
        _more_detections(probe, 5, "before the swaps")
        (writer,) = probe.node.get_publishers_info_by_topic(detections_topic)
        for tier in ("fast", "accurate", "medium", "fast", "medium"):
            (result,) = probe.set_parameters(NODE, {"tier": tier})
            assert result.successful, result.reason
            probe.spin_until(lambda tier=tier: _serving(probe, tier), what=f"timing reporting tier {tier}")
            _more_detections(probe, 10, f"after the swap to {tier}")
            assert node.alive(), node.log()
        (after,) = probe.node.get_publishers_info_by_topic(detections_topic)
        assert list(after.endpoint_gid) == list(writer.endpoint_gid)  # the same publisher all along
        values = _latest(probe)
        assert int(values["errors"]) == 0 and int(values["bad_frames"]) == 0, values
    finally:
        stream.stop()
    assert "serving tier fast" in node.log()


@pytest.mark.parametrize(("tier", "words"), [
    ("nope", ["unknown tier 'nope'", "fast, medium, accurate"]),
    ("broken", ["broken.onnx"]),
    ("missing", ["missing.onnx", "not found"]),
])
def test_a_bad_tier_is_rejected_with_the_reason_and_the_old_tier_keeps_serving(probe, node, tier, words):
    stream = Stream(probe)
    try:
        _more_detections(probe, 3, "before the bad swap")
        before = _latest(probe)["tier"]
        (result,) = probe.set_parameters(NODE, {"tier": tier})
        assert not result.successful
        for word in words:
            assert word in result.reason, result.reason
        _more_detections(probe, 10, "after the rejected swap")
        assert _serving(probe, before), _latest(probe)
        assert node.alive()
    finally:
        stream.stop()
    assert "rejected tier change" in node.log()


def test_parameters_are_checked_against_ranges_and_the_model(probe):
    from rclpy.parameter import Parameter

    no_classes = Parameter("classes", Parameter.Type.STRING_ARRAY, [])
    checks = [
        ({"conf_threshold": 1.5}, False, "range"),  # rclpy enforces the declared range
        ({"max_detections": 0}, False, "range"),
        ({"use_compressed": True}, False, "read-only"),
        ({"classes": ["giraffe"]}, False, "class_0, class_1, class_2"),
        ({"classes": ["class_1"]}, True, ""),
        ({"classes": no_classes}, True, ""),
        ({"conf_threshold": 0.95}, True, ""),
        ({"conf_threshold": -1.0}, True, ""),
        ({"tier": "auto"}, False, "target_hz"),
    ]
    for values, ok, words in checks:
        results = probe.set_parameters(NODE, values)
        assert all(r.successful for r in results) == ok, (values, [r.reason for r in results])
        assert ok or any(words in r.reason for r in results), (values, [r.reason for r in results])


def test_label_info_follows_the_threshold(probe):
    (result,) = probe.set_parameters(NODE, {"conf_threshold": 0.97})
    assert result.successful, result.reason
    probe.spin_until(lambda: probe.labels and probe.labels[-1].threshold == pytest.approx(0.97),
                     what="label_info with the new threshold")
    (result,) = probe.set_parameters(NODE, {"conf_threshold": -1.0})
    assert result.successful, result.reason
    probe.spin_until(lambda: probe.labels[-1].threshold == pytest.approx(0.9), what="label_info back at the tier's")


def test_annotated_image_is_published_only_when_watched_or_enabled(probe):
    from sensor_msgs.msg import Image

    stream = Stream(probe)
    try:
        _more_detections(probe, 10, "unwatched")
        assert int(_latest(probe)["annotated"]) == 0
        images = probe.collect(Image, f"{NODE}/annotated", 2)
        probe.spin_until(lambda: len(images) >= 3, what="annotated images once subscribed")
        image = images[-1]
        assert (image.encoding, image.width, image.height, image.step) == ("bgr8", 320, 240, 960)
        assert image.header.frame_id == "camera"
        assert int(_latest(probe)["annotated"]) > 0
    finally:
        stream.stop()


def test_memory_stays_flat_over_thousands_of_frames(probe, node):
    """RSS of the node after 500 small frames and after 3000 more: no growth beyond allocator noise."""
    msg = _frame(64, 48)

    def received() -> int:
        return int(_latest(probe).get("received", 0))

    def send_until_received(count: int, budget_s: float) -> None:
        """Pairs of frames (faster than the node: drops are exercised too) until it received `count` more."""
        target, deadline = received() + count, time.monotonic() + budget_s
        while received() < target and time.monotonic() < deadline:
            for _ in range(2):
                msg.header.stamp = probe.node.get_clock().now().to_msg()
                probe.camera.publish(msg)
            probe.spin_for(0.002)

    start = len(probe.detections)
    probe.send_until(probe.camera, msg, lambda: len(probe.detections) > start, "the first small frame")
    send_until_received(500, 20)
    warm, base = _rss_kb(node.pid), _latest(probe)
    send_until_received(3000, 40)
    probe.spin_for(0.5)
    values = _latest(probe)
    grown_kb = _rss_kb(node.pid) - warm
    assert int(values["received"]) - int(base["received"]) >= 2000, (base, values)
    assert int(values["frames"]) - int(base["frames"]) >= 200, (base, values)
    assert grown_kb < 8 * 1024, f"RSS grew {grown_kb} kB over {values['received']} frames"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_counters_add_up(probe):
    from yolo_compress.ros.timing_msgs import timing_values

    stream = Stream(probe)
    try:
        _more_detections(probe, 5, "for the counters")
    finally:
        stream.stop()
    seen = len(probe.timing)
    probe.spin_until(lambda: any(_idle(t) for t in probe.timing[seen:]), what="an idle report after the stream")
    idle = next(t for t in probe.timing[seen:] if _idle(t))
    values = {k: int(v) for k, v in timing_values(idle).items() if k in ("received", "frames", "dropped",
                                                                           "bad_frames", "errors")}
    assert values["received"] == values["frames"] + values["dropped"] + values["bad_frames"] + values["errors"], values


def _idle(msg) -> bool:
    """A once-a-second report sent while no frame came (no frame's header): every frame before it is accounted for."""
    return msg.header.frame_id == ""


def test_the_running_node_never_loaded_torch(node):
    maps = Path(f"/proc/{node.pid}/maps").read_text()
    assert "libtorch" not in maps
    modules = ["yolo_compress.ros.detector_node", "yolo_compress.ros.image_publisher", "yolo_compress.ros.auto_tier",
               "yolo_compress.runtime.serving", "yolo_compress.runtime.tiers", "yolo_compress.runtime.image_encoding"]
    code = f"import sys; import {', '.join(modules)}; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
