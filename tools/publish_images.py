#!/usr/bin/env python3
"""Publish images, videos or generated frames on a ROS 2 image topic at a steady rate (a camera stand-in).

    python tools/publish_images.py ../shared/data/photos --loop --rate 5 --topic /camera/image_raw
    python tools/publish_images.py clip.mp4 --encoding yuv422 --row-padding 64 --rate 30
    python tools/publish_images.py --synthetic 640x480 --compressed jpeg --rate 30 --count 300

Any encoding the detector node reads (rgb8, bgr8, rgba8, bgra8, mono8, yuv422/uyvy, yuv422_yuy2/yuyv);
--compressed publishes sensor_msgs/CompressedImage on <topic>/compressed. Needs a ROS 2 environment
(source VENV/yolo_ros_env.sh, or a ROS install).
"""

from __future__ import annotations

import argparse
import sys

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.runtime.frame_stream import file_frames, synthetic_frames
from yolo_compress.runtime.image_encoding import COMPRESSED_FORMATS, ENCODINGS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*", help="image files, folders of images, videos")
    parser.add_argument("--synthetic", metavar="WxH", help="generated frames of this size instead of files")
    parser.add_argument("--topic", default="image", help="image topic (default: image)")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--encoding", choices=ENCODINGS, default="bgr8", help="sensor_msgs/Image encoding")
    parser.add_argument("--row-padding", type=int, default=0, help="zero bytes after each row (step > width)")
    parser.add_argument("--compressed", choices=COMPRESSED_FORMATS, help="publish CompressedImage on TOPIC/compressed")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument("--loop", action="store_true", help="start the files over when they run out")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames (default: no limit)")
    parser.add_argument("--frame-id", default="camera", help="header frame_id (default camera)")
    parser.add_argument("--wait-subscribers", type=int, default=0, help="start once this many subscribers matched")
    args = parser.parse_args(argv)
    if bool(args.sources) == bool(args.synthetic):
        parser.error("give image/video sources or --synthetic WxH (not both)")
    return args


def synthetic_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise ValueError(f"--synthetic must be WIDTHxHEIGHT, e.g. 640x480, got {text!r}")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from yolo_compress.ros.image_publisher import PublishOptions, publish_frames
    except ImportError as exc:
        print(f"publish_images: ROS 2 Python packages not importable ({exc}); source a ROS 2 environment",
              file=sys.stderr)
        return 2
    try:
        frames = synthetic_frames(*synthetic_size(args.synthetic)) if args.synthetic else file_frames(
            args.sources, loop=args.loop)
        options = PublishOptions(args.topic, args.rate, args.encoding, args.compressed, args.row_padding,
                                 args.frame_id, args.count, args.wait_subscribers, args.quality)
        sent = publish_frames(frames, options)
    except ValueError as exc:
        print(f"publish_images: {exc}", file=sys.stderr)
        return 1
    print(f"published {sent} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
