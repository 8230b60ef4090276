"""dlib's 128-D ResNet face embedder (99.38% on LFW), the reference backend."""

from __future__ import annotations

import threading
from pathlib import Path

import dlib
import numpy as np

from facegate.vision.models import DLIB_RESNET, DLIB_RESNET_SPACE, verified_path
from facegate.vision.vectors import l2_normalise

__all__ = ["DlibResNetEmbedder", "l2_normalise"]


class DlibResNetEmbedder:
    space = DLIB_RESNET_SPACE
    dim = 128

    def __init__(self, model_path: Path | None = None, jitters: int = 0) -> None:
        self._net = dlib.face_recognition_model_v1(str(verified_path(DLIB_RESNET, model_path)))
        self.jitters = jitters
        self._lock = threading.Lock()  # the network reuses its activation buffers

    def raw(self, chips: list[np.ndarray]) -> np.ndarray:
        """dlib's unnormalised descriptors, (n, 128)."""
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips], self.jitters)
        return np.array(out, dtype=np.float32)

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        return l2_normalise(self.raw(chips))
