"""The audit trail: every enrolment, search, verification and deletion is recorded, in a
hash chain that exposes an edited or deleted entry; no images or templates in it."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from facegate import Gallery

from tests.conftest import BIDEN, OBAMA, PROBES, consent

pytestmark = pytest.mark.integration


def test_actions_are_recorded_without_biometric_data(gallery: Gallery) -> None:
    pid = gallery.enroll("Barack Obama", [OBAMA], consent(), actor="reception").person.id
    gallery.identify(PROBES / "obama_and_biden.jpg", actor="door-1")
    gallery.verify_person(PROBES / "obama.jpg", pid, actor="bank-teller")
    gallery.delete(pid, actor="admin")
    entries = list(reversed(gallery.audit.entries()))
    assert [(e.actor, e.action) for e in entries] == [
        ("reception", "enrol"),
        ("door-1", "identify"),
        ("bank-teller", "verify_person"),
        ("admin", "delete_person"),
    ]
    # People are named by a keyed pseudonym, never by id or name: after an erasure nothing in
    # the trail leads back to them, yet their entries can still be found while they exist.
    alias = gallery.audit.pseudonym(pid)
    assert alias.startswith("p:") and pid not in alias
    assert entries[0].target == alias and entries[0].results == 1
    assert (
        entries[1].details["faces"] == 3
        and entries[1].details["people"] == [alias]
        and entries[1].results == 1
    )
    assert [e.action for e in gallery.audit.entries(person=pid)] == [
        "delete_person",
        "verify_person",
        "enrol",
    ]
    assert entries[2].details == {"same_person": True}
    assert entries[3].details == {"templates": 1, "consent_records": 1, "events": 0}
    with gallery.store.engine.connect() as c:
        raw = " ".join(str(v) for row in c.execute(text("SELECT * FROM audit_log")) for v in row)
    assert "Barack" not in raw and pid not in raw  # neither names nor ids are needed to account
    for e in entries:
        assert len(json.dumps(e.details)) < 200  # counts and ids, never vectors or pixels
    assert gallery.audit.verify().ok


def _tamper(gallery: Gallery, sql: str) -> None:
    with gallery.store.engine.begin() as c:
        c.execute(text(sql))


def test_an_edited_entry_is_detected(gallery: Gallery) -> None:
    for i in range(4):
        gallery.audit.record("tester", "identify", None, {"faces": i}, i)
    assert gallery.audit.verify().ok and gallery.audit.verify().entries == 4
    _tamper(gallery, "UPDATE audit_log SET results = 0 WHERE id = 3")
    check = gallery.audit.verify()
    assert not check.ok and check.first_bad == 3 and "altered" in check.reason


def test_a_deleted_entry_is_detected(gallery: Gallery) -> None:
    for i in range(4):
        gallery.audit.record("tester", "identify", None, {"faces": i}, i)
    _tamper(gallery, "DELETE FROM audit_log WHERE id = 2")
    check = gallery.audit.verify()
    assert not check.ok and check.first_bad == 3 and "deleted" in check.reason


def test_concurrent_writers_keep_one_chain(gallery: Gallery) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(15):
                gallery.audit.record(f"writer-{n}", "identify", None, {"i": i}, i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    check = gallery.audit.verify()
    assert check.ok and check.entries == 60, check


def test_cli_audit_verify(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from facegate.errors import ExitCode

    from tests.cli.test_cli import CONSENT, Cli

    cli = Cli(tmp_path / "data")
    cli.json("enroll", "Joe Biden", BIDEN, *CONSENT)
    cli.json("identify", PROBES / "biden.jpg")
    ok = cli.json("audit", "verify")
    assert ok["ok"] and ok["entries"] == 2
    listed = cli.json("audit", "list")["entries"]
    assert [e["action"] for e in listed] == ["identify", "enrol"] and listed[0]["actor"].startswith("cli:")
    with sqlite3.connect(tmp_path / "data" / "facegate.db") as c:
        c.execute("UPDATE audit_log SET actor = 'someone else' WHERE id = 1")
    broken = cli.json("audit", "verify", code=ExitCode.SECURITY)
    assert not broken["ok"] and broken["first_bad"] == 1


def test_a_rewritten_chain_without_the_key_is_detected(gallery: Gallery) -> None:
    """Someone with database access edits an entry and recomputes every later hash with a
    plain SHA-256 (not knowing the gallery's secret key): verify still fails."""
    import hashlib

    for i in range(3):
        gallery.audit.record("tester", "identify", None, {"faces": i}, i)
    with gallery.store.engine.begin() as c:
        rows = c.execute(text("SELECT id, prev_hash, hash FROM audit_log ORDER BY id")).all()
        prev = rows[0].prev_hash
        for r in rows:
            forged = hashlib.sha256(f"{prev}|forged {r.id}".encode()).hexdigest()
            c.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h, results = 0 WHERE id = :i"),
                {"p": prev, "h": forged, "i": r.id},
            )
            prev = forged
    check = gallery.audit.verify()
    assert not check.ok and check.first_bad == 1
