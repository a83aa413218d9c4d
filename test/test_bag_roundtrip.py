"""Bags written by make_bag read back exactly, in mcap and sqlite3, with the metadata `ros2 bag play` needs."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.rosbag2 import Reader
from ruamel.yaml import YAML

from yolo_compress.bag.errors import BagError
from yolo_compress.bag.images import to_bgr
from yolo_compress.bag.make import BagSpec, bag_from_dataset, bag_from_video
from yolo_compress.bag.messages import stamp_ns
from yolo_compress.bag.reader import CameraBag
from yolo_compress.bag.typestore import COMPRESSED_IMAGE, IMAGE, typestore
from yolo_compress.bag.writer import BAG_VERSION, CameraTopics
from yolo_compress.data.specs import load_dataset
from yolo_compress.runtime.image_encoding import ENCODINGS, bgr_to_image_data, image_data_to_bgr

from conftest import REPO

START_NS = 1_700_000_000_000_000_000


def load_tool(name: str) -> ModuleType:
    """tools/NAME.py as a module, so its main() runs in-process (seconds cheaper than a subprocess each)."""
    if str(REPO / "tools") not in sys.path:
        sys.path.insert(0, str(REPO / "tools"))  # for the tools' own `import _bootstrap`
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic(n: int = 4):
    return load_dataset(f"synthetic:{n}:3?size=96x128")


def make(tmp_path: Path, name: str, dataset=None, **spec) -> CameraBag:
    dataset = dataset if dataset is not None else synthetic()
    bag_from_dataset(dataset, BagSpec(tmp_path / name, start_ns=START_NS, **spec), default_rate=20.0)
    return CameraBag(tmp_path / name)


def decoded_frames(bag: CameraBag) -> list[tuple[int, np.ndarray]]:
    frames = []
    for raw in bag.images():
        msg = bag.decode(raw)
        frames.append((stamp_ns(msg.header), to_bgr(msg, bag.image_type)))
    return frames


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("encoding", ["bgr8", "rgb8"])
def test_raw_frames_and_ground_truth_round_trip(tmp_path, storage, encoding):
    dataset = synthetic()
    bag = make(tmp_path, "bag", dataset, storage=storage, encoding=encoding)
    assert bag.image_type == IMAGE and bag.image_topic == CameraTopics().image
    frames = decoded_frames(bag)
    assert [s for s, _ in frames] == [START_NS + i * 50_000_000 for i in range(len(dataset))]  # 20 Hz
    for (_, image), sample in zip(frames, dataset, strict=True):
        assert np.array_equal(image, sample.load_image())
    truth = bag.ground_truth()
    assert truth.from_label_info and truth.class_names == list(dataset.names)
    for (stamp, _), sample in zip(frames, dataset, strict=True):
        boxes = truth.by_stamp[stamp]
        assert np.array_equal(boxes.boxes, sample.boxes.astype(np.float64))
        assert boxes.labels == tuple(dataset.names[c] for c in sample.classes)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_every_node_encoding_reads_back_as_the_node_converts_it(tmp_path, encoding):
    """Lossy layouts (mono8, YUV 4:2:2) must give exactly the node's own conversion of the same frame."""
    dataset = synthetic(2)
    bag = make(tmp_path, "bag", dataset, encoding=encoding)
    for (_, image), sample in zip(decoded_frames(bag), dataset, strict=True):
        data, step = bgr_to_image_data(sample.load_image(), encoding)
        assert np.array_equal(image, image_data_to_bgr(data, encoding, sample.width, sample.height, step))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_jpeg_files_go_in_byte_for_byte(tmp_path, storage):
    """A JPEG folder as CompressedImage: the message holds the file itself, so pixels equal a decode of it."""
    source = tmp_path / "jpegs"
    (source / "images").mkdir(parents=True)
    (source / "labels").mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(source / "images" / f"{i:06d}.jpg"), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
        (source / "labels" / f"{i:06d}.txt").write_text("0 0.5 0.5 0.25 0.5\n")
    dataset = load_dataset(f"yolo:{source}?names=person")
    bag = make(tmp_path, "bag", dataset, storage=storage, compressed="jpeg",
               topics=CameraTopics(image="/cam/image_raw/compressed"))
    assert (bag.image_type, bag.image_topic) == (COMPRESSED_IMAGE, "/cam/image_raw/compressed")
    for raw, sample in zip(bag.images(), dataset, strict=True):
        msg = bag.decode(raw)
        assert msg.format == "bgr8; jpeg compressed bgr8" and bytes(msg.data) == sample.image_path.read_bytes()
        assert np.array_equal(to_bgr(msg, bag.image_type), sample.load_image())
    assert bag.ground_truth().by_stamp[START_NS].boxes.tolist() == [[22.5, 10.0, 37.5, 30.0]]


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 Exif segment holding only the orientation tag (6: stored rotated 90 degrees)."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01" + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + bytes(4)
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_a_jpeg_the_node_would_rotate_is_re_encoded_upright(tmp_path, caplog):
    """Labels are on the stored pixels; an EXIF-rotated file's own bytes would reach the node turned 90 degrees."""
    source = tmp_path / "exif"
    (source / "images").mkdir(parents=True)
    (source / "labels").mkdir()
    rng = np.random.default_rng(2)
    ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    (source / "images" / "a.jpg").write_bytes(with_exif_orientation(jpeg.tobytes(), 6))
    (source / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    bag = make(tmp_path, "bag", load_dataset(f"yolo:{source}?names=person"), compressed="jpeg")
    ((_, image),) = decoded_frames(bag)
    assert image.shape == (40, 60, 3)
    assert "decodes differently as a message (EXIF orientation?)" in caplog.text


def test_rendered_frames_are_encoded_as_png_losslessly(tmp_path):
    dataset = synthetic(2)
    bag = make(tmp_path, "bag", dataset, compressed="png")
    for (_, image), sample in zip(decoded_frames(bag), dataset, strict=True):
        assert np.array_equal(image, sample.load_image())


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_metadata_has_real_type_hashes_and_qos_profiles(tmp_path, storage):
    make(tmp_path, "bag", storage=storage)
    meta = YAML(typ="safe").load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == BAG_VERSION and meta["storage_identifier"] == storage
    with Reader(tmp_path / "bag") as reader:
        by_topic = {c.topic: c for c in reader.connections}
    topics = CameraTopics()
    assert set(by_topic) == {topics.image, topics.ground_truth, topics.label_info}
    for connection in by_topic.values():
        assert connection.digest == typestore().hash_rihs01(connection.msgtype)
        (profile,) = connection.ext.offered_qos_profiles
        assert profile.reliability == QosReliability.RELIABLE
    assert by_topic[topics.image].ext.offered_qos_profiles[0].durability == QosDurability.VOLATILE
    assert by_topic[topics.label_info].ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL
    assert [c.msgcount for c in (by_topic[topics.image], by_topic[topics.ground_truth])] == [4, 4]
    assert by_topic[topics.label_info].msgcount == 1


def test_video_bag_has_no_ground_truth(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    summary = bag_from_video(video, BagSpec(tmp_path / "bag", start_ns=START_NS))
    assert summary["frames"] == 5 and summary["rate_hz"] == pytest.approx(12.0)
    bag = CameraBag(tmp_path / "bag")
    assert bag.gt_topic is None and bag.ground_truth() is None
    assert [s for s, _ in decoded_frames(bag)][1] == START_NS + round(1e9 / 12)


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    class Boom(Exception):
        pass

    def exploding_render():
        raise Boom

    dataset = synthetic(3)
    broken = type(dataset)(dataset.names, [*dataset.samples[:2], type(dataset.samples[0])(
        None, dataset.samples[0].boxes, dataset.samples[0].classes, 128, 96, render=exploding_render)])
    with pytest.raises(Boom):
        bag_from_dataset(broken, BagSpec(tmp_path / "bag"))
    assert list(tmp_path.iterdir()) == []


def test_make_bag_cli_writes_then_refuses_to_overwrite(tmp_path, capsys):
    make_bag = load_tool("make_bag")
    args = ["--data", "synthetic:3?size=96", "--out", str(tmp_path / "bag"), "--format", "sqlite3", "--rate", "5"]
    assert make_bag.main(args) == 0
    assert "3 frames at 5 Hz" in capsys.readouterr().out
    assert make_bag.main(args) == 1
    err = capsys.readouterr().err
    assert "exists" in err and "Traceback" not in err
    assert make_bag.main([*args, "--overwrite", "--classes", "circle"]) == 0
    assert CameraBag(tmp_path / "bag").ground_truth().class_names == ["circle"]


def test_writer_never_replaces_a_folder_that_is_not_a_bag(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("precious")
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        bag_from_dataset(synthetic(1), BagSpec(tmp_path / "notes", overwrite=True))
    assert (tmp_path / "notes" / "keep.txt").read_text() == "precious"
