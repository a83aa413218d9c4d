"""launch/detector.launch.py and the installed package: what `ros2 launch` / `ros2 run` need is where they look.

- Without launch (not installable here): the launch file declares the documented arguments, starts the
  executable setup.py installs under lib/yolo_compress, and its default params file exists and holds only
  declared parameters at their declared defaults.
- With launch_ros (a ROS install): the launch file is run for real and the node answers on ~/timing.
- A bad configuration stops the node at start with exit code 1 and a line naming the problem.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from _ros import (
    DEADLINE_S,
    LARK_WARNING,
    REPO,
    NodeProcess,
    Probe,
    demo_model,
    installed_prefix,
    node_environment,
    require_ros,
    start_detector,
    write_tiers_file,
)

pytestmark = pytest.mark.filterwarnings(LARK_WARNING)

LAUNCH_FILE = REPO / "launch" / "detector.launch.py"
DOCUMENTED_ARGUMENTS = {"tier", "image_topic", "use_compressed", "params_file", "tiers_file", "namespace", "rviz"}


def _launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), str(LAUNCH_FILE))


def _constants(tree: ast.Module) -> dict[str, object]:
    """Module-level NAME = literal assignments of the launch file."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def test_launch_file_declares_the_documented_arguments():
    calls = [n for n in ast.walk(_launch_tree()) if isinstance(n, ast.Call)
             and getattr(n.func, "id", getattr(n.func, "attr", "")) == "DeclareLaunchArgument"]
    declared = {ast.literal_eval(call.args[0]) for call in calls}
    assert declared == DOCUMENTED_ARGUMENTS
    for call in calls:  # every argument says what it is for
        assert any(k.arg == "description" for k in call.keywords), ast.literal_eval(call.args[0])


def test_launch_file_runs_the_installed_executable_with_an_existing_params_file():
    from yolo_compress.ros.detector_node import NODE_NAME
    from yolo_compress.ros.parameters import PARAMETERS

    constants = _constants(_launch_tree())
    assert constants["PACKAGE"] == "yolo_compress" and constants["NODE_NAME"] == NODE_NAME
    declared = {p.name for p in PARAMETERS}
    assert set(constants["PARAMETER_ARGUMENTS"]) <= declared
    setup_text = (REPO / "setup.py").read_text()
    assert re.search(rf'"{constants["EXECUTABLE"]} = yolo_compress\.ros\.detector_node:main"', setup_text)

    prefix = installed_prefix()
    executable = prefix / "lib" / "yolo_compress" / constants["EXECUTABLE"]
    assert executable.is_file() and os.access(executable, os.X_OK), executable
    share = prefix / "share" / "yolo_compress"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "yolo_compress").is_file()
    for name in ("launch/detector.launch.py", "config/detector.yaml", "config/detector.rviz", "config/tiers.yaml",
                 "config/fastdds_large_frames.xml", "package.xml"):
        assert (share / name).is_file(), name
    assert "_share(\"config\", \"detector.yaml\")" in LAUNCH_FILE.read_text()  # the default params_file


def test_params_file_holds_declared_parameters_at_their_defaults():
    from yolo_compress.ros.parameters import PARAMETERS

    document = yaml.safe_load((REPO / "config" / "detector.yaml").read_text())
    values = document["/**"]["ros__parameters"]
    defaults = {p.name: p.default for p in PARAMETERS}
    assert set(values) <= set(defaults), set(values) - set(defaults)
    for name, value in values.items():
        assert value == defaults[name] and type(value) is type(defaults[name]), name


def test_ort_spin_us_reaches_the_sessions_bounded_off_or_unbounded():
    from rclpy.parameter import Parameter

    from yolo_compress.ros.parameters import PARAMETERS, DetectorSettings
    from yolo_compress.runtime.providers import SPIN_US

    defaults = {p.name: None if isinstance(p.default, Parameter.Type) else p.default for p in PARAMETERS}  # unset
    settings = DetectorSettings.from_values(defaults)
    assert settings.serve_settings().spin_us == SPIN_US
    assert settings.with_changes({"ort_spin_us": 0}).serve_settings().spin_us == 0
    assert settings.with_changes({"ort_spin_us": -1}).serve_settings().spin_us is None  # ORT's own default


def test_readme_documents_every_parameter():
    from yolo_compress.ros.parameters import PARAMETERS

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## ROS 2 node"):]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    assert documented == {p.name for p in PARAMETERS}


def test_the_ament_index_finds_the_installed_package():
    require_ros()
    prefix = installed_prefix()
    code = ("from ament_index_python.packages import get_package_prefix, get_package_share_directory as share; "
            "print(get_package_prefix('yolo_compress')); print(share('yolo_compress'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=node_environment(prefix))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(prefix), str(prefix / "share" / "yolo_compress")]


@pytest.mark.parametrize(("params", "words"), [
    ({"tier": "nope"}, "unknown tier 'nope'"),
    ({"model": "/nonexistent/model.onnx"}, "model not found: /nonexistent/model.onnx"),
    ({"tier": "auto"}, "needs target_hz > 0"),
])
def test_a_bad_configuration_stops_the_node_with_the_reason(tmp_path, params, words):
    require_ros()
    tiers = write_tiers_file(tmp_path / "tiers.yaml", {"fast": demo_model(192)}, default="fast")
    node = start_detector(installed_prefix(), tmp_path / "node.log", f"/bad_{os.getpid()}",
                          {"tiers_file": str(tiers), **params}, "cam")
    try:
        node.proc.wait(timeout=DEADLINE_S)
    finally:
        code = node.stop()
    assert code == 1, node.log()
    assert "cannot start" in node.log() and words in node.log(), node.log()


# Runs the launch file in a process of its own, as `ros2 launch` does (LaunchService needs the main thread).
LAUNCH = """
import sys
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

service = launch.LaunchService()
args = dict(arg.split(":=", 1) for arg in sys.argv[2:])
service.include_launch_description(
    IncludeLaunchDescription(PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=args.items()))
sys.exit(service.run())
"""


def test_launch_file_starts_the_node_for_real(tmp_path):
    require_ros()
    pytest.importorskip("launch_ros", reason="launch_ros has no PyPI wheel: this runs where ROS 2 is installed")
    from diagnostic_msgs.msg import DiagnosticArray

    from yolo_compress.ros.timing_msgs import timing_values

    prefix = installed_prefix()
    namespace = f"/launch_{os.getpid()}"
    tiers = write_tiers_file(tmp_path / "tiers.yaml", {"fast": demo_model(192), "medium": demo_model(192)})
    args = ["tier:=fast", f"tiers_file:={tiers}", f"namespace:={namespace}", f"image_topic:={namespace}/cam"]
    launch_file = prefix / "share" / "yolo_compress" / "launch" / "detector.launch.py"
    log = tmp_path / "launch.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(launch_file), *args], stdout=out,
                                stderr=subprocess.STDOUT, env=node_environment(prefix),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    probe = Probe("launch_probe", namespace)
    try:
        timing = probe.collect(DiagnosticArray, f"{namespace}/yolo_detector/timing")
        probe.spin_until(lambda: bool(timing), what="~/timing of the launched node")
        assert timing_values(timing[-1])["tier"] == "fast"
    finally:
        probe.close()
        proc.send_signal(signal.SIGINT)  # launch shuts its nodes down on SIGINT
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()


def test_node_process_helper_reports_a_dead_node(tmp_path):
    """The helper the other node tests rely on fails loudly (with the log) when the node is gone."""
    require_ros()
    node = NodeProcess(["--ros-args", "-p", "tier:=nope", "-p", "tiers_file:=/nonexistent.yaml"],
                       tmp_path / "dead.log", installed_prefix())
    with pytest.raises(pytest.fail.Exception, match="exited with 1"):
        node.wait_log("serving tier", time.monotonic() + DEADLINE_S)
    assert node.stop() == 1
