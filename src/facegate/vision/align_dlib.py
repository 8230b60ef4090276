"""dlib's 5-point landmarks and its aligned 150x150 chips (the ResNet embedder's input)."""

from __future__ import annotations

import threading
from pathlib import Path

import dlib
import numpy as np

from facegate.vision.models import DLIB_LANDMARKS_5, verified_path
from facegate.vision.types import Detection


class DlibAligner:
    chip_size = 150
    padding = 0.25  # the padding dlib's ResNet was trained with

    def __init__(self, model_path: Path | None = None) -> None:
        self._predictor = dlib.shape_predictor(str(verified_path(DLIB_LANDMARKS_5, model_path)))
        self._lock = threading.Lock()

    def landmarks(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        b = detection.box
        rect = dlib.rectangle(b.left, b.top, b.right - 1, b.bottom - 1)
        with self._lock:
            shape = self._predictor(image, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        pts = dlib.points([dlib.point(round(x), round(y)) for x, y in landmarks])
        xs, ys = landmarks[:, 0], landmarks[:, 1]
        rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        shape = dlib.full_object_detection(rect, pts)
        chip = dlib.get_face_chip(image, shape, size=self.chip_size, padding=self.padding)
        return np.asarray(chip, dtype=np.uint8)
