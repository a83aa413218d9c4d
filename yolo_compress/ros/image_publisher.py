"""A camera stand-in: BGR frames published as sensor_msgs/Image (any encoding) or CompressedImage at a rate.

The logic behind tools/publish_images.py, so a user without a camera can drive the detector node, and the
tests can drive it through exactly the encodings a driver would publish.
"""

from __future__ import annotations

import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from yolo_compress.ros.frame_memory import keep_frame_buffers_in_heap
from yolo_compress.ros.shutdown import until_shutdown
from yolo_compress.runtime.image_encoding import bgr_to_compressed, bgr_to_image_data

NODE_NAME = "image_publisher"


@dataclass(frozen=True)
class PublishOptions:
    """Where and how frames go out. `compressed` ('jpeg'/'png') publishes on <topic>/compressed instead."""

    topic: str = "image"
    rate_hz: float = 10.0
    encoding: str = "bgr8"
    compressed: str | None = None
    row_padding: int = 0
    frame_id: str = "camera"
    count: int = 0  # 0: until the frames run out (or forever with a looping source)
    wait_subscribers: int = 0  # publish only once this many subscribers matched
    jpeg_quality: int = 90


class ImagePublisher(Node):
    """Publishes one frame of `frames` per timer tick; `done` once `count` are out or the frames run out."""

    def __init__(self, frames: Iterator[np.ndarray], options: PublishOptions) -> None:
        super().__init__(NODE_NAME)
        if options.rate_hz <= 0:
            raise ValueError(f"rate must be > 0 Hz, got {options.rate_hz}")
        self.options, self._frames, self.sent, self.done = options, frames, 0, False
        # Reliable matches both reliable and best-effort (sensor-data) subscribers.
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        if options.compressed:
            self._publisher = self.create_publisher(CompressedImage, options.topic + "/compressed", qos)
        else:
            self._publisher = self.create_publisher(Image, options.topic, qos)
        self.create_timer(1.0 / options.rate_hz, self._tick)
        self.get_logger().info(f"publishing on {self._publisher.topic_name} at {options.rate_hz:g} Hz")

    def _tick(self) -> None:
        if self.done or self._publisher.get_subscription_count() < self.options.wait_subscribers:
            return
        frame = next(self._frames, None)
        if frame is None:
            self.done = True
            return
        msg = self._message(frame)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.options.frame_id
        self._publisher.publish(msg)
        self.sent += 1
        self.done = 0 < self.options.count <= self.sent

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Wait until reliable subscribers acknowledged every frame: exiting right after the last publish
        would otherwise lose the frames still in flight."""
        return self._publisher.wait_for_all_acked(Duration(seconds=timeout_s))

    def _message(self, frame: np.ndarray) -> Image | CompressedImage:
        options = self.options
        if options.compressed:
            fmt, data = bgr_to_compressed(frame, options.compressed, options.jpeg_quality)
            msg = CompressedImage(format=fmt)
        else:
            data, step = bgr_to_image_data(frame, options.encoding, options.row_padding)
            msg = Image(height=frame.shape[0], width=frame.shape[1], encoding=options.encoding, is_bigendian=0,
                        step=step)
        msg.data = array.array("B", data)
        return msg


def publish_frames(frames: Iterator[np.ndarray], options: PublishOptions, args: list[str] | None = None) -> int:
    """Run an ImagePublisher until it is done or interrupted; the number of frames published."""
    keep_frame_buffers_in_heap()
    rclpy.init(args=args)
    node = ImagePublisher(frames, options)
    try:
        with until_shutdown():
            while rclpy.ok() and not node.done:
                rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        if rclpy.ok():
            node.flush()
        node.destroy_node()
        rclpy.try_shutdown()
    return node.sent
