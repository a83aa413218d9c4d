"""evaluate_bag --live against the real detector node over real DDS: frames out, detections and timing back.

Needs the ROS kit (scripts/ros_setup.sh VENV, then source VENV/yolo_ros_env.sh before python); skips without.
The node is the installed executable started as the launch file starts it (test/_ros.py). It serves the
constant test model in two tiers that differ only in conf_threshold, so the figures that come back prove the
tier really switched: the strict tier (0.95) must drop the 0.9-score box.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from test_bag_bad_input import run
from test_bag_evaluate import constant_bag, exact_contract_model
from test_bag_roundtrip import load_tool

from yolo_compress.bag.images import image_message
from yolo_compress.bag.live import LIVE_KEYS, restamp
from yolo_compress.bag.messages import header, stamp_ns
from yolo_compress.bag.typestore import IMAGE, typestore
from yolo_compress.runtime.tiers import TiersConfig, TierSpec, write_tiers

from _ros import LARK_WARNING, domain_id, installed_prefix, require_ros, start_detector

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A detector node in this process's domain and its own namespace, serving tiers fast (0.25), strict (0.95)."""
    require_ros()
    work = tmp_path_factory.mktemp("live")
    model = exact_contract_model(work)
    specs = {"fast": TierSpec("fast", model, conf_threshold=0.25),
             "strict": TierSpec("strict", model, conf_threshold=0.95)}
    tiers = write_tiers(work / "tiers.yaml", TiersConfig(default="fast", models_dir=work, tiers=specs))
    namespace = f"/bag_live_{os.getpid()}"
    process = start_detector(installed_prefix(), work / "node.log", namespace, {"tiers_file": str(tiers)},
                             f"{namespace}/camera")
    try:
        yield {"tiers": tiers, "node": f"{namespace}/yolo_detector", "process": process}
    finally:
        process.stop()


def test_live_scores_the_node_tier_by_tier(tmp_path, capsys, monkeypatch, node):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id()))  # the node's (node_environment sets the same)
    bag = constant_bag(tmp_path / "bag", frames=4, hz=1.0)
    code, out, err = run(load_tool("evaluate_bag"), capsys, bag, "--tiers", node["tiers"], "--alias", "body=person",
                         "--replay", "measured", "--live", "--node", node["node"], "--out", tmp_path / "out")
    assert node["process"].alive(), node["process"].log()
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    live = report["live"]
    assert list(live) == ["fast", "strict"]
    for row in live.values():
        assert tuple(row) == LIVE_KEYS
        assert row["provider"] == "CPUExecutionProvider" and row["model"].endswith("body.onnx")
        assert 0 <= row["dropped_pct"] < 100 and 0 < row["realtime_hz"] <= 1.0 + 1e-9
        assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"] and row["node_total_ms"] > 0
    # Frame 0 is never answered before it is taken; the strict tier's threshold removes every box.
    assert 0 < live["fast"]["realtime_ap50"] <= 76 / 101 + 1e-9  # recall <= 3/4 at precision 1
    assert live["strict"]["realtime_ap50"] == 0.0
    assert "Live, through the running node" in (tmp_path / "out" / "report.md").read_text()
    assert "fast live: real-time Hz" in out


def test_live_names_a_node_that_is_not_there(tmp_path, capsys, monkeypatch, node):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id()))
    bag = constant_bag(tmp_path / "bag", frames=2, hz=10.0)
    start = time.monotonic()
    code, _, err = run(load_tool("evaluate_bag"), capsys, bag, "--tiers", node["tiers"], "--alias", "body=person",
                       "--replay", "measured", "--live", "--node", "/nobody/yolo_detector", "--live-timeout", "2")
    assert code == 1
    assert "no node /nobody/yolo_detector (is detector_node running in this ROS domain?) after 2 s" in err
    assert time.monotonic() - start < 60


def test_live_says_when_the_node_does_not_take_the_bags_image_type(tmp_path, capsys, monkeypatch, node):
    """The node subscribes raw images (use_compressed false); a CompressedImage bag cannot be played into it."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id()))
    make_bag = load_tool("make_bag")
    assert make_bag.main(["--data", "synthetic:2?size=96", "--compressed", "jpeg", "--out", str(tmp_path / "bag")]) == 0
    code, _, err = run(load_tool("evaluate_bag"), capsys, tmp_path / "bag", "--tiers", node["tiers"],
                       "--replay", "measured", "--live", "--node", node["node"], "--live-timeout", "2",
                       "--classes", "circle", "--alias", "body=circle")
    assert code == 1
    assert "subscribes 0 topics of sensor_msgs/msg/CompressedImage (start it with use_compressed:=true)" in err
    assert f"{node['node'].rsplit('/', 1)[0]}/camera (sensor_msgs/msg/Image)" in err


def test_restamp_rewrites_only_the_header_stamp():
    store = typestore()
    for little_endian in (True, False):
        msg = image_message(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), "bgr8", header(5, "camera"))
        data = bytes(store.serialize_cdr(msg, IMAGE, little_endian=little_endian))
        back = store.deserialize_cdr(restamp(data, 1_700_000_000_123_456_789), IMAGE)
        assert stamp_ns(back.header) == 1_700_000_000_123_456_789
        assert back.header.frame_id == "camera" and bytes(back.data) == bytes(msg.data)
