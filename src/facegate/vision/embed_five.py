"""ONNX face embedders that cut their own input at five landmarks: SFace (the default) and any
model an operator configures (`embedder.onnx`).

Each is described by a `FivePointModel`: the graph's input size, the template its five
landmarks are moved onto, colour order, mean and scale, the output to read, and the embedding
space its vectors live in. The engine asks `crop()` for each face's input (from YuNet's
landmarks) and `embed()` for the vectors.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from facegate.settings import OnnxEmbedderSettings
from facegate.vision.align_five import ARCFACE_112, warp
from facegate.vision.models import (
    REID0095_ONNX,
    REID0095_SPACE,
    SFACE_FAST,
    SFACE_SPACE,
    ModelFile,
    converted_path,
    verified_path,
)
from facegate.vision.onnx_runtime import session
from facegate.vision.vectors import l2_normalise


@dataclass(frozen=True)
class FivePointModel:
    """What a five-point-aligned ONNX embedder needs beside its graph."""

    space: str
    width: int
    height: int
    template: np.ndarray  # (5, 2) input pixels: right eye, left eye, nose tip, mouth corners
    colour: Literal["rgb", "bgr"] = "rgb"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # subtracted from 0..255 pixels (in `colour` order)
    scale: float = 1.0  # then multiplied
    output: str | None = None  # the graph's first output if None


# SFace subtracts 127.5 and scales inside its graph: it takes raw 0..255 RGB.
SFACE_MODEL = FivePointModel(SFACE_SPACE, 112, 112, ARCFACE_112)
# face-reidentification-retail-0095: raw 0..255 BGR, 128x128, the Open Model Zoo's reference points
# (the 96x112 ArcFace points stretched to a square; a uniform 112 template scaled up measured worse).
REID0095_MODEL = FivePointModel(
    REID0095_SPACE,
    128,
    128,
    128.0
    * np.array(
        [
            [0.31556875, 0.46157411],
            [0.68262292, 0.46157411],
            [0.5002625, 0.64050536],
            [0.34947188, 0.82469196],
            [0.65343646, 0.82469196],
        ]
    ),
    colour="bgr",
)


class FivePointEmbedder:
    """An `Embedder` on ONNX Runtime whose faces are aligned by five landmarks (`crop`)."""

    def __init__(
        self,
        model: FivePointModel,
        path: Path,
        provider: str = "auto",
        threads: int = 0,
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.space = model.space
        self.path = path
        self._session = session(path, provider, threads)
        self.provider = self._session.get_providers()[0]
        self._input = self._session.get_inputs()[0].name
        self._output = model.output or self._session.get_outputs()[0].name
        # On a CPU batches gain nothing (SFace, one thread: 14.8 ms a face alone, 15.0 in batches
        # of 8, 15.6 of 32; bench/embedder_speed.py) and delay the first face; a GPU wants them.
        self.batch_size = 1 if self.provider == "CPUExecutionProvider" else batch_size
        self._lock = threading.Lock()  # one run at a time: the session already uses every core
        self.dim = int(self.raw([np.zeros((model.height, model.width, 3), np.uint8)]).shape[1])

    def crop(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The model's aligned input for the face at `points` (YuNet's five landmarks), RGB uint8."""
        m = self.model
        return warp(image, points, m.template, (m.width, m.height))

    def _blob(self, crops: list[np.ndarray]) -> np.ndarray:
        m = self.model
        x = np.stack(crops).astype(np.float32)
        if m.colour == "bgr":
            x = x[..., ::-1]
        if any(m.mean) or m.scale != 1.0:
            x = (x - np.asarray(m.mean, np.float32)) * np.float32(m.scale)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def raw(self, crops: list[np.ndarray]) -> np.ndarray:
        """The graph's unnormalised vectors, (n, dim)."""
        out = []
        for start in range(0, len(crops), self.batch_size):
            blob = self._blob(crops[start : start + self.batch_size])
            with self._lock:
                y = self._session.run([self._output], {self._input: blob})[0]
            out.append(np.asarray(y, np.float32).reshape(len(blob), -1))
        if not out:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        return np.concatenate(out)

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        return l2_normalise(self.raw(chips))


def sface(
    models_dir: Path, provider: str = "auto", threads: int = 0, batch_size: int = 32
) -> FivePointEmbedder:
    """SFace, the default embedder: the shipped graph made fast once (pinned), then loaded."""
    return FivePointEmbedder(
        SFACE_MODEL, converted_path(SFACE_FAST, models_dir), provider, threads, batch_size
    )


def reid0095(
    models_dir: Path, provider: str = "auto", threads: int = 0, batch_size: int = 32
) -> FivePointEmbedder:
    """Intel's face-reidentification-retail-0095, rebuilt from its IR once (pinned), then loaded."""
    path = converted_path(REID0095_ONNX, models_dir)
    return FivePointEmbedder(REID0095_MODEL, path, provider, threads, batch_size)


def operator_model(
    config: OnnxEmbedderSettings, provider: str = "auto", threads: int = 0, batch_size: int = 32
) -> FivePointEmbedder:
    """An operator's own ONNX embedder (`embedder.onnx`), its file checked against its SHA-256."""
    size = config.file.stat().st_size if config.file.is_file() else 0
    pinned = ModelFile(config.file.name, config.sha256, size, package="embedder.onnx (your own file)")
    path = verified_path(pinned, config.file)
    model = FivePointModel(
        config.space,
        config.input_size[0],
        config.input_size[1],
        np.asarray(config.template, np.float64),
        config.colour,
        config.mean,
        config.scale,
        config.output,
    )
    return FivePointEmbedder(model, path, provider, threads, batch_size)


SHIPPED = {"sface": sface, "reid0095": reid0095}  # the builders of FIVE_POINT_SPACES's models
