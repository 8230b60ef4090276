"""Video sources: files, GIFs, RTSP and HTTP streams, webcams; newest frame first, reconnecting.

A live source is read by its own thread that keeps only the newest decoded frame, so a slow
consumer skips frames instead of falling behind (latency never grows); with `max_lag_s`, frames
wait up to that long instead, so a short burst of work (many new faces at once) costs latency,
not frames, and only a longer one drops the oldest. When the stream dies
it reconnects with exponential backoff and reports each state change. A file is read in
order, sampled at the wanted rate by its timestamps, so a run over a file is repeatable.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facegate.credentials import hide_credentials
from facegate.errors import SourceUnavailable

if TYPE_CHECKING:
    import av
    import av.container

log = logging.getLogger(__name__)

# Codecs whose every frame decodes alone: a live source skips the decoding of dropped frames.
INTRA_ONLY = frozenset({"mjpeg"})
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


class SourceState(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # RGB uint8, H x W x 3
    index: int  # frames decoded from the source so far, skipped ones included
    media_s: float  # position in the stream, seconds
    captured: float  # time.monotonic() when it was decoded


StateListener = Callable[[SourceState, str], None]
Decoded = tuple[Callable[[], np.ndarray], float]
Waiting = tuple[Callable[[], np.ndarray], int, float, float]  # decode, index, media time, captured


def is_webcam(source: str) -> bool:
    return source.isdigit() or source.startswith("/dev/video")


def is_live(source: str) -> bool:
    return source.lower().startswith(LIVE_SCHEMES) or is_webcam(source)


def _pyav_frames(source: str, open_timeout: float, read_timeout: float, live: bool) -> Iterator[Decoded]:
    import av

    options = {"rtsp_transport": "tcp"} if source.lower().startswith(("rtsp://", "rtsps://")) else {}
    shown = hide_credentials(source)
    try:
        container = av.open(source, options=options, timeout=(open_timeout, read_timeout))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SourceUnavailable(f"cannot open {shown}: {hide_credentials(str(exc))}", source=shown) from exc
    try:
        if not container.streams.video:
            raise SourceUnavailable(f"{shown} has no video stream", source=shown)
        stream = container.streams.video[0]
        # A live camera decodes with slice threads only: frame threads hold a frame per thread
        # before the first comes out (at 10 frames/s and 3 threads, 200 ms later at the door)
        # and let the held ones out at once at a reconnect, where all but the newest are dropped.
        stream.thread_type = "SLICE" if live else "AUTO"
        if live and stream.codec_context.name in INTRA_ONLY:
            yield from _packets(container, stream)
            return
        start: float | None = None
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else 0.0
            start = t if start is None else start
            # Bound now: the frame is converted only if the consumer takes it.
            yield partial(frame.to_ndarray, format="rgb24"), float(t - start)
    except (av.FFmpegError, OSError) as exc:
        raise SourceUnavailable(
            f"{shown}: the stream failed: {hide_credentials(str(exc))}", source=shown
        ) from exc
    finally:
        container.close()


def _packets(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[Decoded]:
    """An intra-only stream's frames as undecoded packets, each decoded only if the consumer
    takes it: a camera that falls behind drops the frames it skips before decoding them (a
    1080p JPEG costs ~4 ms), where every frame of an inter-coded stream must be decoded."""
    codec = stream.codec_context
    start: float | None = None
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0
        start = t if start is None else start
        yield partial(_decoded, codec, packet), t - start


def _decoded(codec: av.VideoCodecContext, packet: av.Packet[av.VideoStream]) -> np.ndarray:
    """One packet of an intra-only stream as an RGB frame (on the consumer's thread, the only
    one that uses the decoder)."""
    import av

    frames = [f for f in codec.decode(packet) if isinstance(f, av.VideoFrame)]
    if not frames:
        raise ValueError("the frame could not be decoded")
    return frames[-1].to_ndarray(format="rgb24")


def _webcam_frames(source: str) -> Iterator[Decoded]:
    import cv2

    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise SourceUnavailable(f"cannot open webcam {source}", source=source)
    started = time.monotonic()
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                raise SourceUnavailable(f"webcam {source} stopped delivering frames", source=source)
            yield partial(cv2.cvtColor, bgr, cv2.COLOR_BGR2RGB), time.monotonic() - started
    finally:
        cap.release()


def decode(source: str, open_timeout: float = 10.0, read_timeout: float = 10.0) -> Iterator[Decoded]:
    """Frames of a source in order, each as (convert-to-RGB, seconds from the start)."""
    if is_webcam(source):
        return _webcam_frames(source)
    if not is_live(source) and not Path(source).is_file():
        raise SourceUnavailable(f"no such video file: {source}", source=source)
    return _pyav_frames(source, open_timeout, read_timeout, is_live(source))


class VideoSource:
    """Frames to process from one source, at most `fps` per second (None: every frame).

    >>> for frame in VideoSource("rtsp://camera/stream", fps=5).frames():
    ...     handle(frame.image)
    """

    def __init__(
        self,
        source: str,
        *,
        fps: float | None = None,
        live: bool | None = None,
        on_state: StateListener | None = None,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        max_reconnects: int | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        max_lag_s: float = 0.0,
    ) -> None:
        self.source = source
        self.shown = hide_credentials(source)  # what logs, events and errors may say
        self.fps = fps
        self.live = is_live(source) if live is None else live
        self.on_state = on_state
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.max_reconnects = max_reconnects
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.max_lag_s = max_lag_s
        # Frames waiting at most: `max_lag_s` at three times the sampled rate (30 frames/s when
        # every frame is wanted), so a camera sending far faster than it is sampled cannot fill
        # memory with waiting frames (a decoded 1080p frame is 3 MB).
        self._max_waiting = 2 + math.ceil(max_lag_s * 3 * (fps or 30))
        self.state = SourceState.CONNECTING
        self._announced = False
        self.decoded = 0
        self.dropped = 0  # decoded but never processed: newer frames replaced them
        self.reconnects = 0
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._pending: deque[Waiting] = deque()  # live frames waiting, oldest first
        self._reader: threading.Thread | None = None

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _set_state(self, state: SourceState, reason: str = "") -> None:
        if self._announced and state == self.state and state != SourceState.RECONNECTING:
            return
        self._announced = True
        self.state = state
        reason = hide_credentials(reason)
        log.info("source %s: %s %s", self.shown, state.value, reason)
        if self.on_state is not None:
            try:
                self.on_state(state, reason)
            except Exception:  # a listener's bug must not kill the reader
                log.exception("source state listener failed")

    def frames(self) -> Iterator[Frame]:
        return self._live_frames() if self.live else self._file_frames()

    # --- files: in order, sampled by timestamp ---------------------------------------------

    def _file_frames(self) -> Iterator[Frame]:
        self._set_state(SourceState.CONNECTING)
        frames = decode(self.source, self.open_timeout, self.read_timeout)
        due = 0.0
        step = 1.0 / self.fps if self.fps else 0.0
        try:
            for to_rgb, t in frames:
                if self._stop.is_set():
                    break
                if self.decoded == 0:
                    self._set_state(SourceState.STREAMING)
                self.decoded += 1
                if t + 1e-6 < due:
                    self.dropped += 1
                    continue
                due = max(due + step, t + step / 2) if step else 0.0
                yield Frame(to_rgb(), self.decoded - 1, t, time.monotonic())
        finally:
            self._set_state(SourceState.ENDED)

    # --- live: a reader thread keeps the newest frame --------------------------------------

    def _read_loop(self) -> None:
        backoff = self.reconnect_initial_s
        first = True
        while not self._stop.is_set():
            if first:
                self._set_state(SourceState.CONNECTING)
            first = False
            reason = "the stream ended"
            got = 0
            try:
                for to_rgb, t in decode(self.source, self.open_timeout, self.read_timeout):
                    if self._stop.is_set():
                        break
                    if got == 0:
                        self._set_state(SourceState.STREAMING)
                        backoff = self.reconnect_initial_s
                    got += 1
                    with self._cond:
                        now = time.monotonic()
                        self._pending.append((to_rgb, self.decoded, t, now))
                        self.decoded += 1
                        self._trim(now)
                        self._cond.notify()
            except SourceUnavailable as exc:
                reason = exc.message
            except Exception as exc:  # keep the camera alive whatever the decoder throws
                # Not log.exception: the traceback would repeat the URL with its password.
                reason = hide_credentials(repr(exc))
                log.error("source %s: unexpected decoder error: %s", self.shown, reason)
            if self._stop.is_set():
                break
            if self.max_reconnects is not None and self.reconnects >= self.max_reconnects:
                self._set_state(SourceState.ENDED, reason)
                break
            self.reconnects += 1
            self._set_state(SourceState.RECONNECTING, reason)
            # Jitter: many cameras behind one dead switch must not reconnect in lockstep.
            self._stop.wait(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.reconnect_max_s)
        with self._cond:
            self._cond.notify_all()

    def _trim(self, now: float) -> None:
        """Drop waiting frames older than `max_lag_s` (at 0, all but the newest) or past
        `_max_waiting`; the newest always stays. Called with the condition held."""
        while len(self._pending) > 1 and (
            now - self._pending[0][3] >= self.max_lag_s or len(self._pending) > self._max_waiting
        ):
            self._pending.popleft()
            self.dropped += 1

    def _next_due(self, due: float, ended: bool = False) -> Waiting | None:
        """The frame to process next, if one is due (the condition held): the oldest captured
        at or after `due`, or the newest once `due` has passed or the stream has ended; the
        frames before it are dropped."""
        now = time.monotonic()
        self._trim(now)
        if not self._pending:
            return None
        at = next((i for i, w in enumerate(self._pending) if w[3] >= due), None)
        if at is None and (now >= due or ended):
            at = len(self._pending) - 1
        if at is None:
            return None
        for _ in range(at):
            self._pending.popleft()  # sampled out at `fps`, or older than a frame due
            self.dropped += 1
        return self._pending.popleft()

    def _live_frames(self) -> Iterator[Frame]:
        self._reader = threading.Thread(target=self._read_loop, name=f"source:{self.shown}", daemon=True)
        self._reader.start()
        step = 1.0 / self.fps if self.fps else 0.0
        due = 0.0  # capture time from which the next frame is wanted (sampling at `fps`)
        try:
            while not self._stop.is_set():
                with self._cond:
                    taken = self._next_due(due, ended=not self._reader.is_alive())
                    while taken is None and not self._stop.is_set() and self._reader.is_alive():
                        # Nothing due yet: wait for a frame, or for `due` to pass.
                        wait = due - time.monotonic() if self._pending else 0.5
                        self._cond.wait(min(max(wait, 0.001), 0.5))
                        taken = self._next_due(due, ended=not self._reader.is_alive())
                    if taken is None:
                        break
                to_rgb, index, t, captured = taken
                # As a file is sampled: the next frame one step on, a late one not held against it.
                due = max(due + step, captured + step / 2) if step else 0.0
                try:
                    image = to_rgb()
                except Exception as exc:  # a frame that cannot be decoded is skipped, not fatal
                    log.warning(
                        "source %s: frame %d skipped: %s", self.shown, index, hide_credentials(str(exc))
                    )
                    continue
                yield Frame(image, index, t, captured)
        finally:
            self.stop()
            if self._reader is not None:
                self._reader.join(timeout=self.read_timeout + 1)
