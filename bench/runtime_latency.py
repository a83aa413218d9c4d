#!/usr/bin/env python3
"""Per-image latency, stage by stage: this runtime vs OpenCV DNN 4.x vs torch eager, in one run.

The runtime runs twice: on the default `frames` export (uint8 BGR in, scaling in the graph) and on the
same network exported with the float `images` input (numpy does the conversion), to show what each costs.

Every engine sees the same model and the same frames (640x480 TUD-Campus camera frames when
../shared/data is present, else synthetic frames), with the same thread count, in alternating blocks
so machine noise hits all of them alike (see bench_model).

    python bench/runtime_latency.py --models yolo-fastest-1.1 yolo-fastest-1.1-xl yolov3-tiny \
        --threads 2 --repeats 5 --json bench/results/runtime_latency.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yolo_compress.export.onnx_export import export_onnx  # noqa: E402
from yolo_compress.models.decode import DecodedDarknet  # noqa: E402
from yolo_compress.models.fuse import fuse_conv_bn  # noqa: E402
from yolo_compress.models.source import load_model_source  # noqa: E402
from yolo_compress.models.weights import save_weights  # noqa: E402
from yolo_compress.models.zoo import YOLO_FASTEST  # noqa: E402
from yolo_compress.runtime.contract import IMAGES_INPUT  # noqa: E402
from yolo_compress.runtime.detector import Detector  # noqa: E402

ZOO = ROOT.parent / "shared" / "data" / "yolo-fastest" / "ModelZoo"
FRAMES = ROOT.parent / "shared" / "data" / "sequence" / "TUD-Campus" / "images"
CONF, IOU = 0.25, 0.45
STAGES = ("preprocess", "inference", "postprocess", "total")


@dataclass
class Prepared:
    """One model in the three forms the engines need: Darknet files, ONNX, torch module."""

    name: str
    cfg: Path
    weights: Path
    onnx: Path  # the default `frames` input (uint8 BGR, scaling in the graph)
    onnx_images: Path  # the same network with the float `images` input, to show what that form costs
    torch_model: torch.nn.Module
    input_size: tuple[int, int]


def prepare(name: str, work: Path) -> Prepared:
    """Real weights for the Yolo-Fastest models; a built-in cfg with seeded random weights otherwise.

    Inference time does not depend on the weight values, but postprocessing does: random heads score
    every box near 0.25 and flood NMS with ~1e5 candidates (OpenCV's NMS then takes seconds per frame).
    Random models get a trained detector's objectness prior instead (bias -6: sigmoid ~0.0025), so the
    candidate counts, and the NMS times, are those of a real model."""
    if name in YOLO_FASTEST:
        cfg, weights, names = YOLO_FASTEST[name].files(ZOO)
        src = load_model_source(str(cfg), weights, names=names)
    else:
        torch.manual_seed(0)
        src = load_model_source(name)
        _objectness_prior(src.model, -6.0)
        cfg, weights = work / f"{name}.cfg", work / f"{name}.weights"
        cfg.write_text(src.model.cfg_text())
        save_weights(src.model, weights)
    onnx_path = export_onnx(src.model, src.names, work / f"{name}.onnx").path
    images_path = export_onnx(src.model, src.names, work / f"{name}-images.onnx", input_name=IMAGES_INPUT).path
    decoded = DecodedDarknet(fuse_conv_bn(src.model)).eval()
    return Prepared(name, cfg, weights, onnx_path, images_path, decoded, src.model.input_size)


def _objectness_prior(model: torch.nn.Module, bias: float) -> None:
    """Set the objectness bias of every head conv (channel 4 of each anchor's 5 + C)."""
    with torch.no_grad():
        for head in model.heads:
            conv = model.layers[head.index - 1].conv
            conv.bias.view(head.num_anchors, -1)[:, 4] = bias


def load_frames(count: int) -> list[np.ndarray]:
    paths = sorted(FRAMES.glob("*.jpg"))[:count]
    if paths:
        return [cv2.imread(str(p)) for p in paths]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(count)]


def runtime_engine(model: Prepared, threads: int, float_input: bool = False) -> Callable[[np.ndarray], dict]:
    path = model.onnx_images if float_input else model.onnx
    detector = Detector(path, conf_threshold=CONF, iou_threshold=IOU, intra_op_threads=threads)

    def run(frame: np.ndarray) -> dict[str, float]:
        t = detector.detect(frame).timing
        return {"preprocess": t.preprocess_ms, "inference": t.inference_ms,
                "postprocess": t.postprocess_ms, "total": t.total_ms}

    return run


def opencv_engine(model: Prepared, threads: int) -> Callable[[np.ndarray], dict[str, float]]:
    """OpenCV DNN as its samples use it: blobFromImage, forward, candidates + NMSBoxesBatched."""
    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromDarknet(str(model.cfg), str(model.weights))
    out_names = net.getUnconnectedOutLayersNames()
    height, width = model.input_size

    def run(frame: np.ndarray) -> dict[str, float]:
        t0 = time.perf_counter()
        net.setInput(cv2.dnn.blobFromImage(frame, 1 / 255.0, (width, height), swapRB=True, crop=False))
        t1 = time.perf_counter()
        outs = net.forward(out_names)
        t2 = time.perf_counter()
        rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in outs])
        fh, fw = frame.shape[:2]
        box_idx, cls = np.nonzero(rows[:, 5:] > CONF)
        xywh = rows[box_idx, :4] * (fw, fh, fw, fh)
        xywh[:, :2] -= xywh[:, 2:] / 2
        cv2.dnn.NMSBoxesBatched(xywh.tolist(), rows[box_idx, 5 + cls].tolist(), cls.tolist(), CONF, IOU)
        t3 = time.perf_counter()
        return _stages(t0, t1, t2, t3)

    return run


def torch_engine(model: Prepared, threads: int) -> Callable[[np.ndarray], dict[str, float]]:
    """Torch eager on the same fused, decoded module that was exported; same pre/post as the runtime."""
    from yolo_compress.runtime.postprocess import postprocess
    from yolo_compress.runtime.preprocess import Preprocessor

    torch.set_num_threads(threads)
    pre = Preprocessor(model.input_size, resize="stretch")

    def run(frame: np.ndarray) -> dict[str, float]:
        t0 = time.perf_counter()
        batch, transforms = pre([frame])
        t1 = time.perf_counter()
        with torch.inference_mode():
            boxes, scores = (t.numpy() for t in model.torch_model(torch.from_numpy(batch)))
        t2 = time.perf_counter()
        postprocess(boxes[0], scores[0], transforms[0], conf_threshold=CONF, iou_threshold=IOU)
        t3 = time.perf_counter()
        return _stages(t0, t1, t2, t3)

    return run


def _stages(t0: float, t1: float, t2: float, t3: float) -> dict[str, float]:
    ms = 1e3
    return {"preprocess": (t1 - t0) * ms, "inference": (t2 - t1) * ms,
            "postprocess": (t3 - t2) * ms, "total": (t3 - t0) * ms}


ENGINES = {
    "runtime (ORT)": runtime_engine,
    "runtime, float input": lambda model, threads: runtime_engine(model, threads, float_input=True),
    "opencv-dnn": opencv_engine,
    "torch-eager": torch_engine,
}


def bench_model(model: Prepared, frames: list[np.ndarray], threads: int, repeats: int) -> dict:
    """Median stage times per engine. Engines take turns by blocks of all frames (A's 20, B's 20, C's 20, then
    again `repeats` times), each block after two untimed calls: machine noise still hits every engine alike,
    while ONNX Runtime's intra-op threads, which spin for a while after each run, do not steal the cores
    from the engine called next (call-by-call alternation measured ORT up to 1.6x slow)."""
    engines = {label: make(model, threads) for label, make in ENGINES.items()}
    for run in engines.values():  # warm-up: first runs allocate and (ORT) compile kernels
        for frame in frames[:3]:
            run(frame)
    samples: dict[str, list[dict[str, float]]] = {label: [] for label in engines}
    for _ in range(repeats):
        for label, run in engines.items():
            run(frames[0])
            run(frames[1 % len(frames)])
            samples[label].extend(run(frame) for frame in frames)
    return {label: {s: float(np.median([x[s] for x in rows])) for s in STAGES} for label, rows in samples.items()}


def markdown(results: dict, meta: dict) -> str:
    lines = [f"threads={meta['threads']}, {meta['n_frames']} frames x {meta['repeats']} repeats, "
             f"{meta['frames']}; median ms per image", "",
             "| model | engine | preprocess | inference | postprocess | total | speed-up vs OpenCV |",
             "|---|---|---|---|---|---|---|"]
    for name, engines in results.items():
        ref = engines["opencv-dnn"]["total"]
        for label, st in engines.items():
            lines.append(f"| {name} | {label} | " + " | ".join(f"{st[s]:.2f}" for s in STAGES)
                         + f" | {ref / st['total']:.2f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["yolo-fastest-1.1", "yolo-fastest-1.1-xl", "yolov3-tiny"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    frames = load_frames(args.frames)
    meta = {"threads": args.threads, "n_frames": len(frames), "repeats": args.repeats,
            "frames": "TUD-Campus 640x480" if FRAMES.is_dir() else "synthetic 640x480",
            "onnxruntime": __import__("onnxruntime").__version__, "opencv": cv2.__version__,
            "torch": torch.__version__}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            results[name] = bench_model(prepare(name, Path(tmp)), frames, args.threads, args.repeats)
    print(markdown(results, meta))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
