"""Shared fixtures: the real data in ../shared/data (skipped cleanly when absent) and exported models."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolo_compress.models.zoo import YOLO_FASTEST

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (../shared/data is not committed to the project)")
    return path


def yolo_fastest_files(name: str) -> tuple[Path, Path, Path]:
    """(cfg, weights, names) of a real Yolo-Fastest model, or skip."""
    zoo = shared_path("yolo-fastest", "ModelZoo")
    files = YOLO_FASTEST[name].files(zoo)
    for path in files:
        shared_path(str(path.relative_to(SHARED_DATA)))
    return files


@pytest.fixture(scope="session")
def exported_yolo_fastest(tmp_path_factory):
    """Exports each real Yolo-Fastest model at most once per session: name -> .onnx path."""
    from yolo_compress.export.onnx_export import export_onnx
    from yolo_compress.models.source import load_model_source

    out_dir = tmp_path_factory.mktemp("onnx")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cfg, weights, names = yolo_fastest_files(name)
            src = load_model_source(str(cfg), weights, names=names)
            cache[name] = export_onnx(src.model, src.names, out_dir / f"{name}.onnx").path
        return cache[name]

    return get
