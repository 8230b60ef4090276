"""Hardening of the core (issue 11): secrets never leak, files are private, the trail shows a cut."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from facegate.errors import SourceUnavailable
from facegate.events.store import EventStore
from facegate.settings import CameraSettings
from facegate.video.pipeline import CameraPipeline
from facegate.video.service import LiveService
from facegate.video.sources import VideoSource

from tests.integration.test_video import open_gallery

pytestmark = pytest.mark.integration

PASSWORD = "hunter2-s3cret"
TOKEN = "tok-9f8e7d"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    [
        f"rtsp://admin:{PASSWORD}@10.0.0.5:554/stream1",
        f"cannot open rtsp://admin:{PASSWORD}@cam.local/live: Connection refused",
        f"http://cam.local/video.mjpg?user=admin&password={PASSWORD}",
        f"https://viewer:{PASSWORD}@cam.local/mjpeg?token={PASSWORD}&fps=5",
    ],
)
def test_credentials_are_hidden_in_text(text: str) -> None:
    from facegate.credentials import hide_credentials

    shown = hide_credentials(text)
    assert PASSWORD not in shown and "***" in shown
    assert "cam.local" in shown or "10.0.0.5" in shown  # the camera is still named


def test_camera_passwords_reach_no_event_log_or_error(tmp_path: Path, engine, caplog) -> None:  # type: ignore[no-untyped-def]
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{_closed_port()}/cam?token={TOKEN}"
    g = open_gallery(tmp_path, engine)
    live = LiveService(g, cameras=[])
    cam = CameraSettings(name="porch", source=url, fps=5, reconnect_max_s=0.1)
    pipeline = CameraPipeline(cam, g, bus=live.bus)
    src = pipeline.source(max_reconnects=2)
    src.reconnect_initial_s = 0.05
    src.open_timeout = 1
    with caplog.at_level(logging.DEBUG):
        pipeline.run(src)
        live.bus.flush()
        with pytest.raises(SourceUnavailable) as err:
            list(VideoSource(url, open_timeout=1, live=False).frames())
    events = EventStore(g.store).list(camera="porch")
    assert [e.details["state"] for e in events][:1] == ["ended"]  # newest first
    assert any(e.details["reason"] for e in events), "the reasons are kept, only without secrets"
    seen = [str(e.to_dict()) for e in events] + [caplog.text, str(err.value), str(err.value.to_dict())]
    for text in seen:
        assert PASSWORD not in text and TOKEN not in text
    assert "127.0.0.1" in str(err.value)
    live.stop()
    g.close()


def _open_to_others(root: Path) -> list[str]:
    paths = [root, *root.rglob("*")]
    return [f"{p} {p.stat().st_mode & 0o777:o}" for p in paths if p.stat().st_mode & 0o077]


def test_the_data_directory_and_database_are_owner_only(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import OBAMA, consent

    g = open_gallery(tmp_path, engine)
    g.enroll("Barack Obama", [OBAMA], consent())
    data = g.settings.data_dir
    db = data / "facegate.db"
    assert Path(f"{db}-wal").exists()
    assert _open_to_others(data) == []
    assert data.stat().st_mode & 0o777 == 0o700 and db.stat().st_mode & 0o777 == 0o600
    g.close()


def test_an_existing_open_data_directory_is_tightened(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    sqlite3.connect(data / "facegate.db").close()
    (data / "facegate.db").chmod(0o644)
    g = open_gallery(tmp_path, engine)
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "facegate.db").stat().st_mode & 0o777 == 0o600
    g.close()


class _Controller:
    """A door controller on loopback that records each unlock request as sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[dict[str, str], bytes]] = []
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                controller.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/unlock"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


UNLOCK_SECRET = "unlock-secret-0123456789"


@pytest.mark.unit
def test_an_unlock_webhook_needs_a_secret_and_tls_unless_told() -> None:
    from pydantic import ValidationError

    from facegate.settings import UnlockSettings

    with pytest.raises(ValidationError, match="webhook_secret"):
        UnlockSettings(webhook_url="https://door.local/unlock")
    with pytest.raises(ValidationError, match="webhook_secret"):
        UnlockSettings(webhook_url="https://door.local/unlock", webhook_secret="short")
    with pytest.raises(ValidationError, match="plain http"):
        UnlockSettings(webhook_url="http://door.local/unlock", webhook_secret=UNLOCK_SECRET)
    assert UnlockSettings(webhook_url="https://door.local/unlock", webhook_secret=UNLOCK_SECRET)
    assert UnlockSettings(
        webhook_url="http://door.local/unlock", webhook_secret=UNLOCK_SECRET, allow_http=True
    )
    assert UnlockSettings(mqtt_topic="zigbee2mqtt/lock/set")  # no webhook: nothing to sign


def test_a_captured_unlock_command_opens_the_door_once() -> None:
    from facegate.access.actions import DoorActuator
    from facegate.events.webhook import ReplayGuard
    from facegate.settings import DoorSettings, UnlockSettings

    controller = _Controller()
    door = DoorSettings(
        name="front",
        cameras=["porch"],
        unlock=UnlockSettings(
            webhook_url=controller.url, webhook_secret=UNLOCK_SECRET, allow_http=True, open_seconds=0.1
        ),
    )
    actuator = DoorActuator(door)
    actuator.unlock("camera:porch")
    actuator.unlock("camera:porch")
    actuator.close()
    controller.server.shutdown()
    guard = ReplayGuard(UNLOCK_SECRET.encode())

    def accept(request: tuple[dict[str, str], bytes]) -> bool:
        headers, body = request
        return guard.accept(headers["x-facegate-timestamp"], body, headers["x-facegate-signature"])

    first, second = controller.requests
    assert accept(first) and accept(second)  # two real unlocks: two different nonces
    assert not accept(first) and not accept(second)  # replayed within the 300 s window: refused
    headers, body = first
    forged = body.replace(b'"front"', b'"back"')
    assert not guard.accept(headers["x-facegate-timestamp"], forged, headers["x-facegate-signature"])


def _delete_audit(g, where: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with g.store.engine.begin() as c:
        c.execute(text(f"DELETE FROM audit_log WHERE {where}"))


def test_cutting_the_newest_audit_entries_shows(gallery) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import BIDEN, OBAMA, consent

    g = gallery
    g.enroll("Barack Obama", [OBAMA], consent())
    g.identify(BIDEN)
    checkpoint = g.audit.verify().head  # printed by `facegate audit verify`, kept elsewhere
    g.identify(OBAMA)
    assert g.audit.verify().ok and g.audit.verify(expect=checkpoint).ok
    _delete_audit(g, "id = (SELECT MAX(id) FROM audit_log)")
    check = g.audit.verify()
    assert not check.ok and "newest entries were deleted" in check.reason
    _delete_audit(g, "1 = 1")
    check = g.audit.verify()
    assert not check.ok and check.entries == 0
    # Someone who could also remove the head file is still caught by a checkpoint kept elsewhere.
    g.settings.audit_head_file.unlink()
    assert g.audit.verify().ok
    assert not g.audit.verify(expect=checkpoint).ok


def test_an_altered_audit_head_shows(gallery) -> None:  # type: ignore[no-untyped-def]
    import json

    from tests.conftest import OBAMA, consent

    gallery.enroll("Barack Obama", [OBAMA], consent())
    path = gallery.settings.audit_head_file
    heads = json.loads(path.read_text())
    [entry] = heads.values()
    entry["id"] -= 1  # pretend the trail was one entry shorter
    path.write_text(json.dumps(heads))
    check = gallery.audit.verify()
    assert not check.ok and "altered" in check.reason


def test_audit_entries_commit_with_the_change_or_not_at_all(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from facegate.errors import PersonNotFound

    from tests.conftest import BIDEN, OBAMA, consent

    g = open_gallery(tmp_path, engine)
    pid = g.enroll("Barack Obama", [OBAMA], consent()).person.id
    with g.store.engine.begin() as c:  # the audit trail refuses writes (disk full, a lock, ...)
        c.execute(
            text("CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'no'); END")
        )
    with pytest.raises(Exception, match="no"):
        g.enroll("Joe Biden", [BIDEN], consent())
    with pytest.raises(Exception, match="no"):
        g.withdraw_consent(pid)
    with pytest.raises(Exception, match="no"):
        g.delete(pid)
    # Nothing that went unaudited happened.
    assert [p.name for p in g.people()] == ["Barack Obama"]
    assert g.person(pid).consent_valid
    with pytest.raises(PersonNotFound):
        g.person("nobody")
    with g.store.engine.begin() as c:
        c.execute(text("DROP TRIGGER refuse"))
    assert [e.action for e in g.audit.entries()] == ["enrol"]
    assert g.audit.verify().ok
    g.close()


def test_redact_keeps_only_a_consenting_person_and_audits_it(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    from facegate.errors import ConsentMissing
    from facegate.privacy.redaction import keep_person

    from tests.conftest import BIDEN, OBAMA, consent

    g = open_gallery(tmp_path, engine)
    obama = g.enroll("Barack Obama", [OBAMA], consent()).person.id
    biden = g.enroll("Joe Biden", [BIDEN], consent()).person.id
    g.withdraw_consent(biden)
    with pytest.raises(ConsentMissing):
        keep_person(g, biden, actor="cli:tester", source="clip.mp4")
    keep = keep_person(g, obama, actor="cli:tester", source="clip.mp4")
    assert keep(g.engine.analyse(OBAMA).faces) == [True]
    [entry] = g.audit.entries(action="redact")
    assert entry.actor == "cli:tester" and entry.target == g.audit.pseudonym(obama)
    assert entry.details == {"source": "clip.mp4"}
    g.close()


@pytest.mark.parametrize(
    "name",
    ["   ", "", "Eve\r\nMallory", "Eve\nid: 7", "\u202eecilA", "Ali\u200bce", "Bob\x00", "tab\there"],
)
def test_names_that_forge_or_hide_are_refused(tmp_path: Path, engine, name: str) -> None:  # type: ignore[no-untyped-def]
    from facegate.errors import BadRequest

    from tests.conftest import OBAMA, consent

    g = open_gallery(tmp_path, engine)
    with pytest.raises(BadRequest):
        g.enroll(name, [OBAMA], consent())
    pid = g.enroll("  Barack \u00a0  Obama ", [OBAMA], consent()).person.id
    assert g.person(pid).name == "Barack Obama"  # trimmed, runs of spaces collapsed
    with pytest.raises(BadRequest):
        g.update_person(pid, name=name)
    assert g.update_person(pid, name="Bara\u0301ck Obama").name == "Bar\u00e1ck Obama"  # NFC
    g.close()


@pytest.mark.postgres
def test_audited_writes_beside_audit_entries_never_deadlock(settings, engine, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    """A write that appends its own audit entry and an identification's entry, on PostgreSQL, at
    once and over and over: both take the audit lock first, so neither waits for the other."""
    import threading
    import time
    from datetime import UTC, datetime, timedelta

    from facegate import Consent, Gallery

    from tests.conftest import OBAMA, consent

    g = Gallery.open(settings, engine=engine, database_url=pg_url)
    other = Gallery.open(settings, engine=engine, database_url=pg_url)
    pid = g.enroll("Barack Obama", [OBAMA], consent()).person.id
    errors: list[BaseException] = []
    stop = time.monotonic() + 4

    def consents() -> None:
        try:
            while time.monotonic() < stop:
                g.add_consent(pid, Consent("door", datetime.now(UTC) + timedelta(days=9), "t"), actor="a")
        except BaseException as exc:
            errors.append(exc)

    def entries() -> None:
        try:
            while time.monotonic() < stop:
                other.audit.record("door-1", "identify", None, {"faces": 1}, 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (consents, entries, consents, entries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:1]
    assert g.audit.verify().ok
    other.close()
    g.close()


# --- a key rotated by another process (issue 21) --------------------------------------------------


def test_a_gallery_on_a_key_file_follows_a_rotation_by_another_process(
    tmp_path: Path, engine, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    from facegate import Gallery, load_settings
    from facegate.errors import KeyRotated
    from facegate.gallery.rotation import rotate_to_new_key

    from tests.conftest import BIDEN, OBAMA, PROBES, consent

    settings = load_settings(data_dir=tmp_path / "data")  # the key in keys/secret.key
    service = Gallery.open(settings, engine=engine, database_url=database_url)
    rotating = Gallery.open(settings, engine=engine, database_url=database_url)
    try:
        service.enroll("Barack Obama", [OBAMA], consent())
        rotate_to_new_key(rotating, actor="test")
        # The write that meets the rotation is refused (its templates were sealed under the old
        # key) and loads the new key; the next succeeds under it.
        with pytest.raises(KeyRotated):
            service.enroll("Joe Biden", [BIDEN], consent())
        assert service.cipher.key_check == rotating.cipher.key_check
        service.enroll("Joe Biden", [BIDEN], consent())
        assert [f.name for f in service.identify(PROBES / "obama.jpg")] == ["Barack Obama"]
        assert rotating.audit.verify().ok
        assert len(list(rotating.store.templates(rotating.space))) == 2
        # A search loads it without any refusal: a second rotation, then identify at once.
        rotate_to_new_key(rotating, actor="test")
        assert [f.name for f in service.identify(PROBES / "biden.jpg")] == ["Joe Biden"]
        service.check_ready()
    finally:
        service.close()
        rotating.close()
