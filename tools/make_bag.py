#!/usr/bin/env python3
"""Make a rosbag2 camera recording (mcap or sqlite3) with ground truth, playable with `ros2 bag play`.

    python tools/make_bag.py --data "yolo:../shared/data/sequence/TUD-Campus?names=person" --out tud_bag
    python tools/make_bag.py --data synthetic:50 --rate 15 --compressed jpeg --format sqlite3 --out synth_bag
    python tools/make_bag.py --video clip.mp4 --rate 30 --out clip_bag          # no ground truth

Images go on --image-topic (sensor_msgs/Image, or CompressedImage with --compressed), ground truth as
vision_msgs/Detection2DArray on /ground_truth stamped like its image, the class map as vision_msgs/LabelInfo
on /ground_truth/label_info. The rate defaults to a sequence's seq.json fps, a video's fps, else 10 Hz.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.bag.errors import BagError
from yolo_compress.bag.make import BagSpec, bag_from_dataset, bag_from_video, sequence_fps
from yolo_compress.bag.messages import NS_PER_S
from yolo_compress.bag.writer import STORAGE_FORMATS, CameraTopics
from yolo_compress.data.dataset import DatasetError
from yolo_compress.data.specs import load_dataset
from yolo_compress.runtime.image_encoding import COMPRESSED_FORMATS, ENCODINGS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="labeled frames: yolo:DIR, voc:DIR, coco:ANN,IMGDIR or synthetic:N (see "
                                       "'## Datasets and evaluation' in the README)")
    source.add_argument("--video", type=Path, help="a video file (the bag then has no ground truth)")
    parser.add_argument("--classes", help="comma-separated classes to keep in the ground truth (default: all)")
    parser.add_argument("--out", type=Path, required=True, help="bag folder to create")
    parser.add_argument("--format", choices=sorted(STORAGE_FORMATS), default="mcap", help="storage (default mcap)")
    parser.add_argument("--rate", type=float, help="frames per second (default: seq.json fps, video fps, else 10)")
    parser.add_argument("--compressed", choices=COMPRESSED_FORMATS,
                        help="write sensor_msgs/CompressedImage in this format (JPEG/PNG files go in unchanged)")
    parser.add_argument("--encoding", default="bgr8", choices=list(ENCODINGS),
                        help="sensor_msgs/Image encoding when not --compressed (default bgr8)")
    parser.add_argument("--image-topic", help="default /camera/image_raw (+ /compressed with --compressed)")
    parser.add_argument("--frame-id", default="camera", help="header frame_id (default camera)")
    parser.add_argument("--start-time", type=float, help="stamp of the first frame, s since the epoch (default now)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag at --out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    if args.classes and not args.data:
        print("make_bag: --classes needs --data (a video has no ground truth)", file=sys.stderr)
        return 2
    image_topic = args.image_topic or CameraTopics.image + ("/compressed" if args.compressed else "")
    spec = BagSpec(
        out=args.out, storage=args.format, compressed=args.compressed, encoding=args.encoding,
        topics=CameraTopics(image=image_topic), frame_id=args.frame_id, rate=args.rate,
        start_ns=None if args.start_time is None else round(args.start_time * NS_PER_S), overwrite=args.overwrite,
    )
    try:
        if args.video:
            summary = bag_from_video(args.video, spec)
        else:
            summary = bag_from_dataset(load_dataset(args.data, args.classes), spec, sequence_fps(args.data))
    except (BagError, DatasetError, OSError, ValueError) as exc:
        print(f"make_bag: {exc}", file=sys.stderr)
        return 1
    truth = (f", {summary['boxes']} ground-truth boxes of {', '.join(summary['classes'])} on /ground_truth"
             if summary["classes"] is not None else ", no ground truth")
    print(f"wrote {summary['path']} ({summary['storage']}): {summary['frames']} frames at {summary['rate_hz']:g} Hz "
          f"on {summary['image_topic']} ({summary['image_type']}){truth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
