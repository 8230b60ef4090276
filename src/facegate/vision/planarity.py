"""Does a face move as a flat sheet or as a head? A motion cue a printed photo cannot fake.

Everything a flat surface does in front of a camera (moved, tilted, sheared, brought closer,
turned in its plane) maps one image of it onto a later one by a *homography*. A head that
turns does not: the nose moves across the cheeks, the face outline slides over the ears and the
background (parallax), and no single 3x3 projective map explains it. So, between an earlier
frame of a track and a later one:

1. corners (`cv2.goodFeaturesToTrack`) of the earlier small grey crop of the face region are
   followed into the later crop by pyramidal Lucas-Kanade, kept only where tracking back lands
   within a pixel of where they started;
2. `motion`: how far the points moved *beyond a similarity* (shift, scale, in-plane rotation:
   what a still face with a jittering box, or a print held still, gives), the median distance
   of the points from the best similarity's prediction, relative to the crop side. Below
   `min_motion` nothing can be told apart: the pair is not judged;
3. `residual`: the earlier crop warped by the best homography (RANSAC), its points followed
   again into the later crop (precisely now: the tracking window no longer has to stretch with
   a tilted sheet), the best homography of those correspondences, and the median distance it
   leaves, relative to the crop side. A plane leaves tracking noise; a turning head, parallax;
4. `ratio` = residual / motion, the share of the non-similar motion no homography explains:
   0.02-0.05 for moved prints, 0.3-0.7 for real heads (docs/liveness.md). A track's verdict is
   the median ratio of its judged pairs (`judge`).

Crops are taken about the face box, so both crops of a pair are in "box coordinates": a
similarity of the frame away from the frame coordinates, which keeps a planar motion a
homography and removes the face's drift across the frame.

The crops are biometric data of possibly non-enrolled people: `PlanarityEvidence` keeps a few,
small (`CROP_SIDE` pixels square, grey), in memory, with its track, and nothing else keeps them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from facegate.vision.types import Box

CROP_SIDE = 96  # pixels of the square grey crop kept per sample
ENLARGE = 1.3  # the crop's side: the face box's longer side times this (some outline and ears)
MIN_POINTS = 12  # followed points a pair needs to be judged at all

PlanarVerdict = Literal["planar", "three_d", "undecided"]


@dataclass(frozen=True)
class PlanaritySample:
    """One frame of a track: the grey crop about the face box, and the 5 landmarks in it."""

    time: float
    crop: np.ndarray  # (CROP_SIDE, CROP_SIDE) uint8
    landmarks: np.ndarray  # (5, 2) float32, crop pixels


@dataclass(frozen=True)
class PairMotion:
    """An earlier and a later sample compared. `motion` and `residual` are shares of the crop
    side (NaN where too few points could be followed)."""

    motion: float
    residual: float
    points: int
    span_s: float  # seconds between the two samples

    @property
    def ratio(self) -> float:
        """The share of the motion beyond a similarity that no homography explains: near 0 for
        a flat surface however it moves, near 1 for tracking noise and for a turning head."""
        if not (np.isfinite(self.motion) and np.isfinite(self.residual)) or self.motion <= 0:
            return float("nan")
        return self.residual / self.motion

    def judged(self, min_motion: float) -> bool:
        """Enough points, and enough motion beyond a similarity to tell a plane from a head."""
        return self.points >= MIN_POINTS and np.isfinite(self.ratio) and self.motion >= min_motion

    def to_dict(self) -> dict[str, object]:
        return {
            "motion": round(self.motion, 5),
            "residual": round(self.residual, 5),
            "points": self.points,
            "span_s": round(self.span_s, 3),
        }


def crop_square(box: Box) -> tuple[float, float, float]:
    """The crop's centre and side in frame pixels."""
    side = ENLARGE * max(box.width, box.height, 1)
    return (box.left + box.right) / 2.0, (box.top + box.bottom) / 2.0, side


def sample(image: np.ndarray, box: Box, landmarks: np.ndarray, time: float) -> PlanaritySample:
    """The sample of one face of a frame (`image`: the RGB or grey uint8 frame). Outside the
    frame the crop repeats the edge. Costs well under a millisecond."""
    cx, cy, side = crop_square(box)
    scale = CROP_SIDE / side
    h, w = image.shape[:2]
    # Cut the region (clipped) before converting to grey: a frame is much larger than a face.
    x0, y0 = max(int(cx - side / 2) - 1, 0), max(int(cy - side / 2) - 1, 0)
    x1, y1 = min(int(cx + side / 2) + 2, w), min(int(cy + side / 2) + 2, h)
    region = image[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else image[:1, :1]
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region
    ox, oy = cx - side / 2 - x0, cy - side / 2 - y0  # crop origin in region pixels
    m = np.array([[scale, 0, -ox * scale], [0, scale, -oy * scale]], np.float64)
    # Area-like smoothing before sampling down, so that fine print texture does not alias.
    if scale < 0.5:
        grey = cv2.GaussianBlur(grey, (0, 0), 0.5 / scale * 0.6)
    crop = cv2.warpAffine(
        np.ascontiguousarray(grey),
        m,
        (CROP_SIDE, CROP_SIDE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    marks = (np.asarray(landmarks, np.float32) - np.array([cx - side / 2, cy - side / 2], np.float32)) * scale
    return PlanaritySample(time, crop, marks.astype(np.float32))


_LK = {
    "winSize": (15, 15),
    "maxLevel": 3,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
}


def _follow(a: np.ndarray, b: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where `points` of `a` are in `b`: the indices of those followed (forward-backward
    checked, inside both crops) and their positions in `b`."""
    index = np.flatnonzero(np.all((points >= 0) & (points < CROP_SIDE - 1), axis=1))
    if len(index) < MIN_POINTS:
        return np.zeros(0, np.intp), np.zeros((0, 2), np.float32)
    p0 = np.ascontiguousarray(points[index], np.float32).reshape(-1, 1, 2)
    p1, ok1, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, None, **_LK)  # type: ignore[call-overload]
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(b, a, p1, None, **_LK)  # type: ignore[call-overload]
    p1 = p1.reshape(-1, 2)
    fb = np.linalg.norm(back.reshape(-1, 2) - p0.reshape(-1, 2), axis=1)
    good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (fb < 1.0)
    keep = good & np.all((p1 >= 0) & (p1 < CROP_SIDE), axis=1)
    return index[keep], p1[keep].astype(np.float32)


def _corners(a: np.ndarray) -> np.ndarray:
    """Up to 120 corners of a crop, 3 px apart at least: the points whose motion is measured."""
    corners = cv2.goodFeaturesToTrack(a, maxCorners=120, qualityLevel=0.005, minDistance=3, blockSize=5)
    return np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2).astype(np.float32)


def compare(earlier: PlanaritySample, later: PlanaritySample) -> PairMotion:
    """How the face moved from `earlier` to `later`: beyond a similarity, and beyond a homography."""
    span = later.time - earlier.time
    corners = _corners(earlier.crop)
    index, p1 = _follow(earlier.crop, later.crop, corners)
    n = len(index)
    if n < MIN_POINTS:
        return PairMotion(float("nan"), float("nan"), n, span)
    p0 = corners[index]
    sim, _ = cv2.estimateAffinePartial2D(p0, p1, method=cv2.LMEDS)
    if sim is None:
        return PairMotion(float("nan"), float("nan"), n, span)
    predicted = p0 @ sim[:, :2].T + sim[:, 2]
    motion = float(np.median(np.linalg.norm(p1 - predicted, axis=1))) / CROP_SIDE
    hom, _ = cv2.findHomography(p0, p1, cv2.RANSAC, 1.5)
    if hom is None:
        return PairMotion(motion, float("nan"), n, span)
    # Followed again from the earlier crop warped by that homography: a plane's warped crop *is*
    # the later crop (the window no longer has to stretch with a tilted sheet), so the points
    # land precisely; a head's differs by its parallax. Then the best homography of those
    # precise correspondences, and what it leaves.
    warped = cv2.warpPerspective(earlier.crop, hom, (CROP_SIDE, CROP_SIDE), borderMode=cv2.BORDER_REPLICATE)
    projected = cv2.perspectiveTransform(p0.reshape(-1, 1, 2), hom).reshape(-1, 2)
    again, q1 = _follow(warped, later.crop, projected)
    if len(again) < MIN_POINTS:
        return PairMotion(motion, float("nan"), len(again), span)
    q0 = p0[again]
    refined, _ = cv2.findHomography(q0, q1, cv2.RANSAC, 1.0)
    if refined is None:
        return PairMotion(motion, float("nan"), len(again), span)
    left = cv2.perspectiveTransform(q0.reshape(-1, 1, 2), refined).reshape(-1, 2)
    residual = float(np.median(np.linalg.norm(q1 - left, axis=1))) / CROP_SIDE
    return PairMotion(motion, residual, n, span)


@dataclass(frozen=True)
class PlanarityResult:
    """A track's verdict: `planar` (a flat surface: a presentation attack), `three_d` (a head),
    `undecided` (too few pairs with enough motion, or a ratio between the two thresholds)."""

    verdict: PlanarVerdict
    ratio: float | None  # median `PairMotion.ratio` over the judged pairs
    residual: float | None  # median residual over the judged pairs (share of the crop side)
    motion: float | None  # the largest motion beyond a similarity seen (share of the crop side)
    judged: int  # pairs with enough motion
    pairs: int  # pairs compared

    def to_dict(self) -> dict[str, object]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "verdict": self.verdict,
            "ratio": r(self.ratio),
            "residual": r(self.residual),
            "motion": r(self.motion),
            "judged": self.judged,
            "pairs": self.pairs,
        }


def judge(
    pairs: list[PairMotion], min_motion: float, max_planar: float, min_three_d: float, min_pairs: int
) -> PlanarityResult:
    """A track's verdict from its compared pairs: the median ratio of those with at least
    `min_motion`, planar at or below `max_planar`, three-dimensional at or above `min_three_d`;
    undecided with fewer than `min_pairs` such pairs. Undecided denies nothing by itself."""
    judged = [p for p in pairs if p.judged(min_motion)]
    motions = [p.motion for p in pairs if np.isfinite(p.motion)]
    top = max(motions) if motions else None
    if len(judged) < min_pairs:
        return PlanarityResult("undecided", None, None, top, len(judged), len(pairs))
    ratio = float(np.median([p.ratio for p in judged]))
    residual = float(np.median([p.residual for p in judged]))
    verdict: PlanarVerdict = (
        "planar" if ratio <= max_planar else "three_d" if ratio >= min_three_d else "undecided"
    )
    return PlanarityResult(verdict, ratio, residual, top, len(judged), len(pairs))


@dataclass
class PlanarityEvidence:
    """A track's samples (at most `keep`, the oldest dropped) and its compared pairs (at most
    `max_pairs`, the newest kept).

    Each new sample is compared with the one, two and four before it: short spans follow a fast
    turn before its points are hidden (a cheek turning away), the longer one shows a slow turn.
    `due` says whether a frame should be sampled at all (`gap_s` after the previous sample: a
    30 frames/s camera need not cost 30 comparisons a second)."""

    keep: int = 8
    max_pairs: int = 48
    samples: deque[PlanaritySample] = field(default_factory=deque)
    pairs: list[PairMotion] = field(default_factory=list)
    sampled: int = 0  # samples taken in all

    def due(self, now: float, gap_s: float) -> bool:
        return not self.samples or now - self.samples[-1].time >= gap_s

    def add(self, s: PlanaritySample) -> None:
        earlier = list(self.samples)
        n = len(earlier)
        for i in sorted({n - 1, n - 2, n - 4} & set(range(n))):
            self.pairs.append(compare(earlier[i], s))
        del self.pairs[: -self.max_pairs]
        self.samples.append(s)
        self.sampled += 1
        while len(self.samples) > self.keep:
            self.samples.popleft()

    def clear(self) -> None:
        """Drop the crops (the pairs' numbers stay): once the track is decided."""
        self.samples.clear()

    def result(
        self, min_motion: float, max_planar: float, min_three_d: float, min_pairs: int
    ) -> PlanarityResult:
        return judge(self.pairs, min_motion, max_planar, min_three_d, min_pairs)
