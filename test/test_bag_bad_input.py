"""Bad bags through tools/evaluate_bag.py: one clear line (or a plainly labeled report), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from test_bag_roundtrip import START_NS, load_tool
from test_runtime_contract import contract_model

from yolo_compress.bag.images import image_message
from yolo_compress.bag.make import BagSpec, bag_from_dataset
from yolo_compress.bag.messages import LabeledBoxes, detection_array, header
from yolo_compress.bag.typestore import DETECTION_ARRAY, IMAGE, typestore
from yolo_compress.bag.writer import CameraBagWriter
from yolo_compress.data.specs import load_dataset

from conftest import REPO

NAMES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def evaluate_bag():
    return load_tool("evaluate_bag")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """Answers one fixed box per class on any non-black frame (96x96 input: the boxes are image pixels of the
    96x96 frames here): enough to exercise every path quickly."""
    boxes = [[10, 10, 40, 40], [50, 20, 80, 60], [5, 30, 30, 60]]
    return contract_model(tmp_path_factory.mktemp("model") / "m.onnx", boxes, np.eye(3) * 0.9, names=NAMES,
                          input_size=(96, 96))


def good_bag(path: Path, storage: str = "mcap") -> Path:
    bag_from_dataset(load_dataset("synthetic:4?size=96"), BagSpec(path, storage=storage, start_ns=START_NS), 20.0)
    return path


def last_line(text: str) -> str:
    """The last line of stderr, past tqdm's carriage-return redraws."""
    return text.replace("\r", "\n").strip().splitlines()[-1]


def run(tool, capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the tool's main() alone (output of the set-up before it is dropped)."""
    capsys.readouterr()
    code = tool.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("storage", "data_file"), [("mcap", "bag.mcap"), ("sqlite3", "bag.db3")])
def test_truncated_bag_is_one_clear_line(tmp_path, capsys, evaluate_bag, model, storage, data_file):
    bag = good_bag(tmp_path / "bag", storage)
    data = bag / data_file
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model, "--out", tmp_path / "out")
    assert code == 1
    assert err.startswith(f"evaluate_bag: {bag}") and "corrupt or truncated" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_corrupt_bag_from_a_fresh_process_prints_no_traceback(tmp_path, model):
    bag = good_bag(tmp_path / "bag")
    data = bytearray((bag / "bag.mcap").read_bytes())
    data[200::97] = bytes(b ^ 0x5A for b in data[200::97])
    (bag / "bag.mcap").write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "evaluate_bag.py"), str(bag), "--model", str(model)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "corrupt" in proc.stderr


def test_folder_without_metadata(tmp_path, capsys, evaluate_bag, model):
    bag = good_bag(tmp_path / "bag")
    (bag / "metadata.yaml").unlink()
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model)
    assert code == 1 and "no metadata.yaml" in err


@pytest.mark.parametrize("option", ["--image-topic", "--gt-topic"])
def test_missing_topic_lists_the_topics_present(tmp_path, capsys, evaluate_bag, model, option):
    bag = good_bag(tmp_path / "bag")
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model, option, "/front/image")
    assert code == 1
    assert "/front/image" in err
    for topic in ("/camera/image_raw (sensor_msgs/msg/Image, 4 messages)", "/ground_truth (vision_msgs/msg/"
                  "Detection2DArray, 4 messages)", "/ground_truth/label_info"):
        assert topic in err


def foreign_bag(path: Path, messages: list[tuple[str, str, int, object]]) -> Path:
    """A bag as another recorder might write it: (topic, type, stamp, message) in order, no checks of ours."""
    store = typestore()
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msgtype, stamp, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], stamp, store.serialize_cdr(msg, msgtype))
    return path


def frame(stamp: int, value: int = 0) -> object:
    return image_message(np.full((96, 96, 3), value, np.uint8), "bgr8", header(stamp, "camera"))


def test_two_image_topics_ask_which_one(tmp_path, capsys, evaluate_bag, model):
    bag = foreign_bag(tmp_path / "bag", [("/front/image_raw", IMAGE, START_NS, frame(START_NS)),
                                         ("/rear/image_raw", IMAGE, START_NS, frame(START_NS))])
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model)
    assert code == 1 and "2 image topics (/front/image_raw, /rear/image_raw): pick one (--image-topic)" in err
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model, "--image-topic", "/rear/image_raw",
                       "--out", tmp_path / "out")
    assert code == 0, err


def test_bag_without_ground_truth_gives_a_frequency_only_report(tmp_path, capsys, evaluate_bag, model):
    bag = tmp_path / "bag"
    with CameraBagWriter(bag, IMAGE, None) as writer:
        for i in range(6):
            writer.write_frame(START_NS + i * 100_000_000, frame(START_NS + i * 100_000_000, 200), None)
    code, out, err = run(evaluate_bag, capsys, bag, "--model", model, "--out", tmp_path / "out", "--rate", "5")
    assert code == 0, err
    assert "frequency-only" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    row = report["tiers"]["m"]
    assert row["ap50"] is None and row["realtime_ap50"] is None and row["precision"] is None
    assert row["realtime_hz"] > 0 and row["max_hz"] > 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "No ground truth in this bag: frequency-only report" in markdown
    assert not (tmp_path / "out" / "ap_vs_hz.png").exists() and (tmp_path / "out" / "latency_hist.png").exists()


def test_stamps_out_of_order_are_replayed_in_stamp_order_with_a_warning(tmp_path, capsys, evaluate_bag, model):
    """Received in order, but the driver stamped frames 1 and 2 the other way round."""
    boxes = LabeledBoxes.ground_truth(np.array([[10, 10, 40, 40]], np.float32), ["circle"])
    messages = []
    for received, stamped in enumerate((0, 2, 1, 3)):
        bag_ns, stamp = START_NS + received * 50_000_000, START_NS + stamped * 50_000_000
        messages += [("/camera/image_raw", IMAGE, bag_ns, frame(stamp, 255)),
                     ("/ground_truth", DETECTION_ARRAY, bag_ns, detection_array(boxes, header(stamp, "camera")))]
    bag = foreign_bag(tmp_path / "bag", messages)
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model, "--out", tmp_path / "out", "--replay", "measured")
    assert code == 0, err
    assert "stamped earlier than the frame before them" in err
    assert "no class map on /ground_truth/label_info: scoring the classes seen in the ground truth: circle" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["tiers"]["m"]["ap50"] == pytest.approx(1.0)
    assert any("replaying in stamp order" in note for note in report["notes"])
    assert "replaying in stamp order" in (tmp_path / "out" / "report.md").read_text()


def test_unknown_encoding_is_named(tmp_path, capsys, evaluate_bag, model):
    bag = tmp_path / "bag"
    with CameraBagWriter(bag, IMAGE, None) as writer:
        msg = typestore().types[IMAGE](header=header(START_NS, "camera"), height=8, width=8, encoding="bayer_rggb8",
                                       is_bigendian=0, step=8, data=np.zeros(64, np.uint8))
        writer.write_frame(START_NS, msg, None)
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model)
    assert code == 1
    assert last_line(err).startswith(f"evaluate_bag: {bag}: no frame on /camera/image_raw could be decoded")
    assert "bayer_rggb8" in last_line(err)


def test_ground_truth_stamped_unlike_its_images(tmp_path, capsys, evaluate_bag, model):
    truth = detection_array(LabeledBoxes.ground_truth(np.array([[10, 10, 40, 40]], np.float32), ["circle"]),
                            header(START_NS + 7, "camera"))  # 7 ns off: stamped by the labeling tool, not the camera
    bag = foreign_bag(tmp_path / "bag", [("/camera/image_raw", IMAGE, START_NS, frame(START_NS)),
                                         ("/ground_truth", DETECTION_ARRAY, START_NS, truth)])
    code, _, err = run(evaluate_bag, capsys, bag, "--model", model)
    assert code == 1
    assert "no ground-truth message on /ground_truth has the stamp of an image" in err
