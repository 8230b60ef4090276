"""Door rules, decision cooldowns, webhook signatures and box overlap: pure functions."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from facegate.access.decisions import DecisionGate
from facegate.access.policy import DoorPolicy
from facegate.events.webhook import sign, verify_signature
from facegate.match import Candidate, OpenSetDecision
from facegate.settings import AccessRule, DoorSettings
from facegate.video.tracker import Track, quality_weight
from facegate.vision.geometry import iou
from facegate.vision.types import Box, Face, Quality

pytestmark = pytest.mark.unit


def door(**kw: object) -> DoorSettings:
    base: dict[str, object] = {"name": "front", "cameras": ["cam"], "timezone": "Europe/Berlin"}
    base.update(kw)
    return DoorSettings.model_validate(base)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_rules_by_person_day_hour_and_dates_in_the_door_time_zone() -> None:
    d = door(
        rules=[
            AccessRule(people=["alice-id"], days=["mon", "tue", "wed", "thu", "fri"], hours="07:00-19:00"),
            AccessRule(people=["Night Guard"], hours="22:00-06:00", valid_until=at("2027-01-01T00:00:00")),
        ]
    )
    p = DoorPolicy(d)
    # 2026-11-27 is a Friday; 06:30 UTC is 07:30 in Berlin (UTC+1 in winter).
    assert p.evaluate("alice-id", "Alice", at("2026-11-27T06:30:00+00:00")).allowed
    assert not p.evaluate("alice-id", "Alice", at("2026-11-27T05:30:00+00:00")).allowed  # 06:30 local
    assert "outside hours" in p.evaluate("alice-id", "Alice", at("2026-11-27T05:30:00+00:00")).reason
    assert "not allowed on sat" in p.evaluate("alice-id", "Alice", at("2026-11-28T10:00:00+00:00")).reason
    # A range past midnight wraps; the rule matches by exact name too.
    assert p.evaluate("g", "Night Guard", at("2026-11-27T23:30:00+00:00")).allowed
    assert p.evaluate("g", "Night Guard", at("2026-11-28T04:00:00+00:00")).allowed
    assert not p.evaluate("g", "Night Guard", at("2026-11-27T12:00:00+00:00")).allowed
    assert p.evaluate("g", "Night Guard", at("2027-01-02T23:30:00+00:00")).reason == "access expired"
    assert p.evaluate("bob", "Bob", at("2026-11-27T10:00:00+00:00")).reason == "not allowed at door front"


def test_rule_validation_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        AccessRule(people=["x"], hours="7-19")
    with pytest.raises(ValueError):
        AccessRule(people=["x"], hours="25:00-26:00")
    with pytest.raises(ValueError):
        door(timezone="Mars/Olympus")


def face(box: Box, emb: np.ndarray | None = None) -> Face:
    return Face(
        box,
        1.0,
        np.zeros((5, 2), np.float32),
        np.zeros((150, 150, 3), np.uint8),
        Quality(100, 0.5, 1, 0.5),
        emb,
    )


def identity(pid: str | None, score: float) -> OpenSetDecision:
    if pid is None:
        return OpenSetDecision("unknown", "below_threshold", None, [Candidate("x", "X", score, 1)])
    c = Candidate(pid, pid.title(), score, 1)
    return OpenSetDecision("match", "match", c, [c])


def test_one_event_per_track_and_cooldowns() -> None:
    gate = DecisionGate(door(rules=[AccessRule(people=["*"])], cooldown_s=30, unknown_cooldown_s=60), 2, 1.0)
    wall = at("2026-11-27T10:00:00+00:00")
    t1 = Track(1, face(Box(0, 0, 100, 100)), 0.0, 0.0, identity=identity("alice", 0.95))
    first = gate.consider(t1, "cam", 0.0, wall, 0.9, 1e-3)
    assert first is not None and first.kind == "granted" and first.name == "Alice"
    assert gate.consider(t1, "cam", 0.5, wall, 0.9, 1e-3) is None  # same track: once
    t2 = Track(2, face(Box(0, 0, 100, 100)), 10.0, 10.0, identity=identity("alice", 0.95))
    assert gate.consider(t2, "cam", 10.0, wall, 0.9, 1e-3) is None  # new track within the cooldown
    t3 = Track(3, face(Box(0, 0, 100, 100)), 40.0, 40.0, identity=identity("alice", 0.95))
    assert gate.consider(t3, "cam", 40.0, wall, 0.9, 1e-3) is not None  # after it
    # Unknown needs enough evidence and time, then one doorbell per cooldown for all tracks.
    u1 = Track(4, face(Box(0, 0, 100, 100)), 100.0, 100.0, embeddings=1, identity=identity(None, 0.8))
    assert gate.consider(u1, "cam", 100.5, wall, 0.9, 1e-3) is None
    u1.embeddings = 2
    assert gate.consider(u1, "cam", 100.5, wall, 0.9, 1e-3) is None  # seen for 0.5 s only
    u = gate.consider(u1, "cam", 101.5, wall, 0.9, 1e-3)
    assert u is not None and u.kind == "unknown" and u.person_id is None and u.name is None
    u2 = Track(5, face(Box(0, 0, 100, 100)), 102.0, 102.0, embeddings=5, identity=identity(None, 0.8))
    assert gate.consider(u2, "cam", 110.0, wall, 0.9, 1e-3) is None
    # A track called unknown that is recognised later still opens the door.
    u1.identity = identity("bob", 0.97)
    late = gate.consider(u1, "cam", 103.0, wall, 0.9, 1e-3)
    assert late is not None and late.kind == "granted"


def test_denied_when_enrolled_but_not_allowed() -> None:
    gate = DecisionGate(door(rules=[AccessRule(people=["alice"])]), 2)
    t = Track(1, face(Box(0, 0, 100, 100)), 0.0, 0.0, identity=identity("bob", 0.95))
    d = gate.consider(t, "cam", 0.0, at("2026-11-27T10:00:00+00:00"), 0.9, 1e-3)
    assert d is not None and d.kind == "denied" and d.reason == "not allowed at door front"
    assert "embedding" not in d.details() and d.details()["name"] == "Bob"


def test_webhook_signatures() -> None:
    body = b'{"kind": "granted"}'
    sig = sign(b"secret", "1000", body)
    assert verify_signature(b"secret", "1000", body, sig, now=1100)
    assert not verify_signature(b"other", "1000", body, sig, now=1100)
    assert not verify_signature(b"secret", "1000", body + b" ", sig, now=1100)
    assert not verify_signature(b"secret", "1000", body, sig, now=2000)  # replayed late
    assert not verify_signature(b"secret", "soon", body, sig, now=1000)


def test_iou_and_quality_weight() -> None:
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(10, 10, 20, 20)) == 0.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert quality_weight(Quality(120, 0.8, 1.0, 0.5)) > quality_weight(Quality(120, 0.8, 0.3, 0.5))
    assert quality_weight(Quality(40, 0.8, 1.0, 0.5)) < quality_weight(Quality(120, 0.8, 1.0, 0.5))


def test_a_name_rule_covers_only_the_one_person_with_that_name() -> None:
    d = door(rules=[AccessRule(people=["Alice"])])
    now = at("2026-11-27T10:00:00+00:00")
    assert DoorPolicy(d, lambda n: ["a1"]).evaluate("a1", "Alice", now).allowed
    # Someone enrolled or renamed as "Alice" too: the name no longer identifies anybody.
    assert not DoorPolicy(d, lambda n: ["a1", "a2"]).evaluate("a2", "Alice", now).allowed
    assert not DoorPolicy(d, lambda n: ["a1", "a2"]).evaluate("a1", "Alice", now).allowed


def test_a_newcomer_in_an_old_track_box_starts_a_new_track() -> None:
    from facegate.settings import TrackingSettings
    from facegate.video.tracker import Tracker

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=128).astype(np.float32), rng.normal(size=128).astype(np.float32)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    tracker = Tracker(TrackingSettings(max_age_s=1.0, reembed_s=0.5), same_person=0.93, different_person=0.88)

    def embed_as(vec: np.ndarray):  # type: ignore[no-untyped-def]
        def embed(faces: list[Face]) -> None:
            for f in faces:
                f.embedding = vec

        return embed

    seen, _ = tracker.update([face(Box(0, 0, 100, 100))], 0.0, embed_as(a))
    first = seen[0].id
    # B steps into the same box 2 s later (A's track has expired): a new track, not A's.
    seen, ended = tracker.update([face(Box(2, 2, 102, 102))], 2.0, embed_as(b))
    assert seen[0].id != first and [t.id for t in ended] == [first]
    # B replaces A within the same track's lifetime: the next embedding splits it.
    t_b = seen[0].id
    tracker.update([face(Box(2, 2, 102, 102))], 2.2, embed_as(b))
    seen, _ = tracker.update([face(Box(2, 2, 102, 102))], 2.8, embed_as(a))
    assert seen[0].id not in (first, t_b) and seen[0].evidence[0][1] is a


def test_a_marginal_single_sighting_waits_for_more_evidence() -> None:
    gate = DecisionGate(door(rules=[AccessRule(people=["*"])]), 2)
    wall = at("2026-11-27T10:00:00+00:00")
    t = Track(1, face(Box(0, 0, 100, 100)), 0.0, 0.0, embeddings=1, identity=identity("alice", 0.93))
    assert gate.consider(t, "cam", 0.0, wall, 0.92, 1e-3, confident=0.94) is None and t.hurry
    t.embeddings = 2
    d = gate.consider(t, "cam", 0.2, wall, 0.92, 1e-3, confident=0.94)
    assert d is not None and d.kind == "granted" and not t.hurry
    sure = Track(2, face(Box(0, 0, 100, 100)), 0.0, 0.0, embeddings=1, identity=identity("bob", 0.97))
    assert gate.consider(sure, "cam", 0.0, wall, 0.92, 1e-3, confident=0.94) is not None
