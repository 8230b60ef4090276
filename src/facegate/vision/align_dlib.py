"""dlib's 5-point landmarks and its aligned 150x150 chips (the ResNet embedder's input)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import dlib
import numpy as np

from facegate.vision.models import DLIB_LANDMARKS_5, verified_path
from facegate.vision.types import Box, Detection

# Where dlib's HOG box lies relative to YuNet's landmarks, fitted on 423 LFW faces both found
# (bench/fit_predictor_box.py): its centre from the eyes' midpoint E along the eyes-to-mouth
# vector u (and across it), its side from |u| and the eye distance. The shape predictor was
# trained on HOG boxes; fed such a box it gives the landmarks, and so the chips, it gives on
# HOG's own boxes (median centre error 3% of the side, size error 6%).
_ALONG, _ACROSS = 0.4737, 0.0855
_SIDE_MOUTH, _SIDE_EYES = 1.8775, 0.5343


def predictor_box(points: np.ndarray) -> Box:
    """The box dlib's 5-point predictor expects, from YuNet's five landmarks."""
    eyes = (points[0] + points[1]) / 2.0
    u = (points[3] + points[4]) / 2.0 - eyes
    length = float(np.hypot(u[0], u[1]))
    if length < 1e-6:
        raise ValueError("degenerate landmarks")
    down = u / length
    across = np.array([-down[1], down[0]])
    centre = eyes + length * (_ALONG * down + _ACROSS * across)
    side = _SIDE_MOUTH * length + _SIDE_EYES * float(np.hypot(*(points[0] - points[1])))
    half = side / 2.0
    return Box(
        round(centre[0] - half), round(centre[1] - half), round(centre[0] + half), round(centre[1] + half)
    )


class DlibAligner:
    chip_size = 150
    padding = 0.25  # the padding dlib's ResNet was trained with

    def __init__(self, model_path: Path | None = None) -> None:
        self._predictor = dlib.shape_predictor(str(verified_path(DLIB_LANDMARKS_5, model_path)))
        self._lock = threading.Lock()

    def landmarks(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        b = detection.box
        if detection.points is not None:  # YuNet: its box is not HOG's; its landmarks place one
            with contextlib.suppress(ValueError):
                b = predictor_box(detection.points)
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
