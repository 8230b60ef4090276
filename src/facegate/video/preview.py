"""The newest processed frame of each camera, for the web console's live view.

The camera thread only keeps a reference to its latest result (no copy, no drawing, no
encoding): boxes, names, track ids and decisions are drawn, and the JPEG encoded, only when
someone is looking, in the viewer's request thread.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from collections.abc import Callable

from PIL import Image

from facegate.video.pipeline import FrameResult
from facegate.video.writer import labels_for
from facegate.vision.annotate import annotate


class LatestFrames:
    def __init__(self, window: int = 30) -> None:
        self._latest: dict[str, FrameResult] = {}
        self._times: dict[str, deque[float]] = {}
        self._window = window
        self._lock = threading.Lock()

    def hook(self, camera: str) -> Callable[[FrameResult], None]:
        """The pipeline's `on_frame` for `camera`."""
        times: deque[float] = deque(maxlen=self._window)
        with self._lock:
            self._times[camera] = times

        def offer(result: FrameResult) -> None:
            self._latest[camera] = result  # one dict store: atomic under the GIL
            times.append(time.monotonic())

        return offer

    def stats(self, camera: str) -> dict[str, float | None]:
        """Frames processed per second lately, and seconds since the last one."""
        times = list(self._times.get(camera, ()))
        if not times:
            return {"fps": None, "last_frame_s": None}
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
        return {"fps": fps, "last_frame_s": time.monotonic() - times[-1]}

    @staticmethod
    def _labels(result: FrameResult) -> tuple[list[str | None], list[tuple[int, int, int]]]:
        labels, colours = labels_for(result)
        decided = {d.track_id: d.kind for d in result.decisions}
        for i, face in enumerate(result.faces):
            track = result.tracks.get(id(face))
            if track is not None:
                labels[i] = " ".join(x for x in (f"#{track.id}", labels[i], decided.get(track.id)) if x)
        return labels, colours

    def describe(self, camera: str) -> list[str] | None:
        """What the latest frame's drawing says, face by face (the live view's text alternative)."""
        result = self._latest.get(camera)
        if result is None:
            return None
        return [label or "face" for label in self._labels(result)[0]]

    def jpeg(self, camera: str, max_side: int = 960) -> bytes | None:
        """The latest frame with each face's box, track id, name, score and decision drawn."""
        result = self._latest.get(camera)
        if result is None:
            return None
        labels, colours = self._labels(result)
        img: Image.Image = annotate(result.frame.image, result.faces, labels, colours)
        if max(img.size) > max_side:
            img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        return buf.getvalue()
