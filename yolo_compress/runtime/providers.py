"""Execution providers and session options: ask for the fastest, report what was really granted.

ONNX Runtime silently falls back to the CPU when a GPU provider cannot start (missing CUDA libraries, a
CPU-only wheel). On a robot that means a 10x slower detector nobody notices, so the provider the session
really got is reported and a requested GPU provider that is missing gets a loud warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": CPU,
}
# Used when the caller names no providers: the fastest one this onnxruntime build has, silently skipping the
# others, so the same code runs on a CPU-only laptop and on a Jetson with onnxruntime-gpu.
DEFAULT_PREFERENCE = ("tensorrt", "cuda", "cpu")
# Microseconds an idle ORT worker thread spins before it sleeps: longer than the gaps between a run's ops,
# far shorter than a camera's frame period (session_options).
SPIN_US = 1000


def tensorrt_defaults() -> dict[str, str]:
    """FP16 and an engine cache, so only the first start on a Jetson pays the minutes-long engine build."""
    cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return {
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_root / "yolo_compress" / "tensorrt"),
    }


def canonical_provider(name: str) -> str:
    """'cuda' -> 'CUDAExecutionProvider'; full provider names pass through unchanged."""
    return ALIASES.get(name.strip().lower(), name.strip())


def resolve_providers(requested: Sequence[str] | None, available: Sequence[str] | None = None) -> list[str]:
    """The requested providers this build has, in preference order, with the CPU always last as a fallback.

    Explicitly requested providers that are not available are logged as a WARNING; the default preference
    list is filtered silently.
    """
    available = list(ort.get_available_providers() if available is None else available)
    wanted = [canonical_provider(name) for name in (requested or DEFAULT_PREFERENCE)]
    missing = [name for name in wanted if name not in available]
    if missing and requested:
        log.warning(
            "requested execution provider(s) %s not available in this onnxruntime build (available: %s); "
            "falling back", missing, available,
        )
    chosen = [name for name in dict.fromkeys(wanted) if name in available]
    return [*[name for name in chosen if name != CPU], CPU]


def provider_options_for(providers: Sequence[str], options: Mapping[str, Mapping[str, object]] | None) -> list[dict]:
    """Per-provider option dicts in `providers` order; keys of `options` may be aliases ('tensorrt').

    Values become strings ('True'/'False' for booleans), the form every provider's option parser accepts.
    """
    given = {canonical_provider(name): dict(opts) for name, opts in (options or {}).items()}
    result = []
    for provider in providers:
        merged = {**(tensorrt_defaults() if provider == ALIASES["tensorrt"] else {}), **given.get(provider, {})}
        result.append({key: str(value) for key, value in merged.items()})
    return result


def session_options(intra_op_threads: int | None = None, spin_us: int | None = SPIN_US) -> ort.SessionOptions:
    """Graph optimization ALL (the NCHWc layout: ~2.5x over BASIC on x86) and the intra-op threads.

    `intra_op_threads=None` keeps ONNX Runtime's default of one thread per physical core: 2 threads measured
    ~1.5x over 1 on a 2-core CPU. Pass a smaller number to leave cores to other nodes on the robot.
    `spin_us` is how long an idle worker thread spins, waiting for work, before it sleeps. ORT's default
    (None) spins on between runs: behind a 30 Hz camera that kept more than a core busy (37 ms of CPU per
    33 ms frame). 0 never spins, and each of a run's ~130 ops then wakes the threads from sleep: inference
    1.4-1.7x slower. SPIN_US spins through a run's gaps between ops and sleeps between frames: the speed of
    the first, the CPU of the second (bench/ort_spinning.py, BENCHMARKS.md).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if spin_us is not None and spin_us < 0:
        raise ValueError(f"spin_us must be >= 0 (or None: ONNX Runtime's default), got {spin_us}")
    if spin_us == 0:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    elif spin_us is not None:
        options.add_session_config_entry("session.intra_op.spin_duration_us", str(spin_us))
    if intra_op_threads is not None:
        if intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        options.intra_op_num_threads = intra_op_threads
    return options


def create_session(
    model_path: str,
    providers: Sequence[str] | None = None,
    provider_options: Mapping[str, Mapping[str, object]] | None = None,
    intra_op_threads: int | None = None,
    spin_us: int | None = SPIN_US,
) -> tuple[ort.InferenceSession, str]:
    """(session, provider it really runs on); warns when a requested GPU provider ended up on the CPU."""
    chosen = resolve_providers(providers)
    options = provider_options_for(chosen, provider_options)
    for provider_opts in options:
        if "trt_engine_cache_path" in provider_opts:
            Path(provider_opts["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
    session = ort.InferenceSession(
        model_path, sess_options=session_options(intra_op_threads, spin_us), providers=chosen,
        provider_options=options,
    )
    used = session.get_providers()[0]
    if used == CPU and any(canonical_provider(name) != CPU for name in (providers or ())):
        log.warning("%s: running on %s although %s was requested: expect CPU speed", model_path, used, providers)
    else:
        log.info("%s: running on %s", model_path, used)
    return session, used
