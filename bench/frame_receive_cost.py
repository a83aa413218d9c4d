#!/usr/bin/env python3
"""What receiving one 640x480 bgr8 frame over Fast DDS costs a Python node, in one run, four ways side by side:
rclpy's deserialized messages or raw (serialized) bytes, each with glibc's default malloc thresholds or with
frame buffers kept in the heap (yolo_compress/ros/frame_memory.py). The detector node is raw + heap.

- CPU: one publisher sends the same frames at --rate Hz to all four subscriber processes at once, which do
  nothing with them (as with a frame the node drops); CPU seconds (user, and the kernel's share) of each
  process over the window, per frame sent (best effort over shared memory: a check counted 900 of 900
  frames received by each).
- Latency: each subscriber also answers frames on a topic of its own with their header (the echo floor of
  bench/node_overhead.py); frames go to the four in turn, one in flight, round-trip ms.

    source .venv/yolo_ros_env.sh
    python bench/frame_receive_cost.py --json bench/results/frame_receive_cost.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(ROOT / "config" / "fastdds_large_frames.xml"))

from node_overhead import image_msg, load_frames, rclpy_node, write_result  # noqa: E402

from yolo_compress.ros.frame_memory import keep_frame_buffers_in_heap  # noqa: E402

NAMESPACE = f"/frame_cost_{os.getpid()}"
VARIANTS = {  # name: (raw subscription, frame buffers kept in the heap)
    "deserialized": (False, False),
    "deserialized + heap": (False, True),
    "raw": (True, False),
    "raw + heap (the node)": (True, True),
}

SUBSCRIBER = """
import sys
raw, heap, ns, name = sys.argv[1] == "1", sys.argv[2] == "1", sys.argv[3], sys.argv[4]
if heap:
    from yolo_compress.ros.frame_memory import keep_frame_buffers_in_heap
    keep_frame_buffers_in_heap()
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from yolo_compress.ros.cdr_frames import parse_image
from yolo_compress.ros.shutdown import until_shutdown

rclpy.init()
node = rclpy.create_node("frame_cost_" + name, namespace=ns)
back = node.create_publisher(Header, name + "/back", 10)
header_of = (lambda data: parse_image(data).header) if raw else (lambda msg: msg.header)
node.create_subscription(Image, name + "/image", lambda m: back.publish(header_of(m)), qos_profile_sensor_data,
                         raw=raw)
node.create_subscription(Image, "all/image", lambda m: None, qos_profile_sensor_data, raw=raw)
with until_shutdown():
    rclpy.spin(node)
"""


def topic_name(variant: str) -> str:
    return variant.split(" ")[0] + ("_heap" if VARIANTS[variant][1] else "")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user + system, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


class Bench:
    """The publisher side: one node with a frame publisher per variant and one to all, and the echoes."""

    def __init__(self) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        self.procs = {v: subprocess.Popen([sys.executable, "-c", SUBSCRIBER, str(int(raw)), str(int(heap)),
                                           NAMESPACE, topic_name(v)], cwd=ROOT)
                      for v, (raw, heap) in VARIANTS.items()}
        self.node = rclpy_node()
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.to_all = self.node.create_publisher(Image, f"{NAMESPACE}/all/image", qos_profile_sensor_data)
        self.to_one = {v: self.node.create_publisher(Image, f"{NAMESPACE}/{topic_name(v)}/image", 10)
                       for v in VARIANTS}
        self.arrivals: dict[str, float] = {}
        for v in VARIANTS:
            self.node.create_subscription(Header, f"{NAMESPACE}/{topic_name(v)}/back",
                                          lambda h: self.arrivals.setdefault(h.frame_id, time.perf_counter()), 100)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.perf_counter() + timeout
        while self.to_all.get_subscription_count() < len(VARIANTS) or any(
                p.get_subscription_count() < 1 for p in self.to_one.values()):
            if time.perf_counter() > deadline:
                raise RuntimeError("subscribers did not come up")
            self.executor.spin_once(timeout_sec=0.1)

    def round_trip_ms(self, variant: str, msg, key: str) -> float | None:
        msg.header.frame_id = key
        sent = time.perf_counter()
        self.to_one[variant].publish(msg)
        deadline = sent + 2.0
        while key not in self.arrivals and time.perf_counter() < deadline:
            self.executor.spin_once(timeout_sec=0.1)
        return (self.arrivals[key] - sent) * 1e3 if key in self.arrivals else None

    def cpu_per_frame(self, msgs, rate: float, seconds: float) -> dict[str, dict[str, float]]:
        before = {v: cpu_seconds(p.pid) for v, p in self.procs.items()}
        start, sent = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            self.to_all.publish(msgs[sent % len(msgs)])
            sent += 1
            self.executor.spin_once(timeout_sec=max(0.0, start + sent / rate - time.perf_counter()))
        time.sleep(0.5)  # the last frames land
        after = {v: cpu_seconds(p.pid) for v, p in self.procs.items()}
        return {v: {"cpu_ms_per_frame": (after[v][0] - before[v][0]) / sent * 1e3,
                    "system_ms_per_frame": (after[v][1] - before[v][1]) / sent * 1e3, "frames": sent}
                for v in VARIANTS}

    def close(self) -> None:
        self.node.destroy_node()
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.wait(timeout=15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=60.0, help="frames per second for the CPU window")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the CPU window")
    parser.add_argument("--round-trips", type=int, default=100, help="echo round trips per variant")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    keep_frame_buffers_in_heap()
    frames, frames_text = load_frames(20)
    msgs = [image_msg(frame, i) for i, frame in enumerate(frames)]
    bench = Bench()
    try:
        bench.wait_ready()
        for i in range(10):  # discovery and first-call costs
            for v in VARIANTS:
                bench.round_trip_ms(v, msgs[0], f"warm{i}{v}")
        trips: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for i in range(args.round_trips):
            for v in VARIANTS:
                if (ms := bench.round_trip_ms(v, msgs[i % len(msgs)], f"{i}{v}")) is not None:
                    trips[v].append(ms)
        cpu = bench.cpu_per_frame(msgs, args.rate, args.seconds)
    finally:
        bench.close()
    result = {"frames": frames_text, "rate_hz": args.rate, "seconds": args.seconds, "load_average": os.getloadavg(),
              "variants": {v: {**cpu[v], "echo_p50_ms": float(np.median(trips[v])),
                               "echo_p95_ms": float(np.percentile(trips[v], 95)), "echo_lost": args.round_trips
                               - len(trips[v])} for v in VARIANTS}}
    print(f"{frames_text} bgr8 at {args.rate:g} Hz to all four for {args.seconds:g} s; {args.round_trips} echo round "
          f"trips each; load average {', '.join(f'{x:.1f}' for x in result['load_average'])}")
    print("| subscriber | CPU ms per frame | of it kernel | echo p50 ms | echo p95 ms |\n|---|---|---|---|---|")
    for v, r in result["variants"].items():
        print(f"| {v} | {r['cpu_ms_per_frame']:.2f} | {r['system_ms_per_frame']:.2f} | {r['echo_p50_ms']:.2f} | "
              f"{r['echo_p95_ms']:.2f} |")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
