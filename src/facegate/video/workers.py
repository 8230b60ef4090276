"""Camera worker processes: cameras' decode, detect and embed in processes of their own, so
several cameras use all cores: a few processes each running a group of cameras on threads (one
copy of the models per process, shared by its cameras as in the server's process; `camera_workers:
auto` starts one a core), or a process per camera (a replica's leased cameras).

A worker opens the gallery read-only from the same database (as a service replica would) and
follows other processes' changes through the gallery's generation check before every search, so
an enrolment, withdrawal or erasure reaches it at its next search (one frame). What the
pipeline would publish goes back over the worker's own pipe to the server, which publishes it on
its bus in the order that worker sent it; one camera's frames are processed by one process in order. A
worker that dies is started again with backoff (event `camera_state` "restarting" for each of its
cameras that had not ended), never the server; a camera whose pipeline fails is started again
inside its worker, with backoff, and the other cameras of that worker go on.
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


@dataclass
class _Backoff:
    """The wait before a restart: 0.5 s, doubling up to `most`; 0.5 s again after a run of a
    minute or more (it had recovered)."""

    most: float
    wait: float = 0.5

    def next(self, ran_s: float) -> float:
        if ran_s > 60:
            self.wait = 0.5
        wait, self.wait = self.wait, min(self.wait * 2, self.most)
        return wait


class _BusProxy:
    """The pipeline's bus inside a worker: every call goes back to the server, in order."""

    def __init__(self, send: Callable[[Message], None]) -> None:
        self.send = send

    def alert(
        self, camera: str, kind: str, person_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        self.send(("alert", camera, kind, person_id, dict(details or {})))

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
        # The worker's cameras run in a process of their own: the snapshot is made here.
        path = made(snapshot)
        self.send(("publish", camera, kind, person_id, dict(details or {}), path, urgent, subjects))
        if then is not None:  # the audit entry: the worker shares the database
            then(None)


def _worker(
    settings: Settings,
    cameras: list[CameraSettings],
    out: Connection,
    stop: Connection,
    backoff_max_s: float = 30.0,
) -> None:
    """A group of cameras (often one), in a process of its own, until their sources end or the
    server stops them; each camera on a thread of its own, as in the server's process."""
    from facegate.events.snapshots import SnapshotStore, snapshot_store
    from facegate.gallery.gallery import Gallery
    from facegate.video.pipeline import CameraPipeline, FrameResult
    from facegate.video.sources import VideoSource

    gallery = Gallery.open(settings, create=False)
    stopped = threading.Event()
    sources: list[VideoSource] = []
    sending = threading.Lock()  # the cameras' threads share one pipe

    def send(msg: Message) -> None:
        with sending:
            out.send(msg)

    def stop_all() -> None:
        stopped.set()
        for s in list(sources):
            s.stop()  # a source waiting for a frame wakes now

    def on_stop() -> None:
        # A pipe, not a shared Event: a worker killed inside Event.wait would leave its lock
        # held and the server stuck setting it. End of file (the server died) stops us too.
        with contextlib.suppress(EOFError, OSError):
            stop.recv()
        stop_all()

    threading.Thread(target=on_stop, daemon=True).start()

    def on_frame(name: str) -> Callable[[FrameResult], None]:
        def frame(r: FrameResult) -> None:
            send(("frame", name, r.frame.index, r.frame.captured, len(r.faces), r.seconds))

        return frame

    snapshots: SnapshotStore | None = None
    bus = _BusProxy(send)

    def pipeline_of(camera: CameraSettings) -> CameraPipeline:
        return CameraPipeline(
            camera,
            gallery,
            door=settings.door_for(camera.name),
            bus=bus,
            snapshots=snapshots,
            on_frame=on_frame(camera.name),
            detector_threads=1 if len(cameras) > 1 else 0,  # the cameras keep the cores busy
        )

    def run(i: int, pipeline: CameraPipeline) -> None:
        """One camera until its source ends or the worker stops; a pipeline that fails is
        built again after a backoff (a fresh source, counting from frame 0), alone."""
        name, backoff = pipeline.camera.name, _Backoff(backoff_max_s)
        while not stopped.is_set():
            started = time.monotonic()
            try:
                stats = pipeline.run(sources[i], stopped)
            except Exception as exc:
                log.exception("camera %s failed in its worker, starting it again", name)
                send(("restarting", name, f"{type(exc).__name__}: {exc}"))
                if stopped.wait(backoff.next(time.monotonic() - started)):
                    return
                pipeline = pipeline_of(pipeline.camera)
                sources[i] = pipeline.source()
                if stopped.is_set():  # stop_all may have passed the old source only
                    sources[i].stop()
                continue
            send(("stats", name, stats.frames, stats.decoded, stats.skipped, stats.reconnects))
            if not stopped.is_set():
                send(("ended", name))
            return

    try:
        snapshots = snapshot_store(settings, gallery.cipher) if settings.events.snapshots else None
        pipelines = [pipeline_of(camera) for camera in cameras]
        for p in pipelines:
            sources.append(p.source())
        if stopped.is_set():
            return
        threads = [
            threading.Thread(target=run, args=(i, p), name=f"camera:{p.camera.name}", daemon=True)
            for i, p in enumerate(pipelines)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        gallery.close()
        out.close()


def groups_of(cameras: list[CameraSettings], processes: int | None) -> list[list[CameraSettings]]:
    """The cameras of each worker process: one each (`processes` None), or dealt in turn over
    `processes` processes (no more processes than cameras)."""
    if processes is None:
        return [[c] for c in cameras]
    n = max(1, min(processes, len(cameras)))
    return [cameras[i::n] for i in range(n)]


@dataclass
class _Group:
    """One worker process and the cameras it runs."""

    cameras: list[str]
    backoff: _Backoff
    process: BaseProcess | None = None
    started: float = 0.0
    restart_at: float | None = None

    @property
    def name(self) -> str:
        return ",".join(self.cameras)


@dataclass
class _Camera:
    settings: CameraSettings
    group: _Group
    restarts: int = 0
    state: str = "starting"
    frames: int = 0
    run_frames: int = 0  # processed by the current worker
    skipped: int = 0  # decoded by the current worker's source but never processed
    last_index: int = -1
    reordered: int = 0
    stats: dict[str, int] = field(default_factory=dict)


class CameraWorkers:
    """The server's side: starts a worker per camera (or `processes` workers, the cameras dealt
    over them), forwards what they send to the bus, and restarts a worker that died.
    `on_frame(camera, index, captured, faces, seconds)` sees each processed frame in order."""

    def __init__(
        self,
        settings: Settings,
        cameras: list[CameraSettings],
        bus: EventBus,
        *,
        metrics: LiveMetrics | None = None,
        backoff_max_s: float = 30.0,
        on_frame: Any = None,
        processes: int | None = None,
    ) -> None:
        groups = groups_of(cameras, processes)
        if settings.embedder.threads == 0:
            # The cores shared out between the workers (as many workers as cores: one ONNX
            # Runtime thread each; more would only contend).
            threads = max(1, available_cores() // len(groups))
            settings = settings.model_copy(
                update={"embedder": settings.embedder.model_copy(update={"threads": threads})}
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
        self.groups = [_Group([c.name for c in g], _Backoff(backoff_max_s)) for g in groups]
        group_of = {name: group for group in self.groups for name in group.cameras}
        self.cameras = {c.name: _Camera(c, group_of[c.name]) for c in cameras}  # in the config's order
        self._threads: list[threading.Thread] = []
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> None:
        for group in self.groups:
            self._spawn(group)
        forward = threading.Thread(target=self._forward, name="workers:forward", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="workers:watch", daemon=True)
        self._threads = [forward, self._watcher]
        for t in self._threads:
            t.start()

    def _spawn(self, group: _Group) -> None:
        """Start the group's worker, for those of its cameras that have not ended."""
        names = [n for n in group.cameras if self.cameras[n].state != "ended"]
        reader, writer = self._ctx.Pipe(duplex=False)
        stop_r, stop_w = self._ctx.Pipe(duplex=False)
        p = self._ctx.Process(
            target=_worker,
            args=(
                self.settings,
                [self.cameras[n].settings for n in names],
                writer,
                stop_r,
                self.backoff_max_s,
            ),
            name=f"camera:{group.name}",
            daemon=True,
        )
        p.start()
        writer.close()  # the worker holds the only writer: its end is our end of file
        stop_r.close()
        old = self._stoppers.pop(group.name, None)
        if old is not None:
            old.close()
        self._stoppers[group.name] = stop_w
        with self._lock:
            self._conns[reader] = group.name
        group.process, group.started, group.restart_at = p, time.monotonic(), None
        for name in names:
            self._new_run(self.cameras[name])
            self.cameras[name].state = "running"

    @staticmethod
    def _new_run(cam: _Camera) -> None:
        """A camera's source starts again: its frame indices count from 0 anew."""
        cam.last_index, cam.run_frames, cam.skipped = -1, 0, 0

    def _restarting(self, cam: _Camera, reason: str) -> None:
        cam.state = "restarting"
        self.bus.publish(cam.settings.name, "camera_state", None, {"state": "restarting", "reason": reason})

    def pid(self, camera: str) -> int | None:
        p = self.cameras[camera].group.process
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
        elif kind == "restarting":  # its pipeline failed; the worker starts it again
            cam = self.cameras[camera]
            cam.restarts += 1
            self._new_run(cam)
            self._restarting(cam, msg[2])
        elif kind == "ended":
            self.cameras[camera].state = "ended"
        elif kind == "frame":
            cam = self.cameras[camera]
            if cam.state == "restarting":
                cam.state = "running"
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
            for group in self.groups:
                p = group.process
                if p is None or p.is_alive():
                    continue
                cams = [self.cameras[n] for n in group.cameras if self.cameras[n].state != "ended"]
                if group.restart_at is None:
                    if p.exitcode == 0 or not cams:  # the sources ended (files): nothing to restart
                        group.process = None
                        for cam in cams:
                            cam.state = "ended"
                        continue
                    group.restart_at = now + group.backoff.next(now - group.started)
                    log.error("camera %s: worker died (exit %s), restarting", group.name, p.exitcode)
                    for cam in cams:
                        self._restarting(cam, f"worker exited with {p.exitcode}")
                elif now >= group.restart_at:
                    for cam in cams:
                        cam.restarts += 1
                    self._spawn(group)

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
        if self._watcher is not None:
            self._watcher.join(timeout)  # no worker is (re)started after this
        for conn in self._stoppers.values():
            with contextlib.suppress(OSError):  # that worker is gone already
                conn.send("stop")
        deadline = time.monotonic() + timeout
        for group in self.groups:
            if group.process is not None:
                group.process.join(max(0.0, deadline - time.monotonic()))
                if group.process.is_alive():
                    group.process.kill()
                    group.process.join(1.0)
        self._closing.set()
        for t in self._threads:
            t.join(timeout)
        for conn in self._stoppers.values():
            conn.close()
