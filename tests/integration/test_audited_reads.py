"""Reads that the domain audits itself, so the CLI and the API account for them alike: a
photo-vs-photo verification, events listed or followed, a snapshot opened."""

from __future__ import annotations

import pytest
from PIL import Image

from facegate import Gallery
from facegate.errors import SnapshotNotFound
from facegate.events.history import EventHistory
from facegate.events.snapshots import SnapshotStore
from facegate.events.store import EventStore

from tests.cli.test_cli import Cli
from tests.conftest import BIDEN, OBAMA, PROBES, consent

pytestmark = pytest.mark.integration


def test_a_photo_vs_photo_verification_is_audited(gallery: Gallery) -> None:
    same = gallery.verify_photos(PROBES / "obama.jpg", OBAMA, actor="bank-teller")
    other = gallery.verify_photos(PROBES / "biden.jpg", OBAMA, actor="bank-teller")
    assert same.same_person and not other.same_person
    entries = list(reversed(gallery.audit.entries(10)))
    assert [(e.actor, e.action, e.target, e.details, e.results) for e in entries] == [
        ("bank-teller", "verify", None, {"same_person": True}, 1),
        ("bank-teller", "verify", None, {"same_person": False}, 0),
    ]


def test_event_reads_are_audited(gallery: Gallery) -> None:
    pid = gallery.enroll("Joe Biden", [BIDEN], consent()).person.id
    store = EventStore(gallery.store)
    history = EventHistory(gallery, store)
    rel = SnapshotStore(gallery.settings.snapshots_dir, gallery.cipher).save(Image.new("RGB", (32, 24)))
    event = store.add("gate", "granted", pid, {"door": "front"}, snapshot=rel)
    bare = store.add("gate", "unknown")

    assert [e.id for e in history.list(actor="key:k1", camera="gate", person_id=pid)] == [event.id]
    history.follow(actor="key:k1", camera="gate")
    assert history.snapshot(event.id, actor="key:k1")[:2] == b"\xff\xd8"
    with pytest.raises(SnapshotNotFound):
        history.snapshot(bare.id, actor="key:k1")  # nothing read, nothing recorded

    alias = gallery.audit.pseudonym(pid)
    entries = list(reversed(gallery.audit.entries(3)))
    assert [(e.actor, e.action, e.target, e.details, e.results) for e in entries] == [
        ("key:k1", "events_read", alias, {"camera": "gate"}, 1),
        ("key:k1", "events_stream", None, {"camera": "gate"}, None),
        ("key:k1", "snapshot_read", alias, {"event": event.id}, None),
    ]


@pytest.mark.cli
def test_cli_verify_of_two_photos_is_audited(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path / "data")
    cli.json("init")  # the trail's gallery: only enrolment, serve and init make one
    assert cli.json("verify", PROBES / "obama.jpg", OBAMA)["same_person"]
    (entry,) = cli.json("audit", "list")["entries"]
    assert entry["action"] == "verify" and entry["actor"].startswith("cli:") and entry["target"] is None
    assert entry["details"] == {"same_person": True} and entry["results"] == 1
