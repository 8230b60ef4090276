"""Fit where dlib's HOG box lies relative to YuNet's five landmarks (the constants in align_dlib).

    python bench/fit_predictor_box.py [--n 400]

dlib's 5-point shape predictor was trained on HOG boxes. On LFW photos where both detectors
find the same face, this fits the HOG box's centre (from the eyes' midpoint, along and across
the eyes-to-mouth vector) and side (from the eyes-to-mouth length and the eye distance), and
prints the constants and the median errors.
"""

from __future__ import annotations

import argparse
import random

import numpy as np
from PIL import Image

from facegate.vision.detect_dlib import HogDetector
from facegate.vision.detect_yunet import YuNetDetector
from facegate.vision.geometry import iou

from common import require_lfw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    paths = sorted((require_lfw() / "images").rglob("*.jpg"))
    random.seed(2)
    paths = random.sample(paths, args.n)
    yunet, hog = YuNetDetector(threads=1), HogDetector(upsample=1)
    pts, hog_boxes = [], []
    for path in paths:
        image = np.asarray(Image.open(path).convert("RGB"))
        found = yunet.detect(image)
        for h in hog.detect(image):
            best = max(found, key=lambda d: iou(h.box, d.box), default=None)
            if best is None or best.points is None or iou(h.box, best.box) < 0.3:
                continue
            pts.append(best.points)
            b = h.box
            hog_boxes.append(((b.left + b.right) / 2, (b.top + b.bottom) / 2, b.width))
    p, hb = np.array(pts), np.array(hog_boxes)
    eyes = (p[:, 0] + p[:, 1]) / 2
    u = (p[:, 3] + p[:, 4]) / 2 - eyes
    length = np.linalg.norm(u, axis=1)
    down = u / length[:, None]
    across = np.stack([-down[:, 1], down[:, 0]], 1)
    d = hb[:, :2] - eyes
    along_k = float(np.mean(np.sum(d * down, 1) / length))
    across_k = float(np.mean(np.sum(d * across, 1) / length))
    eye_dist = np.linalg.norm(p[:, 0] - p[:, 1], axis=1)
    mouth_k, eyes_k = np.linalg.lstsq(np.stack([length, eye_dist], 1), hb[:, 2], rcond=None)[0]
    centre = eyes + length[:, None] * (along_k * down + across_k * across)
    side = mouth_k * length + eyes_k * eye_dist
    print(f"faces: {len(p)}")
    print(f"_ALONG, _ACROSS = {along_k:.4f}, {across_k:.4f}")
    print(f"_SIDE_MOUTH, _SIDE_EYES = {mouth_k:.4f}, {eyes_k:.4f}")
    centre_err = np.median(np.linalg.norm(centre - hb[:, :2], axis=1) / hb[:, 2])
    print(f"median centre error {centre_err:.3f} of the side")
    print(f"median size error {np.median(np.abs(side / hb[:, 2] - 1)):.3f}")


if __name__ == "__main__":
    main()
