"""Faces made unrecognisable: the blur, and the second detection pass that finds faces to blur.

Used for snapshots of door decisions and by the redaction tool; both err on the side of
blurring: a face either detector finds is blurred, with a margin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter

from facegate.vision.geometry import clip, iou
from facegate.vision.protocols import Detector
from facegate.vision.types import Box, Detection


def blur_boxes(image: Image.Image, boxes: Sequence[Box]) -> Image.Image:
    """Blur each box (grown by a margin, so hair and jaw go too) beyond recognition."""
    out = image.copy()
    for b in boxes:
        mx, my = round(b.width * 0.25), round(b.height * 0.3)
        region = (
            max(b.left - mx, 0),
            max(b.top - my, 0),
            min(b.right + mx, out.width),
            min(b.bottom + my, out.height),
        )
        if region[2] <= region[0] or region[3] <= region[1]:
            continue
        patch = out.crop(region)
        # Pixelate to at most 4x4 cells, then blur: a plain Gaussian blur of a large face can
        # leave it recognisable, and finer cells leave a blob YuNet still calls a face (13 of 48
        # LFW faces at 24-120 px with 12 px cells and a width/10 blur; none with these).
        cells = (max(1, min(patch.width // 12, 4)), max(1, min(patch.height // 12, 4)))
        small = patch.resize(cells, Image.Resampling.BILINEAR)
        patch = small.resize(patch.size, Image.Resampling.NEAREST).filter(
            ImageFilter.GaussianBlur(max(3, b.width // 4))
        )
        out.paste(patch, region[:2])
    return out


def more_faces(detector: Detector, image: np.ndarray, known: list[Box]) -> list[Detection]:
    """Faces `detector` finds that none of `known` covers, clipped to the image."""
    h, w = image.shape[:2]
    out = []
    for det in detector.detect(image):
        box = clip(det.box, w, h)
        if box.width > 0 and box.height > 0 and all(iou(box, k) < 0.3 for k in known):
            out.append(Detection(box, det.score))
    return out
