"""Journeys through the console in Chromium: sign in, enrol with consent from an uploaded photo,
withdraw consent, erase and read the receipt; what an auditor and an operator may not do; an
unknown visitor's event appearing live with its snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from PIL import Image

from facegate.events.bus import EventBus
from facegate.events.metrics import LiveMetrics
from facegate.events.snapshots import redact, snapshot_store
from facegate.events.store import EventStore

from tests.conftest import OBAMA, PROBES, consent
from tests.e2e.conftest import Site, shot, sign_in

pytestmark = pytest.mark.e2e


def _expect(page: Any) -> Any:
    from playwright.sync_api import expect

    return expect(page)


def _loaded(page: Any, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def test_admin_enrols_with_consent_withdraws_and_erases(site: Site, page: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    sign_in(page, site, "admin")
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    page.get_by_role("link", name="Enrol a person").click()
    page.get_by_label("Name", exact=True).fill("Barack Obama")
    page.get_by_label("Purpose").fill("door access, main entrance")
    page.get_by_label("Consent expires on").fill((datetime.now(UTC) + timedelta(days=200)).date().isoformat())
    page.get_by_label("Evidence reference").fill("signed form 2026-041")
    page.get_by_label("Photos").set_input_files(str(OBAMA))
    shot(page, "enrol-form")
    page.get_by_role("button", name="Enrol").click()
    expect(page.get_by_role("heading", name="Barack Obama")).to_be_visible()
    expect(page.locator(".badge").first).to_have_text("valid")
    expect(page.get_by_role("status")).to_contain_text("1 photo(s) enrolled")
    assert _loaded(page, "ul.photos img"), "the enrolment photo did not load for the admin"
    shot(page, "person")
    [person] = site.gallery.people()
    assert person.consent is not None and person.consent.evidence_ref == "signed form 2026-041"
    assert site.gallery.identify(PROBES / "obama.jpg")[0].name == "Barack Obama"

    # The list, searched; and the same page on a phone.
    page.goto(site.url + "/people?q=obama")
    expect(page.get_by_role("link", name="Barack Obama")).to_be_visible()
    shot(page, "people")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.add_cookies(page.context.cookies())
    mobile = phone.new_page()
    mobile.goto(site.url + f"/people/{person.id}")
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "the page scrolls sideways"
    shot(mobile, "person-phone")
    phone.close()

    # Withdraw: asked to confirm, then no longer recognised (hence never granted).
    page.goto(site.url + f"/people/{person.id}")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Withdraw").click()
    expect(page.locator(".badge").first).to_have_text("withdrawn")
    assert site.gallery.identify(PROBES / "obama.jpg")[0].name is None

    # Erase, confirmed by typing the name; the receipt is shown.
    page.get_by_role("link", name="Erase…").click()
    page.get_by_label("Type their name to confirm").fill("Barack Obama")
    page.get_by_role("button", name="Erase for good").click()
    expect(page.get_by_role("heading", name="Erasure receipt")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("no trace was found")
    digest = page.locator("code.digest").inner_text()
    assert len(digest) == 64
    shot(page, "erasure-receipt")
    assert site.gallery.people() == []
    receipt = next(e for e in site.gallery.audit.entries(10) if e.action == "erasure_receipt")
    assert receipt.details["digest"] == digest


def _enrolled(site: Site) -> tuple[str, int]:
    r = site.gallery.enroll("Barack Obama", [OBAMA], consent(), actor="test")  # type: ignore[arg-type]
    return r.person.id, r.template_ids[0]


def test_an_auditor_sees_the_audit_trail_but_no_people_or_photos(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    pid, tid = _enrolled(site)
    sign_in(page, site, "auditor")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.get_by_text("The chain holds")).to_be_visible()
    assert page.get_by_role("link", name="People").count() == 0
    shot(page, "audit")
    for path in ("/people", f"/people/{pid}"):
        r = page.goto(site.url + path)
        assert r is not None and r.status == 403
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        assert "Barack Obama" not in page.content()
    r = page.goto(site.url + f"/people/{pid}/photos/{tid}.jpg")
    assert r is not None and r.status == 403 and r.headers["content-type"].startswith("text/html")
    page.goto(site.url + "/evals")
    expect(page.get_by_role("heading", name="Evaluation reports")).to_be_visible()
    shot(page, "evals")


def test_an_operator_cannot_erase(site: Site, page: Any) -> None:
    pid, _ = _enrolled(site)
    sign_in(page, site, "operator")
    assert page.url.endswith("/events")
    r = page.goto(site.url + f"/people/{pid}/erase")
    assert r is not None and r.status == 403
    # Not even with a valid form token from one of their own pages.
    page.goto(site.url + "/events")
    status = page.evaluate(
        """async (pid) => {
            const csrf = document.querySelector('input[name=csrf]').value;
            const body = new URLSearchParams({csrf, confirm: 'Barack Obama'});
            return (await fetch('/people/' + pid + '/erase', {method: 'POST', body})).status;
        }""",
        pid,
    )
    assert status == 403
    assert [p.id for p in site.gallery.people()] == [pid]


def test_an_unknown_visitors_event_appears_live_with_its_snapshot(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in(page, site, "operator")
    expect(page.locator("table#timeline[data-connected=true]")).to_have_count(1)
    g = site.gallery
    snapshots = snapshot_store(g.settings, g.cipher)
    # The app's own bus wiring: stored, then handed to the SSE hub the console follows.
    bus = EventBus(EventStore(g.store), [site.app.state.hub], LiveMetrics(), snapshots=snapshots)
    try:
        # As the pipeline saves it: the decided face kept, every other face blurred.
        frame = np.asarray(Image.open(PROBES / "obama_and_biden.jpg").convert("RGB"))
        boxes = [f.box for f in g.engine.detect(frame).faces]
        assert len(boxes) >= 2
        visitor = max(boxes, key=lambda b: b.size)
        rel = snapshots.save(redact(frame, visitor, boxes, "others"))
        details = {
            "door": "front",
            "track": 7,
            "name": None,
            "score": 0.871,
            "threshold": 0.926,
            "target_fmr": 0.001,
            "reason": "below threshold",
            "evidence": 3,
            "latency_ms": 420,
        }
        bus.publish("cam1", "unknown", None, details, rel)
        bus.flush()
    finally:
        bus.close()
    row = page.locator("table#timeline tbody tr.new")
    expect(row).to_have_count(1, timeout=30_000)  # a loaded machine: the bus's writer thread, the stream
    expect(row).to_contain_text("unknown visitor")
    expect(row).to_contain_text("0.871 / 0.926")
    page.wait_for_function(
        "() => document.querySelector('tr.new img.thumb')?.naturalWidth > 0", timeout=30_000
    )
    shot(page, "events-live")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Why not recognised")).to_be_visible()
    expect(page.locator("dl.why")).to_contain_text("below threshold")
    page.wait_for_function("() => document.querySelector('img.snapshot')?.naturalWidth > 0")
    shot(page, "event-why")


def test_a_webcam_photo_is_sent_and_a_refusal_explained(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in(page, site, "admin", "/people/new")
    page.get_by_label("Name", exact=True).fill("Test Pattern")
    page.get_by_label("Purpose").fill("door access")
    page.get_by_label("Consent expires on").fill((datetime.now(UTC) + timedelta(days=30)).date().isoformat())
    page.get_by_role("button", name="Use the webcam").click()
    page.get_by_role("button", name="Take the photo").click()
    expect(page.locator("[data-note]")).to_contain_text("1 photo(s) ready")
    assert page.eval_on_selector("#photos", "i => i.files[0].name").startswith("webcam-")
    page.get_by_role("button", name="Enrol").click()
    # Chromium's fake camera shows a test pattern: no face, and the page says so.
    expect(page.get_by_role("alert")).to_contain_text("face")
    assert site.gallery.people() == []


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter((e) => e.type !== 'hidden' && !e.closest('[hidden]'))
    .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label'))
    .map((e) => e.outerHTML)"""
NO_ALT = (
    """() => [...document.querySelectorAll('img')].filter((i) => !i.alt.trim()).map((i) => i.outerHTML)"""
)


def test_every_page_has_labels_alt_texts_one_heading_and_a_skip_link(site: Site, page: Any) -> None:
    pid, _ = _enrolled(site)
    event = EventStore(site.gallery.store).add("cam1", "unknown", None, {"door": "front", "score": 0.5})
    sign_in(page, site, "admin")
    pages = [
        "/people", "/people/new", f"/people/{pid}", f"/people/{pid}/erase", "/events",
        f"/events/{event.id}", "/cameras", "/audit", "/evals",
    ]  # fmt: skip
    for path in pages:
        page.goto(site.url + path)
        assert page.evaluate(UNLABELLED) == [], path
        assert page.evaluate(NO_ALT) == [], path
        assert page.locator("h1").count() == 1 and page.get_attribute("html", "lang") == "en", path
        # The keyboard's first stop skips the navigation.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == "#main", path
