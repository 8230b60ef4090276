"""Five landmarks for a face whose detector gave none (dlib's HOG or MMOD boxes).

Five-point embedders need YuNet's landmarks (eyes, nose tip, mouth corners). For a box from
another detector, YuNet runs on the region around it; where it finds no face there, the eye
centres of dlib's five points place the template by the eyes alone.
"""

from __future__ import annotations

import numpy as np

from facegate.vision.align_five import ARCFACE_112, similarity
from facegate.vision.protocols import Detector
from facegate.vision.types import Detection

# The region YuNet looks at: the box grown by this share of its side on every edge.
MARGIN = 0.5


def points_near(yunet: Detector, image: np.ndarray, det: Detection) -> np.ndarray | None:
    """YuNet's five points for the face in `det`'s box, or None if YuNet finds none there."""
    h, w = image.shape[:2]
    b = det.box
    grow = int(MARGIN * max(b.width, b.height))
    x0, y0 = max(b.left - grow, 0), max(b.top - grow, 0)
    x1, y1 = min(b.right + grow, w), min(b.bottom + grow, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    cx, cy = (b.left + b.right) / 2, (b.top + b.bottom) / 2
    found = [d for d in yunet.detect(image[y0:y1, x0:x1]) if d.points is not None]
    if not found:
        return None

    def distance(d: Detection) -> float:
        x, y = (d.box.left + d.box.right) / 2 + x0, (d.box.top + d.box.bottom) / 2 + y0
        return float(np.hypot(x - cx, y - cy))

    best = min(found, key=distance)
    assert best.points is not None
    return np.asarray(best.points + np.array([x0, y0], np.float32), np.float32)


def points_from_eyes(dlib_marks: np.ndarray) -> np.ndarray:
    """Five points placed by the eye centres of dlib's five landmarks (two corners per eye):
    the template moved, turned and scaled so that its eyes land on them."""
    a, b = dlib_marks[0:2].mean(axis=0), dlib_marks[2:4].mean(axis=0)
    right, left = (a, b) if a[0] <= b[0] else (b, a)  # the person's right eye is on the image's left
    m = similarity(ARCFACE_112[:2], np.stack([right, left]))
    pts = ARCFACE_112 @ m[:, :2].T + m[:, 2]
    return np.asarray(pts, np.float32)
