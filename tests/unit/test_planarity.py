"""The motion cue on synthetic scenes: a textured plane however it is warped by homographies is
planar; a textured sphere turning in front of a background is not; too little motion is
undecided. Then how the door fuses it with MiniFASNet and the head-turn challenge."""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np
import pytest

from facegate.access.decisions import DecisionGate
from facegate.settings import AccessRule, DoorSettings, LivenessSettings
from facegate.settings.live import PlanaritySettings
from facegate.video.tracker import Track
from facegate.vision.liveness import LivenessResult
from facegate.vision.planarity import (
    CROP_SIDE,
    PairMotion,
    PlanarityEvidence,
    compare,
    judge,
    sample,
)
from facegate.vision.types import Box

from tests.unit.test_access import face, identity

pytestmark = pytest.mark.unit

W, H = 640, 480
BOX = Box(220, 140, 420, 340)  # a 200 px "face" in the middle of the frame
MARKS = np.array([[280, 210], [300, 210], [340, 210], [360, 210], [320, 260]], np.float32)
DEFAULTS = PlanaritySettings()


def texture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """Print-like texture: blobs at a few scales, RGB uint8."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w), np.float32)
    for sigma, weight in ((1.5, 0.5), (4.0, 1.0), (10.0, 1.0)):
        out += weight * cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma) * sigma
    out = (out - out.min()) / (out.max() - out.min()) * 220 + 20
    grey = out.astype(np.uint8)
    return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))


def plane_frames(kind: str, n: int = 12, fps: float = 10.0) -> list[np.ndarray]:
    """A flat sheet moved as an attacker moves it: each frame a homography of the first."""
    sheet = texture(1)
    cx, cy = W / 2, H / 2
    frames = []
    for i in range(n):
        a = np.sin(2 * np.pi * (i / fps) / 2.0)
        if kind == "shear":
            m = np.array([[1, 0.6 * a, -0.6 * a * cy], [0, 1, 0], [0, 0, 1]])
        elif kind == "tilt":  # turned about a vertical axis: perspective
            m = np.array([[1, 0, 0], [0, 1, 0], [0.0018 * a, 0, 1]])
            c = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
            m = c @ m @ np.linalg.inv(c)
        else:  # zoomed and rotated in its plane, then sheared a little
            r = cv2.getRotationMatrix2D((cx, cy), 15 * a, 1 + 0.3 * a)
            m = np.vstack([r, [0, 0, 1]]) @ np.array([[1, 0.3 * a, -0.3 * a * cy], [0, 1, 0], [0, 0, 1]])
        frames.append(cv2.warpPerspective(sheet, m, (W, H), borderMode=cv2.BORDER_REFLECT))
    return frames


def sphere_frames(n: int = 12, fps: float = 10.0, amplitude: float = 0.6) -> list[np.ndarray]:
    """A textured sphere ("a head") turning about its vertical axis in front of a still,
    textured background: the front moves across, the limbs hardly, the background not at all."""
    skin = texture(2, 256, 512)[..., 0]
    back = texture(3)[..., 0]
    r = 100.0
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    x, y = xs - W / 2, ys - H / 2
    inside = x * x + y * y < r * r
    z = np.sqrt(np.clip(r * r - x * x - y * y, 0, None))
    lat = np.arcsin(np.clip(y / r, -1, 1))
    frames = []
    for i in range(n):
        theta = amplitude * np.sin(2 * np.pi * (i / fps) / 2.0)
        x0 = x * np.cos(theta) - z * np.sin(theta)
        z0 = x * np.sin(theta) + z * np.cos(theta)
        lon = np.arctan2(x0, z0)
        map_x = ((lon / np.pi + 1) / 2 * (skin.shape[1] - 1)).astype(np.float32)
        map_y = ((lat / np.pi + 0.5) * (skin.shape[0] - 1)).astype(np.float32)
        ball = cv2.remap(skin, map_x, map_y, cv2.INTER_LINEAR)
        grey = np.where(inside, ball, back).astype(np.uint8)
        frames.append(np.ascontiguousarray(np.stack([grey] * 3, axis=-1)))
    return frames


def evidence(frames: list[np.ndarray], fps: float = 10.0) -> PlanarityEvidence:
    ev = PlanarityEvidence()
    for i, img in enumerate(frames):
        ev.add(sample(img, BOX, MARKS, i / fps))
    return ev


def verdict(ev: PlanarityEvidence) -> str:
    s = DEFAULTS
    return ev.result(s.min_motion, s.max_planar_ratio, s.min_three_d_ratio, s.min_pairs).verdict


@pytest.mark.parametrize("kind", ["shear", "tilt", "zoom_rotate_shear"])
def test_a_plane_warped_by_homographies_is_planar(kind: str) -> None:
    ev = evidence(plane_frames(kind))
    r = ev.result(
        DEFAULTS.min_motion, DEFAULTS.max_planar_ratio, DEFAULTS.min_three_d_ratio, DEFAULTS.min_pairs
    )
    assert r.verdict == "planar", r
    assert r.ratio is not None and r.ratio < DEFAULTS.max_planar_ratio / 2, r  # a clear margin
    assert r.motion is not None and r.motion > DEFAULTS.min_motion  # it did move


def test_a_turning_sphere_in_front_of_a_background_is_three_dimensional() -> None:
    ev = evidence(sphere_frames())
    r = ev.result(
        DEFAULTS.min_motion, DEFAULTS.max_planar_ratio, DEFAULTS.min_three_d_ratio, DEFAULTS.min_pairs
    )
    assert r.verdict == "three_d", r
    assert r.ratio is not None and r.ratio > DEFAULTS.min_three_d_ratio, r


def test_the_same_sphere_seen_as_a_flat_picture_is_planar() -> None:
    """The cue looks at geometry, not content: one frame of the sphere, sheared like a print."""
    still = sphere_frames(1)[0]
    frames = []
    for i in range(12):
        k = 0.6 * np.sin(2 * np.pi * (i / 10) / 2.0)
        m = np.array([[1, k, -k * H / 2], [0, 1, 0]], np.float64)
        frames.append(cv2.warpAffine(still, m, (W, H), borderMode=cv2.BORDER_REFLECT))
    assert verdict(evidence(frames)) == "planar"


def test_too_little_motion_is_undecided_never_planar() -> None:
    rng = np.random.default_rng(0)
    base = plane_frames("shear", 1)[0].astype(np.int16)
    # A still face: the same frame with sensor noise, and the box jittering by a pixel or two.
    ev = PlanarityEvidence()
    for i in range(12):
        noisy = np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)
        dx, dy = int(rng.integers(-2, 3)), int(rng.integers(-2, 3))
        box = Box(BOX.left + dx, BOX.top + dy, BOX.right + dx, BOX.bottom + dy)
        ev.add(sample(noisy, box, MARKS, i / 10))
    assert verdict(ev) == "undecided"
    # A blank wall: nothing to follow at all.
    blank = np.full((H, W, 3), 128, np.uint8)
    p = compare(sample(blank, BOX, MARKS, 0.0), sample(blank, BOX, MARKS, 0.1))
    assert p.points < 12 and not p.judged(DEFAULTS.min_motion)


def test_samples_are_small_bounded_and_dropped() -> None:
    frames = plane_frames("shear", 20)
    ev = PlanarityEvidence(keep=8)
    for i, img in enumerate(frames):
        s = sample(img, BOX, MARKS, i / 10)
        assert s.crop.shape == (CROP_SIDE, CROP_SIDE) and s.crop.dtype == np.uint8
        ev.add(s)
    assert len(ev.samples) == 8 and len(ev.pairs) <= ev.max_pairs
    # The landmarks are in crop pixels: the box's centre is the crop's.
    assert sample(frames[0], BOX, np.array([[320, 240]] * 5, np.float32), 0).landmarks[0] == pytest.approx(
        [CROP_SIDE / 2, CROP_SIDE / 2]
    )
    ev.clear()
    assert not ev.samples and ev.pairs  # the crops go, the numbers stay
    # A face at the frame's edge: the crop repeats the edge, it is never cut short.
    edge = sample(frames[0], Box(-50, -40, 100, 110), MARKS, 0)
    assert edge.crop.shape == (CROP_SIDE, CROP_SIDE)
    assert ev.due(100.0, 0.1) and PlanarityEvidence().due(0.0, 0.1)


def test_the_verdict_needs_enough_judged_pairs_and_has_an_undecided_band() -> None:
    flat = PairMotion(0.04, 0.001, 80, 0.2)  # ratio 0.025
    head = PairMotion(0.03, 0.018, 80, 0.2)  # ratio 0.6
    between = PairMotion(0.03, 0.005, 80, 0.2)  # ratio 0.17
    small = PairMotion(0.005, 0.004, 80, 0.1)  # too little motion
    few = PairMotion(0.04, 0.001, 5, 0.2)  # too few points
    args = (0.015, 0.1, 0.25, 3)
    assert judge([flat, flat], *args).verdict == "undecided"
    assert judge([flat, flat, small, few], *args).verdict == "undecided"
    assert judge([flat] * 3, *args).verdict == "planar"
    assert judge([head] * 3 + [small] * 10, *args).verdict == "three_d"
    assert judge([between] * 3, *args).verdict == "undecided"
    assert judge([flat, flat, head, head, head], *args).ratio == pytest.approx(0.6)
    with pytest.raises(ValueError):
        PlanaritySettings(max_planar_ratio=0.5, min_three_d_ratio=0.3)


WALL = datetime.fromisoformat("2026-11-27T10:00:00+00:00")
FLAT = [PairMotion(0.04, 0.002, 80, 0.2)] * 3
HEAD = [PairMotion(0.03, 0.018, 80, 0.2)] * 3
FRONTAL = np.array([[30, 50], [40, 50], [60, 50], [70, 50], [50, 70]], np.float32)
TURNED = FRONTAL + np.array([0, 0, 0, 0, 12.5])[:, None] * [1, 0]


def alice(first_seen: float = 0.0, live: bool = True) -> Track:
    t = Track(
        1, face(Box(0, 0, 100, 100)), first_seen, first_seen, embeddings=2, identity=identity("alice", 0.97)
    )
    for _ in range(2):
        t.liveness.add(
            LivenessResult("live", 0.9, 0.5, "live") if live else LivenessResult("attack", 0.1, 0.5, "attack")
        )
    return t


def gate(challenge: str = "none", liveness: str = "required", **planarity: object) -> DecisionGate:
    door = DoorSettings(
        name="front",
        cameras=["cam"],
        rules=[AccessRule(people=["*"])],
        liveness=liveness,
        challenge=challenge,
    )  # type: ignore[arg-type]
    return DecisionGate(door, 2, liveness=LivenessSettings(threshold=0.5, frames=2, planarity=planarity))


def test_a_face_moving_as_a_sheet_is_an_attack_even_where_minifasnet_says_live() -> None:
    t = alice()
    t.liveness.planarity.pairs += FLAT
    d = gate().consider(t, "cam", 0.4, WALL, 0.9, 1e-3)
    assert d is not None and (d.kind, d.reason, d.person_id) == ("denied", "presentation_attack", None)
    assert d.liveness == pytest.approx(0.9)  # MiniFASNet was fooled; the motion was not
    assert d.details()["planarity"] == {"verdict": "planar", "ratio": 0.05}
    # The cue switched off: the same track is let in (what the issue reported).
    t2 = alice()
    t2.liveness.planarity.pairs += FLAT
    g = gate(enabled=False).consider(t2, "cam", 0.4, WALL, 0.9, 1e-3)
    assert g is not None and g.kind == "granted" and "planarity" not in g.details()


def test_undecided_motion_denies_nothing_and_only_waits_while_watching() -> None:
    g = gate()
    still = alice()
    still.liveness.planarity.sampled = 4
    assert g.consider(still, "cam", 0.4, WALL, 0.9, 1e-3) is None  # watched 0.4 s of 0.6
    d = g.consider(still, "cam", 0.6, WALL, 0.9, 1e-3)
    assert d is not None and d.kind == "granted" and d.details()["planarity"]["verdict"] == "undecided"  # type: ignore[index]
    # A slow camera: four samples are needed too, for at most `watch_s` (2 s).
    slow = alice(5.0)
    slow.liveness.planarity.sampled = 3
    g = gate()  # (a new gate: the same person's grant has a cooldown)
    assert g.consider(slow, "cam", 6.0, WALL, 0.9, 1e-3) is None
    assert g.consider(slow, "cam", 7.1, WALL, 0.9, 1e-3).kind == "granted"  # type: ignore[union-attr]
    # Already judged a head: no need to wait.
    head = alice(10.0)
    head.liveness.planarity.pairs += HEAD
    h = gate().consider(head, "cam", 10.2, WALL, 0.9, 1e-3)
    assert h is not None and h.kind == "granted"
    # MiniFASNet's attack is not delayed, and a head's motion does not overrule it.
    spoof = alice(20.0, live=False)
    spoof.liveness.planarity.pairs += HEAD
    s = gate().consider(spoof, "cam", 20.2, WALL, 0.9, 1e-3)
    assert s is not None and s.reason == "presentation_attack"


def test_the_head_turn_passes_only_with_motion_a_sheet_cannot_make() -> None:
    def turned(first: float, pairs: list[PairMotion]) -> Track:
        t = alice(first)
        t.liveness.add_pose(first, FRONTAL)
        t.liveness.add_pose(first + 1, TURNED)
        t.liveness.planarity.pairs += pairs
        return t

    # A door without liveness: the sheet's "turn" is not a turn; the challenge fails.
    off = gate("head_turn", liveness="off")
    sheet = turned(0.0, FLAT)
    assert off.consider(sheet, "cam", 1.0, WALL, 0.9, 1e-3) is None
    d = off.consider(sheet, "cam", 4.1, WALL, 0.9, 1e-3)
    assert d is not None and d.reason == "challenge_failed"
    head = turned(10.0, HEAD)
    g = off.consider(head, "cam", 11.0, WALL, 0.9, 1e-3)
    assert g is not None and g.kind == "granted"
    # With liveness required the sheet is an attack at once.
    req = gate("head_turn")
    a = req.consider(turned(20.0, FLAT), "cam", 21.0, WALL, 0.9, 1e-3)
    assert a is not None and a.reason == "presentation_attack"
    # The cue switched off: the yaw alone passes, as before.
    loose = gate("head_turn", liveness="off", enabled=False)
    assert loose.consider(turned(30.0, FLAT), "cam", 31.0, WALL, 0.9, 1e-3).kind == "granted"  # type: ignore[union-attr]
