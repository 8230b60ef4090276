"""dlib's MMOD CNN face detector on ONNX Runtime: dlib's pyramid, network and decoding.

The network runs as a converted ONNX graph; around it, numpy reproduces what dlib does on
the CPU: the tiled image pyramid (pyramid_down<6>, each level a bilinear resize of the one
before, packed into one tensor), the mapping of output cells back to image rectangles, and
dlib's non-maximum suppression.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.vision.detect_dlib import _downscale
from facegate.vision.models import ONNX_MMOD, converted_path
from facegate.vision.onnx_runtime import session
from facegate.vision.types import Box, Detection

MEAN = np.array([122.782, 117.001, 104.298], np.float32)  # from the model file's input layer
WINDOW = 80  # the detector window, pixels
NMS_IOU = 0.3382761351109955  # the model's overlaps_nms threshold
PADDING, OUTER_PADDING = 10, 11

Rect = tuple[int, int, int, int]  # left, top, right, bottom (inclusive, dlib's convention)


def pyramid_rects(nr: int, nc: int) -> tuple[list[Rect], int, int]:
    """Where each pyramid_down<6> level goes in the tiled tensor, and the tensor's size."""
    levels = [(nr, nc)]
    h, w = nr, nc
    while True:
        h, w = math.floor(5 / 6 * h), math.floor(5 / 6 * w)
        if h * w == 0 or h < 5:
            break
        levels.append((h, w))
    total = sum(h + PADDING for h, _ in levels) - 2 * PADDING
    height, prev_w = 0, 0
    for h, w in levels:  # the left column: levels stack down until the rest fit beside them
        if w <= nc - prev_w - PADDING and (height - nr) * 2 >= total - nr:
            break
        height += h + PADDING
        prev_w = w
    height -= PADDING
    rects: list[Rect] = []
    y = OUTER_PADDING
    i = 0
    while y < height + OUTER_PADDING and i < len(levels):
        h, w = levels[i]
        rects.append((OUTER_PADDING, y, OUTER_PADDING + w - 1, y + h - 1))
        y += h + PADDING
        i += 1
    y -= PADDING
    first = rects[0]
    while i < len(levels):  # the rest: right-aligned, stacked upwards from the bottom
        h, w = levels[i]
        right, bottom = OUTER_PADDING + nc - 1, y - 1
        rect = (right - w + 1, bottom - h + 1, right, bottom)
        if rect[0] <= first[2] and rect[2] >= first[0] and rect[1] <= first[3] and rect[3] >= first[1]:
            break
        rects.append(rect)
        y -= h + PADDING
        i += 1
    return rects, height + 2 * OUTER_PADDING, nc + 2 * OUTER_PADDING


def _resize_bilinear(src: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """dlib's resize of float planes: bilinear with corners aligned."""
    _, ih, iw = src.shape
    y = np.arange(oh) * ((ih - 1) / max(oh - 1, 1))
    x = np.arange(ow) * ((iw - 1) / max(ow - 1, 1))
    top, left = np.floor(y).astype(int), np.floor(x).astype(int)
    bottom, right = np.minimum(top + 1, ih - 1), np.minimum(left + 1, iw - 1)
    fy = (y - top).astype(np.float32)[:, None]
    fx = (x - left).astype(np.float32)[None, :]
    rows_t, rows_b = src[:, top], src[:, bottom]
    upper = (1 - fx) * rows_t[:, :, left] + fx * rows_t[:, :, right]
    lower = (1 - fx) * rows_b[:, :, left] + fx * rows_b[:, :, right]
    out: np.ndarray = ((1 - fy) * upper + fy * lower).astype(np.float32)
    return out


def pyramid_tensor(image: np.ndarray) -> tuple[np.ndarray, list[Rect]]:
    nr, nc = image.shape[:2]
    rects, tr, tc = pyramid_rects(nr, nc)
    t = np.zeros((3, tr, tc), np.float32)  # zero is the mean colour once normalised
    l0, t0, r0, b0 = rects[0]
    t[:, t0 : b0 + 1, l0 : r0 + 1] = ((image.astype(np.float32) - MEAN) / 256.0).transpose(2, 0, 1)
    for prev, cur in itertools.pairwise(rects):
        src = t[:, prev[1] : prev[3] + 1, prev[0] : prev[2] + 1]
        t[:, cur[1] : cur[3] + 1, cur[0] : cur[2] + 1] = _resize_bilinear(
            src, cur[3] - cur[1] + 1, cur[2] - cur[0] + 1
        )
    return t[None], rects


def _lround(v: float) -> int:
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def _level_of(pt: tuple[int, int], rects: list[Rect]) -> int:
    """The pyramid level holding a point, else the nearest one (dlib's nearest_rect)."""
    best, best_d = 0, math.inf
    for i, (left, t, r, b) in enumerate(rects):
        if left <= pt[0] <= r and t <= pt[1] <= b:
            return i
        d = math.hypot(min(max(pt[0], left), r) - pt[0], min(max(pt[1], t), b) - pt[1])
        if d < best_d:
            best, best_d = i, d
    return best


def _area(r: Rect) -> int:
    return max(0, r[2] - r[0] + 1) * max(0, r[3] - r[1] + 1)


def _overlaps(a: Rect, b: Rect) -> bool:
    """dlib's test_box_overlap: intersection over the *bounding box* of both, not the union."""
    inter = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    inner = _area(inter) if inter[0] <= inter[2] and inter[1] <= inter[3] else 0
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > NMS_IOU or inner / _area(a) > 1.0 or inner / _area(b) > 1.0


@dataclass(frozen=True)
class _Hit:
    score: float
    rect: Rect


def decode(scores: np.ndarray, rects: list[Rect], threshold: float = 0.0) -> list[_Hit]:
    """Output cells above `threshold` to image rectangles, then dlib's NMS."""
    hits = []
    ys, xs = np.nonzero(scores > threshold)
    for r, c in zip(ys.tolist(), xs.tolist(), strict=True):
        # Through 3 stride-2 5x5 convs (no padding) and 4 padded stride-1 convs: p*8 + 14.
        px, py = 8.0 * c + 14.0, 8.0 * r + 14.0
        half = (WINDOW - 1) / 2
        box = [px - half, py - half, px + half, py + half]
        level = _level_of((math.floor(px + 0.5), math.floor(py + 0.5)), rects)
        ox, oy = rects[level][0], rects[level][1]
        box = [box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy]
        for _ in range(level):
            box = [v * 1.2 + 0.3 for v in box]  # pyramid_down<6>::point_up
        rect = (_lround(box[0]), _lround(box[1]), _lround(box[2]), _lround(box[3]))
        hits.append(_Hit(float(scores[r, c]), rect))
    hits.sort(key=lambda h: -h.score)
    kept: list[_Hit] = []
    for h in hits:
        if not any(_overlaps(k.rect, h.rect) for k in kept):
            kept.append(h)
    return kept


class OnnxMmodDetector:
    """The MMOD CNN detector, several times faster than dlib's own CPU code."""

    name = "cnn"

    def __init__(
        self,
        models_dir: Path,
        upsample: int = 0,
        max_side: int = 1600,
        min_score: float = 0.0,
        provider: str = "auto",
        threads: int = 0,
    ) -> None:
        self.upsample = upsample
        self.max_side = max_side
        self.min_score = min_score
        self._session = session(converted_path(ONNX_MMOD, models_dir), provider, threads)
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, factor = _downscale(image, self.max_side)
        for _ in range(self.upsample):
            small = pyramid_up(small)
        tensor, rects = pyramid_tensor(small)
        with self._lock:
            scores = self._session.run(["scores"], {"pyramid": tensor})[0][0, 0]
        found = []
        for hit in decode(scores, rects, self.min_score):
            x0, y0, x1, y1 = (float(v) for v in hit.rect)
            for _ in range(self.upsample):  # pyramid_down<2>::point_down on both corners
                x0, y0, x1, y1 = x0 / 2 - 1.25, y0 / 2 - 0.75, x1 / 2 - 1.25, y1 / 2 - 0.75
            box = Box(_lround(x0), _lround(y0), _lround(x1) + 1, _lround(y1) + 1)
            found.append(Detection(box.scaled(factor), hit.score))
        return found


def pyramid_up(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_up with pyramid_down<2>: (2h+1) x (2w+2), bilinear, corners aligned."""
    h, w = image.shape[:2]
    planes = _resize_bilinear(image.transpose(2, 0, 1).astype(np.float32), 2 * h + 1, 2 * w + 2)
    out: np.ndarray = np.clip(np.floor(planes + 0.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(out)
