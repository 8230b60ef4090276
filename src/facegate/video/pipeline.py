"""One camera's processing: frames -> faces -> tracks -> identities -> door decisions -> events."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

import cv2
import numpy as np

from facegate.access.decisions import DecisionGate, DoorDecision
from facegate.access.policy import ALLOW_ALL
from facegate.credentials import hide_credentials
from facegate.events.bus import Announcer, SnapshotMaker
from facegate.events.metrics import LiveMetrics
from facegate.events.snapshots import SnapshotStore, redact
from facegate.events.store import Event
from facegate.gallery.gallery import Gallery
from facegate.settings import CameraSettings, DoorSettings
from facegate.video.sources import Frame, SourceState, VideoSource
from facegate.video.tracker import Track, Tracker
from facegate.vision import planarity
from facegate.vision.detect_yunet import nms, resized
from facegate.vision.detectors import camera_detector
from facegate.vision.engine import FaceEngine
from facegate.vision.geometry import clip
from facegate.vision.liveness import LivenessCheck
from facegate.vision.protocols import Detector
from facegate.vision.redact import more_faces
from facegate.vision.types import Box, Detection, Face

log = logging.getLogger(__name__)
T = TypeVar("T")
DECODE_AHEAD = 4  # frames a file camera decodes ahead of the one being processed
# Between whole-frame detections, the region around a tracked face is searched with the face at
# most this large (the whole-frame pass sees a 1080p face at half size or less) ...
NEAR_FACE_PX = 128
# ... and this much of the face's side on each side of it: a face moves less between two frames.
NEAR_MARGIN = 0.75
# The regions are searched only while they cost less than this share of a whole-frame pass.
NEAR_MAX_SHARE = 0.5


@dataclass
class FrameResult:
    frame: Frame
    faces: list[Face]
    tracks: dict[int, Track]  # id(face) -> its track
    decisions: list[DoorDecision]
    seconds: float


@dataclass
class RunStats:
    frames: int = 0
    decoded: int = 0
    skipped: int = 0
    reconnects: int = 0
    seconds: float = 0.0
    decisions: list[DoorDecision] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _ahead(frames: Iterator[Frame], depth: int, prepare: Callable[[Frame], T]) -> Iterator[tuple[Frame, T]]:
    """`frames` with `prepare(frame)`, decoded and prepared (detected) on a thread of their own
    up to `depth` frames ahead: PyAV decodes and ONNX Runtime detects without the GIL, so a
    file camera uses a second core. Not for live sources, where a frame decoded ahead would
    only be older by the time it is processed."""
    done = object()
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Queue `item` unless the consumer stopped first (then nobody would take it)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for f in frames:
                if not put((f, prepare(f))):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        put(done)

    worker = threading.Thread(target=decode, name="decode-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)


def _shift(det: Detection, dx: int, dy: int) -> Detection:
    b = det.box
    points = None if det.points is None else det.points + np.array([dx, dy], np.float32)
    return replace(det, box=Box(b.left + dx, b.top + dy, b.right + dx, b.bottom + dy), points=points)


def _scaled(det: Detection, factor: float) -> Detection:
    points = None if det.points is None else det.points * np.float32(factor)
    return replace(det, box=det.box.scaled(factor), points=points)


def _shrunk(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """`image` no larger than `max_side`, and the factor it was scaled by."""
    h, w = image.shape[:2]
    scale = min(max_side / max(h, w), 1.0)
    if scale == 1.0:
        return image, 1.0
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


class CameraPipeline:
    """Recognition for one camera and (at most) one door.

    Without a door every enrolled person with valid consent is `granted` (what `facegate watch`
    shows); no door is opened unless an actuator for a configured door is on the bus.
    """

    def __init__(
        self,
        camera: CameraSettings,
        gallery: Gallery,
        *,
        door: DoorSettings | None = None,
        bus: Announcer | None = None,
        snapshots: SnapshotStore | None = None,
        metrics: LiveMetrics | None = None,
        on_decision: Callable[[DoorDecision], None] | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
        detector_threads: int = 0,
    ) -> None:
        """`detector_threads`: ONNX Runtime threads of the camera's detector (0: the embedder's
        setting); a process running several cameras gives each one, the cameras being what
        keeps the cores busy."""
        self.camera = camera
        self.gallery = gallery
        settings = gallery.settings
        base = gallery.engine  # loads the shared aligner and embedder once
        self.engine = FaceEngine(
            settings,
            detector=camera_detector(settings, camera, detector_threads),
            aligner=base.aligner,
            embedder=base.embedder,
        )
        self.door = door or ALLOW_ALL.model_copy(update={"cameras": [camera.name]})
        self.target_fmr = self.door.target_fmr or settings.match.target_fmr
        self.threshold = gallery.calibration.threshold(self.target_fmr)
        # One sighting decides alone only if it would pass at a tenth of the false-match target:
        # the first frame of a face is often its worst (turning, blurred, entering the frame).
        cal = gallery.calibration
        self.confident = cal.threshold(max(self.target_fmr / 10, cal.min_fmr))
        # A face scoring below the 10% false-match threshold against its track's evidence is
        # almost surely someone else (a genuine pose change rarely falls that low).
        self.tracker = Tracker(
            settings.tracking, same_person=self.threshold, different_person=cal.threshold(0.1)
        )
        self.gate = DecisionGate(
            self.door,
            settings.tracking.unknown_after,
            settings.tracking.unknown_min_s,
            people_named=lambda name: [p.id for p in gallery.people(name)],
            liveness=settings.liveness,
        )
        self.liveness = LivenessCheck(settings.liveness) if self.door.liveness_required else None
        self.bus = bus
        self.snapshots = snapshots
        self.redact_mode = settings.events.redact
        self.metrics = metrics
        self.on_decision = on_decision
        self.on_frame = on_frame
        self._state = ""
        self._until_full = 0  # live frames until the next whole-frame detection
        self._previous_clock = float("inf")  # of the previous live frame
        self.whole_frame_detections = 0  # of live frames (the others searched near tracked faces)
        self.recent: deque[DoorDecision] = deque(maxlen=100)  # the latest decisions, newest last
        # Built now (it may convert a model on first use), not in the middle of a decision; one
        # for every camera of the process (its thorough pass needs a few hundred MB of buffers).
        self._redaction_detector: Detector | None = (
            base.redaction_detector() if snapshots is not None and self.redact_mode != "none" else None
        )

    # --- one frame ---------------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face of the frame large enough for this camera, fully described."""
        return [self.engine.face(image, d) for d in self._detections(image)]

    def _detections(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        dx = dy = 0
        roi = self.camera.roi
        if roi is not None:
            dx, dy = int(roi[0] * w), int(roi[1] * h)
            image = image[dy : int(roi[3] * h), dx : int(roi[2] * w)]  # a view: no copy
        found = self.engine.detector.detect(image)
        if dx or dy:
            found = [_shift(d, dx, dy) for d in found]
        return self._kept(found, w, h)

    def _kept(self, found: list[Detection], w: int, h: int) -> list[Detection]:
        """The detections large enough for this camera, largest first (as the engine gives)."""
        found.sort(key=lambda d: -d.box.width * d.box.height)
        return [d for d in found if clip(d.box, w, h).size >= self.camera.min_face_px]

    def _live_detections(self, image: np.ndarray, clock: float) -> list[Detection]:
        """A live frame's detections: the whole frame every `full_detect_every` frames, else
        only the regions around the faces tracked in the previous frame (the whole frame too
        when those regions would cost as much, or nothing is tracked)."""
        every = self.camera.full_detect_every
        self._until_full -= 1
        previous, self._previous_clock = self._previous_clock, clock
        if every > 1 and self._until_full > 0:
            # Faces seen in the previous frame only: one lost since is looked for in the whole
            # frame next time (its old box would cost a search and rarely hold it).
            tracked = [t.box for t in self.tracker.tracks.values() if t.last_seen >= previous]
            whole = min(self.camera.detect_max_side / max(image.shape[:2]), 1.0)
            regions = self._regions(image, tracked, whole)
            area = sum((r[2] - r[0]) * (r[3] - r[1]) * r[4] ** 2 for r in regions)
            if regions and area < NEAR_MAX_SHARE * image.shape[0] * image.shape[1] * whole**2:
                return self._near(image, regions)
        self._until_full = every
        self.whole_frame_detections += 1
        return self._detections(image)

    def _regions(
        self, image: np.ndarray, boxes: list[Box], whole: float
    ) -> list[tuple[int, int, int, int, float]]:
        """The region (left, top, right, bottom) around each box, and the scale it is searched
        at: the whole-frame pass's (`whole`) or smaller (a large face need not be seen large to
        be found)."""
        h, w = image.shape[:2]
        left, top, right, bottom = 0, 0, w, h
        if self.camera.roi is not None:
            r = self.camera.roi
            left, top, right, bottom = int(r[0] * w), int(r[1] * h), int(r[2] * w), int(r[3] * h)
        out = []
        for b in boxes:
            side = max(b.width, b.height, 1)
            pad = round(side * NEAR_MARGIN)
            x0, y0 = max(b.left - pad, left), max(b.top - pad, top)
            x1, y1 = min(b.right + pad, right), min(b.bottom + pad, bottom)
            if x1 - x0 >= 8 and y1 - y0 >= 8:  # else the face left the frame (or the region of interest)
                out.append((x0, y0, x1, y1, min(whole, NEAR_FACE_PX / side)))
        return out

    def _near(self, image: np.ndarray, regions: list[tuple[int, int, int, int, float]]) -> list[Detection]:
        """The faces found in `regions` (see `_regions`), in frame coordinates."""
        h, w = image.shape[:2]
        found = []
        for x0, y0, x1, y1, scale in regions:
            region = image[y0:y1, x0:x1]  # a view: no copy
            if scale < 1.0:
                size = (max(round((x1 - x0) * scale), 1), max(round((y1 - y0) * scale), 1))
                region = resized(region, size)
            for d in self.engine.detector.detect(region):  # smaller than its max_side: as it is
                found.append(_shift(_scaled(d, 1 / scale) if scale < 1.0 else d, x0, y0))
        if len(found) > 1:  # regions of faces close together overlap: one detection per face
            boxes = np.array([[d.box.left, d.box.top, d.box.right, d.box.bottom] for d in found], np.float32)
            found = [found[i] for i in nms(boxes, np.array([d.score for d in found], np.float32), 0.5)]
        return self._kept(found, w, h)

    def _detect_ahead(self, frame: Frame) -> list[Detection] | None:
        try:
            return self._detections(frame.image)
        except Exception:  # detected again, and reported, on the camera's thread
            return None

    def _faces(self, image: np.ndarray, clock: float, found: list[Detection]) -> list[Face]:
        """The frame's faces; those of decided tracks not due for an embedding are followed
        from their last sighting instead of measured again (no landmarks, chip, quality)."""
        h, w = image.shape[:2]
        follows = self.tracker.needs_face([clip(d.box, w, h) for d in found], clock)
        return [
            self.engine.face(image, d) if t is None else self.engine.follow(image, d, t.face)
            for d, t in zip(found, follows, strict=True)
        ]

    def process(self, frame: Frame, clock: float) -> FrameResult:
        """`clock`: seconds on the stream's clock (media time for files, monotonic for live)."""
        return self._process(frame, clock, None)

    def _process(
        self, frame: Frame, clock: float, found: list[Detection] | None, live: bool = False
    ) -> FrameResult:
        """`found`: the frame's detections where they were made ahead (on the decoding thread).
        `live`: `clock` is the frame's capture time (monotonic), so a decision's latency runs
        to now; for a file it runs on the media clock plus this frame's processing."""
        started = time.perf_counter()
        if found is None:
            found = self._live_detections(frame.image, clock) if live else self._detections(frame.image)
        faces = self._faces(frame.image, clock, found)
        seen, _ended = self.tracker.update(faces, clock, self.engine.embed)
        self._score_liveness(frame.image, seen, clock)
        fresh = [t for t in seen if t.last_embedded == clock]
        fused = [t.fused() for t in fresh]
        if fresh:
            results = self.gallery.search(
                np.stack([f for f in fused if f is not None]),
                threshold=self.threshold,
                use=f"door:{self.door.name}",
            )
            for t, r in zip(fresh, results, strict=True):
                t.identity = r
        decisions = []
        wall = datetime.now(UTC)
        for t in seen:
            d = self.gate.consider(
                t, self.camera.name, clock, wall, self.threshold, self.target_fmr, self.confident
            )
            if d is not None:
                lag = time.monotonic() - frame.captured if live else time.perf_counter() - started
                d = replace(d, latency_s=d.latency_s + max(lag, 0.0))
                decisions.append(d)
                self._announce(d, frame, faces)
            if t.decided:
                t.liveness.planarity.clear()  # its face crops are needed no longer
        result = FrameResult(
            frame, faces, {id(t.face): t for t in seen}, decisions, time.perf_counter() - started
        )
        if self.metrics is not None:
            self.metrics.frames.labels(self.camera.name).inc()
            self.metrics.frame_seconds.labels(self.camera.name).observe(result.seconds)
        if self.on_frame is not None:
            self.on_frame(result)
        return result

    def _score_liveness(self, image: np.ndarray, tracks: list[Track], clock: float) -> None:
        """Score the whole frame around each undecided track's face (doors requiring liveness);
        note its head pose where the door asks for a head turn; sample its face's region for
        the motion cue (a small grey crop, in memory, with the track) where either asks."""
        live = self.gallery.settings.liveness
        window = live.challenge_window_s
        if self.door.challenge != "none":
            for t in tracks:
                if not (t.emitted - {"unknown"}) and clock - t.first_seen <= window:
                    t.liveness.add_pose(clock, t.face.landmarks)
        if self.gate.asks_motion:
            watch = max(live.planarity.watch_s, window if self.door.challenge != "none" else 0.0)
            for t in tracks:
                ev = t.liveness.planarity
                # Until the track is decided, its motion judged, or its first `watch` seconds
                # are over: then its crops go (the numbers stay).
                if t.emitted - {"unknown"} or clock - t.first_seen > watch:
                    ev.clear()
                    continue
                if not ev.due(clock, live.planarity.sample_gap_s):
                    continue
                # A face too small for MiniFASNet is never live at a liveness door: no need to
                # judge its motion (a crowd's small faces would cost a comparison each).
                if self.liveness is not None and t.face.rules_box.size < live.min_face_px:
                    continue
                plan = self.gate.planarity(t)
                if plan is not None and plan.verdict != "undecided":
                    ev.clear()
                    continue
                ev.add(planarity.sample(image, t.face.rules_box, t.face.landmarks, clock))
        if self.liveness is None:
            return
        # Until the track is decided ("unknown" is no decision: it may be recognised later), and
        # no more often than the fused evidence can use.
        pending = [
            t for t in tracks if not (t.emitted - {"unknown"}) and len(t.liveness.scores) < t.liveness.keep
        ]
        for t, r in zip(pending, self.liveness.assess(image, [t.face for t in pending]), strict=True):
            t.liveness.add(r)

    def _announce(self, d: DoorDecision, frame: Frame, faces: list[Face]) -> None:
        self.recent.append(d)
        if self.metrics is not None:
            self.metrics.decisions.labels(d.door, d.kind).inc()
            self.metrics.decision_latency.labels(d.door).observe(d.latency_s)
        # The decided face's quality too: "why not recognised" shows it beside the score.
        decided = next((f for f in faces if f.box == d.box), None)
        details = {**d.details(), **({"quality": decided.quality.to_dict()} if decided else {})}
        if self.bus is not None:
            # The door first; the snapshot is made on the bus's writer thread (redacting takes a
            # few hundred milliseconds of CPU the camera needs for its next frames).
            self.bus.alert(self.camera.name, d.kind, d.person_id, details)
            self.bus.publish(
                self.camera.name,
                d.kind,
                d.person_id,
                details,
                self._snapshot(d, frame, faces),
                urgent=False,
                then=self._account(d),
                subjects=d.subjects,
            )
        else:
            self._account(d)(None)
        if self.on_decision is not None:
            self.on_decision(d)

    def _account(self, d: DoorDecision) -> Callable[[Event | None], None]:
        """The audit entry and last-seen time of a decision, written with its event (off the
        camera's thread when there is a bus)."""

        def write(_event: Event | None) -> None:
            try:
                self.gallery.audit.record(
                    f"camera:{self.camera.name}",
                    "door_decision",
                    None,
                    {"door": d.door, "decision": d.kind},
                    person=d.person_id,
                )
                if d.person_id is not None:
                    self.gallery.store.touch([d.person_id], d.at)
            except Exception as exc:  # the audit store shares the database; a decision still stands
                log.error("camera %s: decision not audited: %s", self.camera.name, exc)

        return write

    def _snapshot(self, d: DoorDecision, frame: Frame, faces: list[Face]) -> SnapshotMaker | None:
        """The decision's snapshot, to be made: the frame with the faces to blur blurred."""
        store = self.snapshots
        if store is None:
            return None
        boxes = [f.box for f in faces]

        def make() -> str:
            # Redacted at the size it is kept: the thorough pass then finds every face that
            # the stored picture could show recognisably, at a fraction of the full frame's cost.
            image, scale = _shrunk(frame.image, store.max_side)
            ours = [b.scaled(scale) for b in boxes]
            keep = d.box.scaled(scale)
            img = redact(image, keep, self._faces_to_blur(image, ours), self.redact_mode)
            return store.save(img, d.at)

        return make

    def _faces_to_blur(self, image: np.ndarray, boxes: list[Box]) -> list[Box]:
        """The frame's faces for redaction: the camera's detections, plus what a second, more
        sensitive pass finds (small and turned faces the camera's settings skip)."""
        if self._redaction_detector is None:
            return boxes
        return boxes + [d.box for d in more_faces(self._redaction_detector, image, boxes)]

    # --- a whole source ----------------------------------------------------------------------

    def _on_state(self, state: SourceState, reason: str) -> None:
        name = self.camera.name
        if self.metrics is not None:
            self.metrics.up.labels(name).set(1 if state == SourceState.STREAMING else 0)
            if state == SourceState.RECONNECTING:
                self.metrics.reconnects.labels(name).inc()
        # Events for transitions only: a camera retrying every 30 s for a day is one event.
        if state.value != self._state and self.bus is not None:
            self.bus.publish(
                name, "camera_state", None, {"state": state.value, "reason": hide_credentials(reason)}
            )
        self._state = state.value

    def source(self, *, live: bool | None = None, max_reconnects: int | None = None) -> VideoSource:
        return VideoSource(
            self.camera.source,
            fps=self.camera.fps,
            live=live,
            on_state=self._on_state,
            reconnect_max_s=self.camera.reconnect_max_s,
            max_reconnects=max_reconnects,
            max_lag_s=self.camera.max_lag_s,
        )

    def run(self, source: VideoSource | None = None, stop: threading.Event | None = None) -> RunStats:
        source = source or self.source()
        stats = RunStats()
        started = time.perf_counter()
        skipped = 0
        try:
            frames = source.frames()
            ahead: Iterator[tuple[Frame, list[Detection] | None]] = (
                ((f, None) for f in frames)
                if source.live
                else _ahead(frames, DECODE_AHEAD, self._detect_ahead)
            )
            for frame, found in ahead:
                if stop is not None and stop.is_set():
                    break
                clock = frame.captured if source.live else frame.media_s
                try:
                    result = self._process(frame, clock, found, source.live)
                except Exception:  # one bad frame must not end the camera
                    log.exception("camera %s: frame %d failed", self.camera.name, frame.index)
                    continue
                stats.frames += 1
                stats.decisions.extend(result.decisions)
                if self.metrics is not None and source.dropped > skipped:
                    self.metrics.skipped.labels(self.camera.name).inc(source.dropped - skipped)
                    skipped = source.dropped
        finally:
            source.stop()
        stats.seconds = time.perf_counter() - started
        stats.decoded, stats.skipped, stats.reconnects = source.decoded, source.dropped, source.reconnects
        return stats
