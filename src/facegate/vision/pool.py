"""A pool of vision worker processes: decode, detect, align and embed beside the main process.

dlib and numpy hold the GIL for most of a photo's work, so threads do not use a second core;
processes do. Each worker loads its own engine once (one ONNX Runtime thread, one worker per
core) and receives the photo once: a path, the encoded bytes, or the decoded array. The faces
come back (boxes, landmarks, chips, embeddings). Typed errors (a bad image, no face) come back
as they are, so callers see what the in-process engine raises.

A worker that dies (killed, out of memory, a crash in native code) breaks the pool: the call
is retried once on a fresh pool, and a second failure is `ServiceBusy` (HTTP 503), never a hang.
"""

from __future__ import annotations

import io
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from facegate.errors import RequestTimeout, ServiceBusy
from facegate.settings import Settings
from facegate.vision.decode import ImageInput
from facegate.vision.engine import AnalysedImage, FaceEngine
from facegate.vision.onnx_runtime import available_cores
from facegate.vision.types import Face

log = logging.getLogger("facegate.vision")
T = TypeVar("T")

_worker_engine: FaceEngine | None = None


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (killed without a chance to shut the pool down)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _init_worker(settings: Settings, parent: int) -> None:
    global _worker_engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    one_thread = settings.model_copy(update={"embedder": settings.embedder.model_copy(update={"threads": 1})})
    _worker_engine = FaceEngine(one_thread)


def _engine() -> FaceEngine:
    assert _worker_engine is not None, "not a vision worker"
    return _worker_engine


def _ready() -> int:
    _engine()
    time.sleep(0.2)  # hold this worker, so that the next warm-up task goes to another
    return os.getpid()


def _detect(source: ImageInput, expect_face: bool) -> AnalysedImage:
    return _engine().detect(source, expect_face=expect_face)


def _analyse(source: ImageInput, max_faces: int | None) -> AnalysedImage:
    return _engine().analyse(source, max_faces)


def _enrolment_face(source: ImageInput, name: str, liveness: bool) -> Face:
    return _engine().enrolment_face(source, name, liveness=liveness)


def _largest_face(source: ImageInput, name: str, liveness: bool) -> Face:
    return _engine().largest_face(source, name, liveness=liveness)


def _portable(source: ImageInput) -> ImageInput:
    """What travels to a worker: paths, bytes and arrays as they are; a PIL image as an array."""
    if isinstance(source, Image.Image):
        return np.asarray(source.convert("RGB"))
    if isinstance(source, (bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, io.IOBase):  # pragma: no cover - not an ImageInput, but be kind
        return bytes(source.read())
    return source


class VisionPool:
    """`size` worker processes, each with its own FaceEngine, started at once."""

    def __init__(self, settings: Settings, size: int = 0, *, timeout: float | None = None) -> None:
        self.settings = settings
        self.size = size or available_cores()
        self.timeout = timeout if timeout is not None else settings.api.request_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._executor = self._start()
        self.restarts = 0

    def _start(self) -> ProcessPoolExecutor:
        ctx = mp.get_context("spawn")  # no fork of a process with threads and native libraries
        return ProcessPoolExecutor(
            self.size, mp_context=ctx, initializer=_init_worker, initargs=(self.settings, os.getpid())
        )

    def warm(self) -> list[int]:
        """Start every worker and load its models now; their process ids."""
        with self._lock:
            ex = self._executor
        futures = [ex.submit(_ready) for _ in range(self.size)]
        for f in futures:
            f.result(timeout=max(self.timeout, 120.0))
        return self.pids()

    def pids(self) -> list[int]:
        with self._lock:
            procs = getattr(self._executor, "_processes", None) or {}
            return sorted(procs)

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._closed or self._executor is not broken:
                return  # closed, or another caller already replaced it
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()
            self.restarts += 1
        log.warning("a vision worker died; the pool was restarted")

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a worker; retried once on a fresh pool if a worker dies."""
        for attempt in (1, 2):
            with self._lock:
                if self._closed:
                    raise ServiceBusy("the vision workers are shut down", retry_after=1)
                ex = self._executor
            try:
                future = ex.submit(fn, *args)
            except BrokenProcessPool:
                self._restart(ex)
                continue
            try:
                return future.result(timeout=self.timeout)
            except BrokenProcessPool:
                self._restart(ex)
                if attempt == 2:
                    break
            except FutureTimeout:
                future.cancel()
                raise RequestTimeout(
                    f"the vision worker took more than {self.timeout:g} s", timeout_s=self.timeout
                ) from None
        raise ServiceBusy("a vision worker failed twice on this request; try again", retry_after=1)

    def close(self) -> None:
        """Stop the workers and wait for them (no orphans)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ex = self._executor
        ex.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> VisionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PooledEngine(FaceEngine):
    """A FaceEngine whose per-photo work runs in a VisionPool.

    Same answers as the in-process engine (the same models, run by the same code); `embed`
    of faces already detected stays in this process (it is a batch of chips).
    """

    def __init__(self, settings: Settings, size: int = 0) -> None:
        super().__init__(settings)
        self.pool = VisionPool(settings, size)

    def detect(self, source: ImageInput | np.ndarray, *, expect_face: bool = False) -> AnalysedImage:
        return self.pool.call(_detect, _portable(source), expect_face)

    def analyse(self, source: ImageInput, max_faces: int | None = None) -> AnalysedImage:
        return self.pool.call(_analyse, _portable(source), max_faces)

    def enrolment_face(self, source: ImageInput, name: str = "image", *, liveness: bool = False) -> Face:
        return self.pool.call(_enrolment_face, _portable(source), name, liveness)

    def largest_face(self, source: ImageInput, name: str = "image", *, liveness: bool = False) -> Face:
        return self.pool.call(_largest_face, _portable(source), name, liveness)

    def close(self) -> None:
        self.pool.close()


def pooled_engine(settings: Settings) -> PooledEngine | None:
    """The engine `serve` and bulk commands use: pooled if more than one worker is configured
    (`workers.processes`, 0 = one per core), else None (the in-process engine)."""
    size = settings.workers.processes or available_cores()
    if size <= 1:
        return None
    engine = PooledEngine(settings, size)
    engine.pool.warm()
    return engine
