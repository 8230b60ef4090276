"""Camera worker processes: each camera's decode, detect and embed in its own process, so
several cameras use all cores.

A worker opens the gallery read-only from the same database (as a service replica would) and
follows other processes' changes through the gallery's generation check before every search, so
an enrolment, withdrawal or erasure reaches it at its next search (one frame). What the
pipeline would publish goes back over the worker's own pipe to the server, which publishes it on
its bus in the order that worker sent it; one camera's frames are processed by one process in order. A
worker that dies is started again with backoff (event `camera_state` "restarting"), never the
server.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from facegate.events.bus import EventBus, SnapshotMaker, made
from facegate.events.metrics import LiveMetrics
from facegate.settings import CameraSettings, Settings
from facegate.vision.onnx_runtime import available_cores

if TYPE_CHECKING:
    from facegate.events.store import Event

log = logging.getLogger(__name__)

Message = tuple[Any, ...]


class _BusProxy:
    """The pipeline's bus inside a worker: every call goes back to the server, in order."""

    def __init__(self, out: Connection) -> None:
        self.out = out

    def alert(
        self, camera: str, kind: str, person_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        self.out.send(("alert", camera, kind, person_id, dict(details or {})))

    def publish(
        self,
        camera: str,
        kind: str,
        person_id: str | None = None,
        details: dict[str, Any] | None = None,
        snapshot: str | SnapshotMaker | None = None,
        *,
        urgent: bool = True,
        then: Callable[[Event | None], None] | None = None,
        subjects: tuple[str, ...] = (),
    ) -> None:
        # The worker runs one camera in a process of its own: its snapshot is made here.
        path = made(snapshot)
        self.out.send(("publish", camera, kind, person_id, dict(details or {}), path, urgent, subjects))
        if then is not None:  # the audit entry: the worker shares the database
            then(None)


def _worker(settings: Settings, camera: CameraSettings, out: Connection, stop: Connection) -> None:
    """One camera, in a process of its own, until its source ends or the server stops it."""
    from facegate.events.snapshots import snapshot_store
    from facegate.gallery.gallery import Gallery
    from facegate.video.pipeline import CameraPipeline, FrameResult
    from facegate.video.sources import VideoSource

    gallery = Gallery.open(settings, create=False)
    stopped = threading.Event()
    source: VideoSource | None = None

    def on_stop() -> None:
        # A pipe, not a shared Event: a worker killed inside Event.wait would leave its lock
        # held and the server stuck setting it. End of file (the server died) stops us too.
        with contextlib.suppress(EOFError, OSError):
            stop.recv()
        stopped.set()
        if source is not None:
            source.stop()  # a source waiting for a frame wakes now

    threading.Thread(target=on_stop, daemon=True).start()

    def frame(r: FrameResult) -> None:
        out.send(("frame", camera.name, r.frame.index, r.frame.captured, len(r.faces), r.seconds))

    try:
        snapshots = snapshot_store(settings, gallery.cipher) if settings.events.snapshots else None
        pipeline = CameraPipeline(
            camera,
            gallery,
            door=settings.door_for(camera.name),
            bus=_BusProxy(out),
            snapshots=snapshots,
            on_frame=frame,
        )
        source = pipeline.source()
        if stopped.is_set():
            return
        stats = pipeline.run(source, stopped)
        out.send(("stats", camera.name, stats.frames, stats.decoded, stats.skipped, stats.reconnects))
    finally:
        gallery.close()
        out.close()


@dataclass
class _Camera:
    settings: CameraSettings
    process: BaseProcess | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.5
    restart_at: float | None = None
    state: str = "starting"
    frames: int = 0
    run_frames: int = 0  # processed by the current worker
    skipped: int = 0  # decoded by the current worker's source but never processed
    last_index: int = -1
    reordered: int = 0
    stats: dict[str, int] = field(default_factory=dict)


class CameraWorkers:
    """The server's side: starts a worker per camera, forwards what they send to the bus, and
    restarts a worker that died. `on_frame(camera, index, captured, faces, seconds)` sees each
    processed frame in order."""

    def __init__(
        self,
        settings: Settings,
        cameras: list[CameraSettings],
        bus: EventBus,
        *,
        metrics: LiveMetrics | None = None,
        backoff_max_s: float = 30.0,
        on_frame: Any = None,
    ) -> None:
        if settings.embedder.threads == 0 and len(cameras) >= available_cores():
            # As many workers as cores: one ONNX Runtime thread each (more would only contend).
            settings = settings.model_copy(
                update={"embedder": settings.embedder.model_copy(update={"threads": 1})}
            )
        self.settings = settings
        self.bus = bus
        self.metrics = metrics
        self.backoff_max_s = backoff_max_s
        self.on_frame = on_frame
        self._ctx = mp.get_context("spawn")  # no forked copies of the server's threads and sockets
        # A pipe per worker, not one shared queue: a worker killed while writing would leave a
        # shared queue's lock held and every other camera's events stuck behind it.
        self._conns: dict[Connection, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stoppers: dict[str, Connection] = {}
        self.cameras = {c.name: _Camera(c) for c in cameras}
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()

    def start(self) -> None:
        for cam in self.cameras.values():
            self._spawn(cam)
        for target, name in ((self._forward, "workers:forward"), (self._watch, "workers:watch")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def _spawn(self, cam: _Camera) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        stop_r, stop_w = self._ctx.Pipe(duplex=False)
        p = self._ctx.Process(
            target=_worker,
            args=(self.settings, cam.settings, writer, stop_r),
            name=f"camera:{cam.settings.name}",
            daemon=True,
        )
        p.start()
        writer.close()  # the worker holds the only writer: its end is our end of file
        stop_r.close()
        old = self._stoppers.pop(cam.settings.name, None)
        if old is not None:
            old.close()
        self._stoppers[cam.settings.name] = stop_w
        with self._lock:
            self._conns[reader] = cam.settings.name
        cam.process, cam.started, cam.restart_at, cam.state = p, time.monotonic(), None, "running"
        cam.last_index, cam.run_frames, cam.skipped = -1, 0, 0  # a new source counts from 0 again

    def pid(self, camera: str) -> int | None:
        p = self.cameras[camera].process
        return p.pid if p is not None else None

    def _forward(self) -> None:
        """Each worker's messages, in the order it sent them, until every pipe has ended."""
        while True:
            with self._lock:
                conns = list(self._conns)
            if not conns:
                if self._closing.is_set():
                    return
                time.sleep(0.05)
                continue
            for conn in wait(conns, timeout=0.2):
                assert isinstance(conn, Connection)
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the worker ended (or died mid-message)
                    with self._lock:
                        self._conns.pop(conn, None)
                    conn.close()
                    continue
                try:
                    self._handle(msg)
                except Exception:  # a bad message must not stop every camera's events
                    log.exception("camera worker message %s not handled", msg[:2])

    def _handle(self, msg: Message) -> None:
        kind, camera = msg[0], msg[1]
        if kind == "alert":
            self.bus.alert(camera, msg[2], msg[3], msg[4])
        elif kind == "publish":
            self.bus.publish(camera, msg[2], msg[3], msg[4], msg[5], urgent=msg[6], subjects=msg[7])
            self._count(camera, msg[2], msg[4])
        elif kind == "frame":
            cam = self.cameras[camera]
            if msg[2] <= cam.last_index:
                cam.reordered += 1
                log.error("camera %s: frame %d after %d", camera, msg[2], cam.last_index)
            cam.last_index, cam.frames, cam.run_frames = msg[2], cam.frames + 1, cam.run_frames + 1
            # The frame's index counts every frame its source decoded: the gap is what it dropped.
            skipped = msg[2] + 1 - cam.run_frames
            if self.metrics is not None:
                self.metrics.frames.labels(camera).inc()
                self.metrics.frame_seconds.labels(camera).observe(msg[5])
                if skipped > cam.skipped:
                    self.metrics.skipped.labels(camera).inc(skipped - cam.skipped)
            cam.skipped = max(cam.skipped, skipped)
            if self.on_frame is not None:
                self.on_frame(*msg[1:])
        elif kind == "stats":
            self.cameras[camera].stats = dict(
                zip(("frames", "decoded", "skipped", "reconnects"), msg[2:], strict=True)
            )

    def _count(self, camera: str, kind: str, details: dict[str, Any]) -> None:
        """The metrics the pipeline keeps in-process, kept here for the workers' cameras."""
        m = self.metrics
        if m is None:
            return
        if kind == "camera_state":
            m.up.labels(camera).set(1 if details.get("state") == "streaming" else 0)
            if details.get("state") == "reconnecting":
                m.reconnects.labels(camera).inc()
        elif "latency_ms" in details and "door" in details:
            m.decisions.labels(details["door"], kind).inc()
            m.decision_latency.labels(details["door"]).observe(details["latency_ms"] / 1000)

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            for cam in self.cameras.values():
                p = cam.process
                if p is None or p.is_alive():
                    continue
                if cam.restart_at is None:
                    if p.exitcode == 0:  # the source ended (a file): nothing to restart
                        cam.state, cam.process = "ended", None
                        continue
                    if now - cam.started > 60:  # it ran a while: start again quickly
                        cam.backoff = 0.5
                    cam.restart_at, cam.state = now + cam.backoff, "restarting"
                    cam.backoff = min(cam.backoff * 2, self.backoff_max_s)
                    log.error("camera %s: worker died (exit %s), restarting", cam.settings.name, p.exitcode)
                    self.bus.publish(
                        cam.settings.name,
                        "camera_state",
                        None,
                        {"state": "restarting", "reason": f"worker exited with {p.exitcode}"},
                    )
                elif now >= cam.restart_at:
                    cam.restarts += 1
                    self._spawn(cam)

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "state": c.state,
                "restarts": c.restarts,
                "frames": c.frames,
                "frames_skipped": c.skipped,
                "reordered": c.reordered,
            }
            for name, c in self.cameras.items()
        }

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every worker to finish its frame, wait, then end any that did not."""
        self._stop.set()
        for conn in self._stoppers.values():
            with contextlib.suppress(OSError):  # that worker is gone already
                conn.send("stop")
        deadline = time.monotonic() + timeout
        for cam in self.cameras.values():
            if cam.process is not None:
                cam.process.join(max(0.0, deadline - time.monotonic()))
                if cam.process.is_alive():
                    cam.process.kill()
                    cam.process.join(1.0)
        self._closing.set()
        for t in self._threads:
            t.join(timeout)
