"""--live: play a bag into the running detector node over real ROS 2 and score what comes back.

The offline replay measures the detector; this measures the whole ROS path as deployed: DDS transport of the
frames, the node's decoding, newest-frame dropping, inference and publishing. Frames are published as the
stored CDR bytes (what `ros2 bag play` does), restamped with the time they are sent so that the node's own
latency_ms (now minus header stamp) is a real figure; detections are matched back to frames by that stamp, since
the node publishes them with the input image's header. For each tier the node is switched with its `tier`
parameter (no restart) and warmed up on the first frame before the timed playback.

Needs rclpy with the vision_msgs and diagnostic_msgs type support (a ROS 2 install, or the ROS kit of
scripts/ros_setup.sh): imported only here, so the offline evaluation never needs ROS.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolo_compress.bag.errors import BagError
from yolo_compress.bag.messages import LabeledBoxes, boxes_of, stamp_ns
from yolo_compress.bag.reader import CameraBag, ImageCursor
from yolo_compress.bag.replay import Served, latest_served, stream_duration
from yolo_compress.bag.timeline import Timeline
from yolo_compress.bag.typestore import COMPRESSED_IMAGE, DETECTION_ARRAY, typestore
from yolo_compress.eval.annotations import ImageDT, ImageGT
from yolo_compress.eval.evaluate import evaluate
from yolo_compress.eval.latency import latency_stats
from yolo_compress.ros.frame_memory import keep_frame_buffers_in_heap
from yolo_compress.runtime.tiers import TierSpec

DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"
WARM_UP = -1  # the frame index warm-up sends are filed under
FASTDDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
LIVE_KEYS = ("realtime_hz", "dropped_pct", "latency_p50_ms", "latency_p95_ms", "realtime_ap50",
             "node_latency_p50_ms", "node_total_ms", "provider", "model")  # node_*: medians of what ~/timing reported


class LiveError(BagError):
    """The live run could not be done: no ROS, no node, the node refused the tier, or it stayed silent."""


@dataclass(frozen=True)
class LiveOptions:
    """Which node to drive; `input_topic` None takes the node's own image subscription of the bag's type."""

    node: str = "/yolo_detector"
    input_topic: str | None = None
    deadline_s: float = 20.0  # for discovery and for a tier swap (a model load)
    drain_s: float = 1.0  # after the last frame, how long to wait for answers


@dataclass
class _Playback:
    """One tier's timed playback: when each frame went out, and what came back for it (bag index keys)."""

    sent_s: dict[int, float] = field(default_factory=dict)
    answered: dict[int, tuple[float, LabeledBoxes]] = field(default_factory=dict)
    timing: dict[int, dict[str, str]] = field(default_factory=dict)


def live_evaluate(
    bag: CameraBag,
    timeline: Timeline,
    tiers: Sequence[TierSpec],
    scored: Mapping[int, ImageGT],
    class_names: Sequence[str] | None,
    aliases: Mapping[str, str],
    options: LiveOptions,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """({tier: figures (LIVE_KEYS)} of the node on the bag, tier after tier; notes, e.g. a tier the node serves
    from another model file than the offline evaluation used)."""
    rclpy = _import_rclpy()
    _large_frame_transport()
    keep_frame_buffers_in_heap()
    context = rclpy.Context()
    rclpy.init(context=context)
    results, notes = {}, []
    try:
        link = _NodeLink(rclpy, context, bag.image_type, options)
        try:
            for tier in tiers:
                served = link.switch_tier(tier.name, bag)
                if Path(served.get("model", "")).name != tier.model.name:
                    notes.append(f"live: {options.node} serves tier {tier.name} from {served.get('model')}, the "
                                 f"offline figures are of {tier.model}")
                playback = link.play(bag, timeline)
                results[tier.name] = _figures(playback, timeline, scored, class_names, aliases)
        finally:
            link.close()
    finally:
        context.try_shutdown()
    return results, notes


def restamp(cdr: bytes, stamp: int) -> bytes:
    """The serialized Image/CompressedImage with header.stamp replaced: the stamp is the first field of the
    payload (after the 4-byte CDR encapsulation header), int32 sec and uint32 nanosec in the message's byte order."""
    if len(cdr) < 12 or cdr[0] != 0 or cdr[1] not in (0, 1):
        raise ValueError("not a CDR-serialized message")
    order = "<" if cdr[1] == 1 else ">"
    out = bytearray(cdr)
    struct.pack_into(f"{order}iI", out, 4, *divmod(int(stamp), 1_000_000_000))
    return bytes(out)


class _NodeLink:
    """A probe node wired to the detector: image publisher, detections/timing subscriptions, parameter client."""

    def __init__(self, rclpy: Any, context: Any, image_type: str, options: LiveOptions) -> None:
        from rcl_interfaces.srv import SetParameters
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self._options = options
        self._node = rclpy.create_node("bag_player", context=context)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self._node)
        self._target_ns, self._target_name = _split_node_name(options.node)
        self._wait(self._node_visible, f"no node {options.node} (is detector_node running in this ROS domain?)")
        topic = options.input_topic or self._input_topic(image_type)
        message_type = _message_class(image_type)
        self._images = self._node.create_publisher(message_type, topic, QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self._playback = _Playback()
        self._stamps: dict[int, int] = {}  # sent stamp -> bag index of the timed playback
        from diagnostic_msgs.msg import DiagnosticArray
        from vision_msgs.msg import Detection2DArray

        self._node.create_subscription(Detection2DArray, f"{options.node}/detections", self._on_detections, 10,
                                       raw=True)
        self._node.create_subscription(DiagnosticArray, f"{options.node}/timing", self._on_timing, 10, raw=True)
        self._params = self._node.create_client(SetParameters, f"{options.node}/set_parameters")
        self._wait(lambda: self._images.get_subscription_count() > 0,
                   f"{options.node} does not subscribe {topic} yet")

    def switch_tier(self, tier: str, bag: CameraBag) -> dict[str, str]:
        """Set the node's tier parameter, then send the first frame until the node answers it serving that tier
        (a model's first runs are slow); returns that answer's ~/timing values."""
        self._set_parameter("tier", tier)
        warm_up = next(bag.images()).data
        self._playback, self._stamps = _Playback(), {}
        deadline = time.monotonic() + self._options.deadline_s
        while self._playback.timing.get(WARM_UP, {}).get("tier") != tier:
            if time.monotonic() > deadline:
                last = self._playback.timing.get(WARM_UP) or "none"
                raise LiveError(f"{self._options.node} did not answer a frame as tier {tier!r} within "
                                f"{self._options.deadline_s:g} s (last ~/timing of a frame: {last})")
            stamp = time.time_ns()
            self._stamps[stamp] = WARM_UP
            self._images.publish(restamp(warm_up, stamp))
            self._spin_until(time.monotonic() + 0.2)
        return self._playback.timing[WARM_UP]

    def play(self, bag: CameraBag, timeline: Timeline) -> _Playback:
        """Publish the frames at their arrival times (stamps / rate) and collect the answers."""
        self._playback, self._stamps = _Playback(), {}
        cursor = ImageCursor(bag)
        start = time.monotonic() + 0.1
        for frame, arrival in zip(timeline.order.tolist(), timeline.arrivals.tolist(), strict=True):
            data = cursor.get(frame).data
            self._spin_until(start + arrival)
            stamp = time.time_ns()
            self._stamps[stamp] = frame
            self._images.publish(restamp(data, stamp))
            self._playback.sent_s[frame] = time.monotonic() - start
        self._spin_until(time.monotonic() + self._options.drain_s)
        playback, self._playback, self._stamps = self._playback, _Playback(), {}
        for frame, (received, boxes) in list(playback.answered.items()):
            playback.answered[frame] = (received - start, boxes)
        return playback

    def close(self) -> None:
        self._executor.shutdown()
        self._node.destroy_node()

    def _on_detections(self, data: bytes) -> None:
        msg = typestore().deserialize_cdr(data, DETECTION_ARRAY)
        frame = self._stamps.get(stamp_ns(msg.header))
        if frame is not None:
            self._playback.answered[frame] = (time.monotonic(), boxes_of(msg))

    def _on_timing(self, data: bytes) -> None:
        msg = typestore().deserialize_cdr(data, DIAGNOSTIC_ARRAY)
        if not msg.status:
            return
        frame = self._stamps.get(stamp_ns(msg.header))
        if frame is not None:
            self._playback.timing[frame] = {kv.key: kv.value for kv in msg.status[0].values}

    def _set_parameter(self, name: str, value: str) -> None:
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        self._wait(self._params.service_is_ready, f"{self._options.node} offers no set_parameters service")
        request = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=value))])
        future = self._params.call_async(request)
        self._executor.spin_until_future_complete(future, timeout_sec=self._options.deadline_s)
        if not future.done():
            raise LiveError(f"{self._options.node}: setting {name}={value} got no answer")
        (result,) = future.result().results
        if not result.successful:
            raise LiveError(f"{self._options.node} refused {name}={value}: {result.reason}")

    def _input_topic(self, image_type: str) -> str:
        """The node's subscription of the bag's message type (it may be remapped anywhere)."""

        def candidates() -> list[str]:
            return [name for name, types in self._subscriptions() if image_type in types]

        def problem() -> str:
            hint = " (start it with use_compressed:=true)" if image_type == COMPRESSED_IMAGE else ""
            listing = ", ".join(f"{n} ({', '.join(t)})" for n, t in self._subscriptions()) or "none"
            return (f"{self._options.node} subscribes {len(candidates())} topics of {image_type}{hint}; its "
                    f"subscriptions: {listing}. Name one with --live-input-topic")

        self._wait(lambda: len(candidates()) == 1, problem)
        return candidates()[0]

    def _subscriptions(self) -> list[tuple[str, list[str]]]:
        return self._node.get_subscriber_names_and_types_by_node(self._target_name, self._target_ns)

    def _node_visible(self) -> bool:
        return (self._target_name, self._target_ns) in self._node.get_node_names_and_namespaces()

    def _wait(self, ready: Callable[[], bool], problem: str | Callable[[], str]) -> None:
        """Spin until `ready()`; past the deadline, LiveError with `problem` (a callable is asked then: discovery
        may have changed the answer meanwhile)."""
        deadline = time.monotonic() + self._options.deadline_s
        while not ready():
            if time.monotonic() > deadline:
                text = problem() if callable(problem) else problem
                raise LiveError(f"{text} after {self._options.deadline_s:g} s")
            self._executor.spin_once(timeout_sec=0.1)

    def _spin_until(self, moment: float) -> None:
        """Handle callbacks until the monotonic time `moment` (the player's only way of waiting)."""
        while (remaining := moment - time.monotonic()) > 0:
            self._executor.spin_once(timeout_sec=remaining)


def _figures(
    playback: _Playback,
    timeline: Timeline,
    scored: Mapping[int, ImageGT],
    class_names: Sequence[str] | None,
    aliases: Mapping[str, str],
) -> dict[str, Any]:
    frames = len(timeline.order)
    served = sorted(((Served(f, playback.sent_s[f], received), boxes) for f, (received, boxes) in
                     playback.answered.items()), key=lambda item: item[0].end_s)
    latencies = [(s.end_s - s.start_s) * 1e3 for s, _ in served]
    duration = stream_duration(timeline.arrivals)
    figures: dict[str, Any] = dict.fromkeys(LIVE_KEYS)
    figures["dropped_pct"] = 100.0 * (frames - len(served)) / frames
    figures["realtime_hz"] = len(served) / duration if duration > 0 else None
    if latencies:
        stats = latency_stats(latencies)
        figures.update(latency_p50_ms=stats["p50_ms"], latency_p95_ms=stats["p95_ms"])
    node_timing = list(playback.timing.values())
    if node_timing:
        figures["provider"] = node_timing[-1].get("provider")
        figures["model"] = node_timing[-1].get("model")
        figures["node_latency_p50_ms"] = _median_value(node_timing, "latency_ms")
        figures["node_total_ms"] = _median_value(node_timing, "total_ms")
    if scored and class_names:
        order = sorted(scored)
        moments = [playback.sent_s[f] for f in order]
        by_frame = {s.frame: boxes for s, boxes in served}
        picks = latest_served([s for s, _ in served], moments)
        detections = [_image_dt(None if f is None else by_frame[f], class_names, aliases) for f in picks]
        figures["realtime_ap50"] = evaluate([scored[f] for f in order], detections, class_names)["ap50"]
    return figures


def _median_value(timing: Sequence[Mapping[str, str]], key: str) -> float | None:
    """Median of a numeric ~/timing value over the frames that reported it."""
    values = [float(t[key]) for t in timing if key in t]
    return float(np.median(values)) if values else None


def _image_dt(boxes: LabeledBoxes | None, class_names: Sequence[str], aliases: Mapping[str, str]) -> ImageDT:
    """The node's detections (class *names*) as evaluation detections; classes not scored are left out."""
    if boxes is None:
        return ImageDT(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    index = {name: i for i, name in enumerate(class_names)}
    keep = [i for i, label in enumerate(boxes.labels) if aliases.get(label, label) in index]
    classes = np.array([index[aliases.get(boxes.labels[i], boxes.labels[i])] for i in keep], np.int64)
    return ImageDT.from_xyxy(boxes.boxes[keep], boxes.scores[keep], classes)


def _split_node_name(name: str) -> tuple[str, str]:
    """'/ns/yolo_detector' -> ('/ns', 'yolo_detector')."""
    full = name if name.startswith("/") else f"/{name}"
    namespace, _, node = full.rpartition("/")
    return namespace or "/", node


def _message_class(msgtype: str) -> type:
    from sensor_msgs.msg import CompressedImage, Image

    return CompressedImage if msgtype == COMPRESSED_IMAGE else Image


def _large_frame_transport() -> None:
    """The package's Fast DDS profile for frames over 512 KB, unless the user chose one: the shared-memory segment
    belongs to the publishing process, which here is this one, and without it a VGA bgr8 frame falls back to
    fragmented UDP that the node's best-effort subscription mostly loses (60% of TUD-Campus frames, measured)."""
    if FASTDDS_PROFILE_ENV in os.environ:
        return
    from yolo_compress.ros.detector_node import default_tiers_file  # finds the package's config/ folder

    profile = default_tiers_file().with_name("fastdds_large_frames.xml")
    if profile.is_file():
        os.environ[FASTDDS_PROFILE_ENV] = str(profile)


def _import_rclpy() -> Any:
    try:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: F401
        from vision_msgs.msg import Detection2DArray  # noqa: F401
    except ImportError as exc:
        raise LiveError(f"--live needs ROS 2 Python (rclpy, vision_msgs, diagnostic_msgs): {exc}. Source a ROS 2 "
                        "install, or run scripts/ros_setup.sh VENV and source VENV/yolo_ros_env.sh") from exc
    return rclpy
