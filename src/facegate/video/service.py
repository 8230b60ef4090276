"""The live service: every configured camera in its own thread (or worker process), one event
bus, the door actuators.

`facegate serve` starts it beside the API (Frigate's split: camera processing here, the HTTP
surface only reads what it produces); `facegate watch` runs one camera of it in the foreground.
With replicas (several `serve` processes on one PostgreSQL) each camera runs only on the replica
holding its lease (`video/replica.py`), and the bus drops whatever a camera would still publish
after its lease ran out here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from facegate.access.actions import DoorActuator
from facegate.access.decisions import DoorDecision
from facegate.events.bus import EventBus, EventSink
from facegate.events.metrics import LiveMetrics
from facegate.events.mqtt import MqttBridge
from facegate.events.snapshots import snapshot_store
from facegate.events.sse import SseHub
from facegate.events.store import EventStore
from facegate.events.webhook import WebhookSink
from facegate.gallery.gallery import Gallery
from facegate.settings import CameraSettings
from facegate.video.pipeline import CameraPipeline, FrameResult, RunStats
from facegate.video.preview import LatestFrames
from facegate.video.replica import Replica, door_lease, lease_names, leases_wanted
from facegate.video.sources import VideoSource
from facegate.video.workers import CameraWorkers
from facegate.vision.onnx_runtime import available_cores

if TYPE_CHECKING:
    from facegate.gallery.crypto import TemplateCipher
    from facegate.gallery.leases import Lease

log = logging.getLogger(__name__)


class LiveService:
    def __init__(
        self,
        gallery: Gallery,
        *,
        cameras: Sequence[CameraSettings] | None = None,
        registry: CollectorRegistry | None = None,
        sse: SseHub | None = None,
        doors: bool = True,
        workers: bool | None = None,
        leases: bool | None = None,
    ) -> None:
        """`doors=False`: decide but open nothing (no door actuators), e.g. `facegate watch`.
        `workers`: cameras in worker processes (default: `camera_workers`, two cameras or more;
        as many processes as cores, or the number it gives).
        `leases`: run only the cameras leased to this replica (default: `replica.leases`)."""
        self.gallery = gallery
        settings = gallery.settings
        self.settings = settings
        self.cameras = [c for c in (settings.cameras if cameras is None else cameras) if c.enabled]
        self.metrics = LiveMetrics(registry)
        self.snapshots = snapshot_store(settings, gallery.cipher) if settings.events.snapshots else None
        if self.snapshots is not None:
            gallery.key_listeners.append(self._new_key)
        self.actuators: dict[str, DoorActuator] = {}
        self.mqtt: MqttBridge | None = None
        sinks: list[EventSink] = []
        if settings.mqtt.enabled:
            self.mqtt = MqttBridge(
                settings.mqtt, [c.name for c in self.cameras], settings.doors, on_command=self._mqtt_command
            )
            sinks.append(self.mqtt)
        for door in settings.doors if doors else []:
            self.actuators[door.name] = DoorActuator(door, self.mqtt, audit=self._audit_unlock)
        sinks.extend(WebhookSink(w) for w in settings.webhooks)
        if sse is not None:
            sinks.append(sse)
        self.bus = EventBus(
            EventStore(gallery.store),
            sinks,
            self.metrics,
            settings.events.queue_size,
            urgent=list(self.actuators.values()),
            snapshots=self.snapshots,
        )
        self.pipelines: dict[str, CameraPipeline] = {}
        self.preview = LatestFrames()  # the console's live view: a reference per frame, no work
        self.sources: dict[str, VideoSource] = {}
        self.stats: dict[str, RunStats] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stops: dict[str, threading.Event] = {}
        self._by_name = {c.name: c for c in self.cameras}
        if workers is None:
            workers = settings.camera_workers != "off" and len(self.cameras) > 1
        self.use_workers = workers
        # Worker mode: one `CameraWorkers` for every camera, or one per leased camera.
        self.workers: CameraWorkers | None = None
        self._leased_workers: dict[str, CameraWorkers] = {}
        self.replica: Replica | None = None
        names = lease_names(settings, list(self._by_name))
        if names and (leases if leases is not None else leases_wanted(settings, gallery.store)):
            self.replica = Replica(
                gallery.store,
                settings.replica,
                names,
                on_acquired=self._start_camera,
                on_lost=self._stop_camera,
                audit=gallery.audit,
                snapshots=self.snapshots,
                snapshot_days=max(settings.privacy.snapshot_days, settings.privacy.unknown_snapshot_days),
                on_round=self.mqtt.still_online if self.mqtt is not None else None,
            )
            self.bus.fence = self._may_speak
            self.bus.origin = settings.replica.id
        elif workers:
            # "auto": as many processes as cores, each running its share of the cameras (a
            # process per camera loads the models once a camera and contends for the cores:
            # fewer frames on two cores in every row measured, docs/benchmarks.md section 12).
            cw = settings.camera_workers
            processes = cw if isinstance(cw, int) else available_cores()
            self.workers = CameraWorkers(
                settings, self.cameras, self.bus, metrics=self.metrics, processes=processes
            )

    def _may_speak(self, camera: str) -> bool:
        """A leased camera's events only while its lease holds here (a pipeline the caller runs
        itself on this bus, under another name, is the caller's)."""
        return self.replica is None or camera not in self._by_name or self.replica.holds(camera)

    def _new_key(self, cipher: TemplateCipher) -> None:
        """The data key was rotated: snapshots from now on under the new one."""
        if self.snapshots is not None:
            self.snapshots.cipher = cipher

    def _audit_unlock(self, actor: str, door: str, person_id: str | None) -> None:
        self.gallery.audit.record(actor, "door_unlock", None, {"door": door}, person=person_id)

    def _mqtt_command(self, door: str, command: str) -> None:
        actuator = self.actuators.get(door)
        if actuator is None:
            log.warning("MQTT command %s for unknown door %s ignored", command, door)
        elif self.replica is not None and not self.replica.holds(door_lease(self.settings, door)):
            log.debug("MQTT command %s for door %s: another replica acts for it", command, door)
        elif command == "UNLOCK":
            try:
                actuator.unlock("mqtt")
            except Exception as exc:
                log.error("remote unlock of %s failed: %s", door, exc)

    def pipeline(
        self,
        camera: CameraSettings,
        on_decision: Callable[[DoorDecision], None] | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
        door: str | None = None,
    ) -> CameraPipeline:
        door_settings = self.settings.door(door) if door else self.settings.door_for(camera.name)
        p = CameraPipeline(
            camera,
            self.gallery,
            door=door_settings,
            bus=self.bus,
            snapshots=self.snapshots,
            metrics=self.metrics,
            on_decision=on_decision,
            on_frame=on_frame,
            # Several cameras in this process keep the cores busy: a thread each for detection.
            detector_threads=1 if len(self.cameras) > 1 else 0,
        )
        self.pipelines[camera.name] = p
        return p

    def start(self) -> None:
        """Connect the sinks and start every enabled camera (with replicas: those leased here)."""
        if self.mqtt is not None:
            self.mqtt.start()
        if self.replica is not None:
            self.replica.start()
        elif self.workers is not None:
            self.workers.start()
        else:
            for name in self._by_name:
                self._start_camera(name)

    def _start_camera(self, name: str) -> None:
        camera = self._by_name.get(name)
        if camera is None:  # a door's lease: its MQTT commands, nothing to run
            return
        self.metrics.leases.labels(name).set(1)
        if self.use_workers:
            w = CameraWorkers(self.settings, [camera], self.bus, metrics=self.metrics)
            self._leased_workers[name] = w
            w.start()
            return
        p = self.pipeline(camera, on_frame=self.preview.hook(name))
        source = p.source()
        stop = threading.Event()
        self.sources[name], self._stops[name] = source, stop
        t = threading.Thread(target=self._run, args=(p, source, stop), name=f"camera:{name}", daemon=True)
        self._threads[name] = t
        t.start()

    def _stop_camera(self, name: str, timeout: float = 10.0) -> None:
        """Stop one camera (its lease was lost, or the service stops); its counts stay."""
        if name not in self._by_name:
            return
        self.metrics.leases.labels(name).set(0)
        w = self._leased_workers.pop(name, None)
        if w is not None:
            w.stop(timeout)
            return
        stop, source, t = self._stops.pop(name, None), self.sources.get(name), self._threads.pop(name, None)
        if stop is not None:
            stop.set()
        if source is not None:
            source.stop()
        if t is not None:
            t.join(timeout)

    def _run(self, pipeline: CameraPipeline, source: VideoSource, stop: threading.Event) -> None:
        try:
            self.stats[pipeline.camera.name] = pipeline.run(source, stop)
        except Exception:
            log.exception("camera %s stopped", pipeline.camera.name)

    def status(self) -> list[dict[str, object]]:
        """Each configured camera's state; with replicas, also which replica runs it."""
        placement = self._placement()
        out: list[dict[str, object]] = []
        worker_status: dict[str, dict[str, object]] = {}
        if self.workers is not None:
            worker_status = self.workers.status()
        for w in self._leased_workers.values():
            worker_status.update(w.status())
        for c in self.cameras:
            door = self.settings.door_for(c.name)
            row: dict[str, object] = {"camera": c.name, "door": door.name if door else None}
            if c.name in worker_status:
                row.update(worker_status[c.name])
            else:
                s = self.sources.get(c.name) if c.name in self._threads else None
                row.update(
                    {
                        "state": s.state.value if s else "stopped",
                        "frames_decoded": s.decoded if s else 0,
                        "frames_skipped": s.dropped if s else 0,
                        "reconnects": s.reconnects if s else 0,
                        **self.preview.stats(c.name),
                    }
                )
            if self.replica is not None:
                lease = placement.get(c.name)
                row["replica"] = lease.holder if lease is not None else None
                if lease is not None and lease.holder != self.replica.id:
                    row["state"] = "elsewhere"
            out.append(row)
        return out

    def _placement(self) -> dict[str, Lease]:
        if self.replica is None:
            return {}
        try:
            return self.replica.placement()
        except Exception as exc:  # the database is away: say what is known here
            log.warning("cannot read the camera leases: %s", exc)
            return {}

    def stop(self, timeout: float = 10.0) -> None:
        if self.replica is not None:
            self.replica.stop()  # stops each camera it held, then hands the leases over
        if self.workers is not None:
            self.workers.stop(timeout)
        for name in list(self._threads) + list(self._leased_workers):
            self._stop_camera(name, timeout)
        self.bus.close()
