"""tools/publish_images.py over real DDS: the frames it publishes in each form, bad input, and the README's
no-camera example (publisher -> detector node -> detections)."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from yolo_compress.runtime.image_encoding import compressed_to_bgr, image_data_to_bgr

from _ros import (
    DEADLINE_S,
    LARK_WARNING,
    REPO,
    Probe,
    demo_model,
    installed_prefix,
    node_environment,
    require_ros,
    start_detector,
)
from conftest import shared_path

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

TOOL = REPO / "tools" / "publish_images.py"
NAMESPACE = f"/pub_{os.getpid()}"


def _run_tool(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(TOOL), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=node_environment(installed_prefix()))


def _finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0, err
    return err


@pytest.fixture
def probe():
    require_ros()
    probe = Probe("publish_probe", NAMESPACE)
    yield probe
    probe.close()


def test_synthetic_yuv_frames_with_row_padding(probe):
    from sensor_msgs.msg import Image

    topic = f"{NAMESPACE}/synthetic"
    frames = probe.collect(Image, topic)
    proc = _run_tool("--synthetic", "64x48", "--encoding", "yuv422", "--row-padding", "4", "--rate", "50",
                     "--count", "5", "--wait-subscribers", "1", "--topic", topic, "--frame-id", "cam0")
    probe.spin_until(lambda: len(frames) == 5, what="5 synthetic frames")
    assert "published 5 frames" in _finish(proc)
    first, last = frames[0], frames[-1]
    assert (first.encoding, first.width, first.height, first.step) == ("yuv422", 64, 48, 64 * 2 + 4)
    assert len(first.data) == first.step * first.height and first.header.frame_id == "cam0"
    pixels = [image_data_to_bgr(f.data, f.encoding, f.width, f.height, f.step) for f in (first, last)]
    assert pixels[0].shape == (48, 64, 3) and not np.array_equal(*pixels)  # the frames move


def test_photos_as_jpeg_keep_their_content(probe):
    from sensor_msgs.msg import CompressedImage

    topic = f"{NAMESPACE}/photos"
    frames = probe.collect(CompressedImage, topic + "/compressed")
    photo = shared_path("photos", "dog.jpg")
    # Three frames of one photo: the first may reach the probe before its reader has matched the writer (DDS
    # discovery is not symmetric in time) and is then lost; two arriving still proves the loop.
    proc = _run_tool(str(photo), "--compressed", "jpeg", "--quality", "95", "--count", "3", "--loop", "--rate", "20",
                     "--wait-subscribers", "1", "--topic", topic)
    _finish(proc)
    probe.spin_until(lambda: len(frames) >= 2, what="2 jpeg frames (the photo looped)")
    assert frames[0].format == "bgr8; jpeg compressed bgr8"
    decoded = compressed_to_bgr(frames[0].data, frames[0].format)
    original = cv2.imread(str(photo))
    assert decoded.shape == original.shape
    assert np.abs(decoded.astype(int) - original).mean() < 3  # re-encoded at quality 95


@pytest.mark.parametrize(("args", "words"), [
    (["/nonexistent/folder"], "nonexistent"),
    (["--synthetic", "64by48"], "WIDTHxHEIGHT"),
    (["--synthetic", "65x48", "--encoding", "yuyv"], "even"),
])
def test_bad_input_is_named(args, words):
    require_ros()
    done = subprocess.run([sys.executable, str(TOOL), *args, "--topic", f"{NAMESPACE}/bad"], capture_output=True,
                          text=True, env=node_environment(installed_prefix()), timeout=DEADLINE_S)
    assert done.returncode == 1 and words in done.stderr, done.stderr


def test_readme_no_camera_example_reaches_the_node(probe, tmp_path):
    from vision_msgs.msg import Detection2DArray

    camera = f"{NAMESPACE}/camera/image_raw"
    node = start_detector(installed_prefix(), tmp_path / "node.log", NAMESPACE,
                          {"model": str(demo_model(192)), "conf_threshold": 0.9}, camera)
    try:
        topic = f"{NAMESPACE}/yolo_detector/detections"
        detections = probe.collect(Detection2DArray, topic)
        # Volatile topics deliver only what is sent after matching: wait for the node's publisher first.
        probe.spin_until(lambda: probe.node.count_publishers(topic) > 0, what="the node's detections publisher")
        proc = _run_tool("--synthetic", "320x240", "--rate", "20", "--count", "100", "--topic", camera,
                         "--wait-subscribers", "1")
        probe.spin_until(lambda: len(detections) >= 5, what="detections of the published frames")
        _finish(proc)
        assert detections[0].header.frame_id == "camera"
    finally:
        assert node.stop() == 0, node.log()
