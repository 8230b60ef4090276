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
