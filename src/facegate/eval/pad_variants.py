"""Moved prints: edits of a presentation-attack set that imitate what an attacker does with the
paper (tilts, bends away, brings closer, turns it, holds it against a dark or busy background)
and what the camera does to it (blur, JPEG).

Every edit is applied to the bona fide frames as well, so that BPCER is measured on the same
edits: a defence that refuses every sheared frame, real faces included, is not a defence. The
edits are deterministic (seeded by the photo's name), so that a run can be repeated and cached.
Generated images are never written out: the set they come from stays where it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Edit = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if matrix.shape == (3, 3):
        return cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def shear(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet tilted sideways: a horizontal shear of 0.2-0.6 either way, about the centre."""
    h = image.shape[0]
    k = float(rng.uniform(0.2, 0.6) * rng.choice([-1, 1]))
    return _warp(image, np.array([[1, k, -k * h / 2], [0, 1, 0]], np.float64))


def perspective(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet turned about a vertical or horizontal axis: one edge 10-30% shorter."""
    h, w = image.shape[:2]
    d = float(rng.uniform(0.05, 0.15))
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    if rng.random() < 0.5:  # about the vertical axis: the left or the right edge shrinks
        side = [0, 3] if rng.random() < 0.5 else [1, 2]
        dst = src.copy()
        dst[side[0], 1] += d * h
        dst[side[1], 1] -= d * h
    else:  # about the horizontal axis: the top or the bottom edge shrinks
        side = [0, 1] if rng.random() < 0.5 else [3, 2]
        dst = src.copy()
        dst[side[0], 0] += d * w
        dst[side[1], 0] -= d * w
    return _warp(image, cv2.getPerspectiveTransform(src, dst))


def _scale(image: np.ndarray, s: float) -> np.ndarray:
    h, w = image.shape[:2]
    return _warp(image, cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, s))


def zoom_in(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet brought closer: 1.2-1.6x about the centre."""
    return _scale(image, float(rng.uniform(1.2, 1.6)))


def zoom_out(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet held further away: 0.6-0.85x, the room around it a flat grey."""
    h, w = image.shape[:2]
    s = float(rng.uniform(0.6, 0.85))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, s)
    grey = int(rng.integers(60, 160))
    out: np.ndarray = cv2.warpAffine(
        image, m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(grey, grey, grey)
    )
    return out


def rotate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet turned in its plane: 8-25 degrees either way."""
    h, w = image.shape[:2]
    angle = float(rng.uniform(8, 25) * rng.choice([-1, 1]))
    return _warp(image, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0))


def dark_band(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark band above the sheet (its top edge against a dark room): the top 15-30% dimmed."""
    out = image.copy()
    rows = int(image.shape[0] * rng.uniform(0.15, 0.3))
    out[:rows] = (out[:rows].astype(np.float32) * rng.uniform(0.05, 0.2)).astype(np.uint8)
    return out


def clutter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet, 0.65-0.85x, in front of a busy background of random coloured blocks."""
    h, w = image.shape[:2]
    blocks = rng.integers(0, 256, (max(h // 24, 2), max(w // 24, 2), 3), dtype=np.uint8)
    background = cv2.resize(blocks, (w, h), interpolation=cv2.INTER_NEAREST)
    s = float(rng.uniform(0.65, 0.85))
    sh, sw = int(h * s), int(w * s)
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    y, x = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    background[y : y + sh, x : x + sw] = small
    return background


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Motion or focus blur of the camera: Gaussian, sigma 1-2.5 px."""
    out: np.ndarray = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(1.0, 2.5)))
    return out


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's or a stream's compression: JPEG quality 25-50."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 51))])
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.asarray(decoded)


def _then(*edits: Edit) -> Edit:
    def both(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for e in edits:
            image = e(image, rng)
        return image

    return both


@dataclass(frozen=True)
class Variant:
    name: str
    edit: Edit

    def apply(self, image: np.ndarray, key: str) -> np.ndarray:
        """`image` edited; `key` (the photo's path) seeds the edit, so it repeats."""
        seed = int.from_bytes(hashlib.sha256(f"{self.name}\0{key}".encode()).digest()[:8], "little")
        return self.edit(image, np.random.default_rng(seed))


def _as_captured(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("captured", _as_captured),
        Variant("shear", shear),
        Variant("perspective", perspective),
        Variant("zoom_in", zoom_in),
        Variant("zoom_out", zoom_out),
        Variant("rotate", rotate),
        Variant("dark_band", dark_band),
        Variant("clutter", clutter),
        Variant("blur", blur),
        Variant("jpeg", jpeg),
        Variant("dark_band+shear", _then(dark_band, shear)),
        Variant("zoom_in+jpeg", _then(zoom_in, jpeg)),
        Variant("perspective+blur", _then(perspective, blur)),
        Variant("clutter+rotate+jpeg", _then(clutter, rotate, jpeg)),
    )
}


def variants_named(names: str) -> list[Variant]:
    """`all`, or a comma-separated list of the names in VARIANTS."""
    if names.strip() == "all":
        return list(VARIANTS.values())
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in VARIANTS]
    if unknown or not chosen:
        raise ValueError(f"unknown variant(s) {unknown or names!r}; known: all, {', '.join(VARIANTS)}")
    return [VARIANTS[n] for n in chosen]
