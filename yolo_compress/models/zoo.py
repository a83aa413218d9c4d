"""The real pretrained Darknet models the project develops against, and where they lie in a data folder.

Tests, benchmarks and the real-data runs of the offline tools all name these models the same way;
the files themselves are never committed (they live in ../shared/data/yolo-fastest/ModelZoo).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ZooModel:
    """Relative location of one model: folder, file stem (cfg and weights) and names file."""

    folder: str
    stem: str
    names: str

    def files(self, zoo_dir: Path) -> tuple[Path, Path, Path]:
        """(cfg, weights, names) under `zoo_dir`."""
        base = Path(zoo_dir) / self.folder
        return base / f"{self.stem}.cfg", base / f"{self.stem}.weights", base / self.names


YOLO_FASTEST: dict[str, ZooModel] = {
    "yolo-fastest-1.0": ZooModel("yolo-fastest-1.0_coco", "yolo-fastest", "coco.names"),
    "yolo-fastest-1.0-xl": ZooModel("yolo-fastest-1.0_coco", "yolo-fastest-xl", "coco.names"),
    "yolo-fastest-1.1": ZooModel("yolo-fastest-1.1_coco", "yolo-fastest-1.1", "coco.names"),
    "yolo-fastest-1.1-xl": ZooModel("yolo-fastest-1.1_coco", "yolo-fastest-1.1-xl", "coco.names"),
    "yolo-fastest-1.1-body": ZooModel("yolo-fastest-1.1_body", "yolo-fastest-1.1_body", "body.names"),
}
