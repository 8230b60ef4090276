"""The alternative alignment measured against dlib's predictor: YuNet's landmarks mapped to dlib's.

dlib's chips are cut from its five points (eye corners, nose base). This aligner skips the
shape predictor: a linear map, fitted on LFW photos outside the verification pairs, turns
YuNet's five points (pupils, nose tip, mouth corners), in a frame where the pupils are at (0, 0)
and (1, 0), into dlib's five points, and dlib cuts the chip from those. Used only by
bench/lfw_embeddings.py --align landmarks.
"""

from __future__ import annotations

import csv
import random

import numpy as np
from PIL import Image

from facegate.vision.align_dlib import DlibAligner
from facegate.vision.types import Detection

from common import CACHE, require_lfw

FIT = CACHE / "landmark_map.npy"


def _frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The similarity (2x2, offset) taking the pupils to (0, 0) and (1, 0)."""
    origin = points[1]  # the left eye (image left)
    v = points[0] - origin
    d2 = float(v @ v)
    rot = np.array([[v[0], v[1]], [-v[1], v[0]]]) / d2
    return rot, origin


def _features(points: np.ndarray) -> np.ndarray:
    rot, origin = _frame(points)
    return np.append(((points - origin) @ rot.T).ravel(), 1.0)


def fit(n: int = 400) -> np.ndarray:
    from facegate.vision.detect_dlib import HogDetector
    from facegate.vision.detect_yunet import YuNetDetector
    from facegate.vision.geometry import iou

    lfw = require_lfw()
    with open(lfw / "pairs.csv") as fh:
        in_pairs = {x for r in csv.DictReader(fh) for x in (r["img1"], r["img2"])}
    images = lfw / "images"
    rest = sorted(str(p.relative_to(images)) for p in images.glob("*/*.jpg"))
    rest = [r for r in rest if r not in in_pairs]
    random.seed(3)
    yunet, hog, aligner = YuNetDetector(threads=1), HogDetector(upsample=1), DlibAligner()
    xs, ys = [], []
    for rel in random.sample(rest, n):
        img = np.asarray(Image.open(images / rel).convert("RGB"))
        found = yunet.detect(img)
        for h in hog.detect(img):
            y = max(found, key=lambda d: iou(h.box, d.box), default=None)
            if y is None or y.points is None or iou(h.box, y.box) < 0.3:
                continue
            rot, origin = _frame(y.points)
            xs.append(_features(y.points))
            ys.append(((aligner.landmarks(img, h) - origin) @ rot.T).ravel())
    coef = np.linalg.lstsq(np.array(xs), np.array(ys), rcond=None)[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(FIT, coef)
    return coef


class LandmarkAligner(DlibAligner):
    def __init__(self) -> None:
        super().__init__()
        self.coef = np.load(FIT) if FIT.exists() else fit()

    def landmarks(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        if detection.points is None:
            return super().landmarks(image, detection)
        rot, origin = _frame(detection.points)
        local = (_features(detection.points) @ self.coef).reshape(5, 2)
        return np.asarray(local @ np.linalg.inv(rot).T + origin, np.float32)
