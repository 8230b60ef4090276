"""Per-face quality measures and the enrolment gate built on them.

Each measure is a short function of the aligned chip or the landmarks, so it is cheap and
testable; the gate compares them with configurable minimums and says which one failed.
"""

from __future__ import annotations

import numpy as np

from facegate.errors import FaceQualityTooLow
from facegate.vision.types import Box, Quality

# Variance of the Laplacian at which sharpness reads 0.5; chips of in-focus portraits score
# around 0.6-0.9, a 4-pixel Gaussian blur drops them below 0.1.
_SHARPNESS_HALF = 60.0


def luma(chip: np.ndarray) -> np.ndarray:
    rgb = chip.astype(np.float32)
    out: np.ndarray = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return out


def _centre(gray: np.ndarray) -> np.ndarray:
    # The inner part of the chip: the face itself, not the padding around it.
    h, w = gray.shape
    return gray[h // 4 : h - h // 4, w // 4 : w - w // 4]


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian on the face, squashed to [0, 1)."""
    g = _centre(luma(chip))
    lap = g[1:-1, 2:] + g[1:-1, :-2] + g[2:, 1:-1] + g[:-2, 1:-1] - 4.0 * g[1:-1, 1:-1]
    v = float(lap.var())
    return v / (v + _SHARPNESS_HALF)


def brightness(chip: np.ndarray) -> float:
    return float(_centre(luma(chip)).mean() / 255.0)


def frontal(landmarks: np.ndarray) -> float:
    """1 for a frontal face, falling to 0 as the head turns to profile.

    With dlib's 5 points (two per eye, one under the nose), a turned head moves the nose
    base along the eye line towards one eye: the offset from the eyes' midpoint, relative
    to half the distance between the eyes, is the yaw estimate.
    """
    eye_a = landmarks[0:2].mean(axis=0)
    eye_b = landmarks[2:4].mean(axis=0)
    nose = landmarks[4]
    axis = eye_b - eye_a
    dist = float(np.linalg.norm(axis))
    if dist < 1e-6:
        return 0.0
    offset = float(np.dot(nose - (eye_a + eye_b) / 2.0, axis / dist))
    return float(np.clip(1.0 - abs(offset) / (dist / 2.0), 0.0, 1.0))


def assess(box: Box, landmarks: np.ndarray, chip: np.ndarray) -> Quality:
    return Quality(
        size_px=box.size,
        sharpness=sharpness(chip),
        frontal=frontal(landmarks),
        brightness=brightness(chip),
    )


def quality_problems(
    q: Quality,
    *,
    min_face_px: int,
    min_sharpness: float,
    min_frontal: float,
    min_brightness: float,
    max_brightness: float,
) -> list[str]:
    """Reasons, in words, why a face is not good enough to enrol; empty if it is."""
    problems = []
    if q.size_px < min_face_px:
        problems.append(f"face is {q.size_px} px, smaller than the minimum of {min_face_px} px")
    if q.sharpness < min_sharpness:
        problems.append(f"face is blurred (sharpness {q.sharpness:.2f} < {min_sharpness:.2f})")
    if q.frontal < min_frontal:
        problems.append(f"face is turned away (frontal {q.frontal:.2f} < {min_frontal:.2f})")
    if q.brightness < min_brightness:
        problems.append(f"face is too dark (brightness {q.brightness:.2f} < {min_brightness:.2f})")
    if q.brightness > max_brightness:
        problems.append(f"face is overexposed (brightness {q.brightness:.2f} > {max_brightness:.2f})")
    return problems


def require_quality(q: Quality, source: str = "image", **minimums: float) -> None:
    problems = quality_problems(q, **minimums)  # type: ignore[arg-type]
    if problems:
        raise FaceQualityTooLow(f"{source}: " + "; ".join(problems), source=source, reasons=problems)
