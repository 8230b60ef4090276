"""Flip fusion: each face is embedded with its left-right mirror image and the two averaged.

A face and its mirror are the same person; the network sees each a little differently, and
their average is a steadier descriptor (measured on LFW: 10-fold accuracy 98.73% -> 99.10%,
TAR at FMR 1e-4 76.4% -> 81.8%, docs/accuracy.md) at twice the network passes. The fused vectors
are a different embedding space from the inner embedder's: scores shift, so they have their own
calibration table and cohort, and templates made without fusion are re-embedded from their
kept face chips (`facegate people reembed`).
"""

from __future__ import annotations

import numpy as np

from facegate.vision.protocols import Embedder
from facegate.vision.vectors import l2_normalise

SUFFIX = "_flip"


def fused_space(space: str) -> str:
    return space + SUFFIX


class FlipFused:
    """An `Embedder` that averages the inner embedder's vectors of each chip and its mirror."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.space = fused_space(inner.space)
        self.dim = inner.dim

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        n = len(chips)
        # An input made of several models' crops (score fusion) knows how it is mirrored.
        mirror = getattr(self.inner, "mirror", None) or (lambda c: c[:, ::-1])
        # One batch for both halves: the ONNX backend runs a batch faster than two.
        both = self.inner.embed(list(chips) + [np.ascontiguousarray(mirror(c)) for c in chips])
        return l2_normalise(both[:n] + both[n:])
