"""A camera playing part of hamilton_clip.mp4 under the app, as `facegate serve` runs it: the console's live
view shows Lin-Manuel Miranda recognised (boxed, named, granted at the stage door), his decision
is in the events, and an admin's manual unlock is on the audit trail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facegate import FaceEngine, Gallery, load_settings
from facegate.events.store import EventStore
from facegate.settings import AccessRule, CameraSettings, DoorSettings
from facegate.web.users import UserStore

from tests.conftest import LIN, ROOT, SECRET, consent
from tests.e2e.conftest import Site, shot, sign_in
from tests.web.console import PASSWORD, ROLES

pytestmark = [pytest.mark.e2e, pytest.mark.video]

HAMILTON = ROOT / "tests" / "data" / "videos" / "hamilton_clip.mp4"


def lin_on_stage(out: Path) -> Path:
    """The clip's 3-6 s, where Lin-Manuel Miranda alone is on stage. A file is processed as fast as
    the machine allows and the live view keeps its newest frame, so the clip ends on him (the
    whole clip ends on the audience, whom no one may take for him)."""
    import av

    from facegate.video.writer import Mp4Writer

    writer = Mp4Writer(out, 30)
    with av.open(str(HAMILTON)) as clip:
        for frame in clip.decode(video=0):
            if frame.time is not None and 3.0 <= frame.time < 6.0:
                writer.write(frame.to_ndarray(format="rgb24"))
    writer.close()
    return out


@pytest.fixture
def stage(engine, tmp_path: Path) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    settings = load_settings(
        data_dir=tmp_path / "data",
        secret_key=SECRET,
        cameras=[CameraSettings(name="stage", source=str(lin_on_stage(tmp_path / "lin.mp4")), fps=5)],
        doors=[
            DoorSettings(
                name="stage",
                cameras=["stage"],
                target_fmr=1e-2,
                rules=[AccessRule(people=["Lin-Manuel Miranda"])],
            )
        ],
    )
    # The session's models under this test's settings.
    engine = FaceEngine(settings, detector=engine.detector, aligner=engine.aligner, embedder=engine.embedder)
    gallery = Gallery.open(settings, engine=engine)
    gallery.enroll("Lin-Manuel Miranda", [LIN], consent(), actor="test")  # type: ignore[arg-type]
    for role in ROLES:
        UserStore(gallery.store).create(role, role, PASSWORD)
    with Site(settings, gallery, background=True) as s:
        yield s
    gallery.close()


def test_live_view_shows_a_recognised_person_and_an_admin_unlocks_the_door(stage: Site, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in(page, stage, "admin", "/cameras")
    expect(page.get_by_role("heading", name="stage").first).to_be_visible()
    caption = page.locator("p.caption").first
    expect(caption).to_contain_text("Lin-Manuel Miranda", timeout=60_000)
    expect(caption).to_contain_text("#")  # the track id
    page.wait_for_function("() => document.querySelector('img.live')?.naturalWidth > 0")
    shot(page, "cameras-live")
    deadline = time.monotonic() + 60
    while not any(
        e.details.get("name") == "Lin-Manuel Miranda"
        for e in EventStore(stage.gallery.store).list(kind="granted")
    ):
        assert time.monotonic() < deadline, "no granted decision for Lin-Manuel Miranda was stored"
        time.sleep(0.5)
    lin = next(
        e
        for e in EventStore(stage.gallery.store).list(kind="granted")
        if e.details["name"] == "Lin-Manuel Miranda"
    )
    assert lin.details["quality"]["size_px"] >= 40  # the decided face's quality, for "why"
    assert lin.details["liveness"] == "off"  # no unlock and no `liveness:`: the door never checks
    page.goto(stage.url + f"/events/{lin.id}")
    expect(page.get_by_role("heading", name="Why recognised")).to_be_visible()
    expect(page.locator("dl.why")).to_contain_text("sharpness")
    shot(page, "event-granted")
    page.goto(stage.url + "/cameras")
    door = page.locator("section", has_text="Cameras: stage")
    expect(door).to_contain_text("Lin-Manuel Miranda")
    expect(door.get_by_role("note")).to_contain_text("grants without checking for a live face")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Unlock now").click()
    expect(page.get_by_role("status")).to_contain_text("stage was unlocked")
    unlock = next(e for e in stage.gallery.audit.entries(20) if e.action == "door_unlock")
    assert unlock.actor == "console:admin" and unlock.details["door"] == "stage"


def test_an_operator_watches_but_cannot_unlock(stage: Site, page: Any) -> None:
    sign_in(page, stage, "operator", "/cameras")
    assert page.get_by_role("button", name="Unlock now").count() == 0
    status = page.evaluate(
        """async () => {
            const csrf = document.querySelector('input[name=csrf]').value;
            const body = new URLSearchParams({csrf});
            return (await fetch('/doors/stage/unlock', {method: 'POST', body})).status;
        }"""
    )
    assert status == 403
    # (The camera may grant Lin-Manuel Miranda meanwhile: that unlock is the door's, not hers.)
    assert not any(
        e.action == "door_unlock" and e.actor.startswith("console:") for e in stage.gallery.audit.entries(50)
    )
