"""config/tiers.yaml: reading (paths, env override, measured fields), writing (relative paths, atomic,
round trip), and a message naming file, line, tier and field for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from yolo_compress.runtime.tiers import MODELS_ENV, TiersConfig, TiersError, TierSpec, load_tiers, write_tiers

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_shipped_tiers_file_loads_with_paths_resolved_against_it(monkeypatch):
    monkeypatch.delenv(MODELS_ENV, raising=False)
    config = load_tiers(REPO / "config" / "tiers.yaml")
    assert config.names == ("fast", "medium", "accurate") and config.default == "medium"
    assert config.models_dir == REPO / "config" / "models"
    assert config.tier("fast").model == REPO / "config" / "models" / "fast.onnx"
    assert config.tier("fast").model_path == config.tier("fast").model
    assert (config.tier("medium").conf_threshold, config.tier("medium").iou_threshold) == (0.25, 0.45)


def test_models_env_overrides_models_dir(tmp_path, monkeypatch):
    path = _write(tmp_path / "tiers.yaml", "default: fast\nmodels_dir: models\ntiers:\n  fast: {model: f.onnx}\n")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "elsewhere"))
    assert load_tiers(path).tier("fast").model == tmp_path / "elsewhere" / "f.onnx"
    assert load_tiers(path, environ={}).tier("fast").model == tmp_path / "models" / "f.onnx"


def test_absolute_paths_stay_absolute(tmp_path):
    text = f"default: a\nmodels_dir: {tmp_path / 'm'}\ntiers:\n  a: {{model: a.onnx}}\n  b: {{model: /opt/b.onnx}}\n"
    config = load_tiers(_write(tmp_path / "t.yaml", text), environ={})
    assert config.tier("a").model == tmp_path / "m" / "a.onnx" and config.tier("b").model == Path("/opt/b.onnx")
    assert config.names == ("a", "b")  # custom names: file order is the speed order


def test_measured_fields_are_read_with_their_types(tmp_path):
    text = ("tiers:\n  fast: {model: f.onnx, conf_threshold: 0.3, iou_threshold: 0.5, ap50: 0.41, ap50_95: 0.2,\n"
            "    gflops: 0.23, params: 12345, latency_ms: 6.5, input_size: [192, 256], size_mb: 1.5}\n")
    spec = load_tiers(_write(tmp_path / "t.yaml", text), environ={}).tier("fast")
    assert spec == TierSpec("fast", tmp_path / "f.onnx", 0.3, 0.5, 0.41, 0.2, 0.23, 12345, 6.5, (192, 256), 1.5)
    assert load_tiers(tmp_path / "t.yaml", environ={}).default == "fast"  # no default: the first tier


def test_write_then_load_round_trips_with_relative_paths(tmp_path):
    models = tmp_path / "out" / "models"
    specs = {name: TierSpec(name, models / f"{name}.onnx", ap50=0.1 + i / 3, gflops=1 / 7, params=10 ** i,
                            latency_ms=3.25, input_size=(320, 320), size_mb=2.0)
             for i, name in enumerate(("fast", "medium", "accurate"))}
    config = TiersConfig(default="medium", models_dir=models, tiers=specs)
    path = write_tiers(tmp_path / "out" / "tiers.yaml", config, comment="written by a test\nsecond line")
    text = path.read_text()
    assert "# written by a test\n# second line\n" in text and "models_dir: models\n" in text
    assert "  fast:     {model: fast.onnx, conf_threshold: 0.25" in text  # one flow mapping per tier, aligned
    assert load_tiers(path, environ={}) == config  # floats written exactly (repr), paths resolved back
    moved = tmp_path / "robot"
    (tmp_path / "out").rename(moved)  # the folder can move as a whole
    assert load_tiers(moved / "tiers.yaml", environ={}).tier("fast").model == moved / "models" / "fast.onnx"


def test_write_keeps_paths_outside_the_folder_absolute(tmp_path):
    config = TiersConfig(default="x", models_dir=tmp_path / "a",
                         tiers={"x": TierSpec("x", Path("/opt/models/x.onnx"))})
    path = write_tiers(tmp_path / "b" / "tiers.yaml", config)
    document = yaml.safe_load(path.read_text())
    assert document["models_dir"] == str(tmp_path / "a") and document["tiers"]["x"]["model"] == "/opt/models/x.onnx"


def test_relative_paths_in_code_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = TiersConfig(default="fast", models_dir=Path("run/models"),
                         tiers={"fast": TierSpec("fast", Path("run/models/fast.onnx"))})
    path = write_tiers(Path("run/tiers.yaml"), config)
    assert load_tiers(path, environ={}).tier("fast").model == tmp_path / "run" / "models" / "fast.onnx"


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = _write(tmp_path / "tiers.yaml", "old\n")
    config = TiersConfig(default="x", models_dir=tmp_path, tiers={"x": TierSpec("x", tmp_path / "x.onnx")})

    def broken(self, text):
        Path.write_bytes(self, text[:10].encode())
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", broken)
    with pytest.raises(OSError, match="disk full"):
        write_tiers(path, config)
    assert path.read_bytes() == b"old\n" and [p.name for p in tmp_path.iterdir()] == ["tiers.yaml"]


@pytest.mark.parametrize(("text", "words"), [
    ("tiers: [a, b\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("tier: {}\n", "unknown top-level key(s) tier"),
    ("tiers: {}\n", "'tiers' must be a non-empty mapping"),
    ("default: slow\ntiers:\n  fast: {model: f.onnx}\n", "default tier 'slow' is not one of the tiers (fast)"),
    ("tiers:\n  fast: {model: f.onnx}\n  medium: {modle: m.onnx}\n", ":3: tier 'medium': unknown field(s) modle"),
    ("tiers:\n  fast: {conf_threshold: 0.3}\n", ":2: tier 'fast': 'model' must be a file name"),
    ("tiers:\n  fast: {model: f.onnx, conf_threshold: 1.5}\n", "conf_threshold must be in [0, 1], got 1.5"),
    ("tiers:\n  fast: {model: f.onnx, iou_threshold: high}\n", "iou_threshold must be a number, got 'high'"),
    ("tiers:\n  fast: {model: f.onnx, params: 1.5}\n", "params must be an integer"),
    ("tiers:\n  fast: {model: f.onnx, input_size: 320}\n", "input_size must be [height, width]"),
    ("tiers:\n  fast: f.onnx\n", "tier 'fast': expected a mapping"),
    ("models_dir: 3\ntiers:\n  fast: {model: f.onnx}\n", "models_dir must be a directory path"),
    ("tiers:\n  accurate: {model: a.onnx}\n  fast: {model: f.onnx}\n", "fastest first (fast < medium < accurate)"),
])
def test_mistakes_are_named(tmp_path, text, words):
    path = _write(tmp_path / "tiers.yaml", text)
    with pytest.raises(TiersError) as caught:
        load_tiers(path, environ={})
    assert str(path) in str(caught.value) and words in str(caught.value), str(caught.value)


def test_missing_file_and_unknown_tier_are_named(tmp_path):
    with pytest.raises(TiersError, match="cannot read tiers file"):
        load_tiers(tmp_path / "nope.yaml")
    config = load_tiers(_write(tmp_path / "t.yaml", "tiers:\n  fast: {model: f.onnx}\n"), environ={})
    with pytest.raises(TiersError, match=r"unknown tier 'turbo' \(tiers: fast\)"):
        config.tier("turbo")


def test_config_checks_itself_when_built_in_code(tmp_path):
    spec = TierSpec("fast", tmp_path / "f.onnx")
    with pytest.raises(TiersError, match="holds a TierSpec named 'fast'"):
        TiersConfig(default="fast", models_dir=tmp_path, tiers={"medium": spec})
    with pytest.raises(TiersError, match="no tiers"):
        TiersConfig(default="fast", models_dir=tmp_path, tiers={})
