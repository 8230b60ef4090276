"""YuNet on real photos: counts, small faces, any image size, tiles, landmarks beside dlib's."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.errors import ModelIntegrityError
from facegate.vision.align_dlib import DlibAligner
from facegate.vision.detect_dlib import HogDetector
from facegate.vision.detect_yunet import YuNetDetector, nms
from facegate.vision.geometry import iou
from facegate.vision.models import YUNET, verified_path
from facegate.vision.types import Box, Detection

from tests.conftest import ALEX, LFW, LIN, OBAMA, PROBES, SHARED, need

pytestmark = pytest.mark.integration

PORTRAITS = SHARED / "faces" / "portraits"


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector(threads=1)


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def ten_face_photo() -> np.ndarray:
    singles = sorted(LFW.glob("*_0001.jpg"))[:10]
    tiles = [_rgb(p) for p in singles]
    return np.concatenate([np.concatenate(tiles[:5], axis=1), np.concatenate(tiles[5:], axis=1)], axis=0)


def _lfw_face(side: int, name: str = "Hugh_Grant_0001.jpg") -> np.ndarray:
    """An LFW photo scaled so its face (~100 px of the 250 px photo) is about `side` px."""
    img = Image.open(LFW / name).convert("RGB")
    s = round(250 * side / 100)
    return np.asarray(img.resize((s, s), Image.Resampling.LANCZOS))


@pytest.mark.parametrize(
    ("photo", "count"),
    [
        (OBAMA, 1),
        (ALEX, 1),
        (LIN, 1),
        (PROBES / "obama_small.jpg", 1),
        (PROBES / "obama-240p.jpg", 1),
        (PROBES / "two_people.jpg", 2),
        (PROBES / "obama_and_biden.jpg", 3),
        (LFW / "Hugh_Grant_0001.jpg", 1),
    ],
)
def test_counts_on_one_two_and_three_face_photos(yunet: YuNetDetector, photo: Path, count: int) -> None:
    found = yunet.detect(_rgb(photo))
    assert len(found) == count, f"{photo.name}: expected {count}, found {len(found)}"
    for d in found:
        assert 0.6 <= d.score <= 1.0
        assert d.points is not None and d.points.shape == (5, 2)
        b = d.box
        assert b.left < b.right and b.top < b.bottom
        assert np.all(d.points[:, 0] > b.left) and np.all(d.points[:, 0] < b.right)


def test_ten_faces_in_a_group_photo(yunet: YuNetDetector) -> None:
    img = ten_face_photo()
    found = yunet.detect(img)
    assert len(found) == 10
    centres = sorted(((d.box.top + d.box.bottom) // 500, (d.box.left + d.box.right) // 500) for d in found)
    assert centres == [(r, c) for r in range(2) for c in range(5)]  # one per LFW tile


@pytest.mark.parametrize("side", [24, 32, 40])
def test_faces_downscaled_to_24_40_px_are_found(yunet: YuNetDetector, side: int) -> None:
    hog = HogDetector(upsample=1)
    names = ["Hugh_Grant_0001.jpg", "John_Bolton_0001.jpg", "Pedro_Malan_0001.jpg", "Kim_Cattrall_0001.jpg"]
    canvas = np.full((480, 640, 3), 110, np.uint8)
    spots = [(60, 60), (60, 360), (280, 60), (280, 360)]
    for name, (y, x) in zip(names, spots, strict=True):
        face = _lfw_face(side, name)
        canvas[y : y + face.shape[0], x : x + face.shape[1]] = face
    found = yunet.detect(canvas)
    assert len(found) == 4, f"{side} px: {len(found)} of 4"
    for d in found:
        assert 0.6 * side <= d.box.width <= 1.6 * side
    if side == 24:  # where HOG, even upsampled once, is already blind
        assert len(hog.detect(canvas)) < 4


@pytest.mark.parametrize(("h", "w"), [(250, 250), (97, 131), (481, 641), (33, 1000)])
def test_any_image_size(yunet: YuNetDetector, h: int, w: int) -> None:
    img = np.asarray(Image.open(LFW / "Hugh_Grant_0001.jpg").convert("RGB").resize((min(w, h), min(w, h))))
    canvas = np.full((h, w, 3), 90, np.uint8)
    canvas[: img.shape[0], : img.shape[1]] = img
    found = yunet.detect(canvas)
    assert len(found) == (1 if min(h, w) >= 90 else len(found))
    for d in found:
        assert d.box.right <= w + d.box.width and d.box.bottom <= h + d.box.height
    assert yunet.detect(np.zeros((1, 1, 3), np.uint8)) == []


def test_tiles_find_faces_too_small_for_the_downscaled_copy() -> None:
    # A 3000 px wide frame detected on a 640 px copy: a 36 px face becomes ~8 px, below YuNet's reach.
    frame = np.full((1500, 3000, 3), 100, np.uint8)
    face = _lfw_face(36)
    frame[1000 : 1000 + face.shape[0], 2500 : 2500 + face.shape[1]] = face
    plain = YuNetDetector(max_side=640, threads=1)
    tiled = YuNetDetector(max_side=640, tiles=True, threads=1)
    assert plain.detect(frame) == []
    [d] = tiled.detect(frame)
    assert 2500 < d.box.left < d.box.right < 2500 + face.shape[1]
    assert 1000 < d.box.top < d.box.bottom < 1000 + face.shape[0]


def test_landmarks_agree_with_dlibs(yunet: YuNetDetector) -> None:
    """The predictor on YuNet's landmark-placed box gives the points it gives on HOG's box, and
    YuNet's own eye points (pupils) sit near the middle of dlib's two corners of each eye."""
    photos = [OBAMA, ALEX, LIN, PROBES / "biden.jpg", *sorted(LFW.glob("*.jpg"))[:12]]
    if PORTRAITS.is_dir():
        photos += sorted(p for p in PORTRAITS.glob("*.jpg") if "partial" not in p.name)
    aligner, hog = DlibAligner(), HogDetector(upsample=1)
    compared, eye_errors, point_errors = 0, [], []
    for photo in photos:
        img = _rgb(photo)
        for h in hog.detect(img):
            y = max(yunet.detect(img), key=lambda d: iou(h.box, d.box))
            assert iou(h.box, y.box) > 0.4, photo.name
            assert y.points is not None
            ref = aligner.landmarks(img, h)
            ours = aligner.landmarks(img, y)
            point_errors.append(np.abs(ours - ref).max() / h.box.width)
            # dlib: points 0-1 the corners of the eye on the image's right, 2-3 the other one.
            eye_dist = np.linalg.norm(ref[0:2].mean(0) - ref[2:4].mean(0))
            eye_errors.append(np.linalg.norm(y.points[1] - ref[0:2].mean(0)) / eye_dist)
            eye_errors.append(np.linalg.norm(y.points[0] - ref[2:4].mean(0)) / eye_dist)
            compared += 1
    assert compared >= len(photos) - 2
    assert np.median(point_errors) < 0.03 and max(point_errors) < 0.1, sorted(point_errors)[-5:]
    assert np.median(eye_errors) < 0.12 and max(eye_errors) < 0.35, sorted(eye_errors)[-5:]


def test_portraits_from_shared() -> None:
    need(None if PORTRAITS.is_dir() else f"{PORTRAITS} is missing")
    yunet = YuNetDetector(threads=1)
    counts = {p.name: len(yunet.detect(_rgb(p))) for p in PORTRAITS.glob("*") if p.suffix != ".txt"}
    assert counts.pop("two_people.jpg") == 2
    assert counts.pop("obama_and_biden.jpg") == 3
    assert set(counts.values()) == {1}, counts


@pytest.mark.parametrize(
    ("src", "dst"), [((1920, 1080), (640, 360)), ((1366, 769), (455, 256)), ((300, 200), (600, 400))]
)
def test_the_detection_copy_is_an_area_average_of_the_frame(
    src: tuple[int, int], dst: tuple[int, int]
) -> None:
    """Shrunk by halvings and then bilinearly (the fast path): of the size asked, and within
    about a grey level of OpenCV's area average on a real photo; enlarging stays bilinear."""
    import cv2

    from facegate.vision.detect_yunet import resized

    frame = np.asarray(Image.open(LIN).convert("RGB").resize(src, Image.Resampling.BICUBIC))
    out = resized(frame, dst)
    assert out.shape == (dst[1], dst[0], 3) and out.dtype == np.uint8
    ref = cv2.resize(frame, dst, interpolation=cv2.INTER_AREA if dst[0] < src[0] else cv2.INTER_LINEAR)
    assert np.abs(out.astype(np.int16) - ref).mean() < 1.5


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.7, 0.9, 0.8, 0.6], np.float32)
    assert nms(boxes, scores, 0.3) == [1, 2]
    assert nms(boxes, scores, 0.99) == [1, 2, 0, 3]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3) == []


def test_shipped_model_is_checked_by_sha256(tmp_path: Path) -> None:
    assert verified_path(YUNET).name == "yunet_s_dynamic.onnx"
    assert (YUNET.locate().parent / "LICENSE").read_text().startswith("\n") or "Apache" in (
        YUNET.locate().parent / "LICENSE"
    ).read_text()
    bad = tmp_path / YUNET.name
    shutil.copy(YUNET.locate(), bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=YUNET.name):
        YuNetDetector(model_path=bad)


def test_detection_without_points_keeps_the_protocol() -> None:
    d = Detection(Box(0, 0, 10, 10), 0.5)
    assert d.points is None and d == Detection(Box(0, 0, 10, 10), 0.5)


def test_enrolment_ignores_far_bystanders_not_a_second_person(engine) -> None:  # type: ignore[no-untyped-def]
    """YuNet sees small faces far behind; a face under a third of the main one's size does
    not make an enrolment photo a group photo, one half its size does."""
    from facegate.errors import TooManyFaces

    main = Image.open(LFW / "Hugh_Grant_0001.jpg").convert("RGB").resize((500, 500))
    for scale, refused in ((0.2, False), (0.6, True)):
        photo = Image.new("RGB", (900, 600), (120, 120, 120))
        photo.paste(main, (0, 50))
        side = round(500 * scale)
        photo.paste(Image.open(LFW / "Kim_Cattrall_0001.jpg").convert("RGB").resize((side, side)), (600, 80))
        seen = engine.detect(np.asarray(photo)).faces
        assert len(seen) == 2  # both faces are detected either way
        if refused:
            with pytest.raises(TooManyFaces):
                engine.enrolment_face(np.asarray(photo), "two.jpg")
        else:
            face = engine.enrolment_face(np.asarray(photo), "one.jpg")
            assert face.box.left < 500  # the main face, not the bystander


def test_quality_size_is_measured_on_hog_like_boxes(engine) -> None:  # type: ignore[no-untyped-def]
    """`quality.min_face_px` keeps its meaning: YuNet's narrow boxes are measured as HOG's."""
    hog = HogDetector(upsample=1)
    for photo in sorted(LFW.glob("*_0001.jpg"))[:8]:
        img = _rgb(photo)
        [h] = [d for d in hog.detect(img) if d.box.width > 60][:1]
        face = engine.detect(img).faces[0]
        assert abs(face.quality.size_px - h.box.size) <= 0.15 * h.box.size, photo.name
