"""Plain data that flows out of the vision layer: boxes, landmarks, quality, faces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """A face box in image pixels; `right`/`bottom` are exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def size(self) -> int:
        """The shorter side, the number quality rules use."""
        return min(self.width, self.height)

    def scaled(self, factor: float) -> Box:
        return Box(
            round(self.left * factor),
            round(self.top * factor),
            round(self.right * factor),
            round(self.bottom * factor),
        )

    def to_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "right": self.right, "bottom": self.bottom}


@dataclass(frozen=True)
class Detection:
    """A detector's face box; detectors that find landmarks (YuNet) also give their five points."""

    box: Box
    score: float
    # (5, 2) float32 image pixels: right eye, left eye, nose tip, right and left mouth corner.
    points: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Quality:
    """Per-face quality, each in [0, 1] except the size in pixels."""

    size_px: int
    sharpness: float
    frontal: float
    brightness: float

    def to_dict(self) -> dict[str, float]:
        return {
            "size_px": self.size_px,
            "sharpness": round(self.sharpness, 4),
            "frontal": round(self.frontal, 4),
            "brightness": round(self.brightness, 4),
        }


@dataclass
class Face:
    """One detected face, with everything the engine derived from it."""

    box: Box
    score: float
    landmarks: np.ndarray  # (5, 2) float32, image pixels: two points per eye, then the nose base
    chip: np.ndarray  # dlib-aligned 150x150x3 uint8 (quality, kept face chips, dlib's embedder)
    quality: Quality
    embedding: np.ndarray | None = field(default=None, repr=False)  # L2-normalised float32
    # The square, ear-to-ear box dlib's HOG would have given, placed from YuNet's landmarks (None
    # where the detector's own box is one). Quality and liveness rules were set on such boxes.
    square_box: Box | None = field(default=None, repr=False)
    # The embedder's own input where it aligns by five landmarks (SFace: 112x112 RGB), else None
    # and the embedder takes `chip`.
    crop: np.ndarray | None = field(default=None, repr=False)

    @property
    def rules_box(self) -> Box:
        """The box that size, border and context rules measure, whichever detector ran."""
        return self.square_box or self.box

    def to_dict(self) -> dict[str, object]:
        return {
            "box": self.box.to_dict(),
            "score": round(self.score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "quality": self.quality.to_dict(),
        }
