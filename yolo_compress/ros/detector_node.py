"""The `yolo_detector` node: camera frames in; detections, timing and an annotated image out; tiers swapped live.

Threads, and why:
- the executor's subscription callback only stores the newest frame's serialized bytes
  (runtime.latest_frame; a raw subscription, so frames that get dropped are never deserialized, see
  ros.cdr_frames): it never waits on inference, so under load old frames are dropped (and counted)
  instead of queued;
- one inference thread parses, converts, detects and publishes the newest frame; ONNX Runtime releases the GIL, so
  the callback keeps receiving meanwhile;
- one executor thread: a MultiThreadedExecutor added 4 ms to every frame's latency and cost 20% of the
  throughput (bench/node_overhead.py, BENCHMARKS.md), for the one thing it bought: frame intake during a
  parameter-driven load. So a `tier` change loads and warms the new model in the parameter callback
  while the inference thread finishes its frame with the old one, then one reference assignment switches
  them; intake pauses for the load. Auto-tier moves load on a thread of their own and pause nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from yolo_compress.ros.auto_tier import AutoTierController, Observation, TierMove
from yolo_compress.ros.cdr_frames import CompressedFrame, ImageFrame, parse_compressed, parse_image
from yolo_compress.ros.detection_msgs import detections_cdr, label_info_msg
from yolo_compress.ros.frame_memory import keep_frame_buffers_in_heap
from yolo_compress.ros.image_msgs import bgr_to_image
from yolo_compress.ros.parameters import AUTO, DetectorSettings, declare_parameters
from yolo_compress.ros.shutdown import until_shutdown
from yolo_compress.ros.timing_msgs import timing_msg
from yolo_compress.runtime.annotate import draw_detections
from yolo_compress.runtime.detector import Result
from yolo_compress.runtime.image_encoding import ImageEncodingError
from yolo_compress.runtime.latest_frame import LatestSlot
from yolo_compress.runtime.rate_meter import RateMeter
from yolo_compress.runtime.serving import CUSTOM_TIER, ServedModel, measure_tiers, open_model, open_tier
from yolo_compress.runtime.tiers import TiersConfig, load_tiers

NODE_NAME = "yolo_detector"
IDLE_TIMING_S = 1.0  # with no frame for this long, ~/timing still reports (tier, counters) once a second
LOG_THROTTLE_S = 5.0  # one log line per kind of problem per this many seconds
PROBLEM_WARN_S = 5.0  # ~/timing stays at WARN this long after a bad frame
BUSY_EWMA = 0.2  # weight of the newest frame in the processing-time average the auto tier reads
# Errors that reject a parameter change or stop the start-up with a message, never a traceback.
CONFIG_ERRORS = (OSError, ValueError)


def default_tiers_file() -> Path:
    """config/tiers.yaml of the installed package (ament index), else of the source checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("yolo_compress")) / "config" / "tiers.yaml"
    except (ImportError, LookupError, OSError):
        return Path(__file__).resolve().parents[2] / "config" / "tiers.yaml"


class DetectorNode(Node):
    """Serves one tier (or the auto tier) on `image` or `image/compressed`; see the README for the topics."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._settings = declare_parameters(self)
        self._swap_lock = threading.Lock()
        self._auto_loading = False
        self._served, self._auto, self._auto_config = self._select(self._settings)
        self._auto_event = self._auto.last_reason if self._auto else ""
        self._init_stats()

        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self._detections_pub = self.create_publisher(Detection2DArray, "~/detections", 10)
        self._timing_pub = self.create_publisher(DiagnosticArray, "~/timing", 10)
        self._annotated_pub = self.create_publisher(Image, "~/annotated", QoSProfile(depth=2))
        self._label_pub = self.create_publisher(LabelInfo, "~/label_info", latched)
        self._publish_label_info()

        self._slot: LatestSlot = LatestSlot()
        topic, msg_type = ("image/compressed", CompressedImage) if self._settings.use_compressed else ("image", Image)
        self._parse = parse_compressed if self._settings.use_compressed else parse_image
        self.create_subscription(msg_type, topic, self._on_frame, qos_profile_sensor_data, raw=True)
        self.create_timer(IDLE_TIMING_S, self._on_idle_timer)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._worker = threading.Thread(target=self._inference_loop, name="yolo_detector_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"subscribed to {self.resolve_topic_name(topic)}; {self._serving_text()}")

    def close(self) -> None:
        """Stop the inference thread (it finishes the frame in hand first)."""
        self._slot.close()
        self._worker.join(timeout=10)

    # ---- serving: which model, swaps, auto tier -------------------------------------------------------------

    def _select(
        self, settings: DetectorSettings
    ) -> tuple[ServedModel, AutoTierController | None, TiersConfig | None]:
        """Load what `settings` asks for: (model, auto controller or None, its tiers). Changes no state, so a
        failure leaves the node exactly as it was."""
        serve = settings.serve_settings()
        if settings.model:
            return open_model(CUSTOM_TIER, Path(settings.model).expanduser(), 0.25, 0.45, serve), None, None
        config = load_tiers(settings.tiers_path(default_tiers_file()))
        if settings.tier != AUTO:
            return open_tier(config, settings.tier or config.default, serve), None, None
        if settings.target_hz <= 0:
            raise ValueError("tier 'auto' needs target_hz > 0 (the detection rate to hold)")
        rates, failures = measure_tiers(config, serve)
        for tier, reason in failures.items():
            self.get_logger().error(f"auto tier: {tier} left out: {reason}")
        auto = AutoTierController(config.names, rates, settings.target_hz, time.monotonic())
        self.get_logger().info(f"auto tier: {auto.last_reason}")
        return open_tier(config, auto.current, serve), auto, config

    def _swap(self, served: ServedModel, auto: AutoTierController | None, config: TiersConfig | None) -> None:
        """Switch the inference thread to `served` (one reference assignment) and announce it."""
        self._served = served
        if auto is not self._auto:
            self._auto, self._auto_config = auto, config
            self._auto_event = auto.last_reason if auto else ""
        self._output_rate.reset()
        self._busy_ms = 0.0
        self._publish_label_info()
        self.get_logger().info(self._serving_text())

    def _serving_text(self) -> str:
        served = self._served
        mode = f" (auto, target {self._settings.target_hz:.3g} Hz)" if self._auto else ""
        return f"serving tier {served.tier}{mode}: {served.detector.model_path} on {served.detector.provider}"

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate and apply a change; a model that fails to load rejects it and the old tier keeps serving."""
        changes = {p.name: p.value for p in params}
        try:
            with self._swap_lock:
                self._apply_changes(self._settings.with_changes(changes), changes)
        except CONFIG_ERRORS as exc:
            self.get_logger().warning(f"rejected {', '.join(changes)} change: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_changes(self, new: DetectorSettings, changes: dict[str, object]) -> None:
        """Everything that can fail runs before any state changes; `_settings` is replaced last."""
        if {"tier", "tiers_file"} & changes.keys() and new.model:
            raise ValueError(f"model is set ({new.model}) and overrides tier: set model to '' to serve tiers")
        reload = {"tier", "tiers_file", "model", "providers", "ort_spin_us"} & changes.keys()
        auto_restart = "target_hz" in changes and new.tier == AUTO and not new.model and self._auto is None
        if reload or auto_restart:
            selected = self._select(new)
            self._settings = new
            self._swap(*selected)
        else:
            if self._auto is not None and new.target_hz <= 0:
                raise ValueError("tier 'auto' needs target_hz > 0 (the detection rate to hold)")
            self._served.apply(new.serve_settings())
            if self._auto is not None and new.target_hz != self._settings.target_hz:
                self._auto.set_target(new.target_hz, time.monotonic())
            if "conf_threshold" in changes:
                self._publish_label_info()
        self._settings = new

    def _auto_step(self, now: float) -> None:
        """Feed the live rates to the auto controller; a proposed move loads on a thread of its own."""
        auto = self._auto
        if auto is None or self._auto_loading:
            return
        capacity = 1000.0 / self._busy_ms if self._busy_ms > 0 else 0.0
        move = auto.observe(Observation(now, self._input_rate.rate(now), self._output_rate.rate(now), capacity))
        if move is not None:
            self._auto_loading = True
            self.get_logger().info(f"auto tier: moving {move.describe()}")
            threading.Thread(target=self._auto_move, args=(auto, move), name="yolo_detector_auto", daemon=True).start()

    def _auto_move(self, auto: AutoTierController, move: TierMove) -> None:
        try:
            with self._swap_lock:
                if self._auto is not auto or self._auto_config is None:
                    return  # a parameter change replaced the auto tier meanwhile
                try:
                    served = open_tier(self._auto_config, move.to_tier, self._settings.serve_settings())
                except CONFIG_ERRORS as exc:
                    auto.move_failed(move.to_tier, time.monotonic())
                    self._auto_event = f"{move.to_tier} failed to load, staying on {move.from_tier}: {exc}"
                    self.get_logger().error(f"auto tier: {self._auto_event}")
                    return
                # The event first: the inference thread reports the tier the moment `_swap` assigns it, and
                # ~/timing must not pair the new tier with the old event.
                self._auto_event = move.describe()
                self._swap(served, auto, self._auto_config)
                auto.moved(move.to_tier, time.monotonic())
        finally:
            self._auto_loading = False

    # ---- frames ---------------------------------------------------------------------------------------------

    def _init_stats(self) -> None:
        self._input_rate = RateMeter()
        self._output_rate = RateMeter()
        self._busy_ms = 0.0
        self._frames = 0
        self._bad_frames = 0
        self._errors = 0
        self._annotated = 0
        self._problem = ""
        self._problem_time = -float("inf")
        self._last_timing = 0.0
        self._last_logged: dict[str, float] = {}

    def _on_frame(self, serialized: bytes) -> None:
        self._input_rate.tick(time.monotonic())
        self._slot.put(serialized)

    def _inference_loop(self) -> None:
        while not self._slot.closed:
            serialized = self._slot.take(timeout=0.5)
            if serialized is None:
                continue
            try:
                self._process(serialized)
            except Exception as exc:  # the node must outlive anything one frame can do
                if not rclpy.ok(context=self.context):
                    return  # shutting down: publishers are gone
                self._errors += 1
                self._report_problem("error", f"frame failed: {type(exc).__name__}: {exc}", self._now_header())

    def _process(self, serialized: bytes) -> None:
        served = self._served  # read once: a swap mid-frame takes effect on the next frame
        start = time.perf_counter()
        frame: ImageFrame | CompressedFrame | None = None
        try:
            frame = self._parse(serialized)
            image = frame.to_bgr()
        except ImageEncodingError as exc:
            self._bad_frames += 1
            header = frame.header if frame is not None else self._now_header()
            self._report_problem(type(exc).__name__, f"bad frame: {exc}", header)
            return
        header = frame.header  # every output carries the frame's header
        decode_ms = (time.perf_counter() - start) * 1e3
        result = served.detector.detect(image)
        self._detections_pub.publish(detections_cdr(result.detections, served.detector.names, header))
        latency_ms = self._age_ms(header)
        if self._settings.publish_annotated or self._annotated_pub.get_subscription_count() > 0:
            self._publish_annotated(image, result, served, header)
            self._annotated += 1
        now = time.monotonic()
        self._frames += 1
        self._output_rate.tick(now)
        busy_ms = (time.perf_counter() - start) * 1e3
        self._busy_ms = busy_ms if self._busy_ms == 0 else (1 - BUSY_EWMA) * self._busy_ms + BUSY_EWMA * busy_ms
        self._publish_timing(header, served, result, decode_ms, latency_ms)
        self._auto_step(now)

    def _now_header(self) -> Header:
        return Header(stamp=self.get_clock().now().to_msg())

    def _age_ms(self, header: Header) -> float:
        """Now minus the header stamp (NaN when the publisher left the stamp at zero)."""
        stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        return (self.get_clock().now().nanoseconds - stamp) / 1e6 if stamp else float("nan")

    def _publish_annotated(self, image: np.ndarray, result: Result, served: ServedModel, header: Header) -> None:
        canvas = draw_detections(image, result.detections, served.detector.names)
        label = f"{served.tier} {self._output_rate.rate(time.monotonic()):.1f} Hz"
        cv2.putText(canvas, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        self._annotated_pub.publish(bgr_to_image(canvas, header))

    def _report_problem(self, kind: str, text: str, header: Header) -> None:
        """Throttled log line per kind of problem, and ~/timing at WARN naming it."""
        now = time.monotonic()
        self._problem, self._problem_time = text, now
        if now - self._last_logged.get(kind, -float("inf")) >= LOG_THROTTLE_S:
            self._last_logged[kind] = now
            self.get_logger().warning(f"{text} (bad frames so far: {self._bad_frames}, errors: {self._errors})")
        self._publish_timing(header, self._served, None, float("nan"), float("nan"))

    # ---- ~/timing and ~/label_info --------------------------------------------------------------------------

    def _on_idle_timer(self) -> None:
        if time.monotonic() - self._last_timing >= IDLE_TIMING_S:
            self._publish_timing(self._now_header(), self._served, None, float("nan"), float("nan"))

    def _publish_timing(
        self, header: Header, served: ServedModel, result: Result | None, decode_ms: float, latency_ms: float
    ) -> None:
        now = time.monotonic()
        self._last_timing = now
        nan = float("nan")
        timing = result.timing if result is not None else None
        values = {
            "tier": served.tier,
            "model": served.detector.model_path,
            "provider": served.detector.provider,
            "auto": self._auto is not None,
            "target_hz": self._settings.target_hz,
            "decode_ms": decode_ms,
            "preprocess_ms": timing.preprocess_ms if timing else nan,
            "inference_ms": timing.inference_ms if timing else nan,
            "postprocess_ms": timing.postprocess_ms if timing else nan,
            "total_ms": timing.total_ms if timing else nan,
            "latency_ms": latency_ms,
            "detections": len(result.detections) if result is not None else 0,
            "input_hz": self._input_rate.rate(now),
            "output_hz": self._output_rate.rate(now),
            "received": self._slot.received,
            "frames": self._frames,
            "dropped": self._slot.dropped,
            "bad_frames": self._bad_frames,
            "errors": self._errors,
            "annotated": self._annotated,
            "last_problem": self._problem,
            "auto_event": self._auto_event,
            "tier_rates": self._tier_rates_text(),
        }
        recent_problem = now - self._problem_time < PROBLEM_WARN_S
        level, message = ("warn", self._problem) if recent_problem else ("ok", self._serving_text())
        name = f"{self.get_fully_qualified_name()}: detector"
        self._timing_pub.publish(timing_msg(header, name, level, message, served.detector.provider, values))

    def _tier_rates_text(self) -> str:
        """'fast=61.2,medium=23.9' (start-up Hz of each tier) while the auto tier runs, else ''."""
        auto = self._auto
        return ",".join(f"{tier}={hz:.2f}" for tier, hz in auto.capacities.items()) if auto else ""

    def _publish_label_info(self) -> None:
        served = self._served
        self._label_pub.publish(label_info_msg(served.detector.names, served.detector.conf_threshold,
                                               self._now_header()))


def main(args: list[str] | None = None) -> int:
    """Console script `detector_node`: run until SIGINT/SIGTERM; exit 1 with the reason on a bad configuration."""
    keep_frame_buffers_in_heap()  # before DDS allocates anything: halves the CPU a received frame costs
    rclpy.init(args=args)
    try:
        node = DetectorNode()
    except CONFIG_ERRORS as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        with until_shutdown():
            executor.spin()
    finally:
        executor.shutdown(timeout_sec=10)  # callbacks in flight finish before their node goes away
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
