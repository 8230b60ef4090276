"""The console's security review, finding by finding: sessions and cookies, sign-in limits,
the gate in front of console uploads, the live stream's session, and what is logged or shown."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import logging
import secrets
import socket
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from uvicorn.logging import AccessFormatter

from facegate.access.actions import DoorActuator
from facegate.api.deps import Threads
from facegate.api.schemas import MAX_IMAGES
from facegate.cli.access_log import uvicorn_log_config
from facegate.events.store import Event
from facegate.events.webhook import DeliveryFailed, origin, post_signed
from facegate.gallery.crypto import TemplateCipher
from facegate.gallery.schema import ConsoleUserRow
from facegate.settings import DoorSettings, WebSettings
from facegate.video.pipeline import FrameResult
from facegate.video.preview import LatestFrames
from facegate.video.sources import Frame
from facegate.web.attempts import Attempts, client_network
from facegate.web.console import Console
from facegate.web.sessions import Sessions
from facegate.web.users import UserStore, hash_password

from tests.web.console import PASSWORD, login_token, sign_in

pytestmark = pytest.mark.api

SESSION = "__Host-facegate_session"


class Clock:
    """Stands in for the `time` module in facegate.web.sessions: time moves when told."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


# --- sessions and cookies (findings 6, 8, 9, 13) -------------------------------------------------


def test_a_non_ascii_cookie_is_no_session_not_a_server_error(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    assert Sessions(1).read(b"k" * 32, "a.é") is None
    r = client.get("/people", headers={"cookie": f"{SESSION}=a.é".encode()}, follow_redirects=False)
    assert r.status_code == 401, r.text


def test_cookies_carry_the_host_prefix_only_when_secure() -> None:
    assert Console(WebSettings()).session_cookie == "__Host-facegate_session"
    assert Console(WebSettings()).login_cookie == "__Host-facegate_login"
    plain = Console(WebSettings(secure_cookies=False))
    assert (plain.session_cookie, plain.login_cookie) == ("facegate_session", "facegate_login")


def test_signing_in_again_ends_the_session_the_browser_had(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    sign_in(client, "admin")
    old = client.cookies.get(SESSION) or ""
    client.cookies.clear()
    token = login_token(client)
    form = client.cookies.get("__Host-facegate_login")
    client.cookies.clear()
    # The sign-in form posted by a browser that still holds the admin's session.
    r = client.post(
        "/login",
        data={"name": "operator", "password": PASSWORD, "csrf": token},
        headers={"cookie": f"__Host-facegate_login={form}; {SESSION}={old}"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and client.cookies.get(SESSION) not in (None, old)
    client.cookies.clear()
    assert (
        client.get("/people", headers={"cookie": f"{SESSION}={old}"}, follow_redirects=False).status_code
        == 401
    )


def test_an_idle_session_ends_and_each_request_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr("facegate.web.sessions.time", clock)
    sessions, key = Sessions(hours=12, idle_minutes=30), b"k" * 32
    s, cookie = sessions.start(key, "u1")
    for _ in range(4):  # two hours of use, a request every 25 minutes
        clock.now += 25 * 60
        assert sessions.read(key, cookie) == s
    clock.now += 31 * 60
    assert not sessions.alive(s.token)
    assert sessions.read(key, cookie) is None
    # The absolute expiry holds however busy the session is.
    s, cookie = sessions.start(key, "u1")
    for _ in range(12 * 6):
        clock.now += 10 * 60
    assert sessions.read(key, cookie) is None


def test_the_signing_key_follows_the_data_key_not_the_objects_address() -> None:
    console = Console(WebSettings())
    holder = SimpleNamespace(cipher=TemplateCipher("first secret, long enough"))
    first = console.key(holder)  # type: ignore[arg-type]
    old_id = id(holder.cipher)
    holder.cipher = None  # type: ignore[assignment]
    kept = []  # ciphers not at the old address stay alive, so the next one may land there
    for _ in range(1000):
        c = TemplateCipher("second secret, long enough")
        if id(c) == old_id:
            holder.cipher = c
            break
        kept.append(c)
    else:
        holder.cipher = TemplateCipher("second secret, long enough")
    assert console.key(holder) != first  # type: ignore[arg-type]
    assert console.key(holder) == TemplateCipher("second secret, long enough").derive("console session v1")


# --- sign-in (findings 2, 5, 7) ------------------------------------------------------------------


def test_a_parallel_burst_of_wrong_passwords_is_held_to_the_limit(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    token = login_token(client)
    codes: list[int] = []

    def attempt(i: int) -> None:
        r = client.post("/login", data={"name": "admin", "password": f"wrong {i}", "csrf": token})
        codes.append(r.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [401] * 5 + [429] * 7
    actions = [e.action for e in gallery.audit.entries(50)]
    assert actions.count("console_sign_in_failed") == 5 and actions.count("console_sign_in_refused") == 7


def test_at_most_two_password_checks_run_at_once(site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    client.app.state.threads = Threads(8, 30.0)  # a pool wider than the sign-in's own bound
    running = peak = 0
    lock = threading.Lock()
    check = UserStore.authenticate

    def counted(self: UserStore, name: str, password: str) -> object:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return check(self, name, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(UserStore, "authenticate", counted)
    token = login_token(client)

    def attempt(i: int) -> None:  # a different name each: no rate limit refuses any
        client.post("/login", data={"name": f"user{i}", "password": "wrong", "csrf": token})

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 2


def test_strangers_guessing_a_name_do_not_lock_its_user_out_from_elsewhere(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    token = login_token(client)
    for i in range(6):
        client.post("/login", data={"name": "admin", "password": f"wrong {i}", "csrf": token})
    app = client.app
    with TestClient(app, base_url="https://testserver", client=("203.0.113.9", 50000)) as other:
        sign_in(other, "admin")  # the real admin, from another address
    # A success gives its count back; a name-wide limit still holds a distributed guesser.
    limit = Attempts("3/hour", "t")
    for _ in range(3):
        limit.give_back("admin", limit.hit("admin", "x"))
    for _ in range(3):
        limit.hit("admin", "x")
    with pytest.raises(Exception, match="rate limit of 3/hour"):
        limit.hit("admin", "x")


def test_an_ipv6_client_is_limited_by_its_64() -> None:
    assert (
        client_network("2001:db8:1:2:aaaa::1")
        == client_network("2001:db8:1:2:bbbb::7")
        == "2001:db8:1:2::/64"
    )
    assert client_network("2001:db8:1:3::1") != client_network("2001:db8:1:2::1")
    assert client_network("192.0.2.7") == "192.0.2.7" == client_network("::ffff:192.0.2.7")
    assert client_network("testclient") == "testclient"


def test_a_weaker_stored_hash_is_redone_at_sign_in(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    assert hash_password("x" * 12).split("$")[1:4] == [str(2**17), "8", "1"]
    salt = secrets.token_bytes(16)
    weak = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    stored = f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(weak).decode()}"
    with gallery.store.write() as s:
        row = s.scalars(select(ConsoleUserRow).where(ConsoleUserRow.name == "auditor")).one()
        row.password_hash = stored
    sign_in(client, "auditor")
    with gallery.store.session() as s:
        now = s.scalars(select(ConsoleUserRow.password_hash).where(ConsoleUserRow.name == "auditor")).one()
    assert now != stored and now.split("$")[1] == str(2**17)
    assert UserStore(gallery.store).authenticate("auditor", PASSWORD) is not None


# --- the gate in front of console forms (finding 1) ----------------------------------------------


def _post_unread(app: object, path: str, cookie: str = "") -> tuple[int, bool]:
    """POST `path` straight to the ASGI app with a 1 MiB multipart body declared: the status,
    and whether anything read the body."""
    read = False
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal read
        read = True
        return {"type": "http.request", "body": b"x" * 2**20, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=b")]
    headers += [(b"content-length", str(2**20).encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("198.51.100.7", 40000),
        "server": ("testserver", 443),
        "app": app,
    }
    # In a thread of its own: Playwright's tests (tests/e2e, run before these) leave an event loop
    # running in the main thread, where asyncio.run refuses to start another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), read  # type: ignore[call-overload]


def test_a_console_form_without_a_session_is_refused_unread_and_counted(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    for path in ("/people/new", "/people/p1/photos", "/events/1/enrol", "/logout"):
        assert _post_unread(client.app, path) == (401, False), path
        assert _post_unread(client.app, path, f"{SESSION}=forged.cookie") == (401, False), path
    # Counted as anonymous requests from that address: a stranger is soon refused outright.
    codes = [_post_unread(client.app, "/people/new")[0] for _ in range(60)]
    assert codes[-1] == 429 and set(codes) == {401, 429}
    # With a live session the form goes through to the route (which wants its CSRF token).
    sign_in(client, "admin")
    r = client.post("/people/new", data={"name": "x"}, follow_redirects=False)
    assert r.status_code == 403


def test_the_sign_in_form_is_small_and_counted_by_address(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    token = login_token(client)
    big = {"name": "admin", "password": "p" * 20_000, "csrf": token}
    assert client.post("/login", data=big).status_code == 413
    # Streamed without a declared length, it is cut off just the same.
    body = f"name=admin&csrf={token}&password={'p' * 20_000}".encode()

    def chunks():  # type: ignore[no-untyped-def]
        yield from (body[i : i + 4096] for i in range(0, len(body), 4096))

    r = client.post("/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    forged = {"name": "admin", "password": "x", "csrf": "forged"}  # refused before any password check
    codes = [client.post("/login", data=forged).status_code for _ in range(60)]
    assert (
        set(codes) == {403, 429}
        and codes[-1] == 429
        and "retry-after" in {k.lower() for k in client.post("/login", data=big).headers}
    )


# --- the live stream lasts as long as its session (finding 3) ------------------------------------


@pytest.mark.parametrize("ending", ["sign-out", "disabled"])
def test_an_open_live_stream_ends_with_its_session(
    site, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    monkeypatch.setattr("facegate.web.routes.events.USER_CHECK_S", 0.0)  # ask at every frame
    s = sign_in(client, "operator")
    hub = client.app.state.hub
    got: list[str] = []

    def listen() -> None:
        with client.stream("GET", "/events/live") as r:
            assert r.status_code == 200
            got.extend(r.iter_lines())

    def event(i: int) -> Event:
        return Event(i, datetime.now(UTC), "gate", "unknown", None, {})

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.5)
    hub.deliver(event(101))
    time.sleep(0.3)
    if ending == "sign-out":
        assert client.post("/logout", data={"csrf": s.csrf}, follow_redirects=False).status_code == 303
    else:
        UserStore(gallery.store).disable("operator")
    hub.deliver(event(102))
    t.join(10)
    assert not t.is_alive(), "the stream outlived its session"
    assert "id: 101" in got and "id: 102" not in got
    assert hub.clients == 0


# --- what is shown and logged (findings 11, 12) --------------------------------------------------


def test_a_failed_unlock_names_the_webhook_by_its_origin_only() -> None:
    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/s3cr3t-path-token?key=s3cr3t-query-token"
    secret = "a webhook secret, long enough"
    door = DoorSettings.model_validate(
        {
            "name": "front",
            "cameras": ["cam"],
            "unlock": {"webhook_url": url, "webhook_secret": secret, "allow_http": True},
        }
    )
    with pytest.raises(DeliveryFailed) as failed:
        post_signed(httpx.Client(), url, secret.encode(), {}, event="unlock", retries=0, timeout=3.0)
    assert "http://127.0.0.1" in str(failed.value) and "s3cr3t" not in str(failed.value)
    with pytest.raises(RuntimeError) as unlocked:
        DoorActuator(door).unlock("console:admin")
    assert "webhook http://127.0.0.1" in str(unlocked.value) and "s3cr3t" not in str(unlocked.value)
    assert origin("not a url") == "(invalid URL)"


def test_the_access_log_never_shows_a_query_string() -> None:
    config = uvicorn_log_config()
    assert config["loggers"]["uvicorn.access"]["filters"] == ["no_query"]
    no_query = config["filters"]["no_query"]["()"]()
    args = ("192.0.2.7:50000", "GET", "/people?q=Barack%20Obama", "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', args, None)
    assert no_query.filter(record)
    line = AccessFormatter("%(client_addr)s - %(request_line)s %(status_code)s", use_colors=False).format(
        record
    )
    assert "/people" in line and "Obama" not in line and "?" not in line


# --- looking at live frames is audited, however they are asked for (finding 4) -------------------


def test_polling_a_live_frame_directly_is_audited_once_per_session_and_camera(
    site, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    frames = LatestFrames()
    for camera in ("gate", "yard"):
        image = np.zeros((120, 160, 3), np.uint8)
        frames.hook(camera)(FrameResult(Frame(image, 1, 0.0, time.monotonic()), [], {}, [], 0.01))
    client.app.state.live = SimpleNamespace(preview=frames, actuators={}, status=lambda: [])
    sign_in(client, "operator")

    def looks() -> list[object]:
        return [e.details for e in gallery.audit.entries(100) if e.action == "live_view"]

    for _ in range(5):
        assert client.get("/cameras/gate/live.jpg").status_code == 200
        assert client.get("/cameras/gate/live.json").json() == {"faces": []}
    assert looks() == [{"camera": "gate"}]
    client.get("/cameras/yard/live.jpg")
    assert len(looks()) == 2
    monkeypatch.setattr("facegate.web.console.LIVE_VIEW_AUDIT_S", 0.0)  # minutes later
    client.get("/cameras/gate/live.jpg")
    assert len(looks()) == 3


# --- uploads (finding 10) ------------------------------------------------------------------------


def test_more_photos_than_the_api_allows_are_refused_before_reading(site) -> None:  # type: ignore[no-untyped-def]
    client, gallery = site
    s = sign_in(client, "admin")
    form = {
        "csrf": s.csrf,
        "name": "Too Many",
        "purpose": "door access",
        "expires": "2099-01-01",
        "recorded_by": "reception",
    }
    photos = [("photos", (f"p{i}.jpg", b"not a photo", "image/jpeg")) for i in range(MAX_IMAGES + 1)]
    r = client.post("/people/new", data=form, files=photos)
    assert r.status_code == 422 and f"at most {MAX_IMAGES} photos at once" in r.text
    assert gallery.people() == []


# --- strangers locking a user out (issue 21) ------------------------------------------------------


def test_strangers_filling_the_name_limit_do_not_lock_out_a_browser_that_signed_in_before(  # type: ignore[no-untyped-def]
    settings, engine, tmp_path
) -> None:
    from facegate import Gallery
    from facegate.api.app import create_app

    from tests.web.console import ROLES

    web = settings.web.model_copy(
        update={"sign_in_rate_limit": "3/minute", "sign_in_name_rate_limit": "6/hour"}
    )
    settings = settings.model_copy(update={"web": web})
    gallery = Gallery.open(settings, engine=engine, database_url=f"sqlite:///{tmp_path / 'g.db'}")
    for role in ROLES:
        UserStore(gallery.store).create(role, role, PASSWORD)
    app = create_app(settings, gallery)

    def browser(address: str) -> TestClient:
        return TestClient(app, base_url="https://testserver", client=(address, 50000))

    try:
        with browser("198.51.100.1") as laptop:
            signed = sign_in(laptop, "admin")  # the real admin's browser, some day before
            known = laptop.cookies["__Host-facegate_known"]
            assert (
                laptop.post("/logout", data={"csrf": signed.csrf}, follow_redirects=False).status_code == 303
            )
        # Strangers from three addresses fill the name-wide limit (and each address's own).
        codes = []
        for n in range(3):
            with browser(f"203.0.113.{n}") as stranger:
                token = login_token(stranger)
                for i in range(3):
                    r = stranger.post(
                        "/login", data={"name": "admin", "password": f"guess {i}", "csrf": token}
                    )
                    codes.append(r.status_code)
        assert codes == [401] * 6 + [429] * 3
        # A new browser at a new address: the name is held (a distributed guesser gets no further)...
        with browser("192.0.2.50") as fresh:
            r = fresh.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": login_token(fresh)})
            assert r.status_code == 429
        # ...but the admin's own browser, from a new address, with the right password, gets in.
        with browser("192.0.2.77") as laptop:
            laptop.cookies.set("__Host-facegate_known", known, domain="testserver.local")
            sign_in(laptop, "admin")
        # The known-browser token does not lift the limits for anyone else, or for wrong passwords:
        # it is held to the per-address limit, counted per token from anywhere.
        codes = []
        for n in range(3):
            with browser(f"192.0.2.{100 + n}") as thief:
                thief.cookies.set("__Host-facegate_known", known, domain="testserver.local")
                token = login_token(thief)
                r = thief.post("/login", data={"name": "admin", "password": "guess", "csrf": token})
                codes.append(r.status_code)
                r = thief.post(
                    "/login",
                    data={"name": "operator", "password": PASSWORD, "csrf": token},
                    follow_redirects=False,
                )
                assert r.status_code == 303  # another name: the token is no one else's
        assert codes == [401, 401, 401]
        with browser("192.0.2.200") as thief:
            thief.cookies.set("__Host-facegate_known", known, domain="testserver.local")
            r = thief.post("/login", data={"name": "admin", "password": "guess", "csrf": login_token(thief)})
            assert r.status_code == 429
        # A forged or altered token is no known browser.
        with browser("192.0.2.250") as forger:
            forger.cookies.set("__Host-facegate_known", known[:-2] + "00", domain="testserver.local")
            r = forger.post(
                "/login", data={"name": "admin", "password": PASSWORD, "csrf": login_token(forger)}
            )
            assert r.status_code == 429
    finally:
        gallery.close()
