"""The detector node over real DDS on real photos: every encoding gives the runtime's own detections; bad frames
are counted and named, and the node keeps serving.

Two node processes (raw `image` and `image/compressed`), both the installed executable with the real
Yolo-Fastest 1.1 model; the expected detections come from the runtime Detector in this process.
"""

from __future__ import annotations

import array
import itertools
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.image_encoding import ENCODINGS, bgr_to_image_data

from _ros import LARK_WARNING, Probe, installed_prefix, require_ros, start_detector
from conftest import shared_path

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

PHOTOS = ("dog.jpg", "person.jpg", "horses.jpg")
NAMESPACE = f"/enc_{os.getpid()}"
NODE = f"{NAMESPACE}/yolo_detector"
RAW_TOPIC, COMPRESSED_TOPIC = f"{NAMESPACE}/cam", f"{NAMESPACE}/zcam"
_ids = itertools.count()


@pytest.fixture(scope="module")
def model(exported_yolo_fastest) -> Path:
    return exported_yolo_fastest("yolo-fastest-1.1")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """The photos cropped to an even width (YUV 4:2:2 packs pixel pairs)."""
    images = {name: cv2.imread(str(shared_path("photos", name))) for name in PHOTOS}
    return {name: np.ascontiguousarray(image[:, : image.shape[1] // 2 * 2]) for name, image in images.items()}


@pytest.fixture(scope="module")
def nodes(model, tmp_path_factory):
    """(raw node, compressed node) serving `model` at the runtime's defaults; stopped after the module."""
    require_ros()
    logs = tmp_path_factory.mktemp("encodings_logs")
    prefix = installed_prefix()
    raw = start_detector(prefix, logs / "raw.log", NAMESPACE, {"model": str(model)}, RAW_TOPIC)
    compressed = start_detector(prefix, logs / "compressed.log", f"{NAMESPACE}/z",
                                {"model": str(model), "use_compressed": True}, COMPRESSED_TOPIC)
    yield raw, compressed
    for node in (raw, compressed):
        assert node.stop() == 0, node.log()


@pytest.fixture(scope="module")
def probe(nodes):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray

    probe = Probe("encodings_probe", NAMESPACE)
    probe.raw_pub = probe.node.create_publisher(Image, RAW_TOPIC, 10)
    probe.compressed_pub = probe.node.create_publisher(CompressedImage, COMPRESSED_TOPIC + "/compressed", 10)
    probe.detections = probe.collect(Detection2DArray, f"{NODE}/detections")
    probe.compressed_detections = probe.collect(Detection2DArray, f"{NAMESPACE}/z/yolo_detector/detections")
    probe.timing = probe.collect(DiagnosticArray, f"{NODE}/timing")
    probe.compressed_timing = probe.collect(DiagnosticArray, f"{NAMESPACE}/z/yolo_detector/timing")
    yield probe
    probe.close()


def _raw_msg(bgr: np.ndarray, encoding: str, padding: int, frame_id: str):
    from sensor_msgs.msg import Image

    data, step = bgr_to_image_data(bgr, encoding, row_padding=padding)
    msg = Image(height=bgr.shape[0], width=bgr.shape[1], encoding=encoding, is_bigendian=0, step=step)
    msg.data = array.array("B", data)
    msg.header.frame_id = frame_id
    return msg


def _compressed_msg(data: bytes, fmt: str, frame_id: str):
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    msg.header.frame_id = frame_id
    return msg


def _send_and_receive(probe: Probe, publisher, msg, received: list):
    """Publish `msg` until detections stamped with its frame_id come back; those detections."""
    frame_id = msg.header.frame_id

    def answered():
        return any(m.header.frame_id == frame_id for m in received)

    probe.send_until(publisher, msg, answered, f"frame {frame_id}")
    return next(m for m in received if m.header.frame_id == frame_id)


def _problem_report(probe: Probe, publisher, msg, timing: list) -> dict[str, str]:
    """Publish a bad frame until ~/timing reports on it (same stamp); that report's values."""
    from yolo_compress.ros.timing_msgs import timing_values

    probe.send_until(publisher, msg, lambda: any(_stamp(t) == _stamp(msg) for t in timing), "a bad frame")
    return timing_values(next(t for t in timing if _stamp(t) == _stamp(msg)))


def _as_rows(msg) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    rows = []
    for det in msg.detections:
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        rows.append((det.results[0].hypothesis.class_id, det.results[0].hypothesis.score,
                     (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return rows


def _as_rows_of(detections, names) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    return [(names[c], float(s), tuple(float(v) for v in b))
            for b, s, c in zip(detections.boxes, detections.scores, detections.class_ids, strict=True)]


def _assert_same(msg, expected, names) -> None:
    """The message holds exactly the runtime's detections (order, class names, scores, boxes)."""
    got, want = _as_rows(msg), _as_rows_of(expected, names)
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=0, atol=1e-6)
    got_boxes, want_boxes = (np.array([row[2] for row in rows]).reshape(-1, 4) for rows in (got, want))
    np.testing.assert_allclose(got_boxes, want_boxes, rtol=0, atol=1e-3)


def _reference(bgr: np.ndarray, encoding: str, padding: int) -> np.ndarray:
    """What the runtime alone is given for the same frame: the photo, its gray version, or its YUV round trip."""
    if encoding == "mono8":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)  # the runtime takes gray frames as they are
    if ENCODINGS[encoding].is_yuv422:
        data, step = bgr_to_image_data(bgr, encoding, row_padding=padding)
        code = cv2.COLOR_YUV2BGR_UYVY if encoding in ("yuv422", "uyvy") else cv2.COLOR_YUV2BGR_YUYV
        packed = np.frombuffer(data, np.uint8).reshape(bgr.shape[0], step)[:, : bgr.shape[1] * 2]
        return cv2.cvtColor(np.ascontiguousarray(packed).reshape(bgr.shape[0], bgr.shape[1], 2), code)
    return bgr


CASES = [(encoding, 0 if encoding == "bgr8" else 6) for encoding in ENCODINGS] + [("bgr8", 12)]


@pytest.mark.parametrize(("encoding", "padding"), CASES, ids=[f"{e}-pad{p}" for e, p in CASES])
def test_every_encoding_gives_the_runtimes_detections(probe, model, photos, encoding, padding):
    detector = Detector(model)
    for name, bgr in photos.items():
        msg = _raw_msg(bgr, encoding, padding, f"{name}:{encoding}:{padding}:{next(_ids)}")
        got = _send_and_receive(probe, probe.raw_pub, msg, probe.detections)
        _assert_same(got, detector.detect(_reference(bgr, encoding, padding)).detections, detector.names)


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_yuv_frames_find_what_the_photo_shows(probe, model, photos, encoding):
    """Chroma subsampling changes the pixels a little; the confident objects of the photo are all still found."""
    detector = Detector(model)
    for name, bgr in photos.items():
        msg = _raw_msg(bgr, encoding, 0, f"{name}:{next(_ids)}")
        got = _as_rows(_send_and_receive(probe, probe.raw_pub, msg, probe.detections))
        for cls, score, box in _as_rows_of(detector.detect(bgr).detections, detector.names):
            if score < 0.5:
                continue
            ious = [_iou(box, g[2]) for g in got if g[0] == cls]
            assert ious and max(ious) > 0.9, f"{name}: {cls} {score:.2f} lost in {encoding}"


def _iou(a, b) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def test_jpeg_and_png_give_the_runtimes_detections(probe, model, photos):
    detector = Detector(model)
    for name, bgr in photos.items():
        jpeg = shared_path("photos", name).read_bytes()  # the file as a camera would send it
        ok, png = cv2.imencode(".png", bgr)
        for fmt, data in (("jpeg", jpeg), ("png", png.tobytes()), ("rgb8; jpeg compressed bgr8", jpeg)):
            msg = _compressed_msg(data, fmt, f"{name}:{fmt}:{next(_ids)}")
            got = _send_and_receive(probe, probe.compressed_pub, msg, probe.compressed_detections)
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            _assert_same(got, detector.detect(decoded).detections, detector.names)


def test_detections_carry_the_image_header_and_timing_reports_the_frame(probe, photos):
    from yolo_compress.ros.timing_msgs import timing_values

    msg = _raw_msg(photos["dog.jpg"], "bgr8", 0, f"header:{next(_ids)}")
    got = _send_and_receive(probe, probe.raw_pub, msg, probe.detections)
    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (msg.header.stamp.sec, msg.header.stamp.nanosec)
    assert all(d.header.frame_id == msg.header.frame_id for d in got.detections)
    probe.spin_until(lambda: any(_stamp(t) == _stamp(msg) for t in probe.timing), what="timing of the frame")
    values = timing_values(next(t for t in probe.timing if _stamp(t) == _stamp(msg)))
    assert values["tier"] == "custom" and values["provider"] == "CPUExecutionProvider"
    assert int(values["detections"]) == len(got.detections)
    for key in ("decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "total_ms", "latency_ms"):
        assert float(values[key]) > 0, key
    assert float(values["latency_ms"]) >= float(values["total_ms"])


def _stamp(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def _bad_raw_frames(bgr: np.ndarray):
    """(message, words the problem report must contain) for each kind of malformed raw frame."""
    good = _raw_msg(bgr, "bgr8", 0, "bad")
    short_step = _raw_msg(bgr, "bgr8", 0, "bad")
    short_step.step = bgr.shape[1] * 3 - 3
    truncated = _raw_msg(bgr, "rgb8", 0, "bad")
    truncated.data = good.data[: len(good.data) // 2]
    unknown = _raw_msg(bgr, "bgr8", 0, "bad")
    unknown.encoding = "bayer_rggb8"
    empty = _raw_msg(bgr, "bgr8", 0, "bad")
    empty.height = empty.width = empty.step = 0
    empty.data = array.array("B")
    odd_yuv = _raw_msg(np.ascontiguousarray(bgr[:, :-1]), "bgr8", 0, "bad")
    odd_yuv.encoding, odd_yuv.step = "yuv422", odd_yuv.width * 2
    return [(short_step, "step"), (truncated, "bytes"), (unknown, "bayer_rggb8"), (empty, "empty"),
            (odd_yuv, "even")]


def test_bad_raw_frames_are_counted_named_and_survived(probe, nodes, photos):
    raw_node, _ = nodes
    bgr = photos["person.jpg"]
    _send_and_receive(probe, probe.raw_pub, _raw_msg(bgr, "bgr8", 0, f"before:{next(_ids)}"), probe.detections)
    for count, (msg, words) in enumerate(_bad_raw_frames(bgr), start=1):
        values = _problem_report(probe, probe.raw_pub, msg, probe.timing)
        assert words in values["last_problem"], values["last_problem"]
        assert int(values["bad_frames"]) >= count
        assert raw_node.alive(), raw_node.log()
    # One log line per kind of problem (the log is throttled per kind, ~/timing names every frame's).
    probe.spin_until(lambda: all(w in raw_node.log() for w in ("step", "bayer_rggb8", "empty")), what="log lines")
    _send_and_receive(probe, probe.raw_pub, _raw_msg(bgr, "bgr8", 0, f"after:{next(_ids)}"), probe.detections)


def test_corrupt_compressed_frames_are_counted_and_survived(probe, nodes):
    _, compressed_node = nodes
    jpeg = shared_path("photos", "dog.jpg").read_bytes()
    noise = np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes()
    corrupt = [
        (jpeg[: len(jpeg) // 2], "jpeg", "truncated jpeg"),
        (b"\xff\xd8" + noise + b"\xff\xd9", "jpeg", "corrupt jpeg"),
        (b"GIF89a" + bytes(100), "jpeg", "not jpeg"),
        (jpeg, "16UC1; compressedDepth png", "depth"),
        (b"", "jpeg", "empty"),
    ]
    for count, (data, fmt, words) in enumerate(corrupt, start=1):
        values = _problem_report(probe, probe.compressed_pub, _compressed_msg(data, fmt, "corrupt"),
                                 probe.compressed_timing)
        assert words in values["last_problem"], values["last_problem"]
        assert int(values["bad_frames"]) == count
        assert compressed_node.alive(), compressed_node.log()
    assert "truncated jpeg" in compressed_node.log()
    msg = _compressed_msg(jpeg, "jpeg", f"after-corrupt:{next(_ids)}")
    _send_and_receive(probe, probe.compressed_pub, msg, probe.compressed_detections)
