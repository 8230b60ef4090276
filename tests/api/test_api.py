"""The REST service over HTTP: roles per route, enrol -> identify -> delete, problem+json errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facegate import Gallery
from facegate.api.app import create_app
from facegate.api.keys import KeyStore
from facegate.events.store import EventStore

from tests.conftest import BIDEN, OBAMA, PROBES, SHARED, need
from tests.unit.test_decode import png_bomb

pytestmark = pytest.mark.api

ROLES = ("admin", "operator", "device", "auditor")
SECOND_OBAMA = SHARED / "faces" / "portraits" / "obama3.jpg"  # another photo of the man in OBAMA


@pytest.fixture
def api(
    settings, engine, database_url: str
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Gallery]]:  # type: ignore[no-untyped-def]
    gallery = Gallery.open(settings, engine=engine, database_url=database_url)
    keys = KeyStore(gallery.store)
    headers = {role: {"Authorization": f"Bearer {keys.create(role, role)[1]}"} for role in ROLES}
    with TestClient(create_app(settings, gallery)) as client:
        yield client, headers, gallery
    gallery.close()


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def person_body(name: str, photo: Path) -> dict[str, object]:
    return {
        "name": name,
        "consent": {
            "purpose": "door access",
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "recorded_by": "reception",
        },
        "images_base64": [b64(photo)],
    }


def test_enrol_identify_delete_over_http(api) -> None:  # type: ignore[no-untyped-def]
    client, h, _ = api
    r = client.post("/v1/people", json=person_body("Barack Obama", OBAMA), headers=h["admin"])
    assert r.status_code == 201, r.text
    pid = r.json()["person"]["id"]
    client.post("/v1/people", json=person_body("Joe Biden", BIDEN), headers=h["admin"])
    with (PROBES / "obama_and_biden.jpg").open("rb") as fh:
        r = client.post("/v1/identify", files={"file": ("p.jpg", fh, "image/jpeg")}, headers=h["device"])
    assert r.status_code == 200, r.text
    names = sorted(f["person"]["name"] for f in r.json()["faces"] if f["person"])
    assert names == ["Barack Obama", "Joe Biden"]
    r = client.post(
        "/v1/verify",
        json={"image_base64": b64(PROBES / "obama.jpg"), "person_id": pid},
        headers=h["operator"],
    )
    assert r.status_code == 200 and r.json()["same_person"]
    r = client.delete(f"/v1/people/{pid}", headers=h["admin"])
    assert r.status_code == 200 and r.json()["templates"] == 1
    receipt = r.json()["receipt"]
    assert receipt["clean"] and receipt["removed"]["templates"] == 1 and len(receipt["digest"]) == 64
    assert client.get(f"/v1/people/{pid}", headers=h["admin"]).status_code == 404
    audit = client.get("/v1/audit", headers=h["auditor"]).json()["entries"]
    assert [e["action"] for e in audit][:5] == [
        "erasure_receipt",
        "erasure",
        "verify_person",
        "identify",
        "enrol",
    ]
    assert audit[0]["details"]["digest"] == receipt["digest"] and pid not in str(audit)
    assert client.get("/v1/audit/verify", headers=h["auditor"]).json()["ok"]


MATRIX = [
    ("GET", "/v1/people", {"admin"}),
    ("POST", "/v1/identify/base64", {"operator", "device"}),
    ("POST", "/v1/verify", {"operator"}),
    ("GET", "/v1/audit", {"auditor"}),
    ("GET", "/v1/events", {"admin", "operator"}),
    ("GET", "/v1/audit/verify", {"auditor"}),
    ("GET", "/metrics", {"admin", "operator", "auditor"}),
    ("POST", "/v1/privacy/purge", {"admin"}),
]


@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX)
def test_each_role_gets_exactly_what_it_should(api, method: str, path: str, allowed: set[str]) -> None:  # type: ignore[no-untyped-def]
    client, h, _ = api
    body = {"image_base64": b64(PROBES / "obama_small.jpg"), "other_base64": b64(PROBES / "obama_small.jpg")}
    assert client.request(method, path, json=body).status_code == 401
    bad = {"Authorization": "Bearer fgk_00000000_nope"}
    assert client.request(method, path, json=body, headers=bad).status_code == 401
    for role in ROLES:
        status = client.request(method, path, json=body, headers=h[role]).status_code
        if role in allowed:
            assert status == 200, (role, path, status)
        else:
            assert status == 403, (role, path, status)


def test_health_checks_are_open(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_revoked_key_is_refused(api) -> None:  # type: ignore[no-untyped-def]
    client, _, gallery = api
    keys = KeyStore(gallery.store)
    key, token = keys.create("door", "device")
    h = {"Authorization": f"Bearer {token}"}
    body = {"image_base64": b64(PROBES / "obama_small.jpg")}
    assert client.post("/v1/identify/base64", json=body, headers=h).status_code == 200
    keys.revoke(key.id)
    assert client.post("/v1/identify/base64", json=body, headers=h).status_code == 401


def test_bad_input_is_problem_json_4xx(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, h, gallery = api
    data = OBAMA.read_bytes()
    cases = {
        "empty": b"",
        "text": b"not an image at all",
        "truncated": data[: len(data) // 3],
        "bomb": png_bomb(30000, 30000),
    }
    for name, payload in cases.items():
        r = client.post("/v1/identify", files={"file": (f"{name}.jpg", payload)}, headers=h["operator"])
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] in ("bad_image", "image_too_large"), (name, r.json())
    r = client.post("/v1/identify/base64", json={"image_base64": "%%%"}, headers=h["operator"])
    assert r.status_code == 422 and r.json()["code"] == "bad_image"
    r = client.post("/v1/people", json={"name": "x"}, headers=h["admin"])
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    body = person_body("Nobody", PROBES / "two_people.jpg")
    r = client.post("/v1/people", json=body, headers=h["admin"])
    assert r.status_code == 422 and r.json()["code"] == "too_many_faces"
    huge = b"0" * (gallery.settings.images.max_bytes * 3 + 10)
    r = client.post("/v1/identify", files={"file": ("big.jpg", huge)}, headers=h["operator"])
    assert r.status_code == 413
    assert gallery.people() == []


def test_detect_and_metrics(api) -> None:  # type: ignore[no-untyped-def]
    client, h, _ = api
    with (PROBES / "two_people.jpg").open("rb") as fh:
        r = client.post("/v1/detect", files={"file": ("p.jpg", fh)}, headers=h["operator"])
    assert r.status_code == 200 and len(r.json()["faces"]) == 2
    text = client.get("/metrics", headers=h["admin"]).text
    assert 'facegate_faces_processed_total{kind="detect"} 2.0' in text
    assert 'facegate_requests_total{method="POST",route="/v1/detect",status="200"} 1.0' in text
    assert "facegate_index_templates 0.0" in text and "facegate_model_load_seconds" in text


def _app_with(settings, engine, database_url, **api):  # type: ignore[no-untyped-def]
    tuned = settings.model_copy(update={"api": settings.api.model_copy(update=api)})
    gallery = Gallery.open(tuned, engine=engine, database_url=database_url)
    token = KeyStore(gallery.store).create("door", "operator")[1]
    return TestClient(create_app(tuned, gallery)), {"Authorization": f"Bearer {token}"}, gallery


def test_rate_limit_per_key(settings, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, h, gallery = _app_with(settings, engine, f"sqlite:///{tmp_path / 'g.db'}", rate_limit="3/minute")
    with client:
        codes = [client.get("/metrics", headers=h).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = client.get("/metrics", headers=h)
        assert r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    gallery.close()


def test_slow_requests_answer_504(settings, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, h, gallery = _app_with(settings, engine, f"sqlite:///{tmp_path / 'g.db'}", request_timeout=0.001)
    with client, (PROBES / "obama_and_biden.jpg").open("rb") as fh:
        r = client.post("/v1/identify", files={"file": ("p.jpg", fh)}, headers=h)
        assert r.status_code == 504 and r.json()["code"] == "timeout"
    gallery.close()


def test_update_person_and_renew_consent(api) -> None:  # type: ignore[no-untyped-def]
    client, h, gallery = api
    pid = client.post("/v1/people", json=person_body("Joe", BIDEN), headers=h["admin"]).json()["person"]["id"]
    r = client.patch(
        f"/v1/people/{pid}", json={"name": "Joe Biden", "external_id": "E-42"}, headers=h["admin"]
    )
    assert r.status_code == 200 and r.json()["name"] == "Joe Biden" and r.json()["external_id"] == "E-42"
    renewal = {
        "purpose": "door access, renewed",
        "expires_at": (datetime.now(UTC) + timedelta(days=400)).isoformat(),
        "recorded_by": "reception",
        "evidence_ref": "form 17",
    }
    assert client.post(f"/v1/people/{pid}/consents", json=renewal, headers=h["admin"]).status_code == 201
    consents = client.get(f"/v1/people/{pid}/consents", headers=h["admin"]).json()["consents"]
    assert [c["purpose"] for c in consents] == ["door access", "door access, renewed"]
    expired = {**renewal, "expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    r = client.post(f"/v1/people/{pid}/consents", json=expired, headers=h["admin"])
    assert r.status_code == 422 and r.json()["code"] == "consent_expired"
    assert client.patch("/v1/people/nobody", json={"name": "x"}, headers=h["admin"]).status_code == 404
    assert client.patch(f"/v1/people/{pid}", json={"name": "x"}, headers=h["operator"]).status_code == 403
    [face] = gallery.identify(PROBES / "biden.jpg")
    assert face.name == "Joe Biden"


SNAPSHOT = Path(__file__).parent / "openapi.snapshot.json"


def test_openapi_schema_matches_the_snapshot(api) -> None:  # type: ignore[no-untyped-def]
    """The served API is a contract: a change to it must be a deliberate change to the snapshot
    (regenerate with FACEGATE_UPDATE_SNAPSHOT=1)."""
    import json
    import os

    client, _, _ = api
    served = client.get("/openapi.json").json()
    if os.environ.get("FACEGATE_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(served, indent=2, sort_keys=True) + "\n")
    assert served == json.loads(SNAPSHOT.read_text()), (
        "OpenAPI schema changed: review, then regenerate the snapshot"
    )


def test_edge_inputs_are_problem_json_4xx(api) -> None:  # type: ignore[no-untyped-def]
    client, h, gallery = api
    r = client.get("/v1/nothing-here", headers=h["admin"])
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/people/%00", headers=h["admin"]).status_code == 422
    assert client.get("/v1/audit?action=%00", headers=h["auditor"]).status_code == 422
    body = person_body("Null\u0000Byte", BIDEN)
    assert client.post("/v1/people", json=body, headers=h["admin"]).status_code == 422
    for field, value in (
        ("expires_at", "9999-12-31T23:00:00-05:00"),
        ("given_at", "0001-01-01T00:00:00+05:00"),
    ):
        body = person_body("Joe Biden", BIDEN)
        body["consent"][field] = value  # type: ignore[index]
        r = client.post("/v1/people", json=body, headers=h["admin"])
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (field, r.text)

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * (gallery.settings.api.max_request_bytes // 4)

    r = client.post(
        "/v1/identify/base64", content=chunks(), headers={**h["operator"], "content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"
    assert gallery.people() == []


def test_unknown_faces_do_not_reveal_who_they_resemble(api) -> None:  # type: ignore[no-untyped-def]
    client, h, _ = api
    client.post("/v1/people", json=person_body("Barack Obama", OBAMA), headers=h["admin"])
    with (PROBES / "biden.jpg").open("rb") as fh:
        [face] = client.post("/v1/identify", files={"file": ("b.jpg", fh)}, headers=h["device"]).json()[
            "faces"
        ]
    assert face["decision"] == "unknown" and face["person"] is None and face["candidates"] == []


def test_an_unknown_face_names_nobody_even_when_two_enrolled_people_look_like_it(api) -> None:  # type: ignore[no-untyped-def]
    """Two people enrolled with photos of one man: his face is ambiguous, hence unknown, and
    every route answers so without a name or a score of either, whoever asks."""
    need(None if SECOND_OBAMA.is_file() else f"{SECOND_OBAMA} is not there")
    client, h, _ = api
    for name, photo in (("Barack Obama", OBAMA), ("Barry Soetoro", SECOND_OBAMA)):
        assert client.post("/v1/people", json=person_body(name, photo), headers=h["admin"]).status_code == 201
    probe = PROBES / "obama.jpg"
    for role in ("device", "operator"):  # the roles that may identify
        answers = [
            client.post("/v1/identify", files={"file": ("o.jpg", probe.read_bytes())}, headers=h[role]),
            client.post("/v1/identify/base64", json={"image_base64": b64(probe)}, headers=h[role]),
        ]
        for r in answers:
            assert r.status_code == 200, r.text
            [face] = r.json()["faces"]
            assert (face["decision"], face["reason"], face["person"]) == ("unknown", "ambiguous", None)
            assert face["candidates"] == [], f"a {role} key was told whom the stranger resembles"
            assert "Obama" not in r.text and "Soetoro" not in r.text


def test_events_by_camera_scoped_device_keys(api) -> None:  # type: ignore[no-untyped-def]
    client, h, gallery = api
    token = KeyStore(gallery.store).create("front door", "device", ["front-door"])[1]
    door = {"Authorization": f"Bearer {token}"}
    pid = client.post("/v1/people", json=person_body("Joe Biden", BIDEN), headers=h["admin"]).json()[
        "person"
    ]["id"]
    ok = client.post(
        "/v1/events",
        json={"camera": "front-door", "kind": "doorbell", "details": {"button": 1}},
        headers=door,
    )
    assert ok.status_code == 201 and ok.json()["camera"] == "front-door"
    other = client.post("/v1/events", json={"camera": "garage", "kind": "motion"}, headers=door)
    assert other.status_code == 403
    assert (
        client.post(
            "/v1/events", json={"camera": "front-door", "kind": "doorbell"}, headers=h["device"]
        ).status_code
        == 403
    )
    client.post("/v1/events", json={"camera": "garage", "kind": "motion"}, headers=h["admin"])
    # A decision of facegate's own pipeline names the person.
    EventStore(gallery.store).add("front-door", "granted", pid, {"door": "front", "score": 0.95})
    listed = client.get("/v1/events", params={"camera": "front-door"}, headers=h["operator"]).json()["events"]
    assert [(e["kind"], e["person_id"]) for e in listed] == [("granted", pid), ("doorbell", None)]
    assert len(client.get("/v1/events", headers=h["operator"]).json()["events"]) == 3
    assert (
        client.get("/v1/events", params={"kind": "motion"}, headers=h["operator"]).json()["events"][0][
            "camera"
        ]
        == "garage"
    )
    assert client.get("/v1/events", headers=h["auditor"]).status_code == 403
    assert client.get("/v1/events", headers=door).status_code == 403
    deleted = client.delete(f"/v1/people/{pid}", headers=h["admin"]).json()
    assert deleted["templates"] == 1
    assert client.get("/v1/events", params={"person_id": pid}, headers=h["operator"]).json()["events"] == []


def test_event_stream_and_snapshots_over_http(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    from PIL import Image

    from facegate.events.snapshots import SnapshotStore
    from facegate.events.store import EventStore

    client, h, gallery = api
    got: list[str] = []

    def listen() -> None:
        with client.stream("GET", "/v1/events/stream?limit=1&kind=doorbell", headers=h["operator"]) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            got.extend(r.iter_lines())

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.5)
    client.post("/v1/events", json={"camera": "gate", "kind": "note"}, headers=h["admin"])  # filtered out
    r = client.post("/v1/events", json={"camera": "gate", "kind": "doorbell"}, headers=h["admin"])
    t.join(10)
    assert not t.is_alive()
    eid = r.json()["id"]
    assert f"id: {eid}" in got and "event: doorbell" in got
    data = json.loads(next(line for line in got if line.startswith("data: "))[6:])
    assert data["kind"] == "doorbell" and data["camera"] == "gate"
    assert client.get("/v1/events/stream", headers=h["device"]).status_code == 403

    # A decision's snapshot: decrypted for operators, 404 once it is gone, audited.
    snaps = SnapshotStore(gallery.settings.snapshots_dir, gallery.cipher)
    rel = snaps.save(Image.new("RGB", (64, 48), (200, 10, 10)))
    event = EventStore(gallery.store).add("gate", "unknown", None, {"door": "front"}, snapshot=rel)
    r = client.get(f"/v1/events/{event.id}/snapshot", headers=h["operator"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert client.get(f"/v1/events/{event.id}/snapshot", headers=h["device"]).status_code == 403
    assert client.get(f"/v1/events/{eid}/snapshot", headers=h["operator"]).status_code == 404
    snaps.delete(rel)
    r = client.get(f"/v1/events/{event.id}/snapshot", headers=h["operator"])
    assert r.status_code == 404 and r.json()["code"] == "snapshot_not_found"
    assert [e.action for e in gallery.audit.entries(10)][:1] == ["snapshot_read"]
    assert client.get("/v1/cameras", headers=h["operator"]).json() == {"cameras": []}


def test_consent_withdrawal_export_and_retention_over_http(api) -> None:  # type: ignore[no-untyped-def]
    import io
    import zipfile

    client, h, _ = api
    body = person_body("Barack Obama", OBAMA)
    body["consent"]["scope"] = ["door:front", "identify"]  # type: ignore[index]
    pid = client.post("/v1/people", json=body, headers=h["admin"]).json()["person"]["id"]
    records = client.get(f"/v1/people/{pid}/consents", headers=h["admin"]).json()["consents"]
    assert records[0]["scope"] == ["door:front", "identify"]
    r = client.post("/v1/identify/base64", json={"image_base64": b64(OBAMA)}, headers=h["device"])
    assert r.json()["faces"][0]["person"]["person_id"] == pid
    # Verification is not in this consent's scope: refused, not silently done.
    r = client.post("/v1/verify", json={"image_base64": b64(OBAMA), "person_id": pid}, headers=h["operator"])
    assert r.status_code == 422 and r.json()["code"] == "consent_missing"
    r = client.post(f"/v1/people/{pid}/consents/{records[0]['id']}/withdraw", headers=h["admin"])
    assert r.status_code == 200 and r.json()["withdrawn"] == [records[0]["id"]]
    assert r.json()["person"]["consent"]["valid"] is False
    r = client.post("/v1/identify/base64", json={"image_base64": b64(OBAMA)}, headers=h["device"])
    assert r.json()["faces"][0]["person"] is None
    assert (
        client.post(f"/v1/people/{pid}/consents/{records[0]['id']}/withdraw", headers=h["admin"]).status_code
        == 404
    )
    # Subject access: a zip with a README, for admins only.
    r = client.get(f"/v1/people/{pid}/export", headers=h["admin"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert {"README.txt", "person.json", "consents.json", "templates.json", "audit.json"} <= set(
            z.namelist()
        )
        assert json.loads(z.read("person.json"))["id"] == pid
    assert client.get(f"/v1/people/{pid}/export", headers=h["operator"]).status_code == 403
    # The retention schedule is public; the purge is an admin's, and a dry run by default.
    policy = client.get("/v1/privacy/policy").json()["retention"]
    assert any("unknown visitors" in r["data"] for r in policy)
    r = client.post("/v1/privacy/purge", headers=h["admin"])
    assert r.status_code == 200 and r.json()["dry_run"] is True and r.json()["people"] == 0
