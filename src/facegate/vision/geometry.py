"""Box arithmetic shared by tracking and redaction."""

from __future__ import annotations

from facegate.vision.types import Box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes: 1 for the same box, 0 for boxes apart."""
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / float(a.width * a.height + b.width * b.height - inter)


def clip(box: Box, width: int, height: int) -> Box:
    """The part of `box` inside a `width` x `height` image."""
    return Box(max(box.left, 0), max(box.top, 0), min(box.right, width), min(box.bottom, height))
