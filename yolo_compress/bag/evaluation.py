"""Per-tier accuracy and speed on a camera bag: the offline pass, the real-time replay and their figures.

Offline, every frame goes through each tier, one tier after the other: interleaved frame by frame, the larger
tiers measured 1.5-1.7x slower on 2 cores (most likely the other sessions' spinning ONNX Runtime threads),
which no robot serving one tier sees. Then each tier is replayed in real time with the node's newest-frame
semantics, and each ground-truth frame is scored against the detections the robot would have had when that
frame was taken. The per-tier keys of `tiers` are exactly those of the issue; everything else a reader may
want (stage times, provider, counts) is under `details`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from yolo_compress.bag.errors import BagError
from yolo_compress.bag.images import to_bgr
from yolo_compress.bag.live import LiveOptions, live_evaluate
from yolo_compress.bag.messages import LabeledBoxes, stamp_ns
from yolo_compress.bag.reader import CameraBag, GroundTruth, ImageCursor, RawImage
from yolo_compress.bag.replay import Served, VirtualClock, WallClock, latest_served, replay, stream_duration
from yolo_compress.bag.tier_run import NO_DETECTIONS, FrameCost, TierRun
from yolo_compress.bag.timeline import Timeline, frame_timeline
from yolo_compress.eval.annotations import ImageDT, ImageGT
from yolo_compress.eval.evaluate import evaluate
from yolo_compress.eval.latency import latency_stats
from yolo_compress.runtime.image_encoding import ImageEncodingError
from yolo_compress.runtime.tiers import TierSpec

REPLAY_MODES = ("wallclock", "measured")
TIER_KEYS = (
    "ap50", "ap50_95", "precision", "recall", "f1", "mean_iou", "max_hz", "realtime_hz", "dropped_pct",
    "latency_p50_ms", "latency_p95_ms", "realtime_ap50", "params", "gflops", "size_mb",
)
ACCURACY_KEYS = ("ap50", "ap50_95", "precision", "recall", "f1", "mean_iou")


@dataclass(frozen=True)
class BagEvalOptions:
    """How to read and replay the bag. `classes` limits scoring to those ground-truth classes; `aliases` scores
    a ground-truth class with a model class of another name ({"body": "person"}), as tools/evaluate.py does."""

    image_topic: str | None = None
    gt_topic: str | None = None
    rate: float = 1.0
    ap_conf: float = 0.005
    replay: str = "wallclock"
    classes: Sequence[str] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    providers: Sequence[str] | None = None
    threads: int | None = None
    live: LiveOptions | None = None


@dataclass
class _Frames:
    """What the offline pass learned about every frame, in bag order."""

    stamps_ns: list[int] = field(default_factory=list)
    bag_ns: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def evaluate_bag(bag_path: str | os.PathLike, tiers: Sequence[TierSpec], options: BagEvalOptions) -> dict[str, Any]:
    """The report of `tiers` on the bag: {"bag", "tiers", "details", "notes"} (JSON-ready), plus "live" (the
    running node's figures per tier) when `options.live` is set."""
    if options.replay not in REPLAY_MODES:
        raise ValueError(f"replay must be one of {REPLAY_MODES}, got {options.replay!r}")
    if not tiers:
        raise ValueError("no tiers to evaluate")
    if not options.rate > 0:
        raise ValueError(f"replay rate must be > 0, got {options.rate}")
    bag = CameraBag(bag_path, options.image_topic, options.gt_topic)
    if bag.num_images == 0:
        raise BagError(f"{bag.path}: image topic {bag.image_topic} has no messages")
    truth = bag.ground_truth()
    notes = _ground_truth_notes(bag, truth)
    class_names = _scored_classes(bag, truth, options.classes)
    runs = [TierRun(t, class_names, options.aliases, options.ap_conf, options.providers, options.threads)
            for t in tiers]
    _check_aliases(options.aliases, runs)
    frames = [_offline_pass(bag, run) for run in runs][0]  # every pass sees the same frames
    timeline = frame_timeline(np.array(frames.stamps_ns), np.array(frames.bag_ns), options.rate, bag.image_topic)
    notes += list(timeline.notes) + _failure_notes(bag, frames)
    scored = _ground_truth_frames(bag, truth, class_names, frames, notes) if truth is not None else {}
    report_tiers, details = {}, {}
    for run in runs:
        served, realtime_dets = _replay_tier(bag, run, timeline, options.replay)
        report_tiers[run.tier.name], details[run.tier.name] = _tier_figures(
            run, scored, class_names, timeline, served, realtime_dets
        )
    report = {
        "bag": _bag_summary(bag, truth, class_names, scored, timeline, options),
        "tiers": report_tiers,
        "details": details,
        "notes": notes,
    }
    if options.live is not None:
        report["live"], live_notes = live_evaluate(bag, timeline, tiers, scored, class_names, options.aliases,
                                                   options.live)
        notes += live_notes
    return report


def _ground_truth_notes(bag: CameraBag, truth: GroundTruth | None) -> list[str]:
    """What the report must say about the ground truth before any number."""
    if truth is None:
        return [f"{bag.path} has no ground truth (no /ground_truth topic): frequency-only report, accuracy was "
                "not measured"]
    notes = []
    if not truth.from_label_info:
        notes.append(f"no class map on {bag.label_topic}: scoring the classes seen in the ground truth: "
                     f"{', '.join(truth.class_names) or 'none'}")
    if truth.repeated:
        notes.append(f"{truth.repeated} ground-truth messages on {bag.gt_topic} repeat the stamp of an earlier one; "
                     "kept the first of each")
    return notes


def _scored_classes(bag: CameraBag, truth: GroundTruth | None, requested: Sequence[str] | None) -> list[str] | None:
    """The ground-truth classes to score (None without ground truth: tiers then detect all their classes)."""
    if truth is None:
        return list(requested) if requested else None
    if not requested:
        if not truth.class_names:
            raise BagError(f"{bag.path}: the ground truth on {bag.gt_topic} names no class; pass --classes")
        return list(truth.class_names)
    unknown = [c for c in requested if c not in truth.class_names]
    if unknown:
        raise BagError(f"{bag.path}: classes {unknown} are not in the ground truth, whose classes are "
                       f"{truth.class_names}")
    return list(requested)


def _check_aliases(aliases: Mapping[str, str], runs: Sequence[TierRun]) -> None:
    """Each alias applies to the tiers whose model has that class; one that no tier has is a typo."""
    known = {name for run in runs for name in run.detector.names}
    unknown = sorted(set(aliases) - known)
    if unknown:
        raise ValueError(f"alias for {unknown}: no tier's model has such a class")


def _offline_pass(bag: CameraBag, run: TierRun) -> _Frames:
    """Decode every frame and run the tier on it; frames that do not decode are recorded as failures."""
    frames = _Frames()
    warmed = False
    for raw in tqdm(bag.images(), total=bag.num_images, desc=f"offline {run.tier.name}", unit="frame", leave=False):
        image, stamp, decode_ms, error = _decode_timed(bag, raw)
        frames.stamps_ns.append(stamp)
        frames.bag_ns.append(raw.bag_ns)
        if error:
            frames.failures.append(f"frame {raw.index}: {error}")
        elif not warmed:
            run.warm_up(image)
            warmed = True
        run.observe(image, decode_ms)
    if not warmed:
        raise BagError(f"{bag.path}: no frame on {bag.image_topic} could be decoded; {frames.failures[0]}")
    return frames


def _decode_timed(bag: CameraBag, raw: RawImage) -> tuple[np.ndarray | None, int, float, str]:
    """(BGR image or None, header stamp, ms from CDR bytes to image, error message or '')."""
    start = time.perf_counter()
    try:
        msg = bag.decode(raw)
    except BagError as exc:
        return None, raw.bag_ns, 0.0, str(exc)
    try:
        image = to_bgr(msg, bag.image_type)
    except ImageEncodingError as exc:
        return None, stamp_ns(msg.header), 0.0, str(exc)
    return image, stamp_ns(msg.header), (time.perf_counter() - start) * 1e3, ""


def _failure_notes(bag: CameraBag, frames: _Frames) -> list[str]:
    if not frames.failures:
        return []
    return [f"{bag.image_topic}: {len(frames.failures)} of {len(frames.stamps_ns)} frames could not be decoded and "
            f"count as frames without detections (first: {frames.failures[0]})"]


def _ground_truth_frames(
    bag: CameraBag, truth: GroundTruth, class_names: Sequence[str], frames: _Frames, notes: list[str]
) -> dict[int, ImageGT]:
    """{bag frame index: its ground truth} for every frame that has ground truth with its stamp."""
    index = {name: i for i, name in enumerate(class_names)}
    scored, used = {}, set()
    for frame, stamp in enumerate(frames.stamps_ns):
        if (boxes := truth.by_stamp.get(stamp)) is not None:
            scored[frame] = _image_gt(boxes, index)
            used.add(stamp)
    unlabeled = len(frames.stamps_ns) - len(scored)
    orphans = len(truth.by_stamp) - len(used)
    if unlabeled:
        notes.append(f"{unlabeled} of {len(frames.stamps_ns)} frames have no ground truth with their stamp on "
                     f"{bag.gt_topic}; accuracy is measured on the other {len(scored)}")
    if orphans:
        notes.append(f"{orphans} ground-truth messages on {bag.gt_topic} match no image stamp and are ignored")
    if not scored:
        raise BagError(f"{bag.path}: no ground-truth message on {bag.gt_topic} has the stamp of an image on "
                       f"{bag.image_topic}: ground truth must be stamped like its image")
    return scored


def _image_gt(boxes: LabeledBoxes, index: Mapping[str, int]) -> ImageGT:
    """Ground truth of the scored classes only (boxes of other classes are not scored); difficult boxes become
    COCO crowd regions, as the dataset evaluation treats them."""
    keep = [i for i, label in enumerate(boxes.labels) if label in index]
    classes = np.array([index[boxes.labels[i]] for i in keep], np.int64)
    return ImageGT.from_xyxy(boxes.boxes[keep], classes, crowd=boxes.difficult[keep])


def _replay_tier(
    bag: CameraBag, run: TierRun, timeline: Timeline, mode: str
) -> tuple[list[Served], dict[int, ImageDT]]:
    """The frames served (by bag index, in serving order) and the detections each one produced."""
    order = timeline.order
    if mode == "measured":
        clock = VirtualClock()

        def advance(position: int) -> None:
            cost = run.costs[order[position]]
            clock.advance(cost.total_ms / 1e3 if cost else 0.0)

        served, detections = replay(timeline.arrivals, advance, clock), dict(enumerate(run.op_dets))
    else:
        served, detections = _wallclock_replay(bag, run, timeline)
    return [Served(int(order[s.frame]), s.start_s, s.end_s) for s in served], detections


def _wallclock_replay(bag: CameraBag, run: TierRun, timeline: Timeline) -> tuple[list[Served], dict[int, ImageDT]]:
    """The tier really decodes and detects each frame it takes, against the clock (bag reading paused)."""
    clock = WallClock()
    cursor = ImageCursor(bag)
    detections: dict[int, ImageDT] = {}
    progress = tqdm(total=len(timeline.order), desc=f"real-time replay {run.tier.name}", unit="frame", leave=False)

    def process(position: int) -> None:
        frame = int(timeline.order[position])
        with clock.paused():
            raw = cursor.get(frame)
            progress.update(position + 1 - progress.n)
        image, _, _, error = _decode_timed(bag, raw)
        result = None if error else run.detect(image, run.tier.conf_threshold)
        detections[frame] = NO_DETECTIONS if result is None else run.to_image_dt(result)

    try:
        return replay(timeline.arrivals, process, clock), detections
    finally:
        progress.close()


def _tier_figures(
    run: TierRun,
    scored: Mapping[int, ImageGT],
    class_names: Sequence[str] | None,
    timeline: Timeline,
    served: Sequence[Served],
    realtime_dets: Mapping[int, ImageDT],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the issue's per-tier figures, the details behind them)."""
    costs = [c for c in run.costs if c is not None]
    arrivals = timeline.frame_arrivals
    latencies = [(s.end_s - arrivals[s.frame]) * 1e3 for s in served]
    lat = latency_stats(latencies)
    duration = stream_duration(timeline.arrivals)
    figures: dict[str, Any] = dict.fromkeys(TIER_KEYS)
    figures.update(run.model_facts)
    figures.update({
        "max_hz": 1e3 / float(np.mean([c.total_ms for c in costs])),
        "realtime_hz": len(served) / duration if duration > 0 else None,
        "dropped_pct": 100.0 * (len(timeline.order) - len(served)) / len(timeline.order),
        "latency_p50_ms": lat["p50_ms"],
        "latency_p95_ms": lat["p95_ms"],
    })
    details: dict[str, Any] = {
        "model": str(run.tier.model),
        "provider": run.detector.provider,
        "conf_threshold": run.tier.conf_threshold,
        "iou_threshold": run.tier.iou_threshold,
        "stages_ms": _stage_stats(costs),
        "frames": len(timeline.order),
        "served": len(served),
        "latency_ms": lat,
        "latencies_ms": latencies,
    }
    if scored and class_names:
        frames = sorted(scored)
        gts = [scored[f] for f in frames]
        offline = evaluate(gts, [run.ap_dets[f] for f in frames], class_names, op_conf=run.tier.conf_threshold)
        figures.update({key: offline[key] for key in ACCURACY_KEYS})
        at_capture, before_next = (
            evaluate(gts, _latest_detections(served, realtime_dets, moments), class_names,
                     op_conf=run.tier.conf_threshold)
            for moments in (timeline.frame_arrivals[frames], timeline.next_arrivals[frames])
        )
        figures["realtime_ap50"] = at_capture["ap50"]
        details.update({"ap75": offline["ap75"], "n_gt": offline["n_gt"], "realtime_recall": at_capture["recall"],
                        "realtime_precision": at_capture["precision"],
                        "realtime_ap50_before_next_frame": before_next["ap50"]})
    return figures, details


def _latest_detections(served: Sequence[Served], dets: Mapping[int, ImageDT], moments: np.ndarray) -> list[ImageDT]:
    """At each moment, the newest detections out (none before the first output)."""
    return [NO_DETECTIONS if f is None else dets[f] for f in latest_served(served, moments)]


def _stage_stats(costs: Sequence[FrameCost]) -> dict[str, dict[str, float]]:
    stages = ("decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "total_ms")
    out = {}
    for stage in stages:
        stats = latency_stats([getattr(c, stage) for c in costs])
        out[stage] = {k: stats[k] for k in ("mean_ms", "p50_ms", "p95_ms")}
    return out


def _bag_summary(
    bag: CameraBag,
    truth: GroundTruth | None,
    class_names: Sequence[str] | None,
    scored: Mapping[int, ImageGT],
    timeline: Timeline,
    options: BagEvalOptions,
) -> dict[str, Any]:
    return {
        "path": str(Path(bag.path)),
        "image_topic": bag.image_topic,
        "image_type": bag.image_type,
        "frames": len(timeline.order),
        "input_hz": timeline.input_hz,
        "duration_s": stream_duration(timeline.arrivals),
        "rate": options.rate,
        "replay": options.replay,
        "ap_conf": options.ap_conf,
        "ground_truth_topic": bag.gt_topic if truth is not None else None,
        "ground_truth_frames": len(scored),
        "ground_truth_boxes": int(sum(len(g.classes) for g in scored.values())),
        "classes": list(class_names) if class_names else None,
    }
