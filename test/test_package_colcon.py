"""The package builds with colcon as in a ROS 2 workspace: executables in lib/<pkg>, launch and config shared.

pip installs are covered by the ROS tests (test/_ros.py installs the package with pip); this is the other
way a robot gets it. Skips where colcon is not installed (CI installs it with the test extra).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["package.xml", "setup.py", "setup.cfg", "resource", "yolo_compress", "launch", "config", "libexec"]


def test_colcon_build_installs_the_ros_layout(tmp_path):
    colcon = shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon not installed (pip install colcon-common-extensions)")
    source = tmp_path / "src" / "yolo_compress"
    source.mkdir(parents=True)
    for name in SHIPPED:  # a copy: colcon writes build artifacts (egg-info) into the source tree
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    proc = subprocess.run([colcon, "build", "--packages-select", "yolo_compress"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = tmp_path / "install" / "yolo_compress"
    executable = prefix / "lib" / "yolo_compress" / "detector_node"
    assert executable.is_file() and executable.stat().st_mode & 0o111
    share = prefix / "share" / "yolo_compress"
    assert (share / "launch" / "detector.launch.py").is_file()
    for config in ("detector.yaml", "tiers.yaml", "detector.rviz"):
        assert (share / "config" / config).is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "yolo_compress").is_file()
