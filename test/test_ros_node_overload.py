"""Overload: a 60 Hz camera into a model that runs several times slower. Newest-frame semantics keep the
latency of every published detection under two model periods, and the frames it had to skip are counted.
"""

from __future__ import annotations

import array
import os
import time

import numpy as np
import pytest

from _ros import LARK_WARNING, Probe, demo_model, installed_prefix, require_ros, start_detector

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

NAMESPACE = f"/overload_{os.getpid()}"
NODE = f"{NAMESPACE}/yolo_detector"
CAMERA = f"{NAMESPACE}/cam"
INPUT_HZ = 60.0
MEASURE_S = 6.0


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    require_ros()
    log = tmp_path_factory.mktemp("overload_logs") / "node.log"
    # demo cfg at 1280x1280: ~100 ms a frame on 2 quiet cores (640 ran at 42 Hz on a quiet CI machine, too
    # close to the 60 Hz camera to be an overload). The test measures the real period, it does not assume it.
    params = {"model": str(demo_model(1280)), "conf_threshold": 0.9}
    proc = start_detector(installed_prefix(), log, NAMESPACE, params, CAMERA)
    yield proc
    assert proc.stop() == 0, proc.log()


def test_latency_stays_under_two_model_periods_and_drops_are_counted(node):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from yolo_compress.ros.timing_msgs import timing_values

    probe = Probe("overload_probe", NAMESPACE)
    try:
        camera = probe.node.create_publisher(Image, CAMERA, 10)
        arrivals: list[tuple[float, float]] = []  # (received, stamp), both s on the system clock

        def on_detections(msg) -> None:
            arrivals.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

        probe.node.create_subscription(Detection2DArray, f"{NODE}/detections", on_detections, 10)
        timing = probe.collect(DiagnosticArray, f"{NODE}/timing")
        frame = Image(height=240, width=320, encoding="bgr8", step=960)
        frame.data = array.array("B", np.random.default_rng(0).integers(0, 255, 240 * 960, dtype=np.uint8).tobytes())
        sent = 0

        def publish() -> None:
            nonlocal sent
            frame.header.stamp = probe.node.get_clock().now().to_msg()
            camera.publish(frame)
            sent += 1

        probe.node.create_timer(1.0 / INPUT_HZ, publish)
        probe.spin_until(lambda: len(arrivals) >= 3, what="the first detections")
        first = len(arrivals)
        probe.spin_for(MEASURE_S)
        steady = arrivals[first:]
        values = timing_values(timing[-1])
    finally:
        probe.close()

    received, stamps = np.array(steady).T
    periods = np.diff(received)  # in overload the node publishes once per model period
    latency = received - stamps
    input_hz, output_hz = float(values["input_hz"]), float(values["output_hz"])
    assert input_hz > 2 * output_hz, f"not an overload: input {input_hz:.1f} Hz, output {output_hz:.1f} Hz"
    # Compared at the same quantile: on shared cores a model period itself varies with the machine's load.
    for q in (50, 90):
        late, period = np.percentile(latency, q), np.percentile(periods, q)
        assert late < 2 * period, f"latency p{q} {late * 1e3:.0f} ms, model period p{q} {period * 1e3:.0f} ms"
    tail = latency[len(latency) * 2 // 3:]
    assert np.median(tail) < 2 * np.median(periods), "latency grows: frames are queued"
    # Every frame the node received was processed or dropped (at most one still waiting in the slot).
    counts = {key: int(values[key]) for key in ("received", "frames", "dropped", "bad_frames", "errors")}
    assert counts["dropped"] > counts["frames"], counts
    pending = counts["received"] - counts["frames"] - counts["dropped"] - counts["bad_frames"] - counts["errors"]
    assert pending in (0, 1), counts
    assert counts["received"] <= sent
