"""Presentation-attack metrics against hand-computed cases, the liveness fusion of a track, the
door's liveness rule, and the context crop: pure functions."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from facegate.access.decisions import DecisionGate
from facegate.errors import ConfigError
from facegate.eval.pad import (
    PadScores,
    apcer,
    apcer_at_bpcer,
    bpcer,
    bpcer_at_apcer,
    det_curve,
    fit_threshold,
    non_response,
    operating_point,
    worst_apcer,
)
from facegate.eval.pad_run import load_pad_labels, split_subjects, subject_of
from facegate.settings import AccessRule, DoorSettings, LivenessSettings, UnlockSettings
from facegate.video.tracker import Track
from facegate.vision.liveness import LivenessEvidence, LivenessResult, context_box, effective_scale, yaw
from facegate.vision.planarity import PairMotion
from facegate.vision.types import Box

from tests.unit.test_access import face, identity

pytestmark = pytest.mark.unit

NAN = float("nan")


def sample() -> PadScores:
    # bona fide: 0.9 0.8 0.3 and one refused; print: 0.1 0.6 and one refused; screen: 0.05 0.2
    scores = np.array([0.9, 0.8, 0.3, NAN, 0.1, 0.6, NAN, 0.05, 0.2])
    live = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    types = np.array(["bona fide"] * 4 + ["print"] * 3 + ["screen"] * 2)
    return PadScores(scores, live, types)


def test_apcer_bpcer_acer_and_non_responses_by_hand() -> None:
    s = sample()
    assert (apcer(s, 0.5, "print").k, apcer(s, 0.5, "print").n) == (1, 2)  # 0.6 passes; refused excluded
    assert apcer(s, 0.5, "screen").value == 0.0
    assert worst_apcer(s, 0.5).value == 0.5
    assert (bpcer(s, 0.5).k, bpcer(s, 0.5).n) == (1, 3)
    op = operating_point(s, 0.5)
    assert op["ACER"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert set(op["APCER per attack type"]) == {"print", "screen"}
    assert non_response(s, True).value == 0.25 and non_response(s, False).value == 0.2
    # A score equal to the threshold is bona fide.
    assert apcer(s, 0.6, "print").k == 1 and bpcer(s, 0.8).k == 1
    lo, hi = bpcer(s, 0.5).ci95
    assert lo < 1 / 3 < hi  # Wilson: 1 of 3 is 0.061..0.79
    assert lo == pytest.approx(0.0615, abs=1e-3) and hi == pytest.approx(0.7923, abs=1e-3)


def test_operating_points_on_the_det_curve_by_hand() -> None:
    s = sample()
    # The lowest threshold letting no attack through is 0.8 (0.6 passes below it): BPCER 1/3.
    at = bpcer_at_apcer(s, 0.0)
    assert at["threshold"] == 0.8 and at["APCER"] == 0.0 and at["BPCER"] == pytest.approx(1 / 3)
    # The highest threshold rejecting no bona fide is 0.3: the print at 0.6 passes.
    ab = apcer_at_bpcer(s, 0.0)
    assert ab["threshold"] == 0.3 and ab["BPCER"] == 0.0 and ab["APCER"] == 0.5
    ts, a, b = det_curve(s)
    assert len(ts) == 8 and a[0] == 1.0 and b[0] == 0.0 and a[-1] == 0.0 and b[-1] == 1.0
    assert all(np.diff(a) <= 0) and all(np.diff(b) >= 0)


def test_fitted_threshold_is_the_middle_of_the_best_interval() -> None:
    # APCER + BPCER is lowest (1/3) for any threshold in (0.6, 0.8]: its log-odds middle.
    mid = 1 / (1 + math.exp(-(math.log(0.6 / 0.4) + math.log(0.8 / 0.2)) / 2))
    assert fit_threshold(sample()) == pytest.approx(mid)
    separable = PadScores(
        np.array([0.9, 0.95, 0.01, 0.1]), np.array([1, 1, 0, 0]), np.array(["b", "b", "p", "p"])
    )
    t = fit_threshold(separable)
    assert 0.1 < t <= 0.9 and t == pytest.approx(0.5)


def test_labels_and_subject_split(tmp_path: Path) -> None:
    good = tmp_path / "labels.csv"
    good.write_text("image,live,kind\nreal/0001_a.jpg,1,\nattack/0002_b.jpg,0,print\n")
    assert load_pad_labels(good, "kind") == [
        ("real/0001_a.jpg", 1, "bona fide"),
        ("attack/0002_b.jpg", 0, "print"),
    ]
    assert load_pad_labels(good)[1][2] == "attack"
    for text, why in [("image,label\na.jpg,1\n", "image,live"), ("image,live\na.jpg,yes\n", "1 \\(bona")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=why):
            load_pad_labels(bad)
    with pytest.raises(ConfigError, match="no column"):
        load_pad_labels(good, "missing")
    assert subject_of("real/0007_0007_00_00_01_9.jpg", "_") == "0007"
    subjects = [f"{i:04d}" for i in range(1, 10)]
    fit, held = split_subjects(subjects, 0)
    assert fit | held == set(subjects) and not fit & held and len(fit) == 5
    assert split_subjects(subjects, 0) == (fit, held) and split_subjects(subjects, 1) != (fit, held)


def test_a_track_is_live_or_an_attack_only_after_enough_scored_frames() -> None:
    ev = LivenessEvidence(keep=3)
    for score in (0.9, None, 0.8):
        ev.add(LivenessResult("refused" if score is None else "live", score, 0.5, "x"))
    assert ev.refused == 1 and ev.verdict(0.5, 3) is None  # two scored frames of three
    ev.add(LivenessResult("attack", 0.1, 0.5, "attack"))
    assert ev.verdict(0.5, 3) == "live"  # mean 0.6
    for _ in range(3):
        ev.add(LivenessResult("attack", 0.0, 0.5, "attack"))
    assert ev.scores == [0.0, 0.0, 0.0] and ev.verdict(0.5, 3) == "attack"


def test_doors_with_an_unlock_require_liveness_by_default() -> None:
    base = {"name": "front", "cameras": ["cam"]}
    unlock = UnlockSettings(mqtt_topic="lock/set")
    assert not DoorSettings.model_validate(base).liveness_required
    assert DoorSettings.model_validate({**base, "unlock": unlock}).liveness_required
    assert not DoorSettings.model_validate({**base, "unlock": unlock, "liveness": "off"}).liveness_required
    assert DoorSettings.model_validate({**base, "liveness": "required"}).liveness_required
    with pytest.raises(ValueError):
        DoorSettings.model_validate({**base, "liveness": "maybe"})


def test_the_gate_waits_for_liveness_denies_attacks_and_grants_the_live() -> None:
    door = DoorSettings(name="front", cameras=["cam"], rules=[AccessRule(people=["*"])], liveness="required")
    gate = DecisionGate(door, 2, liveness=LivenessSettings(threshold=0.5, frames=2))
    wall = datetime.fromisoformat("2026-11-27T10:00:00+00:00")
    spoof = Track(1, face(Box(0, 0, 100, 100)), 0.0, 0.0, embeddings=2, identity=identity("alice", 0.97))
    spoof.liveness.add(LivenessResult("attack", 0.02, 0.5, "attack"))
    assert gate.consider(spoof, "cam", 0.2, wall, 0.9, 1e-3) is None  # one frame is not enough
    spoof.liveness.add(LivenessResult("attack", 0.04, 0.5, "attack"))
    d = gate.consider(spoof, "cam", 0.4, wall, 0.9, 1e-3)
    assert d is not None and (d.kind, d.reason, d.person_id, d.name) == (
        "denied",
        "presentation_attack",
        None,
        None,
    )
    assert d.details()["liveness_score"] == 0.03 and "liveness" not in d.details()
    assert gate.consider(spoof, "cam", 0.6, wall, 0.9, 1e-3) is None
    # An attack is announced whoever it resembles, even nobody enrolled.
    stranger = Track(2, face(Box(0, 0, 100, 100)), 0.0, 0.0, embeddings=1, identity=None)
    for _ in range(2):
        stranger.liveness.add(LivenessResult("attack", 0.0, 0.5, "attack"))
    assert gate.consider(stranger, "cam", 50.0, wall, 0.9, 1e-3).reason == "presentation_attack"  # type: ignore[union-attr]
    alice = Track(3, face(Box(0, 0, 100, 100)), 0.0, 0.0, embeddings=2, identity=identity("alice", 0.97))
    alice.liveness.add(LivenessResult("live", 0.9, 0.5, "live"))
    assert gate.consider(alice, "cam", 60.0, wall, 0.9, 1e-3) is None  # not yet known to be live
    alice.liveness.add(LivenessResult("live", 0.8, 0.5, "live"))
    g = gate.consider(alice, "cam", 60.2, wall, 0.9, 1e-3)
    assert g is not None and g.kind == "granted" and g.liveness == pytest.approx(0.85)
    assert g.details()["liveness"] == "passed"


def test_a_grant_without_liveness_says_so() -> None:
    """An automation that unlocks on `granted` can tell a door that never checked for a live face."""
    door = DoorSettings(name="porch", cameras=["cam"], rules=[AccessRule(people=["*"])])
    assert not door.liveness_required  # no `unlock:` and no `liveness:`: off
    gate = DecisionGate(door, 2)
    wall = datetime.fromisoformat("2026-11-27T10:00:00+00:00")
    alice = Track(1, face(Box(0, 0, 100, 100)), 0.0, 0.0, embeddings=2, identity=identity("alice", 0.97))
    g = gate.consider(alice, "cam", 0.5, wall, 0.9, 1e-3)
    assert g is not None and g.kind == "granted"
    assert g.details()["liveness"] == "off" and "liveness_score" not in g.details()


def test_the_context_patch_stays_inside_the_frame() -> None:
    # A 100 px face in the middle of 640x480: 2.7x fits.
    assert context_box(640, 480, Box(270, 190, 370, 290), 2.7) == (185, 105, 455, 375)
    # Near the left edge the patch is moved right, not cut.
    x0, _, x1, _ = context_box(640, 480, Box(10, 190, 110, 290), 2.7)
    assert x0 == 0 and x1 - x0 == 270
    # A face filling the frame: the scale shrinks to what fits.
    assert effective_scale(640, 480, Box(0, 0, 300, 300), 4.0) == pytest.approx(479 / 300)


def test_yaw_and_the_head_turn_window() -> None:
    frontal = np.array([[30, 50], [40, 50], [60, 50], [70, 50], [50, 70]], np.float32)
    turned = frontal.copy()
    turned[4, 0] = 57.5  # the nose base halfway from the middle to one eye (35 | 65): yaw 0.5
    assert yaw(frontal) == 0.0 and yaw(turned) == pytest.approx(0.5) and yaw(turned[[2, 3, 0, 1, 4]]) < 0
    ev = LivenessEvidence()
    ev.add_pose(0.0, frontal)
    assert not ev.turned(4.0, 0.5)
    ev.add_pose(5.0, turned)  # too late
    assert not ev.turned(4.0, 0.5)
    ev.add_pose(3.0, turned)
    assert ev.turned(4.0, 0.5) and not ev.turned(4.0, 0.6)


def test_the_gate_asks_for_a_head_turn_within_the_window() -> None:
    door = DoorSettings(
        name="front", cameras=["cam"], rules=[AccessRule(people=["*"])], challenge="head_turn"
    )
    gate = DecisionGate(door, 2, liveness=None)
    wall = datetime.fromisoformat("2026-11-27T10:00:00+00:00")
    frontal = np.array([[30, 50], [40, 50], [60, 50], [70, 50], [50, 70]], np.float32)
    still = Track(1, face(Box(0, 0, 100, 100)), 0.0, 0.0, embeddings=2, identity=identity("alice", 0.97))
    still.liveness.add_pose(0.0, frontal)
    assert gate.consider(still, "cam", 3.9, wall, 0.9, 1e-3) is None  # still within the window
    d = gate.consider(still, "cam", 4.1, wall, 0.9, 1e-3)
    assert d is not None and (d.kind, d.reason, d.person_id) == ("denied", "challenge_failed", None)
    moving = Track(2, face(Box(0, 0, 100, 100)), 10.0, 10.0, embeddings=2, identity=identity("alice", 0.97))
    moving.liveness.add_pose(10.0, frontal)
    moving.liveness.add_pose(11.0, frontal + np.array([0, 0, 0, 0, 12.5])[:, None] * [1, 0])
    # The yaw swung, but nothing yet says the face moved as a head: the turn does not count.
    assert gate.consider(moving, "cam", 11.0, wall, 0.9, 1e-3) is None
    moving.liveness.planarity.pairs += [PairMotion(0.03, 0.018, 60, 0.2)] * 3  # a head's parallax
    g = gate.consider(moving, "cam", 11.2, wall, 0.9, 1e-3)
    assert g is not None and g.kind == "granted"
    assert g.details()["planarity"] == {"verdict": "three_d", "ratio": 0.6}
