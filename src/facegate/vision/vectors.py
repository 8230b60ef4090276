"""Embedding vectors: L2 normalisation, shared by every embedder (no model import needed)."""

from __future__ import annotations

import numpy as np


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Each row (last axis) scaled to unit length, as float32; an all-zero row stays zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return out
