"""`facegate watch`: one source in the foreground, with the live service's bus and sinks.

Without a door every enrolled person with valid consent counts as granted and no door is
opened; events go to the database and the configured sinks, as under `serve`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facegate.access.decisions import DoorDecision
from facegate.gallery.gallery import Gallery
from facegate.settings import CameraSettings, Settings
from facegate.video.pipeline import RunStats
from facegate.video.service import LiveService
from facegate.video.writer import AnnotatedVideo


def watched_camera(settings: Settings, source: str, fps: float | None = None) -> CameraSettings:
    """The configured camera named `source`, else an ad-hoc camera reading it; `fps` overrides."""
    camera = next((c for c in settings.cameras if c.name == source), None)
    if camera is None:
        camera = CameraSettings(name="watch", source=source)
    if fps is not None:
        camera = camera.model_copy(update={"fps": fps})
    return camera


def watch_source(
    gallery: Gallery,
    camera: CameraSettings,
    *,
    door: str | None = None,
    annotate: Path | None = None,
    duration: float | None = None,
    on_decision: Callable[[DoorDecision], None] | None = None,
) -> RunStats | None:
    """Run `camera` until its source ends, `duration` seconds pass, or Ctrl-C (then None).

    Only `door` acts on a door: watching a configured camera alone never opens one.
    """
    live = LiveService(gallery, cameras=[camera], doors=door is not None, leases=False)
    if live.mqtt is not None:
        live.mqtt.start()
    writer = AnnotatedVideo(annotate, camera.fps) if annotate else None
    pipeline = live.pipeline(
        camera, on_decision=on_decision, on_frame=writer.write_result if writer else None, door=door
    )
    src = pipeline.source()
    if duration is not None:
        timer = threading.Timer(duration, src.stop)
        timer.daemon = True
        timer.start()
    try:
        return pipeline.run(src)
    except KeyboardInterrupt:
        src.stop()
        return None
    finally:
        if writer is not None:
            writer.close()
        live.bus.close()


def summary(stats: RunStats, camera: CameraSettings, annotate: Path | None = None) -> dict[str, Any]:
    """What a run did: frames, speed, reconnections, decisions by kind."""
    return {
        "source": camera.source,
        "frames_processed": stats.frames,
        "frames_decoded": stats.decoded,
        "frames_skipped": stats.skipped,
        "reconnects": stats.reconnects,
        "seconds": round(stats.seconds, 2),
        "fps": round(stats.fps, 1),
        "decisions": {k: sum(d.kind == k for d in stats.decisions) for k in ("granted", "denied", "unknown")},
        "annotated": str(annotate) if annotate else None,
    }
