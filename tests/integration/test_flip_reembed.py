"""Flip fusion (dlib's default embedding space), and converting galleries of another space from
their kept face chips: dlib without fusion to dlib with it, and dlib's to SFace's (the default)."""

from __future__ import annotations

import numpy as np
import pytest

from facegate import FaceEngine, Gallery
from facegate.errors import EmbeddingSpaceMismatch
from facegate.gallery.reembed import reembed
from facegate.vision.embed_flip import FlipFused

from tests.conftest import ALEX, BIDEN, OBAMA, PROBES, consent


def _dlib(settings, **embedder):  # type: ignore[no-untyped-def]
    return settings.model_copy(
        update={"embedder": settings.embedder.model_copy(update={"model": "dlib", **embedder})}
    )


@pytest.fixture
def dlib_settings(settings):  # type: ignore[no-untyped-def]
    return _dlib(settings)


@pytest.fixture(scope="module")
def dlib_engine(models_dir) -> FaceEngine:  # type: ignore[no-untyped-def]
    from facegate import load_settings

    return FaceEngine(load_settings(data_dir=models_dir, embedder={"model": "dlib"}))


def _plain(settings, **gallery):  # type: ignore[no-untyped-def]
    return settings.model_copy(
        update={
            "embedder": settings.embedder.model_copy(update={"model": "dlib", "flip": False}),
            "gallery": settings.gallery.model_copy(update=gallery),
        }
    )


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v), np.float32)


def test_flip_fusion_is_dlibs_default_space_and_averages_a_face_with_its_mirror(
    dlib_engine: FaceEngine,
) -> None:
    engine = dlib_engine
    assert isinstance(engine.embedder, FlipFused) and engine.space == "dlib_resnet_v1_flip"
    inner = engine.embedder.inner
    assert inner.space == "dlib_resnet_v1"
    chip = engine.largest_face(OBAMA).chip
    mirror = np.ascontiguousarray(chip[:, ::-1])
    a, b = inner.embed([chip, mirror])
    # the network sees a face and its mirror differently; fusion is their normalised mean
    assert float(a @ b) < 0.999
    fused, fused_mirror = engine.embedder.embed([chip, mirror])
    assert fused == pytest.approx(_unit(a + b), abs=1e-5)
    assert float(fused @ fused_mirror) == pytest.approx(1.0, abs=1e-5)
    assert engine.embedder.embed([]).shape == (0, 128)


def _gallery_before_fusion(settings, engine: FaceEngine, database_url: str) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """A gallery enrolled without flip fusion: Obama and Biden with their face chips kept, Alex
    Lacamoire enrolled with `keep_face_chips: false`. Returns their ids."""
    plain_engine = FaceEngine(_plain(settings), embedder=engine.embedder.inner)  # type: ignore[attr-defined]
    with Gallery.open(_plain(settings), engine=plain_engine, database_url=database_url) as old:
        obama = old.enroll("Barack Obama", [OBAMA], consent()).person.id
        biden = old.enroll("Joe Biden", [BIDEN], consent()).person.id
    no_chips = _plain(settings, keep_face_chips=False)
    with Gallery.open(no_chips, engine=plain_engine, database_url=database_url) as old:
        alex = old.enroll("Alex Lacamoire", [ALEX], consent()).person.id
    return obama, biden, alex


def test_a_gallery_made_without_fusion_is_refused_then_converted_from_its_chips(
    dlib_settings, dlib_engine: FaceEngine, database_url: str
) -> None:
    settings, engine = dlib_settings, dlib_engine
    obama, biden, alex = _gallery_before_fusion(settings, engine, database_url)
    with Gallery.open(settings, engine=engine, database_url=database_url) as g:
        assert g.foreign_spaces == {"dlib_resnet_v1": 3}
        with pytest.raises(EmbeddingSpaceMismatch, match="people reembed"):
            g.identify(PROBES / "biden.jpg")
        seen: list[tuple[int, int]] = []
        done = reembed(g, actor="tester", progress=lambda i, n: seen.append((i, n)))
        assert done.space == "dlib_resnet_v1_flip"
        assert (done.converted, done.people, done.without_chip) == (2, 2, 1)
        assert done.to_enrol_again == [alex] and seen[-1] == (3, 3)
        assert g.foreign_spaces == {"dlib_resnet_v1": 1}
        [face] = g.identify(PROBES / "biden.jpg")
        person = face.result.person
        assert face.result.decision == "match" and person is not None and person.person_id == biden
        # made from the kept JPEG chip, close to what enrolling the photo afresh gives
        [converted] = g.template_vectors(obama)
        direct = engine.largest_face(OBAMA).embedding
        assert direct is not None and float(converted @ direct) > 0.995
        actions = [e.action for e in g.audit.entries(person=obama)]
        assert actions.count("reembed") == 1
        again = reembed(g, actor="tester")
        assert (again.converted, again.without_chip, again.to_enrol_again) == (0, 1, [alex])


def test_unconvertible_templates_are_reported_dropped_on_request_and_their_people_can_enrol_again(
    dlib_settings, dlib_engine: FaceEngine, database_url: str
) -> None:
    settings, engine = dlib_settings, dlib_engine
    from sqlalchemy import update

    from facegate.eval.datasets import model_signature
    from facegate.gallery.schema import TemplateRow

    obama, biden, alex = _gallery_before_fusion(settings, engine, database_url)
    with Gallery.open(settings, engine=engine, database_url=database_url) as g:
        [tid] = [t.id for t in g.templates(biden)]
        with g.store.write() as s:  # a chip that no longer opens (restored from a damaged backup)
            s.execute(update(TemplateRow).where(TemplateRow.id == tid).values(chip_ct=b"\0" * 64))
        done = reembed(g, actor="tester")
        # one bad chip stops nothing: Obama is converted, Biden and Alex reported, nothing deleted
        assert (done.converted, done.unreadable, done.without_chip, done.dropped) == (1, [tid], 1, 0)
        assert done.to_enrol_again == sorted([biden, alex]) and not done.complete
        assert g.foreign_spaces == {"dlib_resnet_v1": 2}
        dropped = reembed(g, actor="tester", drop_unconvertible=True)
        assert (dropped.converted, dropped.dropped) == (0, 2) and g.foreign_spaces == {}
        assert dropped.reclaimed  # the deleted rows' pages were wiped
        # the photo enrolled for the old model is not a duplicate for the new one
        again = g.enroll("Alex Lacamoire", [ALEX], person_id=alex)
        assert len(again.template_ids) == 1 and again.duplicates == []
        [face] = g.identify(PROBES / "obama.jpg")
        assert face.result.person is not None and face.result.person.person_id == obama
    # flip fusion is part of what an evaluation cache is keyed by, with the model it wraps
    assert "FlipFused(OnnxResNetEmbedder)" in model_signature(engine)


def test_a_dlib_gallery_is_converted_to_sface_from_its_dlib_aligned_chips(
    settings, engine: FaceEngine, dlib_settings, dlib_engine: FaceEngine, database_url: str
) -> None:
    # Made with the default before SFace (dlib, flip-fused): Obama and Biden with chips, Alex without.
    with Gallery.open(dlib_settings, engine=dlib_engine, database_url=database_url) as old:
        obama = old.enroll("Barack Obama", [OBAMA], consent()).person.id
        biden = old.enroll("Joe Biden", [BIDEN], consent()).person.id
    no_chips = dlib_settings.model_copy(
        update={"gallery": dlib_settings.gallery.model_copy(update={"keep_face_chips": False})}
    )
    with Gallery.open(no_chips, engine=dlib_engine, database_url=database_url) as old:
        alex = old.enroll("Alex Lacamoire", [ALEX], consent()).person.id
    assert engine.space == "sface_2021dec"
    with Gallery.open(settings, engine=engine, database_url=database_url) as g:
        assert g.foreign_spaces == {"dlib_resnet_v1_flip": 3}
        with pytest.raises(EmbeddingSpaceMismatch, match="people reembed"):
            g.identify(PROBES / "biden.jpg")
        done = reembed(g, actor="tester")
        assert done.space == "sface_2021dec"
        assert (done.converted, done.people, done.without_chip, done.to_enrol_again) == (2, 2, 1, [alex])
        [converted] = g.template_vectors(obama)
        assert converted.shape == (128,)
        # YuNet's landmarks found again on the 150x150 dlib chip: the same person as enrolling
        # the photo afresh, at a cost (docs/accuracy.md measures it on LFW).
        direct = engine.largest_face(OBAMA).embedding
        assert direct is not None and float(converted @ direct) > 0.75
        for probe, who in ((PROBES / "biden.jpg", biden), (PROBES / "obama.jpg", obama)):
            [face] = g.identify(probe)
            person = face.result.person
            assert face.result.decision == "match" and person is not None and person.person_id == who
