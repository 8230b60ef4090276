"""The face engine on real photos: detection counts, embeddings, quality gate, model integrity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facegate.errors import FaceQualityTooLow, ModelIntegrityError, NoFaceFound, TooManyFaces
from facegate.match import cosine
from facegate.vision.models import DLIB_RESNET, verified_path

from tests.conftest import ALEX, BIDEN, LFW, LIN, OBAMA, PROBES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("photo", "count"),
    [
        (OBAMA, 1),
        (ALEX, 1),
        (LIN, 1),
        (PROBES / "obama_small.jpg", 1),
        (PROBES / "two_people.jpg", 2),
        (PROBES / "obama_and_biden.jpg", 3),
        (LFW / "Hugh_Grant_0001.jpg", 1),
    ],
)
def test_detection_counts(engine, photo: Path, count: int) -> None:
    faces = engine.detect(photo).faces
    assert len(faces) == count, f"{photo.name}: expected {count} faces, found {len(faces)}"
    for f in faces:
        assert f.chip.shape == (150, 150, 3) and f.landmarks.shape == (5, 2)
        assert 0 <= f.box.left < f.box.right and 0 <= f.box.top < f.box.bottom


def test_faces_come_largest_first_with_normalised_embeddings(engine) -> None:
    faces = engine.analyse(PROBES / "obama_and_biden.jpg").faces
    areas = [f.box.width * f.box.height for f in faces]
    assert areas == sorted(areas, reverse=True)
    for f in faces:
        assert f.embedding is not None and f.embedding.shape == (128,)
        assert np.linalg.norm(f.embedding) == pytest.approx(1.0, abs=1e-5)


def _emb(engine, path: Path) -> np.ndarray:
    return engine.largest_face(path).embedding


def test_same_person_scores_clearly_above_different_people(engine) -> None:
    people = ["Hugh_Grant", "Christine_Gregoire", "John_Bolton", "Pedro_Malan"]
    embs = {p: [_emb(engine, LFW / f"{p}_000{i}.jpg") for i in (1, 2, 3)] for p in people}
    genuine = [cosine(a, b) for p in people for i, a in enumerate(embs[p]) for b in embs[p][i + 1 :]]
    impostor = [
        cosine(a, b) for i, p in enumerate(people) for q in people[i + 1 :] for a in embs[p] for b in embs[q]
    ]
    assert min(genuine) > max(impostor), (min(genuine), max(impostor))
    assert np.mean(genuine) - np.mean(impostor) > 0.06


def test_same_frame_at_different_resolutions_embeds_alike(engine) -> None:
    a = _emb(engine, OBAMA)
    b = _emb(engine, PROBES / "obama.jpg")
    c = _emb(engine, BIDEN)
    assert cosine(a, b) > cosine(a, c) + 0.1


def test_enrolment_face_refuses_no_face(engine) -> None:
    blank = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceFound, match="no face"):
        engine.enrolment_face(blank, "blank.png")


def ten_face_photo() -> np.ndarray:
    singles = sorted(p for p in LFW.glob("*_0001.jpg"))[:10]
    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in singles]
    return np.concatenate([np.concatenate(tiles[:5], axis=1), np.concatenate(tiles[5:], axis=1)], axis=0)


def test_ten_faces_are_found_and_refused_for_enrolment(engine) -> None:
    img = ten_face_photo()
    assert len(engine.detect(img).faces) == 10
    with pytest.raises(TooManyFaces, match="10 faces"):
        engine.enrolment_face(img, "group.jpg")


def test_enrolment_refuses_small_and_blurred_faces(engine) -> None:
    with pytest.raises(FaceQualityTooLow, match="smaller than the minimum"):
        engine.enrolment_face(PROBES / "obama-240p.jpg")
    blurred = Image.open(OBAMA).convert("RGB").filter(ImageFilter.GaussianBlur(12))
    faces = engine.detect(np.asarray(blurred)).faces
    if faces:  # heavy blur may also hide the face from the detector: both are refusals
        with pytest.raises(FaceQualityTooLow, match="blurred"):
            engine.enrolment_face(np.asarray(blurred))


def test_cnn_detector_finds_the_faces_hog_finds(engine) -> None:
    from facegate.vision.detect_dlib import MmodDetector

    cnn = MmodDetector(upsample=0, max_side=700)
    img = engine.load(PROBES / "two_people.jpg")
    assert len(cnn.detect(img)) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_model_file_is_refused_by_name(tmp_path: Path, damage: str) -> None:
    bad = tmp_path / DLIB_RESNET.name
    shutil.copy(DLIB_RESNET.locate(), bad)
    data = bytearray(bad.read_bytes())
    if damage == "truncate":
        bad.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[len(data) // 2] ^= 0xFF
        bad.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=DLIB_RESNET.name):
        verified_path(DLIB_RESNET, bad)
    with pytest.raises(ModelIntegrityError, match="missing"):
        verified_path(DLIB_RESNET, tmp_path / "absent.dat")


def test_cnn_fallback_finds_what_hog_misses(engine, models_dir: Path) -> None:
    from facegate import FaceEngine, load_settings

    photo = Path(__file__).parent.parent / "data" / "hard" / "Billy_Andrade_0001.jpg"
    assert len(engine.detect(photo).faces) == 1  # the default detector, YuNet, finds it alone
    hog = FaceEngine(
        load_settings(data_dir=models_dir, detector={"backend": "hog"}),
        aligner=engine.aligner,
        embedder=engine.embedder,
    )
    assert hog.detector.detect(hog.load(photo)) == []  # HOG alone misses this face
    assert hog.detect(photo).faces == []  # identification does not pay for the CNN...
    [face] = hog.detect(photo, expect_face=True).faces  # ...enrolment and 1:1 do
    assert face.box.size > 60
    assert hog.largest_face(photo).embedding is not None
    hog_only = FaceEngine(
        load_settings(data_dir=models_dir, detector={"backend": "hog", "cnn_fallback": "never"})
    )
    assert hog_only.detect(photo, expect_face=True).faces == []
    always = FaceEngine(
        load_settings(data_dir=models_dir, detector={"backend": "hog", "cnn_fallback": "always"})
    )
    assert len(always.detect(photo).faces) == 1
