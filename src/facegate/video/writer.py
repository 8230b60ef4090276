"""Annotated video: each processed frame with its faces boxed and labelled by their track's identity."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

from facegate.errors import ConfigError
from facegate.video.pipeline import FrameResult
from facegate.vision.annotate import MATCH, NEUTRAL, UNKNOWN, annotate

DENIED = (243, 156, 18)


def labels_for(result: FrameResult) -> tuple[list[str | None], list[tuple[int, int, int]]]:
    labels: list[str | None] = []
    colours = []
    for face in result.faces:
        track = result.tracks.get(id(face))
        ident = track.identity if track is not None else None
        if ident is None:
            labels.append(None)
            colours.append(NEUTRAL)
        elif ident.person is not None:
            denied = track is not None and any(e.startswith("denied") for e in track.emitted)
            labels.append(f"{ident.person.name} {ident.person.score:.2f}")
            colours.append(DENIED if denied else MATCH)
        else:
            labels.append("unknown")
            colours.append(UNKNOWN)
    return labels, colours


class Mp4Writer:
    """Frames (RGB arrays) to an MP4: H.264, or MPEG-4 where no H.264 encoder is available.

    The first frame sets the size; a later frame of another size (a camera that came back at
    another resolution) is scaled to it.
    """

    def __init__(self, path: Path, fps: float) -> None:
        import av

        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.container: Any = av.open(str(path), mode="w")
        except (OSError, av.FFmpegError) as exc:
            raise ConfigError(f"cannot write the video {path}: {exc}") from exc
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream: Any = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.pix_fmt = "yuv420p"
        self.stream: Any = stream
        self._opened = False
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        import av

        h, w = image.shape[:2]
        image = image[: h - h % 2, : w - w % 2]  # yuv420p needs even sizes
        if not self._opened:
            self.stream.width, self.stream.height = image.shape[1], image.shape[0]
            self._opened = True
        elif (image.shape[1], image.shape[0]) != (self.stream.width, self.stream.height):
            size = (self.stream.width, self.stream.height)
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._opened:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AnnotatedVideo(Mp4Writer):
    """Each processed frame with its faces boxed and labelled by their track's identity."""

    def write_result(self, result: FrameResult) -> None:
        labels, colours = labels_for(result)
        self.write(np.asarray(annotate(result.frame.image, result.faces, labels, colours)))
