"""SFace, the default embedder, and the five-point ONNX path an operator's own model takes.

Reference runs: the shipped graph with only its dangling weight inputs dropped, run by ONNX
Runtime (it dequantises every weight on each call), and OpenCV's own SFace pipeline
(`cv2.FaceRecognizerSF`: its alignCrop and feature) on that same graph.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from facegate.errors import ModelIntegrityError
from facegate.settings import load_settings
from facegate.vision.embed_five import FivePointEmbedder, sface
from facegate.vision.engine import FaceEngine
from facegate.vision.models import SFACE, SFACE_FAST, SFACE_SPACE, converted_path, verified_path
from facegate.vision.onnx_fold import drop_weight_inputs

from tests.conftest import ALEX, BIDEN, EXAMPLES, LFW, OBAMA, consent

pytestmark = pytest.mark.integration

PORTRAITS = [OBAMA, BIDEN, ALEX, EXAMPLES / "probes" / "obama.jpg"]


@pytest.fixture(scope="module")
def reference_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped SFace graph as released, with only its weight inputs dropped."""
    model = onnx.load(str(verified_path(SFACE)))
    drop_weight_inputs(model)
    path = tmp_path_factory.mktemp("sface-ref") / "sface_reference.onnx"
    onnx.save(model, str(path))
    return path


def test_default_engine_is_sface(engine: FaceEngine) -> None:
    assert engine.space == SFACE_SPACE
    assert engine.embedder.dim == 128


def test_embeddings_match_the_shipped_graph_and_opencv(engine: FaceEngine, reference_graph: Path) -> None:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    ref = ort.InferenceSession(str(reference_graph), opts, providers=["CPUExecutionProvider"])
    recogniser = cv2.FaceRecognizerSF.create(str(reference_graph), "")
    for photo in PORTRAITS:
        result = engine.analyse(photo)
        face = result.faces[0]
        assert face.crop is not None and face.crop.shape == (112, 112, 3)
        assert face.embedding is not None
        blob = face.crop.astype(np.float32).transpose(2, 0, 1)[None]
        want = ref.run(None, {"data": blob})[0][0]
        np.testing.assert_allclose(face.embedding, want / np.linalg.norm(want), atol=1e-4)
        # OpenCV's own pipeline: its alignment of YuNet's detection, its network run.
        det = engine.detector.detect(result.image)[0]
        assert det.points is not None
        row = np.array(
            [[det.box.left, det.box.top, det.box.width, det.box.height, *det.points.ravel(), det.score]],
            np.float32,
        )
        bgr = np.ascontiguousarray(result.image[..., ::-1])
        aligned = recogniser.alignCrop(bgr, row)
        assert np.abs(aligned[..., ::-1].astype(int) - face.crop.astype(int)).mean() < 0.5
        theirs = recogniser.feature(aligned).ravel()
        assert float(face.embedding @ (theirs / np.linalg.norm(theirs))) > 0.9999


def test_same_person_scores_high_others_low(engine: FaceEngine) -> None:
    obama = engine.analyse(OBAMA).faces[0].embedding
    obama_probe = engine.analyse(EXAMPLES / "probes" / "obama.jpg").faces[0].embedding
    biden = engine.analyse(BIDEN).faces[0].embedding
    assert obama is not None and obama_probe is not None and biden is not None
    same, other = float(obama @ obama_probe), float(obama @ biden)
    from facegate.match import shipped_calibration

    t = shipped_calibration(SFACE_SPACE).threshold(1e-3)
    assert same > t > other


def test_the_fast_graph_is_pinned_and_a_damaged_one_refused(tmp_path: Path) -> None:
    path = converted_path(SFACE_FAST, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SFACE_FAST.sha256
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        sface(tmp_path)


def test_a_damaged_shipped_model_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / SFACE.name
    shutil.copyfile(verified_path(SFACE), copy)
    with copy.open("r+b") as fh:
        fh.seek(1000)
        b = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([b[0] ^ 1]))
    with pytest.raises(ModelIntegrityError, match="corrupt or replaced"):
        verified_path(SFACE, copy)
    copy.write_bytes(copy.read_bytes()[:-10])
    with pytest.raises(ModelIntegrityError, match="truncated"):
        verified_path(SFACE, copy)


def test_hog_boxes_get_yunets_landmarks(models_dir: Path) -> None:
    # HOG gives a box and no landmarks: the engine finds YuNet's points around it, so the crop
    # (and the embedding) is close to what YuNet's own detection gives.
    yunet = FaceEngine(load_settings(data_dir=models_dir))
    hog = FaceEngine(load_settings(data_dir=models_dir, detector={"backend": "hog"}))
    a = yunet.analyse(OBAMA).faces[0].embedding
    b = hog.analyse(OBAMA).faces[0].embedding
    assert a is not None and b is not None
    assert float(a @ b) > 0.98


def _tiny_graph(path: Path) -> str:
    """A tiny embedder: 3x32x32 RGB in, an 8-d vector out (a fixed random projection of the
    mean-pooled 8x8 cells), built here; returns its SHA-256."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3 * 8 * 8, 8)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["pixels"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["vector"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("vector", TensorProto.FLOAT, ["n", 8])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_operators_onnx_model_end_to_end(tmp_path: Path) -> None:
    from facegate import Gallery
    from facegate.eval.runs import run_calibrate

    graph = tmp_path / "tiny.onnx"
    sha = _tiny_graph(graph)
    onnx_cfg = {
        "file": str(graph),
        "sha256": sha,
        "space": "tiny-v1",
        "input_size": (32, 32),
        "template": [[10.9, 14.8], [21.0, 14.7], [16.0, 20.5], [11.9, 26.4], [20.2, 26.3]],
        "colour": "bgr",
        "mean": (127.5, 127.5, 127.5),
        "scale": 1 / 128,
    }
    data = tmp_path / "data"
    settings = load_settings(data_dir=data, secret_key="k" * 32, embedder={"model": "onnx", "onnx": onnx_cfg})
    engine = FaceEngine(settings)
    assert engine.space == "tiny-v1" and engine.embedder.dim == 8
    assert isinstance(engine.embedder, FivePointEmbedder)
    face = engine.analyse(OBAMA).faces[0]
    assert face.crop is not None and face.crop.shape == (32, 32, 3)
    # The model's own numbers, by hand: BGR, mean and scale, 4x4 mean pooling, the projection.
    x = (face.crop[..., ::-1].astype(np.float32) - 127.5) / 128
    pooled = x.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
    w = numpy_helper.to_array(onnx.load(str(graph)).graph.initializer[0])
    want = pooled @ w
    np.testing.assert_allclose(face.embedding, want / np.linalg.norm(want), atol=1e-5)
    # No table ships for this space: searching says how to make one, and calibrate makes it.
    gallery = Gallery.open(settings=settings)
    gallery.enroll("Christine Gregoire", [LFW / "Christine_Gregoire_0001.jpg"], consent())
    from facegate.errors import ConfigError

    with pytest.raises(ConfigError, match="eval calibrate"):
        gallery.identify(LFW / "Christine_Gregoire_0002.jpg")
    gallery.close()
    folders = tmp_path / "benchmark"
    for p in sorted(LFW.glob("*_000[123].jpg")):
        person = p.stem.rsplit("_", 1)[0]
        (folders / person).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, folders / person / p.name)
    table = run_calibrate(engine, folders, data / "calibration.json", data / "eval-cache", lambda n: None)
    assert table["space"] == "tiny-v1"
    settings = load_settings(
        data_dir=data,
        secret_key="k" * 32,
        embedder={"model": "onnx", "onnx": onnx_cfg},
        match={"calibration_file": str(data / "calibration.json"), "target_fmr": 0.1},
    )
    gallery = Gallery.open(settings=settings)
    [found] = gallery.identify(LFW / "Christine_Gregoire_0001.jpg")
    assert found.name == "Christine Gregoire"  # the enrolment photo itself
    gallery.close()
    # A file that is not the pinned one is refused before it is loaded.
    other = tmp_path / "tiny-edited.onnx"
    other.write_bytes(graph.read_bytes() + b"\0")
    edited = {**onnx_cfg, "file": str(other)}
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        FaceEngine(load_settings(data_dir=data, embedder={"model": "onnx", "onnx": edited}))


REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


def test_reid0095_rebuilt_from_its_ir_gives_openvinos_numbers(models_dir: Path) -> None:
    """The IR graph rebuilt as ONNX, against OpenVINO's own run of the shipped IR on the same crop
    (tests/data/reference: the crop, and OpenVINO 2026.4.1's output for it)."""
    import json

    from PIL import Image

    from facegate.vision.embed_five import reid0095

    reid = reid0095(models_dir)
    assert reid.space == "reid0095" and reid.dim == 256
    crop = np.asarray(Image.open(REFERENCE / "obama2_reid0095_crop.png").convert("RGB"))
    want = np.array(json.loads((REFERENCE / "obama2_reid0095_openvino.json").read_text())["output"])
    got = reid.raw([crop])[0]
    np.testing.assert_allclose(got, want, atol=1e-4 * float(np.abs(want).max()))
    np.testing.assert_allclose(reid.embed([crop])[0], want / np.linalg.norm(want), atol=1e-4)
    # and the engine cuts that crop from the photo with the Open Model Zoo's reference points
    engine = FaceEngine(load_settings(data_dir=models_dir, embedder={"model": "reid0095", "flip": False}))
    face = engine.analyse(OBAMA).faces[0]
    assert face.crop is not None and np.abs(face.crop.astype(int) - crop.astype(int)).max() <= 1


def test_score_fusion_is_the_mean_of_the_two_models_cosines(models_dir: Path) -> None:
    fused = FaceEngine(load_settings(data_dir=models_dir, embedder={"model": "sface+reid0095"}))
    assert fused.space == "sface_2021dec+reid0095" and fused.embedder.dim == 384
    alone = {
        name: FaceEngine(load_settings(data_dir=models_dir, embedder={"model": name, "flip": False}))
        for name in ("sface", "reid0095")
    }
    a, b = (fused.analyse(p).faces[0].embedding for p in (OBAMA, EXAMPLES / "probes" / "obama.jpg"))
    assert a is not None and b is not None and float(np.linalg.norm(a)) == pytest.approx(1.0, abs=1e-5)
    means = []
    for e in alone.values():
        x, y = (e.analyse(p).faces[0].embedding for p in (OBAMA, EXAMPLES / "probes" / "obama.jpg"))
        assert x is not None and y is not None
        means.append(float(x @ y))
    assert float(a @ b) == pytest.approx(sum(means) / 2, abs=1e-5)
