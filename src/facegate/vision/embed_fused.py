"""Score fusion of several five-point embedders: each face embedded by every model (each with its
own alignment), the vectors joined so that one cosine is the mean of the models' cosines.

With k unit vectors a_i joined as [a_1, ..., a_k] / sqrt(k), the dot product of two joined vectors
is (a_1.b_1 + ... + a_k.b_k) / k: the mean of the models' scores, and the joined vector is a unit
vector again. So the gallery, the index and every threshold rule work on it unchanged, in an
embedding space of its own ("sface_2021dec+reid0095").
"""

from __future__ import annotations

import math

import numpy as np

from facegate.vision.embed_five import FivePointEmbedder
from facegate.vision.vectors import l2_normalise

SEPARATOR = "+"


class ScoreFused:
    """An `Embedder` (and five-point cropper) whose cosine is the mean of its models' cosines."""

    def __init__(self, models: list[FivePointEmbedder]) -> None:
        if len(models) < 2:
            raise ValueError("score fusion needs two models or more")
        self.models = models
        self.space = SEPARATOR.join(m.space for m in models)
        self.dim = sum(m.dim for m in models)
        self._height = max(m.model.height for m in models)
        self._x = np.cumsum([0] + [m.model.width for m in models]).tolist()

    def crop(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Every model's own aligned crop, side by side on one canvas (what `embed` takes)."""
        canvas = np.zeros((self._height, self._x[-1], 3), np.uint8)
        for m, x in zip(self.models, self._x, strict=False):
            c = m.crop(image, points)
            canvas[: c.shape[0], x : x + c.shape[1]] = c
        return canvas

    def _parts(self, canvas: np.ndarray) -> list[np.ndarray]:
        return [
            canvas[: m.model.height, x : x + m.model.width]
            for m, x in zip(self.models, self._x, strict=False)
        ]

    def mirror(self, canvas: np.ndarray) -> np.ndarray:
        """The canvas with each model's crop mirrored in place (flip fusion of a fused model)."""
        return np.concatenate([p[:, ::-1] for p in self._parts(canvas)], axis=1) if canvas.size else canvas

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        parts = [self._parts(c) for c in chips]
        vectors = [m.embed([p[i] for p in parts]) for i, m in enumerate(self.models)]
        joined: np.ndarray = np.concatenate(vectors, axis=1) / np.float32(math.sqrt(len(self.models)))
        return l2_normalise(joined)
