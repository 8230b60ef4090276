"""The web console over HTTP: sessions, roles, CSRF, cookie flags, escaping, and the people
journeys (enrol with consent from an upload, withdraw, erase with its receipt)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from facegate import Gallery
from facegate.events.snapshots import snapshot_store
from facegate.events.store import EventStore
from facegate.web.app import PAGES
from facegate.web.auth import ConsoleRoute
from facegate.web.paths import CONSOLE_ROOTS
from facegate.web.users import UserStore, check_password, hash_password

from tests.conftest import BIDEN, OBAMA, PROBES, consent, need
from tests.web.console import PASSWORD, ROLES, csrf_of, login_token, sign_in

pytestmark = pytest.mark.api

HTML = {"accept": "text/html"}


def enrolled(gallery: Gallery, name: str = "Barack Obama", photo: Path = OBAMA) -> tuple[str, int]:
    result = gallery.enroll(name, [photo], consent(), actor="test")  # type: ignore[arg-type]
    return result.person.id, result.template_ids[0]


def console_routes(client: TestClient | None = None) -> list[tuple[str, str]]:
    """(method, path) of every console route, path parameters filled with something plausible."""
    out = []
    for r in (route for pages in PAGES for route in pages.router.routes):
        if isinstance(r, APIRoute):
            assert isinstance(r, ConsoleRoute), r.path
            path = r.path.replace("{person_id}", "p1").replace("{template_id}", "1")
            path = path.replace("{consent_id}", "1").replace("{event_id}", "1").replace("{name}", "r1")
            path = path.replace("{door}", "front")
            out += [(m, path) for m in sorted(r.methods - {"HEAD"})]
    return out


# --- sessions ----------------------------------------------------------------------------------


def test_passwords_are_kept_as_salted_scrypt_hashes() -> None:
    a, b = hash_password("same password here"), hash_password("same password here")
    assert a != b and a.startswith("scrypt$") and "same password" not in a
    assert check_password("same password here", a) and not check_password("same password herE", a)
    assert not check_password("x", "not a hash")


def test_every_page_and_data_route_refuses_without_a_session(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    routes = console_routes(client)
    assert len(routes) >= 20
    for method, path in routes:
        if path == "/login":
            continue
        r = client.request(method, path, headers=HTML, follow_redirects=False)
        if method == "GET":
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), (
                path,
                r.status_code,
            )
            r = client.get(path, follow_redirects=False)  # not a browser: no redirect, 401
        assert r.status_code == 401, (method, path, r.status_code)
    # A forged or stale cookie is no session either.
    client.cookies.set("__Host-facegate_session", "abc.def", domain="testserver")
    assert client.get("/people", follow_redirects=False).status_code == 401


def test_every_console_route_is_let_through_by_the_api_gate_and_the_api_still_wants_keys(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    for _method, path in console_routes(client):
        assert path.split("/")[1] in CONSOLE_ROOTS, path
    assert client.get("/static/console.css").status_code == 200
    assert client.get("/v1/people").status_code == 401
    sign_in(client, "admin")
    assert client.get("/v1/people").status_code == 401  # a console session is not an API key


def test_session_cookie_flags(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    r = client.post(
        "/login",
        data={"name": "admin", "password": PASSWORD, "csrf": login_token(client)},
        follow_redirects=False,
    )
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("__Host-facegate_session="))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "secure" in flags and flags["samesite"].lower() == "samesite=strict"
    assert flags["path"] == "Path=/"
    # A browser session's cookie (the server ends the session), for this host only.
    assert "max-age" not in flags and "expires" not in flags and "domain" not in flags
    page = client.get("/people")
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing from another host


def test_sign_in_is_rate_limited_and_every_attempt_audited(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    token = login_token(client)
    codes = [
        client.post("/login", data={"name": "admin", "password": f"wrong {i}", "csrf": token}).status_code
        for i in range(6)
    ]
    assert codes == [401] * 5 + [429]
    # Even the right password is refused while the limit holds.
    r = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": token})
    assert r.status_code == 429 and "__Host-facegate_session" not in r.headers.get("set-cookie", "")
    actions = [e.action for e in gallery.audit.entries(20)]
    assert actions.count("console_sign_in_failed") == 5 and "console_sign_in" not in actions
    assert "wrong" not in str([e.details for e in gallery.audit.entries(20)])  # never what was typed


def test_sign_in_needs_its_form_token_and_sign_out_ends_the_session(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    login_token(client)
    r = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403
    s = sign_in(client, "operator")
    cookie = client.cookies.get("__Host-facegate_session")
    assert client.get("/events").status_code == 200
    assert client.post("/logout", data={"csrf": s.csrf}, follow_redirects=False).status_code == 303
    client.cookies.set("__Host-facegate_session", cookie or "", domain="testserver")  # replay the old cookie
    assert client.get("/events", follow_redirects=False).status_code == 401
    actions = [e.action for e in gallery.audit.entries(20)]
    assert "console_sign_in" in actions and "console_sign_out" in actions


def test_a_disabled_user_is_signed_out_at_once(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    sign_in(client, "operator")
    assert client.get("/events").status_code == 200
    UserStore(gallery.store).disable("operator")
    assert client.get("/events", follow_redirects=False).status_code == 401


def test_the_next_page_after_sign_in_stays_on_this_site(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    for target, expected in (
        ("/audit", "/audit"),
        ("//evil.example/x", "/people"),
        ("https://evil.example", "/people"),
    ):
        client.cookies.clear()
        r = client.post(
            "/login",
            data={"name": "admin", "password": PASSWORD, "csrf": login_token(client), "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == expected


# --- CSRF and roles ------------------------------------------------------------------------------


def test_every_state_changing_form_needs_the_session_csrf_token(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    pid, _ = enrolled(gallery)
    s = sign_in(client, "admin")
    posts = [p.replace("/p1", f"/{pid}") for m, p in console_routes(client) if m == "POST" and p != "/login"]
    assert len(posts) >= 9
    for path in posts:
        for data in ({}, {"csrf": "not-the-token"}):
            r = client.post(path, data={**data, "confirm": "Barack Obama", "name": "x"})
            assert r.status_code == 403, (path, data, r.status_code)
            assert "security token" in r.text
    # Nothing happened: the person is still there, with consent, and the session still works.
    assert gallery.person(pid).consent_valid
    assert client.get(f"/people/{pid}").status_code == 200
    assert s.csrf == csrf_of(client.get("/people").text)


ROLE_MATRIX = [
    ("GET", "/people", {"admin"}),
    ("GET", "/people/new", {"admin"}),
    ("GET", "/people/{pid}", {"admin"}),
    ("GET", "/people/{pid}/photos/{tid}.jpg", {"admin"}),
    ("GET", "/people/{pid}/erase", {"admin"}),
    ("POST", "/people/{pid}/erase", {"admin"}),
    ("POST", "/people/{pid}/export", {"admin"}),
    ("GET", "/events", {"admin", "operator"}),
    ("GET", "/cameras", {"admin", "operator"}),
    ("GET", "/audit", {"admin", "auditor"}),
    ("GET", "/evals", {"admin", "auditor"}),
    ("POST", "/audit/purge-dry-run", {"admin", "auditor"}),
]


@pytest.mark.parametrize(("method", "path", "allowed"), ROLE_MATRIX)
def test_each_role_reaches_exactly_its_pages(site, method: str, path: str, allowed: set[str]) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    pid, tid = enrolled(gallery)
    url = path.format(pid=pid, tid=tid)
    for role in ROLES:
        client.cookies.clear()
        s = sign_in(client, role)
        data = {"csrf": s.csrf, "confirm": "not the name"} if method == "POST" else None
        r = client.request(method, url, data=data, follow_redirects=False)
        if role in allowed:
            assert r.status_code in (200, 422), (role, url, r.status_code)  # 422: erase unconfirmed
        else:
            assert r.status_code == 403, (role, url, r.status_code)
            assert "image/jpeg" not in r.headers.get("content-type", "")
    assert gallery.person(pid).templates == 1


def test_enrolment_photos_only_for_admins_and_each_view_audited(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    pid, tid = enrolled(gallery)
    sign_in(client, "admin")
    page = client.get(f"/people/{pid}").text
    assert f"/people/{pid}/photos/{tid}.jpg" in page
    r = client.get(f"/people/{pid}/photos/{tid}.jpg")
    assert r.status_code == 200 and r.content[:3] == b"\xff\xd8\xff"
    assert gallery.audit.entries(1)[0].action == "face_image_read"
    _other, other_tid = enrolled(gallery, "Joe Biden", BIDEN)
    assert client.get(f"/people/{pid}/photos/{other_tid}.jpg").status_code == 404  # not theirs


def test_a_name_is_shown_as_text_never_as_markup(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    pid, _ = enrolled(gallery, name)
    sign_in(client, "admin")
    for path in ("/people", f"/people/{pid}", f"/people/{pid}/erase", "/people?q=%3Cscript%3E"):
        page = client.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(" in page, path


# --- people journeys ------------------------------------------------------------------------------


def _consent_form(**extra: str) -> dict[str, str]:
    return {
        "purpose": "door access, main entrance",
        "expires": (datetime.now(UTC) + timedelta(days=365)).date().isoformat(),
        "recorded_by": "reception",
        "evidence_ref": "form 2026-041",
        **extra,
    }


def test_enrol_needs_a_consent_record_then_withdraw_and_erase(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    s = sign_in(client, "admin")
    photo = {"photos": ("obama.jpg", OBAMA.read_bytes(), "image/jpeg")}
    # No consent record: refused, nobody enrolled.
    r = client.post("/people/new", data={"csrf": s.csrf, "name": "Barack Obama"}, files=photo)
    assert r.status_code == 422 and "purpose" in r.text and gallery.people() == []
    r = client.post(
        "/people/new",
        data={"csrf": s.csrf, "name": "Barack Obama", **_consent_form(purpose=" ")},
        files=photo,
    )
    assert r.status_code == 422 and "purpose" in r.text and gallery.people() == []
    # With one: enrolled, and a photo without a usable face is refused with its reason.
    files = [
        ("photos", ("obama.jpg", OBAMA.read_bytes(), "image/jpeg")),
        ("photos", ("two.jpg", (PROBES / "obama_and_biden.jpg").read_bytes(), "image/jpeg")),
    ]
    r = client.post(
        "/people/new", data={"csrf": s.csrf, "name": "Barack Obama", **_consent_form()}, files=files
    )
    assert r.status_code == 200, r.text
    [person] = gallery.people()
    assert person.templates == 1 and person.consent_valid and person.consent.evidence_ref == "form 2026-041"
    assert "two.jpg" in r.text and "1 refused" in r.text
    assert gallery.identify(PROBES / "obama.jpg")[0].name == "Barack Obama"
    # Withdraw: not recognised any more.
    cid = gallery.consents(person.id)[0].id
    r = client.post(f"/people/{person.id}/consents/{cid}/withdraw", data={"csrf": s.csrf})
    assert r.status_code == 200 and "withdrawn" in r.text
    assert gallery.identify(PROBES / "obama.jpg")[0].name is None
    # Renew, then erase with the receipt shown.
    r = client.post(f"/people/{person.id}/consents", data={"csrf": s.csrf, **_consent_form()})
    assert r.status_code == 200 and gallery.person(person.id).consent_valid
    r = client.post(f"/people/{person.id}/erase", data={"csrf": s.csrf, "confirm": "Barack"})
    assert r.status_code == 422 and gallery.people() != []
    r = client.post(f"/people/{person.id}/erase", data={"csrf": s.csrf, "confirm": "Barack Obama"})
    assert r.status_code == 200 and "Erasure receipt" in r.text
    digest = re.search(r'class="digest">([0-9a-f]{64})<', r.text)
    assert digest and gallery.people() == []
    receipt = next(e for e in gallery.audit.entries(10) if e.action == "erasure_receipt")
    assert receipt.details["digest"] == digest.group(1) and receipt.actor == "console:admin"


def test_export_gives_the_subject_access_zip(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    pid, _ = enrolled(gallery)
    s = sign_in(client, "admin")
    r = client.post(f"/people/{pid}/export", data={"csrf": s.csrf})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert r.headers["content-type"] == "application/zip"


# --- events and audit -------------------------------------------------------------------------------


def test_unknown_visitor_event_with_snapshot_and_why_not_recognised(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    from PIL import Image

    snaps = snapshot_store(gallery.settings, gallery.cipher)
    rel = snaps.save(Image.open(PROBES / "biden.jpg").convert("RGB"))
    details = {
        "door": "front",
        "score": 0.87,
        "threshold": 0.926,
        "target_fmr": 0.001,
        "reason": "below threshold",
        "latency_ms": 1234,
    }
    event = EventStore(gallery.store).add("cam1", "unknown", None, details, snapshot=rel)
    sign_in(client, "operator")
    timeline = client.get("/events?kind=unknown&door=front").text
    assert f"/events/{event.id}/snapshot.jpg" in timeline
    assert "1234 ms" in timeline  # from the face's first frame to the decision
    assert f"/events/{event.id}" not in client.get("/events?door=back").text
    page = client.get(f"/events/{event.id}").text
    assert "below the threshold" in page and "0.926" in page and "0.001" in page and "below threshold" in page
    assert "Enrol this visitor" not in page  # operators may not
    r = client.get(f"/events/{event.id}/snapshot.jpg")
    assert r.status_code == 200 and r.content[:3] == b"\xff\xd8\xff"
    assert gallery.audit.entries(1)[0].action == "snapshot_read"
    # An admin may enrol them, only with a consent record.
    client.cookies.clear()
    s = sign_in(client, "admin")
    assert "Enrol this visitor" in client.get(f"/events/{event.id}").text
    r = client.post(f"/events/{event.id}/enrol", data={"csrf": s.csrf, "name": "Joe Biden"})
    assert r.status_code == 422 and gallery.people() == []
    r = client.post(
        f"/events/{event.id}/enrol", data={"csrf": s.csrf, "name": "Joe Biden", **_consent_form()}
    )
    assert r.status_code == 200, r.text
    [person] = gallery.people()
    assert person.name == "Joe Biden" and person.consent_valid and person.templates == 1


def test_an_unknown_face_two_people_resemble_is_named_to_no_operator(site) -> None:  # type: ignore[no-untyped-def]
    """Two people enrolled with photos of one man, and he comes to the door: "unknown"
    (ambiguous). The operator's timeline, the decision's page and its "why not recognised"
    name neither of them."""
    from facegate.settings import AccessRule, DoorSettings
    from facegate.video.service import LiveService

    from tests.integration.test_privacy import SECOND_OBAMA, present

    need(None if SECOND_OBAMA.is_file() else f"{SECOND_OBAMA} is not there")
    client, gallery = site
    enrolled(gallery)
    enrolled(gallery, "Barry Soetoro", SECOND_OBAMA)
    live = LiveService(gallery, cameras=[])
    try:
        door = DoorSettings(name="back", cameras=["back"], rules=[AccessRule(people=["*"])], liveness="off")
        [decision] = present(gallery, live, door, PROBES / "obama.jpg", 3)
    finally:
        live.bus.close()
    assert (decision.kind, decision.reason) == ("unknown", "ambiguous")
    [event] = EventStore(gallery.store).list(kind="unknown")
    sign_in(client, "operator")
    pages = [client.get("/events"), client.get("/events?kind=unknown"), client.get(f"/events/{event.id}")]
    assert all(p.status_code == 200 for p in pages)
    assert "not accepted" in pages[2].text and "nobody enrolled" in pages[2].text
    for page in pages:
        assert "Obama" not in page.text and "Soetoro" not in page.text


def test_audit_page_checks_the_chain_and_purge_dry_run_removes_nothing(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    enrolled(gallery)
    s = sign_in(client, "auditor")
    page = client.get("/audit").text
    assert "The chain holds" in page and "Retention schedule" in page and "console_sign_in" in page
    r = client.post("/audit/purge-dry-run", data={"csrf": s.csrf})
    assert r.status_code == 200 and "Nothing was removed" in r.text
    assert len(gallery.people()) == 1


def test_evaluation_reports_are_listed_and_opened(site, settings) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    from facegate.eval.report import write

    write(
        settings.data_dir / "reports",
        "verify-lfw",
        "Verification <LFW>",
        {"pairs": 10},
        {"rows": [{"fmr": 0.001}]},
        {},
        ["a note"],
    )
    sign_in(client, "auditor")
    assert "Verification &lt;LFW&gt;" in client.get("/evals").text
    assert "a note" in client.get("/evals/verify-lfw").text
    full = client.get("/evals/verify-lfw.html")
    assert full.status_code == 200 and "sandbox" in full.headers["content-security-policy"]
    assert client.get("/evals/..%2Fsecret").status_code == 404
