"""Replicas on one database: camera leases (one holder at a time, taken over when it expires,
a fair share each), and the audit head kept in step with every replica's writes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from facegate import Gallery
from facegate.gallery.audit import AuditLog
from facegate.gallery.leases import LeaseTable
from facegate.settings import ReplicaSettings
from facegate.video.replica import Replica

pytestmark = pytest.mark.integration


def test_a_lease_has_one_holder_and_changes_hands_only_once_it_expired(gallery: Gallery) -> None:
    table = LeaseTable(gallery.store)
    first = table.acquire("hall", "replica-a", ttl_s=1.0)
    assert first is not None and first.epoch == 1
    assert table.acquire("hall", "replica-b", ttl_s=1.0) is None  # held and not expired
    assert table.renew({"hall": 1}, "replica-a", ttl_s=1.0) == {"hall"}
    assert table.renew({"hall": 1}, "replica-b", ttl_s=1.0) == set()  # not b's to renew
    time.sleep(1.2)
    assert table.leases() == {}  # expired: nobody holds it
    second = table.acquire("hall", "replica-b", ttl_s=5.0)
    assert second is not None and second.epoch == 2
    # a's renewal finds the lease expired and now b's: a must stop; b's stands.
    assert table.renew({"hall": 1}, "replica-a", ttl_s=5.0) == set()
    assert table.leases()["hall"].holder == "replica-b"
    table.release(["hall"], "replica-b")
    assert table.acquire("hall", "replica-a", ttl_s=5.0) is not None  # released: at once


def _replicas(
    gallery: Gallery, ids: list[str], names: list[str], running: dict[str, set[str]]
) -> list[Replica]:
    out = []
    for rid in ids:
        running[rid] = set()
        out.append(
            Replica(
                gallery.store,
                ReplicaSettings(id=rid, lease_ttl_s=1.5, heartbeat_s=0.25),
                names,
                on_acquired=running[rid].add,
                on_lost=running[rid].discard,
            )
        )
    return out


def test_each_camera_runs_on_one_replica_and_is_taken_over_when_it_dies(gallery: Gallery) -> None:
    names = ["hall", "garage", "lobby", "door:back"]
    running: dict[str, set[str]] = {}
    replicas = _replicas(gallery, ["r1", "r2", "r3"], names, running)
    for r in replicas:
        r.start()
    try:
        time.sleep(2.0)  # a few rounds: every replica has seen the others
        held = [running[r.id] for r in replicas]
        assert sorted(n for h in held for n in h) == sorted(names)  # each exactly once
        assert max(len(h) for h in held) == 2  # a fair share: ceil(4 / 3)
        victim = max(replicas, key=lambda r: len(running[r.id]))
        orphaned = set(running[victim.id])
        victim._stop.set()  # dies without handing over: its leases only expire
        assert victim._thread is not None
        victim._thread.join(5)
        lost_at = time.monotonic()
        survivors = [r for r in replicas if r is not victim]
        while time.monotonic() - lost_at < 5.0:
            if orphaned <= running[survivors[0].id] | running[survivors[1].id]:
                break
            time.sleep(0.05)
        took = time.monotonic() - lost_at
        assert orphaned <= running[survivors[0].id] | running[survivors[1].id], running
        assert took <= 1.5 + 0.25 + 0.5, f"taken over after {took:.2f} s"
        # The dead replica's own view ran out before anyone else could take over.
        assert not any(victim.holds(n) for n in orphaned)
        assert not running[survivors[0].id] & running[survivors[1].id]
    finally:
        for r in replicas:
            r.stop()
    assert LeaseTable(gallery.store).leases() == {}  # a replica that stops hands its leases back


def test_a_cut_off_tail_written_by_another_replica_is_detected(gallery: Gallery, tmp_path: Path) -> None:
    """Each host signs its own head. Host A follows the trail's newest entry on its heartbeat, so
    entries that host B wrote and someone then deleted show in A's check too; a host that never
    followed (as before replicas) cannot see it."""
    a = gallery.audit
    b = AuditLog.under(gallery.store, gallery.cipher, tmp_path / "host-b" / "audit-head.json")
    never = AuditLog.under(gallery.store, gallery.cipher, tmp_path / "host-c" / "audit-head.json")
    a.record("host-a", "enrol", "p:one")
    never.record("host-c", "enrol", "p:two")
    for i in range(3):
        b.record("host-b", "identify", None, {"faces": i})
    assert a.follow_tip() is not None
    assert a.verify().ok and b.verify().ok and never.verify().ok
    with gallery.store.engine.begin() as c:
        newest = c.execute(text("SELECT max(id) FROM audit_log")).scalar_one()
        c.execute(text("DELETE FROM audit_log WHERE id > :n"), {"n": newest - 2})  # B's last two
    check = a.verify()
    assert not check.ok and "newest entries were deleted" in check.reason
    assert not b.verify().ok  # the writer's own head shows it too
    assert never.verify().ok  # the gap following closes: a head of its own writes only


def test_a_forged_newest_entry_is_not_signed(gallery: Gallery) -> None:
    gallery.audit.record("host-a", "enrol", "p:one")
    with gallery.store.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO audit_log (at, actor, action, target, details, results, prev_hash, hash) "
                "VALUES (:at, 'intruder', 'enrol', NULL, '{}', NULL, 'x', 'y')"
            ),
            {"at": "2026-12-02 00:00:00"},
        )
    assert gallery.audit.follow_tip() is None
    assert not gallery.audit.verify().ok


def test_a_replica_catches_up_with_anothers_writes_without_reloading_everything(
    gallery: Gallery,
    settings,
    engine,
    database_url: str,  # type: ignore[no-untyped-def]
) -> None:
    """Another process's enrolment, withdrawal and erasure reach this one at its next search;
    only the templates that changed are opened (the index is changed in place, not rebuilt)."""
    from tests.conftest import BIDEN, OBAMA, PROBES, consent

    other = Gallery.open(settings, engine=engine, database_url=database_url)
    try:
        obama = gallery.enroll("Barack Obama", [OBAMA], consent()).person.id
        other.sync()
        index = other.search_index.index
        biden = gallery.enroll("Joe Biden", [BIDEN], consent()).person.id

        def names(g: Gallery) -> set[str | None]:
            return {f.name for f in g.identify(PROBES / "obama_and_biden.jpg")}

        assert {"Barack Obama", "Joe Biden"} <= names(other)  # identify syncs first
        assert other.search_index.index is index and len(index) == 2  # caught up in place
        record = gallery.consents(biden)[0]
        gallery.withdraw_consent(biden, record.id)
        assert "Joe Biden" not in names(other)
        gallery.delete(obama)
        assert "Barack Obama" not in names(other) and len(other.search_index.index) == 1
        assert other.search_index.index is index
    finally:
        other.close()


def test_a_replica_that_stops_does_not_leave_the_others_offline_in_home_assistant(gallery: Gallery) -> None:
    """Replicas share one MQTT availability topic: one that stops sets it "offline" (its last
    will, if it dies), and the others say "online" again on their next heartbeat."""
    import uuid

    from facegate.events.mqtt import MqttBridge
    from facegate.settings import MqttSettings

    from tests.conftest import need
    from tests.integration.test_events import MQTT_HOST, MQTT_PORT, Subscriber, _broker_missing

    need(_broker_missing())
    prefix = f"fgtest{uuid.uuid4().hex[:8]}"
    sub = Subscriber([f"{prefix}/availability"])
    bridges = [
        MqttBridge(
            MqttSettings(
                enabled=True,
                host=MQTT_HOST,
                port=int(MQTT_PORT or 1883),
                topic_prefix=prefix,
                client_id=f"{prefix}-{i}",
                discovery=False,
            ),
            [],
            [],
        )
        for i in range(2)
    ]
    for b in bridges:
        b.start()
        assert b.wait_connected(10)
    survivor = Replica(
        gallery.store,
        ReplicaSettings(id="survivor", lease_ttl_s=1.5, heartbeat_s=0.25),
        ["hall"],
        on_acquired=lambda _n: None,
        on_lost=lambda _n: None,
        on_round=bridges[1].still_online,
    )
    survivor.start()
    try:
        bridges[0].close()  # the other replica stops: "offline", retained
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "offline" not in sub.on(f"{prefix}/availability"):
            time.sleep(0.05)
        history = sub.on(f"{prefix}/availability")
        assert "offline" in history
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sub.on(f"{prefix}/availability")[-1] != "online":
            time.sleep(0.05)
        assert sub.on(f"{prefix}/availability")[-1] == "online"
    finally:
        survivor.stop()
        bridges[1].close()
        sub.close()
