"""What a device, an operator or a stranger can see and forge over HTTP (issue 11's review)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.test_api import api, b64, person_body  # noqa: F401  (api is a fixture)
from tests.api.test_server import photos  # noqa: F401  (a fixture)
from tests.conftest import BIDEN, OBAMA, PROBES

pytestmark = pytest.mark.api


def _consent(scope: list[str], days: int = 400) -> dict[str, object]:
    return {
        "purpose": "door access, renewed",
        "expires_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "recorded_by": "reception",
        "scope": scope,
    }


def test_withdrawing_a_renewal_stops_matching_through_the_older_record(api) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, h, _ = api
    pid = client.post("/v1/people", json=person_body("Barack Obama", OBAMA), headers=h["admin"]).json()[
        "person"
    ]["id"]
    renewed = client.post(f"/v1/people/{pid}/consents", json=_consent(["*"]), headers=h["admin"])
    assert renewed.status_code == 201
    records = client.get(f"/v1/people/{pid}/consents", headers=h["admin"]).json()["consents"]
    r = client.post(f"/v1/people/{pid}/consents/{records[-1]['id']}/withdraw", headers=h["admin"])
    assert r.status_code == 200
    # The renewal covered every use of the record it renewed: both are withdrawn.
    assert r.json()["withdrawn"] == [c["id"] for c in records]
    assert r.json()["person"]["consent"]["valid"] is False
    assert r.json()["person"]["consent"]["in_force_for"] == []
    # What the API shows is what matching uses.
    r = client.post(
        "/v1/identify/base64", json={"image_base64": b64(PROBES / "obama.jpg")}, headers=h["device"]
    )
    assert r.json()["faces"][0]["person"] is None
    r = client.post(
        "/v1/verify",
        json={"image_base64": b64(PROBES / "obama.jpg"), "person_id": pid},
        headers=h["operator"],
    )
    assert r.status_code == 422 and r.json()["code"] == "consent_missing"


def test_a_record_for_other_uses_stays_in_force_and_says_so(api) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, h, _ = api
    body = person_body("Joe Biden", BIDEN)
    body["consent"]["scope"] = ["verify"]  # type: ignore[index]
    pid = client.post("/v1/people", json=body, headers=h["admin"]).json()["person"]["id"]
    client.post(f"/v1/people/{pid}/consents", json=_consent(["identify"]), headers=h["admin"])
    person = client.get(f"/v1/people/{pid}", headers=h["admin"]).json()
    assert person["consent"]["in_force_for"] == ["identify", "verify"]
    r = client.post(
        "/v1/identify/base64", json={"image_base64": b64(PROBES / "biden.jpg")}, headers=h["device"]
    )
    assert r.json()["faces"][0]["person"]["person_id"] == pid
    records = client.get(f"/v1/people/{pid}/consents", headers=h["admin"]).json()["consents"]
    r = client.post(f"/v1/people/{pid}/consents/{records[-1]['id']}/withdraw", headers=h["admin"])
    assert r.json()["withdrawn"] == [records[-1]["id"]]
    assert r.json()["person"]["consent"]["valid"] is True
    assert r.json()["person"]["consent"]["in_force_for"] == ["verify"]
    r = client.post(
        "/v1/identify/base64", json={"image_base64": b64(PROBES / "biden.jpg")}, headers=h["device"]
    )
    assert r.json()["faces"][0]["person"] is None
    r = client.post(
        "/v1/verify",
        json={"image_base64": b64(PROBES / "biden.jpg"), "person_id": pid},
        headers=h["operator"],
    )
    assert r.status_code == 200 and r.json()["same_person"] is True


# --- what a device may submit ---------------------------------------------------------------------


@pytest.fixture
def door_key(api) -> dict[str, str]:  # type: ignore[no-untyped-def]  # noqa: F811
    from facegate.api.keys import KeyStore

    _, _, gallery = api
    return {"Authorization": f"Bearer {KeyStore(gallery.store).create('porch', 'device', ['porch'])[1]}"}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"camera": "porch", "kind": "granted"}, "a decision"),
        ({"camera": "porch", "kind": "unknown"}, "a decision"),
        ({"camera": "porch", "kind": "denied"}, "a decision"),
        ({"camera": "porch", "kind": "camera_state"}, "the pipeline's"),
        ({"camera": "porch", "kind": "doorbell", "person_id": "p1"}, "naming a person"),
        ({"camera": "porch", "kind": "doorbell\nid: 999\nevent: granted"}, "SSE field injection"),
        ({"camera": "porch\nevent: granted", "kind": "doorbell"}, "a newline in the camera"),
        ({"camera": "porch", "kind": "doorbell", "details": {"x": "a\r\nb"}}, "control characters"),
        ({"camera": "porch", "kind": "doorbell", "details": {"x": "a" * 5000}}, "oversize details"),
        (
            {"camera": "porch", "kind": "doorbell", "details": {"a": {"b": {"c": {"d": {"e": 1}}}}}},
            "too deep",
        ),
    ],
)
def test_a_device_cannot_forge_decisions_or_streams(api, door_key, body, why) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, h, _ = api
    r = client.post("/v1/events", json=body, headers=door_key)
    assert r.status_code == 422, (why, r.status_code, r.text)
    assert r.json()["code"] == "invalid_request"
    assert client.get("/v1/events", headers=h["operator"]).json()["events"] == []


def test_non_finite_numbers_are_refused_and_the_stream_stays_json(api, door_key) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import json
    import threading
    import time

    client, h, _ = api
    raw = '{"camera": "porch", "kind": "doorbell", "details": {"level": NaN, "t": Infinity}}'
    r = client.post("/v1/events", content=raw, headers={**door_key, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    for admin_kind in ("granted", "unknown"):  # not even an admin key posts decisions
        assert (
            client.post(
                "/v1/events", json={"camera": "porch", "kind": admin_kind}, headers=h["admin"]
            ).status_code
            == 422
        )
    got: list[str] = []

    def listen() -> None:
        with client.stream("GET", "/v1/events/stream?limit=1", headers=h["operator"]) as s:
            got.extend(s.iter_lines())

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.5)
    ok = client.post(
        "/v1/events",
        json={"camera": "porch", "kind": "doorbell", "details": {"level": 0.5}},
        headers=door_key,
    )
    assert ok.status_code == 201
    t.join(10)
    fields = [line.split(":", 1)[0] for line in got if line and not line.startswith(":")]
    assert fields == ["id", "event", "data"]
    assert json.loads(next(line for line in got if line.startswith("data: "))[6:])["details"] == {
        "level": 0.5
    }


# --- before the body: keys, addresses, admission ------------------------------------------------


class LiveApi:
    """`create_app` served by a real uvicorn on loopback, in a thread of this process."""

    def __init__(self, settings, engine, **overrides: object) -> None:  # type: ignore[no-untyped-def]
        import socket
        import threading
        import time

        import uvicorn

        from facegate import Gallery
        from facegate.api.app import create_app
        from facegate.api.keys import KeyStore

        settings = settings.model_copy(update={"api": settings.api.model_copy(update=overrides)})
        self.gallery = Gallery.open(settings, engine=engine)
        keys = KeyStore(self.gallery.store)
        self.headers = {r: {"Authorization": f"Bearer {keys.create(r, r)[1]}"} for r in ("admin", "operator")}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings, self.gallery), port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def raw(self, head: str, body: bytes = b"", wait: float = 5.0) -> bytes:
        """Send a request's head (and maybe part of its body); what the server answers meanwhile."""
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=wait) as s:
            s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
            try:
                return s.recv(65536)
            except TimeoutError:
                return b""

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.gallery.close()


@pytest.fixture
def live(settings, engine):  # type: ignore[no-untyped-def]
    servers: list[LiveApi] = []

    def start(**overrides: object) -> LiveApi:
        servers.append(LiveApi(settings, engine, **overrides))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_a_stranger_is_refused_on_the_headers_before_any_body(live) -> None:  # type: ignore[no-untyped-def]
    import httpx

    server = live()
    # 50 MB declared, 10 bytes sent: an app that parsed the body first would still be waiting.
    head = "POST /v1/people HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 50000000\n"
    answer = server.raw(head, b'{"name": "')
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    answer = server.raw(head + "Authorization: Bearer fgk_00000000_wrong\n", b'{"name": "')
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # Bad JSON without a key: 401, not a 422 that shows the body was read.
    r = httpx.post(
        f"{server.url}/v1/identify/base64", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_requests_without_a_valid_key_are_limited_by_address(live) -> None:  # type: ignore[no-untyped-def]
    import httpx

    server = live(anonymous_rate_limit="5/minute")
    bad = {"Authorization": "Bearer fgk_00000000_wrong"}
    codes = [httpx.get(f"{server.url}/v1/people", headers=bad).status_code for _ in range(5)]
    assert codes == [401] * 5
    r = httpx.get(f"{server.url}/v1/people", headers=bad)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert httpx.get(f"{server.url}/v1/privacy/policy").status_code == 429
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # probes are never limited


def test_identifications_beyond_the_queue_get_503_before_their_upload(live) -> None:  # type: ignore[no-untyped-def]
    import socket

    import httpx

    server = live(max_pending=1)
    token = server.headers["operator"]["Authorization"]
    # One identification admitted, its upload still under way...
    held = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    held.sendall(
        (
            "POST /v1/identify/base64 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: {token}\r\nContent-Length: 5000000\r\n\r\n"
        ).encode()
        + b'{"image_base64": "'
    )
    try:
        import time

        time.sleep(0.5)
        # ...so the next one is refused at once, without its body being read.
        head = (
            f"POST /v1/identify/base64 HTTP/1.1\nHost: x\nAuthorization: {token}\nContent-Length: 5000000\n"
        )
        answer = server.raw(head, b'{"image_base64": "')
        assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
        assert b"retry-after: 1" in answer.lower()
        # Other routes are not held up.
        assert httpx.get(f"{server.url}/v1/people", headers=server.headers["admin"]).status_code == 200
    finally:
        held.close()
    time.sleep(0.5)
    r = httpx.post(
        f"{server.url}/v1/identify/base64",
        json={"image_base64": b64(OBAMA)},
        headers=server.headers["operator"],
    )
    assert r.status_code == 200


def test_timed_out_identifications_never_start(live) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    import httpx

    from facegate.vision.onnx_runtime import available_cores

    server = live(request_timeout=0.3, max_pending=64)
    photo = b64(PROBES / "obama_and_biden.jpg")
    codes: list[int] = []

    def call() -> None:
        r = httpx.post(
            f"{server.url}/v1/identify/base64",
            json={"image_base64": photo},
            headers=server.headers["operator"],
            timeout=30,
        )
        codes.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(4)  # what was abandoned while running finishes meanwhile
    ran = len(server.gallery.audit.entries(limit=100, action="identify"))
    answered = codes.count(200)
    assert codes.count(504) >= 10 - available_cores() - answered
    # Only those that held a core before their deadline ran; the queued ones were dropped. Beyond
    # those answered: at most one per core still computing at the deadline, and at most one per
    # core that finished just before it but was answered after it (the event loop was busy).
    assert ran <= answered + 2 * available_cores(), (codes, ran)
    assert ran < 10


def test_the_docs_can_be_kept_private(live) -> None:  # type: ignore[no-untyped-def]
    import httpx

    open_docs = live()
    assert httpx.get(f"{open_docs.url}/openapi.json").status_code == 200
    closed = live(public_docs=False)
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert httpx.get(f"{closed.url}{path}").status_code == 404
    assert httpx.get(f"{closed.url}/v1/privacy/policy").status_code == 200  # published on purpose


# --- tiny files that would cost seconds (issue 21) ----------------------------------------------


def test_tiny_bombs_are_refused_before_their_pixels_are_decoded(api) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import base64

    from tests.unit.test_decode import png_bomb

    client, h, _ = api
    for data, status, code in (
        (png_bomb(1, 40_000_000, rows=1), 413, "image_too_large"),  # 1 x 40 MP in 67 bytes
        (png_bomb(6000, 6000), 413, "image_too_large"),  # 36 MP in 4 KB
        (png_bomb(1000, 1000, rows=10), 422, "bad_image"),  # rows missing
    ):
        r = client.post("/v1/identify", files={"file": ("b.png", data, "image/png")}, headers=h["device"])
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = person_body("Nobody", OBAMA)
        body["images_base64"] = [base64.b64encode(data).decode()]
        r = client.post("/v1/people", json=body, headers=h["admin"])
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert client.get("/v1/people", headers=h["admin"]).json()["people"] == []


# --- text that is not UTF-8 (issue 21) ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        r'{"camera": "porch", "kind": "doorbell", "details": {"x": "\ud800"}}',
        r'{"camera": "porch", "kind": "doorbell", "details": {"\udc00": 1}}',
        r'{"camera": "porch", "kind": "doorbell", "details": {"x": [{"y": "ok \udfff"}]}}',
        r'{"camera": "porch\ud800", "kind": "doorbell"}',  # refused by the schema already
    ],
)
def test_text_that_is_not_utf8_is_refused_before_it_is_stored(api, door_key, raw) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, h, _ = api
    for key in (door_key, h["admin"]):
        r = client.post("/v1/events", content=raw, headers={**key, "content-type": "application/json"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", r.text
    listed = client.get("/v1/events", headers=h["operator"])
    assert listed.status_code == 200 and listed.json()["events"] == []
    # A pair of surrogates is one character, and fine.
    ok = raw.replace("\\ud800", "\\ud83d\\ude00").replace("\\udc00", "\\ud83d\\ude00")
    ok = ok.replace("\\udfff", "\\ud83d\\ude00")
    r = client.post("/v1/events", content=ok, headers={**h["admin"], "content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert "\U0001f600" in str(r.json())


def test_one_bad_stored_row_never_breaks_a_listing(api) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from sqlalchemy import update

    from facegate.events.store import EventStore
    from facegate.gallery.schema import EventRow

    client, h, gallery = api
    events = EventStore(gallery.store)
    # Rows an older version stored: a lone surrogate, and details that are no JSON at all.
    lone = events.add("porch", "doorbell", None, {"x": "a\ud800b", "\udc00": 1})
    broken = events.add("porch", "note", None, {"y": 1})
    with gallery.store.write() as s:
        s.execute(update(EventRow).where(EventRow.id == broken.id).values(details="{not json"))
    events.add("porch", "motion", None, {"fine": True})
    r = client.get("/v1/events", headers=h["operator"])
    assert r.status_code == 200, r.text
    by_id = {e["id"]: e for e in r.json()["events"]}
    assert by_id[lone.id]["details"] == {"x": "a\ufffdb", "\ufffd": 1}
    assert by_id[broken.id]["details"] == {"unreadable": True}
    assert len(by_id) == 3


# --- the database goes away under load (issue 21) -------------------------------------------------


@pytest.fixture
def private_pg():  # type: ignore[no-untyped-def]
    """A PostgreSQL server of the test's own, which it may stop and start."""
    from tests.conftest import need
    from tests.support.private_postgres import PrivatePostgres, missing_reason

    need(missing_reason())
    pg = PrivatePostgres()
    yield pg
    pg.close()


def test_a_postgresql_outage_under_load_gives_typed_answers_and_loses_nothing(  # type: ignore[no-untyped-def]
    tmp_path,
    private_pg,
    photos,  # noqa: F811
) -> None:
    from tests.api.test_server import Server

    server = Server(tmp_path / "data", private_pg.url, FACEGATE_WORKERS__PROCESSES="1")
    server.start()
    try:
        _outage_under_load(server, private_pg, photos)
    finally:
        server.stop()


def _outage_under_load(server, private_pg, photos) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import threading
    import time

    import httpx

    from tests.api.test_server import _body, _templates

    answers: list[tuple[str, str, int, str, dict[str, object]]] = []  # phase, route, status, type, body
    acknowledged: dict[str, str] = {}  # person id: name, for every 201
    broken: list[str] = []  # answers that never came
    phase = ["before"]
    done = threading.Event()

    def note(route: str, r: httpx.Response) -> None:
        kind = r.headers.get("content-type", "")
        body = r.json() if kind.startswith("application/") else {"text": r.text[:200]}
        if r.status_code == 503:
            body["retry-after"] = r.headers.get("retry-after")
        answers.append((phase[0], route, r.status_code, kind, body))

    def client(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            n = 0
            while not done.is_set():
                photo = photos[(7 * i + n) % len(photos)]
                try:
                    r = c.post("/v1/people", json=_body(f"client-{i}-{n}", photo), headers=server.admin)
                    note("enrol", r)
                    if r.status_code == 201:
                        acknowledged[r.json()["person"]["id"]] = f"client-{i}-{n}"
                    files = {"file": (photo.name, photo.read_bytes())}
                    note("identify", c.post("/v1/identify", files=files, headers=server.operator))
                    note("people", c.get("/v1/people", headers=server.admin))
                    note("readyz", c.get("/readyz"))
                except httpx.HTTPError as exc:
                    broken.append(f"{phase[0]}: {type(exc).__name__} {exc}")
                n += 1

    clients = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    try:
        for t in clients:
            t.start()
        time.sleep(4)
        phase[0] = "outage"
        private_pg.stop()  # fast shutdown: every connection is cut, new ones are refused
        time.sleep(6)
        private_pg.start()
        phase[0] = "after"
        time.sleep(8)
    finally:
        done.set()
        for t in clients:
            t.join(120)
    assert not broken, broken[:5]
    untyped = [
        a
        for a in answers
        if not (
            a[2] in (200, 201)
            or (
                a[2] == 503
                and a[3] == "application/problem+json"
                and a[4]["code"] == "database_unavailable"
                and a[4]["retry-after"] == "2"
            )
        )
    ]
    assert not untyped, untyped[:5]
    counts = {
        (p, s): sum(1 for a in answers if (a[0], a[2]) == (p, s))
        for p in ("before", "outage", "after")
        for s in (200, 201, 503)
    }
    print("answers by phase and status:", counts)
    outage = [a for a in answers if a[0] == "outage"]
    assert {a[1] for a in outage if a[2] == 503} >= {"enrol", "identify", "people", "readyz"}, counts
    assert not any(a[2] == 503 for a in answers if a[0] == "before"), counts
    after = [a for a in answers if a[0] == "after"]
    assert any(a[1] == "enrol" and a[2] == 201 for a in after), counts
    # Nothing acknowledged is lost: every 201 is stored, and searched.
    with httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/readyz").status_code == 200
        people = c.get("/v1/people", headers=server.admin).json()["people"]
        stored = {p["id"] for p in people}
        assert set(acknowledged) <= stored, set(acknowledged) - stored
        assert _templates(c, server) == sum(p["templates"] for p in people)


# --- the data key rotated under a running service (issue 21) --------------------------------------


def _rotate(server) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "facegate.cli", "keys", "rotate-data-key", "--yes", "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    rotated: dict[str, object] = json.loads(out.stdout)
    return rotated


def _retried(send) -> object:  # type: ignore[no-untyped-def]
    """An answer, after at most one 503 `key_rotated` (a write that raced the rotation)."""
    r = send()
    if r.status_code == 503:
        assert r.json()["code"] == "key_rotated" and r.headers["retry-after"] == "1", r.text
        r = send()
    return r


def test_a_service_follows_a_key_rotated_by_the_cli_from_its_key_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from tests.api.test_server import Server, _body

    server = Server(tmp_path / "data", secret_key=None, FACEGATE_WORKERS__PROCESSES="1")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            obama = c.post("/v1/people", json=_body("Barack Obama", OBAMA), headers=server.admin).json()
            rotated = _rotate(server)
            assert rotated["templates"] == 1 and rotated["new_secret_key"] is None
            # Every kind of request works on, under the new key: no wrong_key, no restart.
            r = _retried(lambda: c.post("/v1/people", json=_body("Joe Biden", BIDEN), headers=server.admin))
            assert r.status_code == 201, r.text  # type: ignore[attr-defined]
            probe = {"file": ("obama.jpg", (PROBES / "obama.jpg").read_bytes())}
            r = c.post("/v1/identify", files=probe, headers=server.operator)
            assert r.status_code == 200, r.text
            assert r.json()["faces"][0]["person"]["person_id"] == obama["person"]["id"]
            assert c.get("/readyz").status_code == 200
            r = c.delete(f"/v1/people/{obama['person']['id']}", headers=server.admin)
            assert r.status_code == 200, r.text
            assert c.get("/v1/audit/verify", headers=server.auditor).json()["ok"] is True
    finally:
        server.stop()


def test_a_service_given_its_key_says_it_is_not_ready_after_a_rotation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from tests.api.test_server import Server, _body

    server = Server(tmp_path / "data", FACEGATE_WORKERS__PROCESSES="1")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            obama = c.post("/v1/people", json=_body("Barack Obama", OBAMA), headers=server.admin).json()
            rotated = _rotate(server)
            probe = {"file": ("obama.jpg", (PROBES / "obama.jpg").read_bytes())}
            for r in (
                c.get("/readyz"),
                c.post("/v1/identify", files=probe, headers=server.operator),
                c.post("/v1/people", json=_body("Joe Biden", BIDEN), headers=server.admin),
                c.delete(f"/v1/people/{obama['person']['id']}", headers=server.admin),
            ):
                assert r.status_code == 503 and r.json()["code"] == "key_rotated", r.text
                assert r.headers["content-type"] == "application/problem+json"
                assert "restart" in r.json()["detail"]
            assert c.get("/healthz").status_code == 200  # alive, only not ready
        server.stop()
        server.env["FACEGATE_SECRET_KEY"] = str(rotated["new_secret_key"])
        server.start()
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post("/v1/identify", files=probe, headers=server.operator)
            assert r.json()["faces"][0]["person"]["person_id"] == obama["person"]["id"]
    finally:
        server.stop()
