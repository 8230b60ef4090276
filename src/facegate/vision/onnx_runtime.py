"""ONNX Runtime sessions: provider choice (no silent fallback), threads sized to the machine."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort

from facegate.errors import ConfigError

log = logging.getLogger("facegate.vision")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def session(path: Path, provider: str = "auto", threads: int = 0) -> ort.InferenceSession:
    """An inference session on `provider` ("auto", "cpu" or "cuda").

    "auto" takes CUDA when onnxruntime-gpu sees a GPU, else the CPU, and logs which; "cuda"
    fails if CUDA is not there rather than quietly running on the CPU.
    """
    have = ort.get_available_providers()
    if provider == "cuda" and "CUDAExecutionProvider" not in have:
        raise ConfigError(
            f"provider 'cuda' asked for, but ONNX Runtime offers only {', '.join(have)} "
            "(install onnxruntime-gpu on a machine with an NVIDIA GPU)"
        )
    if provider not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown ONNX Runtime provider {provider!r} (auto, cpu, cuda)")
    use_cuda = provider == "cuda" or (provider == "auto" and "CUDAExecutionProvider" in have)
    providers = ["CUDAExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or available_cores()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # No spin-waiting between operators: a camera's pipeline runs decoding, detection and
    # embedding on several threads, cameras run side by side, and spinning ORT threads take the
    # cores from them (bench/camera_fps.py, 2 cores: hamilton 93 -> 113 frames/s, the 1080p
    # crowd 41 -> 55; six 1080p cameras processed 297 -> 532 of 720 frames).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=providers)
    actual = sess.get_providers()[0]
    if use_cuda and actual != "CUDAExecutionProvider":
        raise ConfigError(f"CUDA was chosen for {path.name} but ONNX Runtime runs it on {actual}")
    log.info("%s runs on %s with %d threads", path.name, actual, opts.intra_op_num_threads)
    return sess
