"""tier:=auto over real DDS: the node measures its three tiers on this machine, serves the most accurate one that
holds target_hz, moves one tier down when the output rate stays below a raised target, and back up when a
lowered target leaves room; each move is in the log and on ~/timing.

The tiers are the demo cfg at 192, 384 and 640 pixels (about 3x apart in speed); targets are derived from the
rates the node itself measured, so the test holds on a fast or a loaded machine alike.
"""

from __future__ import annotations

import array
import math
import os

import numpy as np
import pytest

from yolo_compress.ros.auto_tier import initial_choice

from _ros import LARK_WARNING, Probe, demo_model, installed_prefix, require_ros, start_detector, write_tiers_file

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

NAMESPACE = f"/auto_{os.getpid()}"
NODE = f"{NAMESPACE}/yolo_detector"
CAMERA = f"{NAMESPACE}/cam"
SIZES = {"fast": 192, "medium": 384, "accurate": 640}
START_TARGET_HZ = 2.0
MOVE_DEADLINE_S = 40.0  # settle + hold (doubled when returning to a tier left before) + loading, on busy cores


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    require_ros()
    folder = tmp_path_factory.mktemp("auto")
    tiers = write_tiers_file(folder / "tiers.yaml", {tier: demo_model(size) for tier, size in SIZES.items()})
    params = {"tier": "auto", "target_hz": START_TARGET_HZ, "tiers_file": str(tiers)}
    proc = start_detector(installed_prefix(), folder / "node.log", NAMESPACE, params, CAMERA)
    yield proc
    assert proc.stop() == 0, proc.log()


def test_auto_tier_picks_then_moves_down_and_up(node):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from yolo_compress.ros.timing_msgs import timing_values

    probe = Probe("auto_probe", NAMESPACE)
    try:
        timing = probe.collect(DiagnosticArray, f"{NODE}/timing")

        def latest() -> dict[str, str]:
            return timing_values(timing[-1]) if timing else {}

        probe.spin_until(lambda: latest().get("tier_rates"), timeout=60, what="the auto tier's start-up report")
        start = latest()
        rates = {tier: float(hz) for tier, hz in (item.split("=") for item in start["tier_rates"].split(","))}
        assert list(rates) == list(SIZES) and rates["fast"] > rates["medium"] > rates["accurate"] > 0, rates
        expected, _ = initial_choice(list(SIZES), rates, START_TARGET_HZ)
        assert start["auto"] == "true" and start["tier"] == expected, start
        assert "measured" in start["auto_event"]

        # A camera a bit faster than any target below, so a shortfall is the model's, not the input's.
        raised = math.sqrt(rates[expected] * rates[_faster(expected)])  # between the tier and the next faster one
        camera = probe.node.create_publisher(Image, CAMERA, 10)
        frame = Image(height=240, width=320, encoding="bgr8", step=960)
        frame.data = array.array("B", np.full(240 * 960, 90, np.uint8).tobytes())

        def publish() -> None:
            frame.header.stamp = probe.node.get_clock().now().to_msg()
            camera.publish(frame)

        probe.node.create_timer(1.0 / (1.5 * raised), publish)
        (result,) = probe.set_parameters(NODE, {"target_hz": raised})
        assert result.successful, result.reason
        probe.spin_until(lambda: latest().get("tier") != expected, MOVE_DEADLINE_S, f"a move down from {expected}")
        moved = latest()
        assert moved["tier"] == _faster(expected), moved
        assert f"{expected} -> {moved['tier']}" in moved["auto_event"] and "below target" in moved["auto_event"]

        # Well under the slower tier's isolated rate: the fast camera stream itself takes CPU from the node (on a
        # quiet machine the 640 tier measured 63 Hz alone but served 28 Hz under a 155 Hz stream), so a target
        # of a third of it left the move back up to chance.
        (result,) = probe.set_parameters(NODE, {"target_hz": rates[expected] / 6})
        assert result.successful, result.reason
        probe.spin_until(lambda: latest().get("tier") == expected, MOVE_DEADLINE_S, f"a move back up to {expected}")
        assert "far above" in latest()["auto_event"], latest()

        # A rejected change leaves the auto tier running.
        (result,) = probe.set_parameters(NODE, {"tier": "nope"})
        assert not result.successful and "unknown tier 'nope'" in result.reason
        seen = len(timing)
        probe.spin_until(lambda: len(timing) > seen + 3, what="timing after the rejected change")
        assert latest()["auto"] == "true" and latest()["tier"] == expected, latest()
    finally:
        probe.close()
    log = node.log()
    assert "auto tier: measured" in log and "auto tier: moving" in log


def _faster(tier: str) -> str:
    order = list(SIZES)
    return order[max(order.index(tier) - 1, 0)]
