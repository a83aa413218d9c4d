"""tools/prune.py end to end on a tiny synthetic run: outputs, resume after SIGKILL, bad arguments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from yolo_compress.models.atomic import with_defaults
from yolo_compress.models.checkpoint import load_checkpoint
from yolo_compress.models.pad import cpu_block_size
from yolo_compress.prune.schedule import ScheduleConfig
from yolo_compress.runtime.detector import Detector
from yolo_compress.runtime.tiers import load_tiers

REPO = Path(__file__).resolve().parents[1]
TINY = ["--data", "synthetic:32:0", "--val", "synthetic:8:1", "--pretrain-epochs", "0", "--iterations", "2",
        "--target-flops", "0.4", "--finetune-epochs", "1", "--calibration-batches", "2", "--batch", "8",
        "--lr", "1e-3", "--no-progress"]


def _prune(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "tools" / "prune.py"), *TINY, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight")
    _finish(_prune(out, "--sizes", "160x160", "--test", "synthetic:6:3", "--int8", "--calibration-frames", "6"))
    return out


def test_outputs_tiers_and_report(straight):
    tiers = load_tiers(straight / "tiers.yaml")
    assert tiers.names == ("fast", "medium", "accurate") and tiers.default == "medium"
    for spec in tiers.tiers.values():
        assert spec.model.is_file() and spec.latency_ms > 0 and spec.gflops > 0
        Detector(spec.model)  # each tier is a loadable contract model
    report = json.loads((straight / "report.json").read_text())
    records = report["runs"]["taylor"]
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert records[0]["conv_flops_ratio"] == 1.0
    assert records[-1]["conv_flops_ratio"] <= 0.4 * 1.05  # reaches the FLOPs target at the last iteration
    assert all(w % 8 == 0 or w == records[0]["widths"][k]
               for k, w in records[-1]["widths"].items())
    assert {c["input_size"][0] for c in report["candidates"]} == {192, 160}
    int8 = [c for c in report["candidates"] if c["format"] == "int8"]
    assert len(int8) == 2 * 3 and all(0 <= c["ap50"] <= 1 for c in int8)  # 2 sizes x 3 iterations
    assert len(report["verdicts"]) == 3
    scored = report["tests"]["synthetic:6:3"]
    assert set(scored) == {"start", "fast", "medium", "accurate"}
    assert all(0 <= m["ap50"] <= 1 and 0 <= m["ap50_95"] <= m["ap50"] for m in scored.values())
    for png in ("ap_vs_flops.png", "ap_vs_latency.png", "pareto.png", "channels.png"):
        assert (straight / png).stat().st_size > 1000
    assert "## Tiers" in (straight / "report.md").read_text()
    lines = (straight / "runs" / "taylor" / "run_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [0, 1, 2]


def test_sigkill_then_resume_ends_with_the_same_models(straight, tmp_path):
    proc = _prune(tmp_path, "--sizes", "160x160")
    marker = tmp_path / "runs" / "taylor" / "iter_01" / "pruned.pt"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert marker.exists(), "the run ended before it could be killed mid-iteration"
    assert not (tmp_path / "tiers.yaml").exists()
    refused = _prune(tmp_path, "--sizes", "160x160")
    output, _ = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "--resume" in output
    _finish(_prune(tmp_path, "--sizes", "160x160", "--resume"))
    for k in (1, 2):
        a = load_checkpoint(straight / "runs" / "taylor" / f"iter_{k:02d}" / "model.pt").model.state_dict()
        b = load_checkpoint(tmp_path / "runs" / "taylor" / f"iter_{k:02d}" / "model.pt").model.state_dict()
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    first = json.loads((straight / "report.json").read_text())["runs"]["taylor"]
    second = json.loads((tmp_path / "report.json").read_text())["runs"]["taylor"]
    assert [(r["ap50"], r["widths"]) for r in first] == [(r["ap50"], r["widths"]) for r in second]
    assert not list(tmp_path.rglob("*.tmp")), "a half-written file was left behind"


def test_resume_with_other_settings_is_refused(straight, tmp_path):
    for item in straight.iterdir():  # a copy of the finished run, then a different schedule
        if item.is_dir():
            subprocess.run(["cp", "-r", str(item), str(tmp_path / item.name)], check=True)
    proc = _prune(tmp_path, "--sizes", "160x160", "--resume", "--rule", "global")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "other settings (rule)" in output


def _prune_module():
    sys.path.insert(0, str(REPO / "tools"))
    import prune

    return prune


def test_no_arguments_is_the_documented_demo():
    prune = _prune_module()
    job = prune.build_job(prune.parse_args([]))
    assert job.out == Path("out/prune-demo") and job.model.cfg == "demo"
    assert job.data.data.startswith("synthetic:") and job.data.val.startswith("synthetic:")
    assert job.pretrain is not None and job.pretrain.epochs > 0 and not job.pretrain.validate_first
    assert job.pipeline.criteria == ["taylor"] and job.pipeline.schedule.target_flops is not None
    assert not job.pipeline.schedule.finetune.freeze_bn_stats
    with pytest.raises(SystemExit):
        prune.parse_args(["--cfg", "demo", "--data", "synthetic:8"])  # no validation set
    depth_only = ["--cfg", "demo", "--data", "synthetic:8", "--val", "synthetic:4:1", "--out", "x", "--iterations", "0"]
    with pytest.raises(SystemExit):
        prune.parse_args(depth_only)  # nothing to prune
    schedule = prune.build_job(prune.parse_args([*depth_only, "--drop-blocks", "2-6"])).pipeline.schedule
    assert schedule.iterations == 0  # the blocks are resolved by the job, on the prepared model


def test_rounding_follows_the_channel_padding_unless_given():
    """A pruned width between two multiples of the export's padding is padded up again: it would lose channels and
    save no time. So --round-to defaults to the --pad-channels multiple, at least ROUND_TO (8)."""
    prune = _prune_module()
    base = ["--cfg", "demo", "--data", "synthetic:8", "--val", "synthetic:4:1", "--out", "x"]

    def schedule(*extra: str) -> ScheduleConfig:
        return prune.build_job(prune.parse_args([*base, *extra])).pipeline.schedule

    assert (schedule("--pad-channels", "16").round_to, schedule("--pad-channels", "16").pad_to) == (16, 16)
    assert schedule("--pad-channels", "1").round_to == 8 and schedule("--pad-channels", "1").pad_to == 1
    assert schedule("--pad-channels", "16", "--round-to", "8").round_to == 8
    assert schedule().pad_to == cpu_block_size()
    with pytest.raises(SystemExit):
        prune.parse_args([*base, "--pad-channels", "0"])


def test_recovery_recipe_flags_reach_the_finetune():
    prune = _prune_module()
    args_list = ["--cfg", "demo", "--data", "synthetic:8", "--val", "synthetic:4:1", "--out", "x"]
    args = prune.parse_args([*args_list, "--lr", "3e-4", "--finetune-epochs", "4", "--teacher", "--freeze-bn",
                             "--mosaic", "0.5"])
    schedule = prune.build_job(args).pipeline.schedule
    assert schedule.distill and schedule.finetune.freeze_bn_stats
    assert (schedule.finetune.lr, schedule.finetune.epochs, schedule.finetune.augment.mosaic) == (3e-4, 4, 0.5)
    assert prune.build_job(prune.parse_args([])).pipeline.schedule.finetune.augment.mosaic == 0.0
    cut_only = prune.build_job(prune.parse_args([*args_list, "--finetune-epochs", "0"])).pipeline.schedule
    assert cut_only.finetune.epochs == 0  # not the default 2
    multi = prune.build_job(prune.parse_args([*args_list, "--sizes", "160x160,128", "--multi-scale"]))
    assert multi.pipeline.schedule.finetune.multi_scale == ((160, 160), (128, 128))
    assert multi.pipeline.sizes == [(160, 160), (128, 128)]
    single = prune.build_job(prune.parse_args([*args_list, "--sizes", "160"]))
    assert single.pipeline.schedule.finetune.multi_scale == ()  # resized variants only, without --multi-scale


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default():
    defaults = ScheduleConfig().to_dict()
    saved = {**defaults, "finetune": {**defaults["finetune"], "augment": {"scale": 0.25}}}
    del saved["keep_best"]
    merged = with_defaults(saved, defaults)
    assert merged["keep_best"] == defaults["keep_best"] and merged["finetune"]["augment"]["mosaic"] == 0.0
    assert merged["finetune"]["augment"]["scale"] == 0.25
    sensitivity = {"sensitivity": {"ratios": [0.5]}}
    assert with_defaults(sensitivity, {"sensitivity": None}) == sensitivity


def test_tiers_yaml_is_plain_yaml_with_relative_models(straight):
    document = yaml.safe_load((straight / "tiers.yaml").read_text())
    assert document["models_dir"] == "models"
    assert {tier["model"] for tier in document["tiers"].values()} == {"fast.onnx", "medium.onnx", "accurate.onnx"}


def test_compare_runs_each_criterion_from_one_start_candidate(tmp_path):
    """--compare: both criteria run the same schedule; the comparison pairs them at equal FLOPs; the start
    model, identical for both, competes for the tiers once."""
    _finish(_prune(tmp_path, "--compare", "taylor,l1", "--iterations", "1"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["runs"]) == {"taylor", "l1"}
    pairs = [(row["criterion"], row["iteration"]) for row in report["comparison"]]
    assert pairs == [("taylor", 1), ("l1", 1)]
    assert report["comparison"][0]["gflops"] == report["comparison"][1]["gflops"]
    names = [c["name"] for c in report["candidates"]]
    assert "taylor/iter00" in names and not any(name.startswith("l1/iter00") for name in names)
    assert {"taylor/iter01", "l1/iter01"} <= set(names)


@pytest.fixture(scope="module")
def shallow(tmp_path_factory) -> Path:
    """A second run on the same validation set: one step to 60% of the FLOPs, no lower sizes."""
    out = tmp_path_factory.mktemp("shallow")
    _finish(_prune(out, "--iterations", "1", "--target-flops", "0.6"))
    return out


def _pick_tiers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "pick_tiers.py"), *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_pick_tiers_picks_from_every_run_against_the_first_start(straight, shallow, tmp_path):
    done = _pick_tiers(str(straight), str(shallow), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    names = {c["name"] for c in report["candidates"]}
    for run in (straight, shallow):
        own = json.loads((run / "report.json").read_text())["candidates"]
        assert {f"{run.name}/{c['name']}" for c in own} <= names
    assert len(names) == len(report["candidates"])  # one entry per candidate of each run
    assert report["baseline"]["candidate"] == f"{straight.name}/taylor/iter00"
    assert report["sources"] == [str(straight), str(shallow)]
    by_name = {c["name"]: c for c in report["candidates"]}
    tiers = load_tiers(tmp_path / "tiers.yaml")
    for tier, spec in tiers.tiers.items():
        chosen = by_name[report["tiers"][tier]["candidate"]]
        assert spec.model.read_bytes() == (tmp_path / chosen["onnx"]).read_bytes()
        assert spec.ap50 == round(chosen["ap50"], 4)
    assert set(report["tiers"]["accurate"]) >= {"levers", "speedup", "ap_ratio"}
    assert "Candidates from the prune runs" in (tmp_path / "report.md").read_text()
    assert set(report["tests"]["synthetic:6:3"]) == {"start", "fast", "medium", "accurate"}


def test_pick_tiers_refuses_runs_it_cannot_compare(straight, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    summary = json.loads((straight / "report.json").read_text())
    (other / "report.json").write_text(json.dumps({**summary, "data": {**summary["data"], "val": "synthetic:8:2"}}))
    done = _pick_tiers(str(straight), str(other), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "validated on other sets" in done.stderr and "(val differ)" in done.stderr
    del summary["data"]
    (other / "report.json").write_text(json.dumps(summary))
    done = _pick_tiers(str(straight), str(other), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "older tools/prune.py (no data)" in done.stderr and "--resume" in done.stderr
    done = _pick_tiers(str(straight), str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "report.json: not found" in done.stderr
    assert not (tmp_path / "out").exists()
