"""Door decisions from track identities: granted, denied or unknown, once per track, with cooldowns."""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from facegate.access.policy import DoorPolicy
from facegate.match import OpenSetDecision
from facegate.settings import DoorSettings, LivenessSettings
from facegate.vision.liveness import LivenessEvidence
from facegate.vision.planarity import PlanarityResult
from facegate.vision.types import Box

DecisionKind = Literal["granted", "denied", "unknown"]


class TrackedFace(Protocol):
    """What a door decision needs from a face followed across frames (video's `Track` is one)."""

    hurry: bool  # written back: a marginal match asks for another embedding soon

    @property
    def id(self) -> int: ...
    @property
    def box(self) -> Box: ...
    @property
    def first_seen(self) -> float: ...  # on the stream's clock, like `now`
    @property
    def identity(self) -> OpenSetDecision | None: ...
    @property
    def embeddings(self) -> int: ...  # how many times the face was embedded
    @property
    def evidence(self) -> Sized: ...  # the embeddings the identity rests on
    @property
    def emitted(self) -> set[str]: ...  # decisions already announced; the gate adds to it
    @property
    def liveness(self) -> LivenessEvidence: ...  # scored frames, where the door requires liveness


@dataclass(frozen=True)
class DoorDecision:
    kind: DecisionKind
    door: str
    camera: str
    track_id: int
    person_id: str | None
    name: str | None
    score: float | None  # best candidate's score against the fused track embedding
    threshold: float
    target_fmr: float
    reason: str
    at: datetime
    # From the first frame the face was seen in (its capture, for a live camera) until this
    # decision was made: the wait for the deciding frame and its processing included.
    latency_s: float
    evidence: int  # embeddings the decision rests on
    box: Box
    liveness: float | None = None  # the track's fused live score, where the door requires it
    # Whose face this is, where the decision names nobody (a failed challenge, an attack, two
    # people alike): everyone it matched at or above their threshold. Not in `details`: kept
    # only so that the event is theirs for subject access and erasure.
    subjects: tuple[str, ...] = ()
    # How the face moved (a flat sheet or a head), where the door's liveness or challenge asked.
    planarity: PlanarityResult | None = None

    def details(self) -> dict[str, object]:
        """The event payload: never an image, a template or a candidate who was not decided."""
        live: dict[str, object] = {} if self.liveness is None else {"liveness_score": round(self.liveness, 4)}
        if self.kind == "granted":
            # What an automation needs before it unlocks: whether a live face was required and
            # seen ("passed") or the door's rule never checked ("off": a photo would do).
            live["liveness"] = "off" if self.liveness is None else "passed"
        if self.planarity is not None:
            p = self.planarity
            live["planarity"] = {
                "verdict": p.verdict,
                "ratio": None if p.ratio is None else round(p.ratio, 4),
            }
        return {
            "door": self.door,
            "track": self.track_id,
            "name": self.name,
            "score": None if self.score is None else round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "target_fmr": self.target_fmr,
            "reason": self.reason,
            "latency_ms": round(self.latency_s * 1000),
            "evidence": self.evidence,
            "box": self.box.to_dict(),
            **live,
        }


class DecisionGate:
    """Turns a door's track identities into decisions worth announcing.

    A track announces each decision at most once; the same person with the same decision is
    announced at most once per `cooldown_s` across tracks (someone lingering at the door), and
    unknown visitors at most once per `unknown_cooldown_s` (one doorbell, not fifty). Nothing of
    an unknown face is remembered to do this: the cooldown is per door.
    """

    def __init__(
        self,
        door: DoorSettings,
        unknown_after: int,
        unknown_min_s: float = 0.0,
        people_named: Callable[[str], list[str]] | None = None,
        liveness: LivenessSettings | None = None,
    ) -> None:
        """`liveness`: the threshold, frames and challenge settings (defaults if None); a live
        face is required where the door says so (`door.liveness_required`)."""
        self.door = door
        self.policy = DoorPolicy(door, people_named)
        self.unknown_after = unknown_after
        self.unknown_min_s = unknown_min_s
        self.liveness = liveness or LivenessSettings()
        self.requires_live = door.liveness_required
        # Whether the track's motion is judged (a flat sheet or a head): the pipeline samples
        # the face's region only then.
        self.asks_motion = self.liveness.planarity.enabled and (
            self.requires_live or door.challenge != "none"
        )
        self._last: dict[tuple[str, str], float] = {}
        self._last_unknown = float("-inf")

    def consider(
        self,
        track: TrackedFace,
        camera: str,
        now: float,
        wall: datetime,
        threshold: float,
        target_fmr: float,
        confident: float | None = None,
    ) -> DoorDecision | None:
        """`confident`: a score at which one sighting is enough; below it, a match waits for a
        second embedding (the track hurries to get one) before anyone is let in or turned away."""
        ident = track.identity
        live = self._live(track, now)
        if live == "attack":
            return self._attack(track, camera, now, wall, threshold, target_fmr)
        if ident is None:
            return None
        score = ident.candidates[0].score if ident.candidates else None
        if ident.person is not None:
            person = ident.person
            if confident is not None and track.embeddings < 2 and person.score < confident:
                track.hurry = True
                return None
            track.hurry = False
            if live is None:
                return None  # nobody is let in or turned away before the face is known to be live
            if self.door.challenge == "head_turn" and not self._turned(track):
                if now - track.first_seen <= self.liveness.challenge_window_s:
                    return None  # waiting for the head to turn
                return self._failed_challenge(track, camera, now, wall, threshold, target_fmr)
            verdict = self.policy.evaluate(person.person_id, person.name, wall)
            kind: DecisionKind = "granted" if verdict.allowed else "denied"
            tag = f"{kind}:{person.person_id}"
            if tag in track.emitted:
                return None
            track.emitted.add(tag)
            key = (kind, person.person_id)
            if now - self._last.get(key, float("-inf")) < self.door.cooldown_s:
                return None
            self._last[key] = now
            return DoorDecision(
                kind, self.door.name, camera, track.id, person.person_id, person.name, person.score,
                threshold, target_fmr, verdict.reason, wall, now - track.first_seen, len(track.evidence),
                track.box, track.liveness.fused() if self.requires_live else None,
                planarity=self.planarity(track) if self.asks_motion else None,
            )  # fmt: skip
        # Unknown: only on enough evidence, and never for a track already recognised.
        if (
            track.embeddings < self.unknown_after
            or now - track.first_seen < self.unknown_min_s
            or track.emitted
        ):
            return None
        track.emitted.add("unknown")
        if now - self._last_unknown < self.door.unknown_cooldown_s:
            return None
        self._last_unknown = now
        return DoorDecision(
            "unknown", self.door.name, camera, track.id, None, None, score, threshold, target_fmr,
            ident.reason, wall, now - track.first_seen, len(track.evidence), track.box,
            subjects=ident.matched,
        )  # fmt: skip

    def planarity(self, track: TrackedFace) -> PlanarityResult | None:
        """How the track's face moved, where the cue is on (None where it is off)."""
        p = self.liveness.planarity
        if not self.asks_motion:
            return None
        return track.liveness.planarity.result(
            p.min_motion, p.max_planar_ratio, p.min_three_d_ratio, p.min_pairs
        )

    def _live(self, track: TrackedFace, now: float) -> Literal["live", "attack"] | None:
        """The track's liveness verdict; "live" where the door does not require one.

        Two independent cues: the texture and context of each frame (MiniFASNet, fused over the
        track's frames) and the motion of the face (a flat sheet, whatever a homography of an
        earlier frame explains, is a print). An attack by either denies; a live verdict needs
        MiniFASNet's, and a motion cue that is undecided (too little motion) denies nothing.
        A live verdict waits while the face is watched (`_watching`), unless its motion was
        already judged: a print moved from the start has that long to show it is flat."""
        if not self.requires_live:
            return "live"
        plan = self.planarity(track)
        if plan is not None and plan.verdict == "planar":
            return "attack"
        verdict = track.liveness.verdict(self.liveness.threshold, self.liveness.frames)
        if (
            verdict == "live"
            and plan is not None
            and plan.verdict == "undecided"
            and self._watching(track, now)
        ):
            return None
        return verdict

    def _watching(self, track: TrackedFace, now: float) -> bool:
        """Whether a live verdict should wait for the motion cue: for `min_watch_s`, and until
        the face was sampled `min_pairs + 1` times (a slow camera), within `watch_s`."""
        p = self.liveness.planarity
        seen = now - track.first_seen
        few = track.liveness.planarity.sampled < p.min_pairs + 1
        return seen < p.min_watch_s or (few and seen <= p.watch_s)

    def _turned(self, track: TrackedFace) -> bool:
        """The head-turn challenge: the yaw swung far enough within the window, and (the motion
        cue on) the face moved as a head, not as a sheet a 2-D transform explains: a print
        tilted or sheared to imitate the turn swings the landmarks' yaw too."""
        s = self.liveness
        if not track.liveness.turned(s.challenge_window_s, s.challenge_min_turn):
            return False
        plan = self.planarity(track)
        return plan is None or plan.verdict == "three_d"

    def _failed_challenge(
        self, track: TrackedFace, camera: str, now: float, wall: datetime, threshold: float, target_fmr: float
    ) -> DoorDecision | None:
        """No head turn within the window: denied once per track (a photo, or someone who did not
        follow the prompt; they may step back and try again as a new track)."""
        if "challenge_failed" in track.emitted:
            return None
        track.emitted.add("challenge_failed")
        ident = track.identity
        person = ident.person if ident is not None else None
        return DoorDecision(
            "denied", self.door.name, camera, track.id, None, None, person.score if person else None,
            threshold, target_fmr, "challenge_failed", wall, now - track.first_seen, len(track.evidence),
            track.box, track.liveness.fused(), ident.matched if ident is not None else (),
            self.planarity(track),
        )  # fmt: skip

    def _attack(
        self, track: TrackedFace, camera: str, now: float, wall: datetime, threshold: float, target_fmr: float
    ) -> DoorDecision | None:
        """A presentation attack: denied, once per track and per cooldown, whoever it shows.

        The person it resembles is not named (nor their last-seen time touched): the face is
        not theirs, though its picture is, so the event is theirs to see and to erase."""
        if "presentation_attack" in track.emitted:
            return None
        track.emitted.add("presentation_attack")
        key = ("denied", "presentation_attack")
        if now - self._last.get(key, float("-inf")) < self.door.cooldown_s:
            return None
        self._last[key] = now
        ident = track.identity
        return DoorDecision(
            "denied", self.door.name, camera, track.id, None, None, None, threshold, target_fmr,
            "presentation_attack", wall, now - track.first_seen, len(track.liveness.scores), track.box,
            track.liveness.fused(), ident.matched if ident is not None else (), self.planarity(track),
        )  # fmt: skip
