"""Face tracks across frames: box overlap first, embedding similarity to re-find a lost face.

A track gathers evidence: the embeddings of its best-quality sightings. Its identity is decided
on the quality-weighted fusion of that evidence, so one blurred or turned frame does not make
the decision. Faces are embedded when a track starts, when its face gets clearly better, and
every `reembed_s`, not on every frame; once the track is decided, only every
`decided_reembed_s` (to catch another face stepping into the box), and its faces in between
need no landmarks, chip or quality (`Tracker.needs_face`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from facegate.match import OpenSetDecision
from facegate.settings import TrackingSettings
from facegate.vision.geometry import iou
from facegate.vision.liveness import LivenessEvidence
from facegate.vision.types import Box, Face, Quality


def quality_weight(q: Quality) -> float:
    """How much one sighting should count: frontal, large enough and sharp faces count most."""
    size = min(1.0, q.size_px / 112.0)
    return max(q.frontal, 0.05) * size * (0.5 + 0.5 * q.sharpness)


@dataclass
class Track:
    id: int
    face: Face  # the latest sighting
    first_seen: float
    last_seen: float
    evidence: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (weight, embedding)
    embeddings: int = 0  # how many times this track's face was embedded
    last_embedded: float = float("-inf")
    best_weight: float = 0.0
    identity: OpenSetDecision | None = None
    emitted: set[str] = field(default_factory=set)  # decisions already announced for this track
    hurry: bool = False  # a marginal match waits for more evidence: embed again soon
    liveness: LivenessEvidence = field(default_factory=LivenessEvidence)  # at doors that require it

    @property
    def box(self) -> Box:
        return self.face.box

    @property
    def decided(self) -> bool:
        """A decision was announced ("unknown" is none: the track may be recognised later)."""
        return bool(self.emitted - {"unknown"})

    def add_evidence(self, face: Face, now: float, keep: int) -> None:
        assert face.embedding is not None
        w = quality_weight(face.quality)
        self.evidence.append((w, np.asarray(face.embedding, np.float32)))
        self.evidence.sort(key=lambda e: -e[0])
        del self.evidence[keep:]
        self.embeddings += 1
        self.last_embedded = now
        self.best_weight = max(self.best_weight, w)

    def fused(self) -> np.ndarray | None:
        """The quality-weighted mean of the kept embeddings, L2-normalised."""
        if not self.evidence:
            return None
        weights = np.array([max(w, 1e-3) for w, _ in self.evidence], np.float32)
        mean = (np.stack([e for _, e in self.evidence]) * weights[:, None]).sum(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else None


Embed = Callable[[list[Face]], None]


class Tracker:
    """Associates each frame's faces with tracks; embeds only the faces that need it."""

    def __init__(self, settings: TrackingSettings, same_person: float, different_person: float) -> None:
        self.settings = settings
        self.same_person = same_person  # cosine at which a lost track is re-found by its face
        # Below this, a new sighting is someone else who stepped into the box: a new track.
        self.different_person = different_person
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def _associate(self, boxes: list[Box], active: list[Track]) -> dict[int, Track]:
        """Greedy box overlap: face index -> the continuing track it belongs to."""
        pairs = sorted(
            ((iou(t.box, b), ti, fi) for ti, t in enumerate(active) for fi, b in enumerate(boxes)),
            reverse=True,
        )
        matched: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < self.settings.iou:
                break
            if ti in used or fi in matched:
                continue
            matched[fi] = active[ti]
            used.add(ti)
        return matched

    def _due(self, t: Track, face: Face | None, now: float) -> bool:
        s = self.settings
        if t.decided:  # rarely: only to catch a swapped face (face quality is not even measured)
            return now - t.last_embedded >= s.decided_reembed_s
        if now - t.last_embedded >= (s.hurry_s if t.hurry else s.reembed_s):
            return True
        return face is not None and quality_weight(face.quality) > t.best_weight * (1 + s.quality_gain)

    def needs_face(self, boxes: list[Box], now: float) -> list[Track | None]:
        """For each box of a frame about to be tracked: the decided track it continues, where
        that track needs nothing of the face this frame (no embedding, no quality), else None.
        The same association `update` makes, so a face skipped here is never embedded there."""
        active = [t for t in self.tracks.values() if now - t.last_seen <= self.settings.max_age_s]
        matched = self._associate(boxes, active)
        out: list[Track | None] = [None] * len(boxes)
        for fi, t in matched.items():
            if t.decided and not self._due(t, None, now):
                out[fi] = t
        return out

    def update(self, faces: list[Face], now: float, embed: Embed) -> tuple[list[Track], list[Track]]:
        """Tracks seen in this frame (new evidence added), and tracks that just ended."""
        s = self.settings
        # Expire first: after an outage, or when one person leaves and another steps into the same
        # spot later, the newcomer must not inherit the old track (and its identity).
        ended = [t for t in self.tracks.values() if now - t.last_seen > s.max_age_s]
        for t in ended:
            del self.tracks[t.id]
        active = list(self.tracks.values())
        matched = self._associate([f.box for f in faces], active)
        used = {id(t) for t in matched.values()}
        unmatched = [i for i in range(len(faces)) if i not in matched]
        # A face with no overlapping track is embedded now: it either re-finds a track that lost
        # it for a moment (fast motion, a missed detection) or starts a new one.
        embed([faces[i] for i in unmatched])
        lost = [t for t in active if id(t) not in used]
        for fi in unmatched:
            face = faces[fi]
            best, best_score = None, self.same_person
            for t in lost:
                fused = t.fused()
                if fused is not None and face.embedding is not None:
                    score = float(np.dot(fused, face.embedding))
                    if score >= best_score:
                        best, best_score = t, score
            if best is not None:
                lost.remove(best)
                matched[fi] = best
            else:
                track = Track(next(self._ids), face, now, now)
                self.tracks[track.id] = track
                matched[fi] = track
        # Embed faces of continuing tracks only when worth it.
        due = [
            fi for fi, t in matched.items() if faces[fi].embedding is None and self._due(t, faces[fi], now)
        ]
        embed([faces[fi] for fi in due])
        for fi in due:
            track, face = matched[fi], faces[fi]
            fused = track.fused()
            embedding = face.embedding
            if (
                fused is not None
                and embedding is not None
                and float(np.dot(fused, embedding)) < self.different_person
            ):
                fresh = Track(next(self._ids), face, now, now)
                self.tracks[fresh.id] = fresh
                matched[fi] = fresh
        seen = []
        for fi, t in matched.items():
            face = faces[fi]
            t.face, t.last_seen = face, now
            if face.embedding is not None:
                t.add_evidence(face, now, s.evidence)
            seen.append(t)
        return seen, ended
