"""Helpers for the ROS 2 tests: the real middleware or a clear skip, the pip-installed package, node processes
started as the launch file would start them, and a probe node that publishes frames and reads the results.

The node always runs as a separate process through the executable setup.py installs (`lib/yolo_compress/
detector_node`, found like launch_ros finds it), with the installed config/detector.yaml as params file and
`-p`/`-r` overrides; the probe lives in the test process in its own rclpy Context. Waits are bounded by
deadlines, never fixed sleeps.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEADLINE_S = 20.0  # DDS discovery takes 0.1-4 s, more on a loaded CI machine
REQUIRE_ENV = "YOLO_COMPRESS_REQUIRE_ROS"  # set by .ci/run: a missing ROS environment fails instead of skipping
HINT = "run scripts/ros_setup.sh VENV and source VENV/yolo_ros_env.sh before python"
# Importing any message's type support imports lark-parser 0.12, which warns on Python 3.11; harmless.
LARK_WARNING = "ignore:module 'sre_(parse|constants)' is deprecated:DeprecationWarning"
FASTDDS_PROFILE = REPO / "config" / "fastdds_large_frames.xml"

# Frames over 512 KB (the test photos, VGA bgr8) need the bigger shared-memory segment of this profile in the
# publishing process, or a best-effort subscriber loses most of them; the README tells robots the same. Set at
# import (test collection), before any test process creates its first DDS participant; node processes inherit it.
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(FASTDDS_PROFILE))


def domain_id() -> int:
    """A DDS domain for this test process alone, so that concurrent runs and workers never match.

    xdist workers of one run share the controller as parent and get consecutive ids; a plain run
    uses its pid. The result stays in 10..99 (0..101 are safe on Linux).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    if worker.startswith("gw"):
        return 10 + (os.getppid() + int(worker[2:])) % 90
    return 10 + os.getpid() % 90


def require_ros() -> None:
    """Skip unless rclpy and vision_msgs (with type support) load; fail instead where $YOLO_COMPRESS_REQUIRE_ROS=1."""
    missing = _missing_ros()
    if missing is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{missing}; {HINT} (${REQUIRE_ENV}=1: the ROS tests must run here)")
    pytest.skip(f"{missing}; {HINT}")


@functools.cache
def _missing_ros() -> str | None:
    try:
        import rclpy  # noqa: F401
        from rclpy.type_support import check_for_type_support
        from vision_msgs.msg import Detection2DArray, LabelInfo
    except ImportError as exc:
        return f"ROS 2 Python packages not importable ({exc})"
    try:
        for msg_type in (Detection2DArray, LabelInfo):
            check_for_type_support(msg_type)
    except Exception as exc:  # UnsupportedTypeSupport / NoTypeSupportImportedException, both undocumented bases
        return f"vision_msgs type support does not load ({exc})"
    return None


@functools.cache
def installed_prefix() -> Path:
    """A real `pip install --prefix` of this checkout, once per test process: the layout launch_ros and
    `ros2 run` see (lib/yolo_compress/detector_node, share/yolo_compress/..., the ament index marker).

    Built from a copy of the package files, so concurrent runs never share a build directory in the tree.
    The Python package itself is still imported from the checkout (the editable install on sys.path).
    """
    work = Path(tempfile.mkdtemp(prefix="yolo_compress_prefix_"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    stage, prefix = work / "src", work / "prefix"
    stage.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("setup.py", "setup.cfg", "package.xml"):
        shutil.copy2(REPO / name, stage / name)
    for name in ("resource", "launch", "config", "libexec", "yolo_compress"):
        shutil.copytree(REPO / name, stage / name, ignore=ignore)
    # --ignore-installed: without it pip first *uninstalls* the venv's own (editable) yolo_compress.
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile",
               "--ignore-installed", "--disable-pip-version-check", "--prefix", str(prefix), str(stage)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if done.returncode != 0:
        pytest.fail(f"pip install --prefix of the package failed:\n{done.stdout}\n{done.stderr}")
    return prefix


def node_environment(prefix: Path) -> dict[str, str]:
    """This process's environment with the installed prefix first on AMENT_PREFIX_PATH (as a sourced overlay)."""
    ament = os.environ.get("AMENT_PREFIX_PATH", "")
    return {**os.environ, "AMENT_PREFIX_PATH": f"{prefix}:{ament}" if ament else str(prefix),
            "ROS_DOMAIN_ID": str(domain_id()), "PYTHONUNBUFFERED": "1"}


class NodeProcess:
    """The installed detector_node in a child process; its log goes to a file (a pipe could fill and block it)."""

    def __init__(self, args: list[str], log_path: Path, prefix: Path) -> None:
        self.log_path = log_path
        executable = prefix / "lib" / "yolo_compress" / "detector_node"
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([str(executable), *args], stdout=self._log, stderr=subprocess.STDOUT,
                                     env=node_environment(prefix), start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, text: str, deadline: float) -> None:
        """Until `text` appears in the log; fails if the node exits or the deadline passes."""
        while text not in self.log():
            if not self.alive():
                pytest.fail(f"node exited with {self.proc.returncode} before logging {text!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"node did not log {text!r} in time:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM (SIGINT may be ignored by children of CI shells), then the exit code; kills on a hang."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"node did not exit on SIGTERM:\n{self.log()}")
        finally:
            self._log.close()


def start_detector(
    prefix: Path, log_path: Path, namespace: str, params: Mapping[str, object], image_topic: str
) -> NodeProcess:
    """Start the node exactly as launch/detector.launch.py would: installed params file, then overrides."""
    share = prefix / "share" / "yolo_compress"
    args = ["--ros-args", "--params-file", str(share / "config" / "detector.yaml")]
    for name, value in params.items():
        args += ["-p", f"{name}:={_ros_arg(value)}"]
    args += ["-r", f"__ns:={namespace}", "-r", f"image:={image_topic}",
             "-r", f"image/compressed:={image_topic}/compressed"]
    return NodeProcess(args, log_path, prefix)


def _ros_arg(value: object) -> str:
    """A -p value as the rcl YAML parser reads it: lists as [a, b], strings quoted so they stay strings."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_ros_arg(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value + "'"
    return str(value)


class Probe:
    """A test-side node in its own rclpy Context: subscriptions collect messages, publishers send frames."""

    def __init__(self, name: str, namespace: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id())
        self.node = rclpy.create_node(name, namespace=namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def collect(self, msg_type, topic: str, qos=10) -> list:
        """A list that fills with every message received on `topic` while the probe spins."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Spin until `done()` holds or `timeout` s pass; whether it holds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.05)
        return True

    def spin_until(self, done: Callable[[], bool], timeout: float = DEADLINE_S, what: str = "condition") -> None:
        """Spin until `done()` holds; fail naming `what` after `timeout` s."""
        if not self.wait(done, timeout):
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    def send_until(self, publisher, msg, answered: Callable[[], bool], what: str, resend_s: float = 1.0) -> None:
        """Publish `msg` with a fresh stamp until `answered()` (a frame sent before matching is lost), or fail."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            msg.header.stamp = self.node.get_clock().now().to_msg()
            publisher.publish(msg)
            if self.wait(answered, resend_s):
                return
        pytest.fail(f"no answer within {DEADLINE_S:.0f} s to {what}")

    def spin_for(self, seconds: float) -> None:
        """Spin (deliver messages) for `seconds`: the duration of a measurement, not a wait for an event."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(end - time.monotonic(), 0)))

    def set_parameters(self, node_path: str, values: Mapping[str, object], timeout: float = 60.0) -> list:
        """Call `<node_path>/set_parameters` (what `ros2 param set` does); the SetParametersResult list.

        Values are plain Python values, or rclpy Parameters where the type must be explicit (an empty array).
        """
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        client = self.node.create_client(SetParameters, f"{node_path}/set_parameters")
        try:
            self.spin_until(lambda: client.service_is_ready(), what=f"{node_path}/set_parameters")
            params = [v if isinstance(v, Parameter) else Parameter(k, value=v) for k, v in values.items()]
            request = SetParameters.Request(parameters=[p.to_parameter_msg() for p in params])
            future = client.call_async(request)
            self.spin_until(future.done, timeout, what=f"set_parameters {dict(values)}")
            return list(future.result().results)
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


@functools.cache
def demo_model(size: int) -> Path:
    """The built-in demo cfg at `size` x `size` input, seeded random weights, exported once per test process.

    A bigger input makes a slower model (inference time ~ pixels): that is how the tests get tiers of
    different speeds, and a model that runs at ~10 Hz here, without trained weights. Random weights score
    every box near 0.5, so tests serve these models with conf_threshold 0.9 (else NMS sees ~10^5 candidates).
    """
    import re
    from importlib.resources import files

    import torch

    from yolo_compress.export.onnx_export import export_onnx
    from yolo_compress.models.darknet import Darknet

    work = Path(tempfile.mkdtemp(prefix=f"yolo_compress_demo{size}_"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    text = (files("yolo_compress.models") / "cfgs" / "demo.cfg").read_text()
    text = re.sub(r"(?m)^width=\d+", f"width={size}", re.sub(r"(?m)^height=\d+", f"height={size}", text))
    cfg = work / f"demo{size}.cfg"
    cfg.write_text(text)
    torch.manual_seed(0)
    model = Darknet.from_cfg(cfg).eval()
    names = [f"class_{i}" for i in range(model.heads[0].num_classes)]
    return export_onnx(model, names, work / f"demo{size}.onnx").path


def write_tiers_file(path: Path, models: Mapping[str, Path], conf: float = 0.9, default: str = "medium") -> Path:
    """A tiers.yaml (through the runtime's own writer) serving `models` {tier: onnx} at `conf`."""
    from yolo_compress.runtime.tiers import TiersConfig, TierSpec, write_tiers

    specs = {name: TierSpec(name, model, conf_threshold=conf) for name, model in models.items()}
    return write_tiers(path, TiersConfig(default=default, models_dir=path.parent, tiers=specs))
