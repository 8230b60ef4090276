"""The event bus: door actuators first, then a writer thread stores each event and hands it to
every sink through the sink's own bounded queue.

A decision's snapshot (redacted, encrypted, written) may be handed over as a function: the
writer thread makes it before storing the event, so the camera goes on to its next frame.

A sink that is slow or down (the database, a broker, a webhook receiver) loses its own events,
counted in metrics; it never blocks the camera that produced the event.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from facegate.errors import PersonNotFound
from facegate.events.metrics import LiveMetrics
from facegate.events.snapshots import SnapshotStore
from facegate.events.store import Event, EventStore

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Somewhere events go. `deliver` may block and raise: it runs on the sink's own thread."""

    name: str

    def deliver(self, event: Event) -> None: ...

    def close(self) -> None: ...


class QueuedSink:
    def __init__(self, sink: EventSink, size: int, metrics: LiveMetrics) -> None:
        self.sink = sink
        self.metrics = metrics
        self.queue: queue.Queue[Event | None] = queue.Queue(maxsize=size)
        self.thread = threading.Thread(target=self._run, name=f"sink:{sink.name}", daemon=True)
        self.thread.start()

    def submit(self, event: Event) -> bool:
        try:
            self.queue.put_nowait(event)
            return True
        except queue.Full:
            self.metrics.sink_dropped.labels(self.sink.name).inc()
            return False

    def _run(self) -> None:
        while (event := self.queue.get()) is not None:
            try:
                self.sink.deliver(event)
                self.metrics.sink_delivered.labels(self.sink.name).inc()
            except Exception as exc:
                self.metrics.sink_failed.labels(self.sink.name).inc()
                log.warning("sink %s could not deliver event %s: %s", self.sink.name, event.id, exc)

    def close(self, timeout: float) -> None:
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            # Still busy with a full queue: drop what waits (counted) so the worker can stop.
            while True:
                try:
                    if self.queue.get_nowait() is not None:
                        self.metrics.sink_dropped.labels(self.sink.name).inc()
                except queue.Empty:
                    break
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(None)
        self.thread.join(timeout)
        if not self.thread.is_alive():  # never close a client its thread is still using
            self.sink.close()


SnapshotMaker = Callable[[], "str | None"]
"""Makes a decision's snapshot and returns its path (None: no snapshot); run off the camera."""

DEFERRED_SNAPSHOTS = 8
"""Snapshots waiting for the writer at most; past that a camera makes its own (each waiting one
holds its whole frame in memory, so a burst of decisions must not queue hundreds of them)."""


class Announcer(Protocol):
    """What a camera pipeline tells: the bus itself, or a worker process's stand-in for it."""

    def alert(
        self, camera: str, kind: str, person_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None: ...

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
    ) -> None: ...


def made(snapshot: str | SnapshotMaker | None) -> str | None:
    """The snapshot's path, making it now if it was handed over as a function; a snapshot that
    cannot be made is logged and left out (an event without one rather than no event)."""
    if not callable(snapshot):
        return snapshot
    try:
        return snapshot()
    except Exception as exc:
        log.error("snapshot not saved: %s", exc)
        return None


Pending = tuple[
    str,
    str,
    str | None,
    dict[str, Any],
    str | SnapshotMaker | None,
    datetime,
    "Callable[[Event], None] | None",
    tuple[str, ...],
]


class EventBus:
    """Events from the cameras: door actuators first, then the database and every other sink,
    all off the camera's thread (a database that is slow or away never delays a decision)."""

    def __init__(
        self,
        store: EventStore | None,
        sinks: Sequence[EventSink],
        metrics: LiveMetrics,
        queue_size: int = 256,
        urgent: Sequence[EventSink] = (),
        snapshots: SnapshotStore | None = None,
    ) -> None:
        """`urgent` sinks (door actuators) get each event before it is stored: a slow or busy
        database must not keep a resident waiting at the door. They see it with id 0."""
        self.store = store
        self.metrics = metrics
        self.snapshots = snapshots
        self.urgent = [QueuedSink(s, queue_size, metrics) for s in urgent]
        self.sinks = [QueuedSink(s, queue_size, metrics) for s in sinks]
        self._pending: queue.Queue[Pending | None] = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._deferred = 0  # snapshots queued as functions, not made yet
        self._deferred_lock = threading.Lock()
        # Replicas: `fence(camera)` says whether this process may still speak for the camera
        # (it holds the camera's lease); `origin` names the replica on each event.
        self.fence: Callable[[str], bool] | None = None
        self.origin: str | None = None
        self._writer = threading.Thread(target=self._write_loop, name="events:database", daemon=True)
        self._writer.start()

    def publish(
        self,
        camera: str,
        kind: str,
        person_id: str | None = None,
        details: dict[str, Any] | None = None,
        snapshot: str | SnapshotMaker | None = None,
        *,
        urgent: bool = True,
        then: Callable[[Event], None] | None = None,
        subjects: tuple[str, ...] = (),
    ) -> None:
        """Queue it for the urgent sinks (unless `alert` already did) and for the database
        writer, which stores it (id 0 if the database failed), hands it to every other sink,
        and runs `then` (e.g. the audit entry) with the stored event. Never blocks, except to
        make a snapshot handed over as a function while `DEFERRED_SNAPSHOTS` already wait.
        `subjects`: whose face it shows though it names nobody (`EventStore.add`)."""
        if self._closed:
            log.warning("a %s event of %s after the bus closed was dropped", kind, camera)
            return
        if not self._may_speak(camera, kind):
            if isinstance(snapshot, str) and self.snapshots is not None:
                self.snapshots.delete(snapshot)
            return
        if callable(snapshot) and not self._defer():
            snapshot = made(snapshot)
        details = self._stamped(details)
        if urgent:
            self.alert(camera, kind, person_id, details)
        item = (camera, kind, person_id, details, snapshot, datetime.now(UTC), then, subjects)
        try:
            self._pending.put_nowait(item)
        except queue.Full:
            if callable(snapshot):
                self._made_one()
            elif snapshot is not None and self.snapshots is not None:
                self.snapshots.delete(snapshot)  # no event will ever point to it
            self.metrics.sink_dropped.labels("database").inc()
            log.error("event queue full: a %s event of %s was dropped", kind, camera)

    def _defer(self) -> bool:
        """Whether one more snapshot may wait for the writer thread (counted if so)."""
        with self._deferred_lock:
            if self._deferred >= DEFERRED_SNAPSHOTS:
                return False
            self._deferred += 1
            return True

    def _made_one(self) -> None:
        with self._deferred_lock:
            self._deferred -= 1

    def _write_loop(self) -> None:
        while (item := self._pending.get()) is not None:
            try:
                self._write(*item)
            finally:
                self._pending.task_done()
        self._pending.task_done()

    def _write(
        self,
        camera: str,
        kind: str,
        person_id: str | None,
        details: dict[str, Any],
        pending_snapshot: str | SnapshotMaker | None,
        at: datetime,
        then: Callable[[Event], None] | None,
        subjects: tuple[str, ...],
    ) -> None:
        snapshot = made(pending_snapshot)
        if callable(pending_snapshot):
            self._made_one()
        event: Event | None = None
        if self.store is not None:
            try:
                event = self.store.add(
                    camera, kind, person_id, details, at=at, snapshot=snapshot, subjects=subjects
                )
            except PersonNotFound:
                # Erased while this decision was in flight: nothing about them may leave now.
                if snapshot is not None and self.snapshots is not None:
                    self.snapshots.delete(snapshot)
                log.info("dropped a %s event of %s: the person was erased meanwhile", kind, camera)
                return
            except Exception as exc:
                self.metrics.sink_failed.labels("database").inc()
                log.error("cannot store a %s event of %s: %s", kind, camera, exc)
        if event is None:
            event = Event(0, at, camera, kind, person_id, details, snapshot)
        for sink in self.sinks:
            sink.submit(event)
        if then is not None:
            try:
                then(event)
            except Exception as exc:
                log.error("after storing a %s event of %s: %s", kind, camera, exc)

    def flush(self) -> None:
        """Wait until every event published so far is stored and handed to the sinks."""
        self._pending.join()

    def alert(
        self, camera: str, kind: str, person_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        """Only the urgent sinks (door actuators), at once, with a provisional event (id 0)."""
        if self.urgent and self._may_speak(camera, kind):
            provisional = Event(0, datetime.now(UTC), camera, kind, person_id, self._stamped(details))
            for sink in self.urgent:
                sink.submit(provisional)

    def _may_speak(self, camera: str, kind: str) -> bool:
        """False once this replica's lease on the camera ran out: another replica may hold it
        now, and a decision from both would open the door twice."""
        if self.fence is None or self.fence(camera):
            return True
        self.metrics.fenced.labels(camera).inc()
        log.warning("a %s event of %s was dropped: this replica no longer holds the camera", kind, camera)
        return False

    def _stamped(self, details: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(details or {})
        if self.origin is not None:
            out.setdefault("replica", self.origin)
        return out

    def close(self, timeout: float = 30.0) -> None:
        """Store what is pending, then stop every sink (each finishes what it holds)."""
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._pending.put(None, timeout=timeout)
        self._writer.join(timeout)
        if self._writer.is_alive():
            left = self._pending.qsize()
            self.metrics.sink_dropped.labels("database").inc(left)
            log.error("the event writer did not finish in %.0f s: %d event(s) not stored", timeout, left)
        for sink in [*self.urgent, *self.sinks]:
            sink.close(timeout)
