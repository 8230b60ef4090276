"""The live service: every configured camera in its own thread, one event bus, the door actuators.

`facegate serve` starts it beside the API (Frigate's split: camera processing here, the HTTP
surface only reads what it produces); `facegate watch` runs one camera of it in the foreground.
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
from facegate.video.sources import VideoSource
from facegate.video.workers import CameraWorkers

if TYPE_CHECKING:
    from facegate.gallery.crypto import TemplateCipher

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
    ) -> None:
        """`doors=False`: decide but open nothing (no door actuators), e.g. `facegate watch`.
        `workers`: cameras in worker processes (default: `camera_workers`, two cameras or more)."""
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
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        if workers is None:
            workers = settings.camera_workers == "auto" and len(self.cameras) > 1
        self.workers = (
            CameraWorkers(settings, self.cameras, self.bus, metrics=self.metrics) if workers else None
        )

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
        )
        self.pipelines[camera.name] = p
        return p

    def start(self) -> None:
        """Connect the sinks and start a thread per enabled camera."""
        if self.mqtt is not None:
            self.mqtt.start()
        if self.workers is not None:
            self.workers.start()
            return
        for camera in self.cameras:
            p = self.pipeline(camera, on_frame=self.preview.hook(camera.name))
            source = p.source()
            self.sources[camera.name] = source
            t = threading.Thread(
                target=self._run, args=(p, source), name=f"camera:{camera.name}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def _run(self, pipeline: CameraPipeline, source: VideoSource) -> None:
        try:
            self.stats[pipeline.camera.name] = pipeline.run(source, self._stop)
        except Exception:
            log.exception("camera %s stopped", pipeline.camera.name)

    def status(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        if self.workers is not None:
            return [
                {"camera": name, "door": getattr(self.settings.door_for(name), "name", None), **s}
                for name, s in self.workers.status().items()
            ]
        for c in self.cameras:
            s = self.sources.get(c.name)
            door = self.settings.door_for(c.name)
            out.append(
                {
                    "camera": c.name,
                    "state": s.state.value if s else "stopped",
                    "frames_decoded": s.decoded if s else 0,
                    "frames_skipped": s.dropped if s else 0,
                    "reconnects": s.reconnects if s else 0,
                    "door": door.name if door else None,
                    **self.preview.stats(c.name),
                }
            )
        return out

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.workers is not None:
            self.workers.stop(timeout)
        for s in self.sources.values():
            s.stop()
        for t in self._threads:
            t.join(timeout)
        self.bus.close()
