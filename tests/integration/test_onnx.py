"""dlib's networks converted to ONNX give dlib's answers: embeddings, CNN detections, errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import ConfigError, ModelIntegrityError
from facegate.vision.detect_dlib import MmodDetector
from facegate.vision.detect_onnx import OnnxMmodDetector
from facegate.vision.dlib_format import DlibFormatError, face_resnet_spec, parse
from facegate.vision.embed_dlib import DlibResNetEmbedder
from facegate.vision.embed_onnx import OnnxResNetEmbedder
from facegate.vision.models import DLIB_RESNET, ONNX_RESNET, converted_path
from facegate.vision.onnx_runtime import session

from tests.conftest import ALEX, GALLERY_PHOTOS, LFW, LIN, PROBES, SHARED, need

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def onnx_embedder(models_dir: Path) -> OnnxResNetEmbedder:
    return OnnxResNetEmbedder(models_dir, provider="cpu")


@pytest.fixture(scope="module")
def dlib_embedder() -> DlibResNetEmbedder:
    return DlibResNetEmbedder()


def _chips(engine, paths: list[Path]) -> list[np.ndarray]:
    chips = []
    for p in paths:
        chips += [f.chip for f in engine.detect(p).faces]
    return chips


def test_embeddings_match_dlib_on_200_real_faces(engine, onnx_embedder, dlib_embedder) -> None:
    lfw = SHARED / "faces" / "lfw" / "images"
    need(None if lfw.is_dir() else f"{lfw} (LFW) is not available")
    photos = sorted(lfw.glob("*/*.jpg"))
    paths = random.Random(2026).sample(photos, 200) + sorted(LFW.glob("*.jpg")) + sorted(PROBES.glob("*.jpg"))
    chips = _chips(engine, paths)
    assert len(chips) >= 200
    ref = dlib_embedder.raw(chips)
    got = onnx_embedder.raw(chips)
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    max_abs = float(np.abs(ref - got).max())
    print(f"\n{len(chips)} faces: min cosine {cos.min():.8f}, max abs difference {max_abs:.2e}")
    assert cos.min() >= 0.9999, f"worst face cosine {cos.min()}"
    assert max_abs < 1e-4


def test_batches_give_the_same_embeddings_as_single_faces(engine, onnx_embedder) -> None:
    chips = _chips(engine, sorted(LFW.glob("*.jpg"))[:9])
    one_by_one = np.concatenate([onnx_embedder.raw([c]) for c in chips])
    assert np.allclose(onnx_embedder.raw(chips), one_by_one, atol=1e-5)
    assert onnx_embedder.embed([]).shape == (0, 128)


@pytest.mark.parametrize("upsample", [0, 1])
def test_cnn_boxes_match_dlib(models_dir: Path, engine, upsample: int) -> None:
    photos = [
        PROBES / "two_people.jpg",
        PROBES / "obama_small.jpg",
        ALEX,
        LIN,
        GALLERY_PHOTOS / "Barack_Obama" / "obama2.jpg",
    ]
    side = 700 if upsample == 0 else 400  # dlib's own CNN takes seconds per photo on a CPU
    ours = OnnxMmodDetector(models_dir, upsample=upsample, max_side=side, provider="cpu")
    theirs = MmodDetector(upsample=upsample, max_side=side)
    for photo in photos:
        image = engine.load(photo)
        a, b = ours.detect(image), theirs.detect(image)
        assert len(a) == len(b) and a, (photo.name, a, b)
        for da in a:
            best = max(_iou(da.box, db.box) for db in b)
            assert best >= (0.999 if upsample == 0 else 0.9), (photo.name, upsample, da, b)


def _iou(a, b) -> float:  # type: ignore[no-untyped-def]
    iw = max(0, min(a.right, b.right) - max(a.left, b.left))
    ih = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    inter = iw * ih
    return inter / (a.width * a.height + b.width * b.height - inter)


def test_damaged_dlib_file_is_named_in_the_error(tmp_path: Path) -> None:
    data = DLIB_RESNET.locate().read_bytes()
    with pytest.raises(DlibFormatError, match=r"broken\.dat.*truncated"):
        parse(data[: len(data) // 3], face_resnet_spec(), "broken.dat")
    with pytest.raises(DlibFormatError, match=r"broken\.dat"):
        parse(b"\x01\x07" + data[2:], face_resnet_spec(), "broken.dat")  # not a loss layer header
    mangled = bytearray(data)
    mangled[40] = 0x7F  # a version integer turned into garbage
    with pytest.raises(DlibFormatError, match=r"broken\.dat"):
        parse(bytes(mangled), face_resnet_spec(), "broken.dat")


def test_tampered_converted_model_is_refused(tmp_path: Path) -> None:
    path = converted_path(ONNX_RESNET, tmp_path)
    assert path.exists()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=str(path)):
        converted_path(ONNX_RESNET, tmp_path)
    path.write_bytes(bytes(data[:1000]))
    with pytest.raises(ModelIntegrityError, match="corrupt or replaced"):
        OnnxResNetEmbedder(tmp_path)


def test_cuda_is_never_a_silent_fallback(models_dir: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="cuda"):
        session(converted_path(ONNX_RESNET, models_dir), "cuda")


def test_templates_from_dlib_and_onnx_backends_are_interchangeable(settings, models_dir: Path) -> None:
    from facegate import FaceEngine, Gallery

    from tests.conftest import OBAMA, consent

    dlib_engine = FaceEngine(
        settings.model_copy(update={"embedder": settings.embedder.model_copy(update={"backend": "dlib"})})
    )
    onnx_engine = FaceEngine(settings)
    with Gallery.open(settings, engine=dlib_engine) as g:
        g.enroll("Barack Obama", [OBAMA], consent())
    with Gallery.open(settings, engine=onnx_engine) as g:
        [face] = g.identify(PROBES / "obama.jpg")
        assert face.name == "Barack Obama"
