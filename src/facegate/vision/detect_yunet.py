"""YuNet (libfacedetection): a millisecond CNN face detector with 5 landmarks, on ONNX Runtime.

The network sees a BGR 0-255 image padded to a multiple of 32 and answers, for every cell of
three grids (strides 8, 16, 32), a class and an objectness score, a box (centre offset and log
size in stride units) and five landmarks. numpy decodes them, keeps the boxes above
`min_score` and removes duplicates by non-maximum suppression.

Large frames are detected on a copy no larger than `max_side`; with `tiles`, the frame is also
cut into overlapping full-resolution tiles of that size, so faces too small for the copy are
still found (the cost grows with the number of tiles). With `upsample`, a second pass on the
copy enlarged 2**upsample times finds faces under ~12 px (redaction's thorough pass).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import cv2
import numpy as np

from facegate.vision.models import YUNET, verified_path
from facegate.vision.onnx_runtime import session
from facegate.vision.types import Box, Detection

STRIDES = (8, 16, 32)
TILE_OVERLAP = 0.2  # of the tile side: a face on a seam is whole in one of the two tiles


def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    r, c = np.divmod(np.arange(rows * cols, dtype=np.float32), np.float32(cols))
    return c, r


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices of the boxes (x1, y1, x2, y2) kept by greedy non-maximum suppression."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None
        )
        h = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None
        )
        inter = w * h
        union = areas[i] + areas[rest] - inter
        order = rest[inter <= iou * np.maximum(union, 1e-6)]
    return keep


def decode(
    outputs: dict[str, np.ndarray], height: int, width: int, min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (n, 4: x1, y1, x2, y2), scores (n,) and landmarks (n, 5, 2) of the padded input."""
    boxes, scores, marks = [], [], []
    for s in STRIDES:
        rows, cols = height // s, width // s
        cls = np.clip(outputs[f"cls_{s}"][0, :, 0], 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{s}"][0, :, 0], 0.0, 1.0)
        score = np.sqrt(cls * obj)
        idx = np.nonzero(score >= min_score)[0]
        if idx.size == 0:
            continue
        cx, cy = _grid(rows, cols)
        cx, cy = cx[idx], cy[idx]
        bb = outputs[f"bbox_{s}"][0, idx]
        kp = outputs[f"kps_{s}"][0, idx].reshape(-1, 5, 2)
        ctr_x, ctr_y = (cx + bb[:, 0]) * s, (cy + bb[:, 1]) * s
        w, h = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
        boxes.append(np.stack([ctr_x - w / 2, ctr_y - h / 2, ctr_x + w / 2, ctr_y + h / 2], axis=1))
        scores.append(score[idx])
        marks.append(np.stack([(kp[..., 0] + cx[:, None]) * s, (kp[..., 1] + cy[:, None]) * s], axis=2))
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(marks)


class YuNetDetector:
    """YuNet on ONNX Runtime; each detection carries YuNet's five landmarks (image pixels).

    The landmarks are, in this order: right eye, left eye, nose tip, right and left mouth
    corner (the person's right and left).
    """

    name = "yunet"

    def __init__(
        self,
        *,
        max_side: int = 1600,
        min_score: float = 0.6,
        nms_iou: float = 0.3,
        upsample: int = 0,
        tiles: bool = False,
        provider: str = "auto",
        threads: int = 0,
        model_path: Path | None = None,
    ) -> None:
        self.max_side = max_side
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.upsample = upsample
        self.tiles = tiles
        self._session = session(verified_path(YUNET, model_path), provider, threads)
        self._lock = threading.Lock()  # one run at a time per session keeps threads predictable

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        ph, pw = math.ceil(h / 32) * 32, math.ceil(w / 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = rgb[..., ::-1].transpose(2, 0, 1)  # the network wants BGR planes
        with self._lock:
            names = [o.name for o in self._session.get_outputs()]
            values = self._session.run(names, {"input": blob})
        return decode(dict(zip(names, values, strict=True)), ph, pw, self.min_score)

    def _pass(
        self, rgb: np.ndarray, scale: float, dx: int = 0, dy: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect on `rgb` resized by `scale`; results in the coordinates of the whole image.

        Resized first, then turned to BGR: the channels are resized independently, so this is
        the same input as converting first, without a copy of the whole frame (at 1080p the
        copy cost more than the resize)."""
        if scale != 1.0:
            h, w = rgb.shape[:2]
            rgb = resized(rgb, (max(round(w * scale), 1), max(round(h * scale), 1)))
        boxes, scores, marks = self._run(rgb)
        boxes = boxes / scale + np.array([dx, dy, dx, dy], np.float32)
        marks = marks / scale + np.array([dx, dy], np.float32)
        return boxes, scores, marks

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        longest = max(h, w)
        scale = min(self.max_side / longest, 1.0)
        found = [self._pass(image, scale)]
        if self.upsample:  # a second, enlarged pass for the smallest faces; the first keeps large ones
            found.append(self._pass(image, scale * 2**self.upsample))
        if self.tiles and longest > self.max_side:
            side = self.max_side
            step = max(int(side * (1 - TILE_OVERLAP)), 32)
            for y in _starts(h, side, step):
                for x in _starts(w, side, step):
                    found.append(self._pass(image[y : y + side, x : x + side], 1.0, x, y))
        boxes = np.concatenate([f[0] for f in found])
        scores = np.concatenate([f[1] for f in found])
        marks = np.concatenate([f[2] for f in found])
        out = []
        for i in nms(boxes, scores, self.nms_iou):
            x1, y1, x2, y2 = boxes[i]
            box = Box(round(x1), round(y1), round(x2), round(y2))
            if box.width > 0 and box.height > 0:
                out.append(Detection(box, float(scores[i]), marks[i].astype(np.float32)))
        return out


def resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` at `size` (width, height). Shrunk by exact halvings (area averaging, which
    OpenCV does fast for a factor of 2) and then bilinearly by the factor under 2 left: at
    1080p to 640 px that is 0.7 ms instead of 2.6 for one area resize, and no aliasing."""
    w, h = size
    if w >= image.shape[1]:
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def _starts(length: int, side: int, step: int) -> list[int]:
    """Tile origins covering [0, length) with tiles of `side`, the last one flush with the end."""
    if length <= side:
        return [0]
    starts = list(range(0, length - side, step))
    starts.append(length - side)
    return starts
