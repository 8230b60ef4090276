"""Five-point alignment: a similarity fit of a face's five landmarks onto a model's template.

The landmarks are YuNet's (right eye, left eye, nose tip, right and left mouth corner, the
person's right and left); ArcFace-style embedders (SFace, most ONNX face models) were trained on
crops made this way: a least-squares rotation, uniform scale and shift (Umeyama), then a
bilinear warp with a black border.
"""

from __future__ import annotations

import cv2
import numpy as np

# The standard ArcFace template for 112x112 crops (insightface), in the order above.
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) that maps `src` points onto
    `dst` points with the least squared error (Umeyama 1991); two points or more."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError("similarity needs matching (n, 2) point sets, n >= 2")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var_s = float((s**2).sum() / len(src))
    if var_s < 1e-12:
        raise ValueError("degenerate landmarks: every point in one place")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is no similarity
        sign[1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = float((sig * sign).sum() / var_s)
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def warp(image: np.ndarray, points: np.ndarray, template: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (height, width, 3) crop of `image` with `points` moved onto `template` (`size` is
    width, height), bilinear, black outside the image."""
    m = similarity(points, template)
    crop = cv2.warpAffine(
        image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )
    return np.asarray(crop, dtype=np.uint8)
