"""Matching: 1:1 verification and open-set 1:N identification on calibrated thresholds.

Scores are cosine similarities of L2-normalised embeddings (1 = identical). A threshold is
never a bare number: it is read from the model's calibration table for a target false-match
rate (FMR), the share of impostor comparisons that would score above it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from facegate.errors import ConfigError, ModelIntegrityError

if TYPE_CHECKING:
    from facegate.vision.decode import ImageInput
    from facegate.vision.engine import FaceEngine


# The calibration tables shipped with the models, pinned by SHA-256 as the models are: a table
# that was edited or corrupted is refused, not trusted.
SHIPPED_CALIBRATIONS: dict[str, str] = {
    "dlib_resnet_v1": "c750ada64a10936accdd375afb00e22e00d3c2407a9f4bd879cae1f655d44403",
    "dlib_resnet_v1_flip": "7eb6bfd1f1b23920d06acebeabd500b370a5c0977b3b54099e1e8b46d2f63411",
    "sface_2021dec": "7d6b0ea1f167ce4d89e066c0fa19552755e036b0918e6d0ecc3a13d871652e45",
    "reid0095_flip": "467921251b67c05b179c9e85553823ccbada5f08eb9da7090a2320e689777de8",
    "sface_2021dec+reid0095": "2da29e6bcb217187b16c3e98239c12b024468cac56dd8785ac1724566989fc8d",
}


def check_pinned(data: bytes, expected_sha256: str, name: str) -> None:
    """Raise `ModelIntegrityError` unless `data` has the pinned SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise ModelIntegrityError(
            f"{name} has SHA-256 {digest}, expected {expected_sha256}: corrupt or replaced", file=name
        )


def shipped_table(space: str) -> str:
    """The text of the calibration table shipped for `space`, checked against its pin."""
    name = f"calibration_{space}.json"
    expected = SHIPPED_CALIBRATIONS.get(space)
    if expected is None:
        raise ConfigError(
            f"no calibration table ships for the embedding space {space}: make one with "
            "`facegate eval calibrate DIR` and set match.calibration_file"
        )
    data = resources.files("facegate.data").joinpath(name).read_bytes()
    check_pinned(data, expected, name)
    return data.decode()


@dataclass(frozen=True)
class CalibrationPoint:
    fmr: float
    threshold: float
    impostor_pairs: int
    fmr_ci95: tuple[float, float]


@dataclass(frozen=True)
class Calibration:
    """Score thresholds for target false-match rates, for one embedding space."""

    space: str
    points: tuple[CalibrationPoint, ...]
    method: str = ""
    source: str = ""

    @classmethod
    def load(cls, path: Path | None = None, space: str | None = None) -> Calibration:
        """The table in `path`, else the one shipped for `space`."""
        if path is None:
            if space is None:
                raise ConfigError("a calibration table needs a file or an embedding space")
            text = shipped_table(space)
        else:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"cannot read calibration file {path}: {exc}") from exc
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"calibration table {path or space} is not valid: {exc!r}") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        raw = data.get("points")
        if not isinstance(raw, list) or not raw:
            raise ConfigError("calibration table has no points")
        points = tuple(
            sorted(
                (
                    CalibrationPoint(
                        float(p["fmr"]), float(p["threshold"]), int(p["impostor_pairs"]), tuple(p["fmr_ci95"])
                    )
                    for p in raw
                ),
                key=lambda p: -p.fmr,
            )
        )
        return cls(str(data["space"]), points, str(data.get("method", "")), str(data.get("source", "")))

    @property
    def min_fmr(self) -> float:
        return self.points[-1].fmr

    def threshold(self, target_fmr: float) -> float:
        """The score at which impostors pass at `target_fmr` (log-linear between table rows)."""
        if not 0 < target_fmr < 1:
            raise ConfigError(f"target FMR must be between 0 and 1, got {target_fmr}")
        pts = self.points
        if target_fmr < pts[-1].fmr:
            raise ConfigError(
                f"target FMR {target_fmr:g} is below the lowest rate this model's calibration supports "
                f"({pts[-1].fmr:g}, from {pts[-1].impostor_pairs} impostor pairs)"
            )
        if target_fmr >= pts[0].fmr:
            return pts[0].threshold
        for hi, lo in itertools.pairwise(pts):
            if lo.fmr <= target_fmr <= hi.fmr:
                t = (math.log(target_fmr) - math.log(hi.fmr)) / (math.log(lo.fmr) - math.log(hi.fmr))
                return hi.threshold + t * (lo.threshold - hi.threshold)
        return pts[-1].threshold  # pragma: no cover - the loop covers every case

    def fmr_at(self, score: float) -> float:
        """The false-match rate the table gives for a score (how surprising an impostor this high is)."""
        pts = self.points
        if score <= pts[0].threshold:
            return pts[0].fmr
        if score >= pts[-1].threshold:
            return pts[-1].fmr
        for hi, lo in itertools.pairwise(pts):
            if hi.threshold <= score <= lo.threshold:
                t = (score - hi.threshold) / max(lo.threshold - hi.threshold, 1e-12)
                return math.exp(math.log(hi.fmr) + t * (math.log(lo.fmr) - math.log(hi.fmr)))
        return pts[-1].fmr  # pragma: no cover


def ambiguity_margin(configured: float | None, cal: Calibration) -> float:
    """The open-set ambiguity margin: as configured, else 1.5x the score distance between the
    table's 1e-3 and 1e-4 thresholds. Scores spread differently in each embedding space (dlib's
    genuine and impostor scores both sit near 0.93, SFace's far apart), so a margin means the same
    there only when measured in the space's own steps (dlib's: 0.0204, the 0.02 it always had)."""
    if configured is not None:
        return configured
    deep = max(1e-4, cal.min_fmr)
    if deep >= 1e-3:  # a table that stops above 1e-3: its steepest decade
        return 1.5 * max(cal.points[-1].threshold - cal.points[0].threshold, 0.0)
    per_decade = (cal.threshold(deep) - cal.threshold(1e-3)) / math.log10(1e-3 / deep)
    return 1.5 * max(per_decade, 0.0)


@lru_cache(maxsize=8)
def shipped_calibration(space: str) -> Calibration:
    return Calibration.load(space=space)


def calibration_for(calibration_file: Path | None, space: str) -> Calibration:
    """The configured calibration table, else the one shipped with the model. A table made in
    another embedding space is refused: its thresholds mean nothing for these scores."""
    if calibration_file is None:
        return shipped_calibration(space)
    cal = Calibration.load(calibration_file)
    if cal.space != space:
        raise ConfigError(
            f"calibration table {calibration_file} was made for the embedding space {cal.space}, but the "
            f"embedder now makes {space}: run `facegate eval calibrate` again "
            "(or unset match.calibration_file)"
        )
    return cal


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


@dataclass(frozen=True)
class Verification:
    score: float
    same_person: bool
    threshold: float
    target_fmr: float

    def to_dict(self) -> dict[str, object]:
        return {
            "score": round(self.score, 4),
            "same_person": self.same_person,
            "threshold": round(self.threshold, 4),
            "target_fmr": self.target_fmr,
        }


def verify(a: np.ndarray, b: np.ndarray, threshold: float, target_fmr: float) -> Verification:
    """1:1: are two embeddings the same person at this threshold?"""
    score = cosine(a, b)
    return Verification(score, score >= threshold, threshold, target_fmr)


def verify_photos(
    engine: FaceEngine, a: ImageInput, b: ImageInput, *, liveness: bool = False
) -> Verification:
    """Are the largest faces of two photos the same person, at the configured false-match rate?
    `liveness`: the first photo (a selfie) must be judged live; the second may be an ID photo."""
    fa = engine.largest_face(a, "first image", liveness=liveness)
    fb = engine.largest_face(b, "second image")
    assert fa.embedding is not None and fb.embedding is not None
    s = engine.settings.match
    cal = calibration_for(s.calibration_file, engine.space)
    return verify(fa.embedding, fb.embedding, cal.threshold(s.target_fmr), s.target_fmr)


@dataclass(frozen=True)
class Candidate:
    person_id: str
    name: str
    score: float
    template_id: int

    def to_dict(self) -> dict[str, object]:
        return {"person_id": self.person_id, "name": self.name, "score": round(self.score, 4)}


Decision = Literal["match", "unknown"]
Reason = Literal["match", "below_threshold", "ambiguous", "empty_gallery"]


@dataclass(frozen=True)
class OpenSetDecision:
    decision: Decision
    reason: Reason
    person: Candidate | None
    candidates: list[Candidate] = field(default_factory=list)
    threshold: float | None = None  # what the best candidate was held to (their own, if any)
    # Everyone the face scored at or above their threshold for, best first: the person decided,
    # or, when nobody could be (two alike), those it is nonetheless the face of.
    matched: tuple[str, ...] = ()


def decide(
    candidates: list[Candidate],
    threshold: float,
    margin: float,
    per_person: Mapping[str, float] | None = None,
) -> OpenSetDecision:
    """Open-set rule: the best person if they clear their threshold and stand clear of the next.

    `candidates` are people (one entry per person, best template's score), best first. A person
    found in `per_person` is held to their own threshold, never below `threshold` (the floor);
    anyone else to `threshold`. A second person within `margin` of the best who clears the floor
    makes the answer ambiguous.
    """
    if not candidates:
        return OpenSetDecision("unknown", "empty_gallery", None, [])

    def bar(c: Candidate) -> float:
        return threshold if per_person is None else max(per_person.get(c.person_id, threshold), threshold)

    best = candidates[0]
    held = bar(best)
    if best.score < held:
        return OpenSetDecision("unknown", "below_threshold", None, candidates, held)
    matched = tuple(c.person_id for c in candidates if c.score >= bar(c))
    if len(candidates) > 1 and candidates[1].score >= threshold and best.score - candidates[1].score < margin:
        # Two enrolled people both look like this face: saying either would be a guess. The
        # second counts from the 1:1 floor, not their own open-set threshold: that one says how
        # far strangers reach, not whether this face could be theirs (two people enrolled from
        # photos of one man hold each other's thresholds up to their own likeness).
        return OpenSetDecision("unknown", "ambiguous", None, candidates, held, matched)
    return OpenSetDecision("match", "match", best, candidates, held, matched)


def best_per_person(
    scores: np.ndarray,
    template_ids: np.ndarray,
    owner: dict[int, str],
    names: dict[str, str],
    k: int,
    allowed: Container[str] | None = None,
) -> list[Candidate]:
    """Collapse template hits (best first) to the top `k` people, each at their best template.

    People not in `allowed` (when given) are skipped, e.g. those whose consent is not valid.
    """
    seen: dict[str, Candidate] = {}
    for s, tid in zip(scores.tolist(), template_ids.tolist(), strict=True):
        if tid < 0 or not math.isfinite(s):
            continue
        pid = owner.get(int(tid))
        if pid is None or pid in seen or (allowed is not None and pid not in allowed):
            continue
        seen[pid] = Candidate(pid, names.get(pid, ""), float(s), int(tid))
        if len(seen) == k:
            break
    return list(seen.values())
