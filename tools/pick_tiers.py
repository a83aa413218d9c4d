#!/usr/bin/env python3
"""Pick fast / medium / accurate tiers from the candidates of several tools/prune.py runs at once.

Each run prunes one start model (e.g. yolo-fastest-1.1-xl, and the smaller 1.1_body); all of them must
have been validated on the same sets. Every candidate is timed again side by side in one pass, and the
tiers are picked on the joint (latency, AP50) front against the first run's start model:

    python tools/pick_tiers.py runs/prune-xl runs/prune-body --out runs/tiers-xl-body

The output folder gets what a prune run writes for its tiers: models/{fast,medium,accurate}.onnx,
tiers.yaml (the node's tiers_file), report.md, report.json and pareto.png.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (before yolo_compress: makes a checkout importable)

# isort: split
from yolo_compress.prune.merge import pick_across_runs
from yolo_compress.prune.report import run_tool


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="--out folders of finished tools/prune.py runs; "
                        "the first one's start model is the baseline")
    parser.add_argument("--out", type=Path, required=True, help="folder for the tiers and the report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    return run_tool(lambda: pick_across_runs(args.runs, args.out), args.out)


if __name__ == "__main__":
    sys.exit(main())
