"""The seams of the vision layer: a backend is one class that satisfies one of these."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from facegate.vision.types import Detection


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB uint8 image."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


@runtime_checkable
class Aligner(Protocol):
    """Finds landmarks in a face box and cuts an aligned chip for the embedder."""

    chip_size: int

    def landmarks(self, image: np.ndarray, detection: Detection) -> np.ndarray: ...

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns aligned face chips into embeddings.

    `space` names the embedding space: two embedders with the same `space` give comparable
    vectors (e.g. dlib's ResNet and an exact ONNX port of it), so templates stay valid.
    """

    space: str
    dim: int

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, dim) float32, each row L2-normalised."""
        ...


@runtime_checkable
class FivePointCropper(Protocol):
    """An embedder that cuts its own input from the image at a face's five landmarks (YuNet's:
    right eye, left eye, nose tip, right and left mouth corner), instead of taking the aligner's chip."""

    def crop(self, image: np.ndarray, points: np.ndarray) -> np.ndarray: ...


def five_point_cropper(embedder: Embedder) -> FivePointCropper | None:
    """The embedder itself, or the one it wraps (flip fusion), if it crops at five points."""
    seen: object = embedder
    while seen is not None:
        if isinstance(seen, FivePointCropper):
            return seen
        seen = getattr(seen, "inner", None)
    return None
