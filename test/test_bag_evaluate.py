"""tools/evaluate_bag.py: the offline AP equals tools/evaluate.py's, the real-time figures follow the schedule,
and the report has exactly the issue's keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bag_bad_input import last_line, run
from test_bag_roundtrip import START_NS, load_tool
from test_runtime_contract import contract_model

from yolo_compress.bag.evaluation import TIER_KEYS
from yolo_compress.bag.images import image_message
from yolo_compress.bag.messages import LabeledBoxes, header
from yolo_compress.bag.typestore import IMAGE
from yolo_compress.bag.writer import CameraBagWriter

from conftest import REPO, shared_path

TUD = "sequence/TUD-Campus"
BOX = [10.0, 20.0, 50.0, 80.0]


@pytest.fixture(scope="module")
def tools():
    return {name: load_tool(name) for name in ("make_bag", "evaluate_bag", "evaluate")}


@pytest.fixture(scope="module")
def tud_bags(tmp_path_factory, tools):
    """TUD-Campus as a CompressedImage bag (the JPEG files themselves) and as a raw bgr8 bag."""
    spec = f"yolo:{shared_path(TUD)}?names=person"
    out = tmp_path_factory.mktemp("tud")
    assert tools["make_bag"].main(["--data", spec, "--out", str(out / "jpeg"), "--compressed", "jpeg"]) == 0
    assert tools["make_bag"].main(["--data", spec, "--out", str(out / "raw"), "--format", "sqlite3"]) == 0
    return spec, out


def test_offline_ap_on_a_bag_equals_tools_evaluate(tmp_path, capsys, tools, tud_bags, exported_yolo_fastest):
    spec, bags = tud_bags
    model = exported_yolo_fastest("yolo-fastest-1.1")
    assert tools["evaluate"].main(["--model", str(model), "--data", spec, "--classes", "person",
                                   "--json", str(tmp_path / "dataset.json")]) == 0
    expected = json.loads((tmp_path / "dataset.json").read_text())
    for kind in ("jpeg", "raw"):
        code, out, err = run(tools["evaluate_bag"], capsys, bags / kind, "--model", model, "--replay", "measured",
                             "--out", tmp_path / kind)
        assert code == 0, err
        report = json.loads((tmp_path / kind / "report.json").read_text())
        row = report["tiers"]["yolo-fastest-1.1"]
        for key in ("ap50", "ap50_95", "precision", "recall", "f1", "mean_iou"):
            assert row[key] == expected[key], (kind, key)
        assert report["bag"]["frames"] == 43 and report["bag"]["ground_truth_boxes"] == 225
        assert report["bag"]["input_hz"] == pytest.approx(25.0)
    assert 0.5 < expected["ap50"] < 1.0  # a real model on real frames: the equality is not 0 == 0


def test_report_has_the_issue_keys_and_readable_files(tmp_path, capsys, tools, tud_bags, exported_yolo_fastest):
    _, bags = tud_bags
    code, out, err = run(tools["evaluate_bag"], capsys, bags / "jpeg", "--model", exported_yolo_fastest(
        "yolo-fastest-1.1"), "--out", tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    (row,) = report["tiers"].values()
    assert tuple(row) == TIER_KEYS == (
        "ap50", "ap50_95", "precision", "recall", "f1", "mean_iou", "max_hz", "realtime_hz", "dropped_pct",
        "latency_p50_ms", "latency_p95_ms", "realtime_ap50", "params", "gflops", "size_mb",
    )
    assert all(isinstance(value, float) for key, value in row.items() if key != "params")
    assert row["params"] == 346_062 and row["gflops"] > 0 and row["size_mb"] > 1
    # A real-time figure can never beat the camera, and what was served plus dropped is every frame.
    details = report["details"]["yolo-fastest-1.1"]
    assert row["realtime_hz"] <= 25.0 + 1e-9
    assert details["served"] == round(43 * (1 - row["dropped_pct"] / 100))
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"]
    assert set(details["stages_ms"]) == {"decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "total_ms"}
    for png in ("ap_vs_hz.png", "latency_hist.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "report.md").read_text()
    assert "| yolo-fastest-1.1 | " in markdown and "real-time AP50" in markdown
    assert "yolo-fastest-1.1: AP50" in out


def constant_bag(path: Path, frames: int, hz: float, label: str = "person") -> Path:
    """Every frame holds one object at BOX, which the constant model below finds exactly."""
    with CameraBagWriter(path, IMAGE, [label]) as writer:
        for i in range(frames):
            stamp = START_NS + round(i * 1e9 / hz)
            image = image_message(np.full((96, 96, 3), 255, np.uint8), "bgr8", header(stamp, "camera"))
            writer.write_frame(stamp, image, LabeledBoxes.ground_truth(np.array([BOX], np.float32), [label]))
    return path


def exact_contract_model(folder: Path) -> Path:
    """Finds BOX at score 0.9 on a white 96x96 frame, class 'body' (the Yolo-Fastest body model's name)."""
    return contract_model(folder / "body.onnx", [BOX], [[0.9]], names=["body"], input_size=(96, 96))


@pytest.fixture(scope="module")
def exact_model(tmp_path_factory) -> Path:
    return exact_contract_model(tmp_path_factory.mktemp("exact"))


def test_real_time_ap_scores_each_frame_against_what_was_out_when_it_was_taken(tmp_path, capsys, tools,
                                                                                exact_model):
    """1 Hz, 5 frames, service of a few ms: frame 0 has no detections yet when it is taken, frames 1-4 have
    the previous frame's (here: the same box). COCO AP50 with recall 4/5 at precision 1 is 81/101. Just before
    the next frame arrives, every frame's own detections are out: AP50 1."""
    bag = constant_bag(tmp_path / "bag", frames=5, hz=1.0)
    code, _, err = run(tools["evaluate_bag"], capsys, bag, "--model", exact_model, "--alias", "body=person",
                       "--replay", "measured", "--out", tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    row = report["tiers"]["body"]
    assert (row["ap50"], row["precision"], row["recall"], row["mean_iou"]) == (1.0, 1.0, 1.0, 1.0)
    assert row["realtime_ap50"] == pytest.approx(81 / 101)
    assert report["details"]["body"]["realtime_ap50_before_next_frame"] == 1.0
    assert row["realtime_hz"] == pytest.approx(1.0) and row["dropped_pct"] == 0.0
    assert row["latency_p95_ms"] < 1000


def test_a_camera_faster_than_the_tier_drops_all_but_the_newest(tmp_path, capsys, tools, exact_model):
    """Replayed a million times faster, all 5 frames are in before frame 0 is done: frame 4 is next, 1-3 drop."""
    bag = constant_bag(tmp_path / "bag", frames=5, hz=1.0)
    code, _, err = run(tools["evaluate_bag"], capsys, bag, "--model", exact_model, "--alias", "body=person",
                       "--replay", "measured", "--rate", "1e6", "--out", tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["tiers"]["body"]["dropped_pct"] == pytest.approx(60.0)
    assert report["details"]["body"]["served"] == 2


def test_wall_clock_replay_runs_the_detector_for_real(tmp_path, capsys, tools, exact_model):
    bag = constant_bag(tmp_path / "bag", frames=6, hz=30.0)
    code, _, err = run(tools["evaluate_bag"], capsys, bag, "--model", exact_model, "--alias", "body=person",
                       "--out", tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    row = report["tiers"]["body"]
    assert report["bag"]["replay"] == "wallclock"
    assert 0 < row["realtime_hz"] <= 30.0 + 1e-9 and row["latency_p50_ms"] > 0
    assert row["realtime_ap50"] <= row["ap50"] == 1.0


def test_a_model_without_the_ground_truth_class_asks_for_an_alias(tmp_path, capsys, tools, exact_model):
    bag = constant_bag(tmp_path / "bag", frames=2, hz=10.0)
    code, _, err = run(tools["evaluate_bag"], capsys, bag, "--model", exact_model)
    assert code == 1
    assert "tier body: dataset class 'person'" in last_line(err) and "--alias MODEL_CLASS=person" in last_line(err)


def test_tiers_file_evaluates_each_tier_at_its_own_threshold(tmp_path, capsys, tools, exact_model):
    """Two tiers on one model: at conf 0.95 the 0.9-score box is gone, so only AP (from conf 0.005) is left."""
    (tmp_path / "tiers.yaml").write_text(
        f"default: fast\nmodels_dir: {exact_model.parent}\ntiers:\n"
        "  fast: {model: body.onnx, conf_threshold: 0.25}\n"
        "  strict: {model: body.onnx, conf_threshold: 0.95}\n"
    )
    bag = constant_bag(tmp_path / "bag", frames=3, hz=1.0)
    args = [bag, "--tiers", tmp_path / "tiers.yaml", "--alias", "body=person", "--replay", "measured"]
    code, _, err = run(tools["evaluate_bag"], capsys, *args, "--out", tmp_path / "all")
    assert code == 0, err
    tiers = json.loads((tmp_path / "all" / "report.json").read_text())["tiers"]
    assert list(tiers) == ["fast", "strict"]
    assert tiers["fast"]["ap50"] == tiers["strict"]["ap50"] == 1.0
    assert (tiers["fast"]["recall"], tiers["strict"]["recall"]) == (1.0, 0.0)
    assert tiers["strict"]["realtime_ap50"] == 0.0
    code, _, err = run(tools["evaluate_bag"], capsys, *args, "--tier", "strict", "--out", tmp_path / "one")
    assert code == 0, err
    assert list(json.loads((tmp_path / "one" / "report.json").read_text())["tiers"]) == ["strict"]
    code, _, err = run(tools["evaluate_bag"], capsys, *args, "--tier", "turbo")
    assert code == 1 and "unknown tier 'turbo' (tiers: fast, strict)" in last_line(err)


def test_bag_tools_never_import_torch():
    """evaluate_bag runs on the robot itself (real robot timing), where there is no torch."""
    code = ("import sys; sys.path.insert(0, 'tools')\n"
            "import evaluate_bag, make_bag, yolo_compress.bag.live\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
