"""The vision worker pool: the same answers as in-process, typed errors intact, crashed workers
retried or answered with ServiceBusy, the gallery never half-written, no workers left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.errors import BadImage, NoFaceFound, ServiceBusy, TooManyFaces
from facegate.vision.pool import PooledEngine

from tests.conftest import ALEX, LFW, OBAMA, PROBES, consent

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PooledEngine]:
    from facegate import load_settings

    engine = PooledEngine(load_settings(data_dir=tmp_path_factory.mktemp("pool")), 2)
    engine.pool.warm()
    yield engine
    engine.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not reaped yet) is gone too.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0] != "Z"


def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_same_faces_and_embeddings_as_in_process(engine, pooled: PooledEngine) -> None:  # type: ignore[no-untyped-def]
    group = PROBES / "obama_and_biden.jpg"
    for source in (group, group.read_bytes(), np.asarray(Image.open(group).convert("RGB"))):
        ours, theirs = pooled.analyse(source), engine.analyse(group)
        assert [f.box for f in ours.faces] == [f.box for f in theirs.faces]
        assert ours.image.shape == theirs.image.shape
        for a, b in zip(ours.faces, theirs.faces, strict=True):
            np.testing.assert_array_equal(a.landmarks, b.landmarks)
            np.testing.assert_array_equal(a.chip, b.chip)
            assert a.embedding is not None and b.embedding is not None
            assert float(a.embedding @ b.embedding) > 0.99999
    a, b = pooled.enrolment_face(OBAMA, "obama"), engine.enrolment_face(OBAMA, "obama")
    assert float(a.embedding @ b.embedding) > 0.99999  # type: ignore[operator]
    assert pooled.largest_face(ALEX).box == engine.largest_face(ALEX).box


def test_typed_errors_come_back_as_they_are(engine, pooled: PooledEngine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadImage) as ours:
        pooled.analyse(b"this is not an image")
    with pytest.raises(BadImage) as theirs:
        engine.analyse(b"this is not an image")
    assert (ours.value.code, ours.value.http_status, ours.value.message) == (
        theirs.value.code,
        theirs.value.http_status,
        theirs.value.message,
    )
    with pytest.raises(NoFaceFound, match=r"blank\.png: no face"):
        pooled.enrolment_face(np.full((200, 200, 3), 128, np.uint8), "blank.png")
    with pytest.raises(TooManyFaces) as many:
        pooled.enrolment_face(PROBES / "two_people.jpg", "two.jpg")
    assert many.value.details["faces"] == 2 and many.value.http_status == 422


def slow_analyse(source: Path) -> object:
    """The worker's analysis, two seconds late: a request surely in flight when killed."""
    from facegate.vision import pool

    time.sleep(2.0)
    return pool._analyse(source, None)


def test_a_worker_killed_mid_request_is_retried(engine, pooled: PooledEngine) -> None:  # type: ignore[no-untyped-def]
    result: list[object] = []

    def ask() -> None:
        try:
            result.append(pooled.pool.call(slow_analyse, OBAMA))
        except Exception as exc:  # pragma: no cover - reported below
            result.append(exc)

    before = pooled.pool.restarts
    pids = pooled.pool.pids()
    t = threading.Thread(target=ask)
    t.start()
    time.sleep(0.7)
    for pid in pids:  # whichever has the request
        os.kill(pid, signal.SIGKILL)
    t.join(timeout=120)
    assert not t.is_alive(), "the request hung after its worker died"
    [answer] = result
    assert not isinstance(answer, Exception), answer
    assert pooled.pool.restarts == before + 1
    assert [f.box for f in answer.faces] == [f.box for f in engine.detect(OBAMA).faces]  # type: ignore[attr-defined]
    assert _gone(pids)
    # The fresh pool answers as before.
    assert pooled.largest_face(ALEX).box == engine.largest_face(ALEX).box


def test_a_request_that_kills_every_worker_is_503_not_a_hang(pooled: PooledEngine) -> None:
    before = pooled.pool.restarts
    started = time.monotonic()
    with pytest.raises(ServiceBusy, match="failed twice") as busy:
        pooled.pool.call(os._exit, 3)  # a native crash, as a worker sees it
    assert busy.value.http_status == 503
    assert pooled.pool.restarts == before + 2
    assert time.monotonic() - started < 60
    assert pooled.largest_face(OBAMA).embedding is not None  # and the next request is served


def test_enrolment_with_workers_dying_is_whole_or_absent(settings, pooled: PooledEngine) -> None:  # type: ignore[no-untyped-def]
    from facegate import Gallery

    photos = [LFW / f"Hugh_Grant_000{i}.jpg" for i in (1, 2, 3)]
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set():
            for pid in pooled.pool.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    with Gallery.open(settings, engine=pooled) as gallery:
        k = threading.Thread(target=killer)
        k.start()
        try:
            outcome: object = gallery.enroll("Hugh Grant", photos, consent())
        except ServiceBusy as exc:
            outcome = exc
        finally:
            stop.set()
            k.join()
        people = gallery.people()
        if isinstance(outcome, ServiceBusy):
            assert people == []  # nothing half-written
        else:
            assert len(people) == 1 and len(gallery.templates(people[0].id)) == 3
        # With the workers left alone, the enrolment goes through.
        if not people:
            gallery.enroll("Hugh Grant", photos, consent())
        [person] = gallery.people()
        assert len(gallery.templates(person.id)) == 3
        [hit] = gallery.identify(LFW / "Hugh_Grant_0002.jpg")
        assert hit.result.person is not None and hit.result.person.person_id == person.id


def test_close_leaves_no_workers(tmp_path: Path) -> None:
    from facegate import load_settings

    engine = PooledEngine(load_settings(data_dir=tmp_path), 2)
    pids = engine.pool.warm()
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    engine.close()
    assert _gone(pids, within=1.0)
    with pytest.raises(ServiceBusy, match="shut down"):
        engine.analyse(OBAMA)


def test_liveness_is_judged_in_the_workers_as_in_process(pooled: PooledEngine) -> None:
    """`serve` enrols and verifies through the pool: a printed photo is refused there too."""
    from facegate.errors import PresentationAttack

    from tests.integration.test_liveness import ATTACK, ENROL, nuaa

    with pytest.raises(PresentationAttack):
        pooled.enrolment_face(nuaa(ATTACK[0]), "attack", liveness=True)
    with pytest.raises(PresentationAttack):
        pooled.largest_face(nuaa(ATTACK[1]), "attack", liveness=True)
    live = pooled.enrolment_face(nuaa(ENROL), "resident", liveness=True)
    assert live.embedding is not None
