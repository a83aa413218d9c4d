#!/usr/bin/env python3
"""Evaluate detector tiers on a rosbag2 camera recording: AP offline and at the camera's real rate.

    python tools/evaluate_bag.py tud_bag --tiers config/tiers.yaml --out runs/bag_eval
    python tools/evaluate_bag.py tud_bag --model fast.onnx --model accurate.onnx --rate 2 --replay measured

Per tier: AP50, AP50:95, precision, recall, F1, mean IoU, max throughput and stage times (offline pass over every
frame); then a real-time replay (frames arrive at their stamps / --rate, the tier takes the newest frame when
free, as the node does): output Hz, dropped %, latency p50/p95 and real-time AP50. Writes report.json,
report.md and PNGs to --out. A bag without /ground_truth gets a frequency-only report.

    python tools/evaluate_bag.py tud_bag --tiers models/tiers.yaml --live     # + the running node over ROS 2
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.bag.errors import BagError
from yolo_compress.bag.evaluation import REPLAY_MODES, BagEvalOptions, evaluate_bag
from yolo_compress.bag.live import LiveOptions
from yolo_compress.bag.report import tier_rows, write_report
from yolo_compress.data.detector_eval import parse_aliases
from yolo_compress.runtime.contract import ContractError
from yolo_compress.runtime.tiers import TiersError, TierSpec, load_tiers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bag", type=Path, help="rosbag2 folder (or a single .mcap / .db3 file)")
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument("--tiers", type=Path, help="tiers.yaml (config/tiers.yaml format)")
    models.add_argument("--model", type=Path, action="append", help="a contract .onnx as a tier named by its "
                        "file stem (repeatable), served at --conf / --iou")
    parser.add_argument("--tier", action="append", help="evaluate only this tier of --tiers (repeatable)")
    parser.add_argument("--conf", type=float, default=0.25, help="with --model: conf_threshold (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.45, help="with --model: iou_threshold (default 0.45)")
    parser.add_argument("--image-topic", help="default: the bag's only Image/CompressedImage topic")
    parser.add_argument("--gt-topic", help="ground truth topic (default /ground_truth, if the bag has it)")
    parser.add_argument("--rate", type=float, default=1.0, help="replay rate: 2 plays twice as fast (default 1)")
    parser.add_argument("--replay", choices=REPLAY_MODES, default="wallclock",
                        help="wallclock: run the detector against the real clock (default); measured: replay the "
                             "offline-measured times on a virtual clock (fast, deterministic)")
    parser.add_argument("--ap-conf", type=float, default=0.005, help="conf for AP detections (default 0.005)")
    parser.add_argument("--classes", help="comma-separated ground-truth classes to score (default: all)")
    parser.add_argument("--alias", action="append", default=[], metavar="MODEL=GT",
                        help="score ground-truth class GT with model class MODEL, e.g. body=person (repeatable)")
    parser.add_argument("--providers", help="comma-separated preference, e.g. tensorrt,cuda,cpu (default: fastest)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: one per core)")
    parser.add_argument("--out", type=Path, help="report folder (default: BAG_eval beside the bag)")
    live = parser.add_argument_group("live", "play the bag into the running detector node over ROS 2 as well")
    live.add_argument("--live", action="store_true", help="also measure the running node, tier by tier (needs "
                      "--tiers: the node's own tiers file; switches its `tier` parameter)")
    live.add_argument("--node", default="/yolo_detector", help="the node's name (default /yolo_detector)")
    live.add_argument("--live-input-topic", help="topic to publish frames on (default: the node's image subscription)")
    live.add_argument("--live-timeout", type=float, default=20.0,
                      help="s to wait for the node to appear and for each tier swap (default 20)")
    return parser.parse_args(argv)


def split_list(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def select_tiers(args: argparse.Namespace) -> list[TierSpec]:
    if args.live and args.model:
        raise ValueError("--live switches the node's tier parameter: give --tiers (the tiers file the node serves)")
    if args.model:
        if args.tier:
            raise ValueError("--tier picks tiers of --tiers; with --model every model is a tier")
        return [TierSpec(path.stem, path, args.conf, args.iou) for path in args.model]
    config = load_tiers(args.tiers)
    return [config.tier(name) for name in args.tier or config.names]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        options = BagEvalOptions(
            image_topic=args.image_topic, gt_topic=args.gt_topic, rate=args.rate, ap_conf=args.ap_conf,
            replay=args.replay, classes=split_list(args.classes), aliases=parse_aliases(args.alias),
            providers=split_list(args.providers), threads=args.threads,
            live=LiveOptions(args.node, args.live_input_topic, args.live_timeout) if args.live else None,
        )
        report = evaluate_bag(args.bag, select_tiers(args), options)
        out = args.out or args.bag.with_name(f"{args.bag.name}_eval")
        written = write_report(report, out)
    except (BagError, TiersError, ContractError, OSError, ValueError) as exc:
        print(f"evaluate_bag: {exc}", file=sys.stderr)
        return 1
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print("\n".join(tier_rows(report)))
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
