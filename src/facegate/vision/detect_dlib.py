"""dlib's face detectors: HOG (fast, frontal) and MMOD CNN (slower, more robust to pose)."""

from __future__ import annotations

import threading
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from facegate.vision.models import DLIB_MMOD, verified_path
from facegate.vision.types import Box, Detection


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Return the image no larger than `max_side` and the factor that maps boxes back."""
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    small = Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
    return np.asarray(small), 1.0 / scale


def _box(rect: dlib.rectangle, factor: float) -> Box:
    return Box(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1).scaled(factor)


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector (face_recognition's default)."""

    name = "hog"

    def __init__(self, upsample: int = 1, max_side: int = 1600, min_score: float = 0.0) -> None:
        self.upsample = upsample
        self.max_side = max_side
        self.min_score = min_score
        self._detector = dlib.get_frontal_face_detector()
        self._lock = threading.Lock()  # dlib detectors keep scratch buffers: one call at a time

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, factor = _downscale(image, self.max_side)
        with self._lock:
            rects, scores, _ = self._detector.run(small, self.upsample, self.min_score)
        found = [Detection(_box(r, factor), float(s)) for r, s in zip(rects, scores, strict=True)]
        return sorted(found, key=lambda d: -d.score)


class MmodDetector:
    """dlib's max-margin CNN detector; about 10x slower than HOG on a CPU."""

    name = "cnn"

    def __init__(
        self, upsample: int = 1, max_side: int = 1600, min_score: float = 0.0, model_path: Path | None = None
    ) -> None:
        self.upsample = upsample
        self.max_side = max_side
        self.min_score = min_score
        self._detector = dlib.cnn_face_detection_model_v1(str(verified_path(DLIB_MMOD, model_path)))
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, factor = _downscale(image, self.max_side)
        with self._lock:
            found = self._detector(small, self.upsample)
        dets = [Detection(_box(d.rect, factor), float(d.confidence)) for d in found]
        return sorted((d for d in dets if d.score >= self.min_score), key=lambda d: -d.score)
