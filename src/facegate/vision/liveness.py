"""Passive liveness (presentation-attack detection) of one face in one camera frame.

A `PadModel` scores how likely a face is a live person rather than a printed photo; the
MiniFASNet backend (Silent-Face-Anti-Spoofing, Apache-2.0) looks at the face *with its context*
(2.7x and 4.0x the face box), because paper edges and hands around a photo are what give it away.
`LivenessCheck` decides which faces may be scored at all: a face that is not confidently
detected, too small, or cut by the frame edge is refused with a reason, never scored as live.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from facegate.settings import LivenessSettings
from facegate.vision.models import ModelFile, verified_path
from facegate.vision.planarity import PlanarityEvidence
from facegate.vision.types import Box, Face

# Vendored in facegate/data/minifasnet/ with the licence and SOURCE.txt (exported from the
# original PyTorch weights, checked there against them).
MINIFASNET_V2 = ModelFile(
    "2.7_80x80_MiniFASNetV2.onnx",
    "c8af86ea9110e65d1c2e7c4b81d0eb9e80825afd2388a4edf3ac61fb3b5fa7e3",
    1744201,
    package="facegate",
)
MINIFASNET_V1SE = ModelFile(
    "4_0_0_80x80_MiniFASNetV1SE.onnx",
    "e4f00748e5016923bcdb6dd77ea9ae2e081746e1be0ff8d56c85ab4e0b9e0a44",
    1743369,
    package="facegate",
)
INPUT_SIZE = 80

Refusal = Literal["no_face", "low_confidence", "face_too_small", "face_at_border", "face_turned"]
Verdict = Literal["live", "attack", "refused"]


def vendored(model: ModelFile) -> Path:
    """A model file shipped in facegate's own package data, checked by size and SHA-256."""
    return verified_path(model, Path(str(files("facegate.data") / "minifasnet" / model.name)))


class PadModel(Protocol):
    """Scores a face in its frame: the probability-like score that it is a live person."""

    name: str

    def score(self, image: np.ndarray, box: Box) -> float:
        """`image`: the whole RGB uint8 frame; `box`: the face in it. 0 = attack .. 1 = live."""
        ...


def context_box(width: int, height: int, box: Box, scale: float) -> tuple[int, int, int, int]:
    """The patch the models see: `box` scaled by `scale` about its centre, shrunk so it fits
    the image and moved to stay inside it (the repository's rule). Inclusive corners."""
    bw, bh = float(box.width), float(box.height)
    scale = min((height - 1) / bh, (width - 1) / bw, scale)
    nw, nh = bw * scale, bh * scale
    cx, cy = box.left + bw / 2, box.top + bh / 2
    x0, y0, x1, y1 = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if x0 < 0:
        x1 -= x0
        x0 = 0
    if y0 < 0:
        y1 -= y0
        y0 = 0
    if x1 > width - 1:
        x0 -= x1 - width + 1
        x1 = width - 1
    if y1 > height - 1:
        y0 -= y1 - height + 1
        y1 = height - 1
    return int(x0), int(y0), int(x1), int(y1)


def effective_scale(width: int, height: int, box: Box, scale: float) -> float:
    """How much context the patch really has: below `scale` when the face nearly fills the frame."""
    return min((height - 1) / max(box.height, 1), (width - 1) / max(box.width, 1), scale)


def patch(image: np.ndarray, box: Box, scale: float) -> np.ndarray:
    """The model input for one scale: (3, 80, 80) float32, BGR, 0-255."""
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = context_box(w, h, box, scale)
    crop = image[y0 : y1 + 1, x0 : x1 + 1, ::-1]  # RGB -> BGR, as the models were trained
    small = cv2.resize(np.ascontiguousarray(crop), (INPUT_SIZE, INPUT_SIZE))
    out: np.ndarray = small.astype(np.float32).transpose(2, 0, 1)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


class MiniFasNet:
    """MiniFASNetV2 (2.7x context) and MiniFASNetV1SE (4.0x) on ONNX Runtime.

    The score is the mean of the two models' softmax for class 1 ("real"): the repository's
    rule sums the two softmaxes and takes the arg-max; a threshold on the mean is that rule
    with an adjustable operating point.
    """

    name = "minifasnet"
    models = ((MINIFASNET_V2, 2.7), (MINIFASNET_V1SE, 4.0))

    def __init__(self, provider: str = "auto", threads: int = 0) -> None:
        from facegate.vision.onnx_runtime import session

        self._sessions = [(session(vendored(m), provider, threads), scale) for m, scale in self.models]
        self._lock = threading.Lock()

    def probabilities(self, image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """(n, 3): the two models' softmaxes summed, halved (class 1 = real)."""
        total = np.zeros((len(boxes), 3), np.float32)
        if not boxes:
            return total
        for sess, scale in self._sessions:
            batch = np.stack([patch(image, b, scale) for b in boxes])
            with self._lock:
                logits = sess.run(["logits"], {"input": batch})[0]
            total += softmax(logits.astype(np.float32))
        out: np.ndarray = total / len(self._sessions)
        return out

    def score(self, image: np.ndarray, box: Box) -> float:
        return float(self.probabilities(image, [box])[0, 1])

    def scores(self, image: np.ndarray, boxes: list[Box]) -> list[float]:
        return [float(p) for p in self.probabilities(image, boxes)[:, 1]]


@dataclass(frozen=True)
class LivenessResult:
    """One face in one frame: live, attack, or refused (then `score` is None and `reason` says why)."""

    verdict: Verdict
    score: float | None
    threshold: float
    reason: str

    @property
    def live(self) -> bool:
        return self.verdict == "live"

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "score": None if self.score is None else round(self.score, 4),
            "threshold": self.threshold,
            "reason": self.reason,
        }


def refused(reason: Refusal, threshold: float) -> LivenessResult:
    return LivenessResult("refused", None, threshold, reason)


class LivenessCheck:
    """Which faces may be scored, and the verdict for those that may."""

    def __init__(self, settings: LivenessSettings, model: PadModel | None = None) -> None:
        self.settings = settings
        self.model: PadModel = model or MiniFasNet(settings.provider, settings.threads)

    @property
    def threshold(self) -> float:
        return self.settings.threshold

    def refusal(self, image: np.ndarray, face: Face) -> Refusal | None:
        """Why this face cannot be scored in this frame, or None if it can."""
        s = self.settings
        h, w = image.shape[:2]
        b = face.rules_box
        if s.min_detection_score is not None and face.score < s.min_detection_score:
            return "low_confidence"
        if face.quality.frontal < s.min_frontal:
            return "face_turned"
        if b.size < s.min_face_px:
            return "face_too_small"
        margin = s.border_margin * max(b.width, b.height)
        cut = b.left < margin or b.top < margin or b.right > w - margin or b.bottom > h - margin
        # The face must be whole, and the smaller patch must still show context around it.
        if cut or effective_scale(w, h, b, 2.7) < s.min_context:
            return "face_at_border"
        return None

    def assess(self, image: np.ndarray, faces: list[Face]) -> list[LivenessResult]:
        """A result per face of one frame (the whole RGB frame, not a chip), scored in one batch."""
        t = self.threshold
        reasons = [self.refusal(image, f) for f in faces]
        # The models' context crop was tuned on square, ear-to-ear boxes (HOG-like), not YuNet's.
        ok = [f.rules_box for f, r in zip(faces, reasons, strict=True) if r is None]
        scores = iter(_scores(self.model, image, ok))
        out = []
        for r in reasons:
            if r is not None:
                out.append(refused(r, t))
                continue
            s = next(scores)
            out.append(LivenessResult("live" if s >= t else "attack", s, t, "live" if s >= t else "attack"))
        return out

    def assess_photo(self, image: np.ndarray, faces: list[Face]) -> LivenessResult:
        """The largest face of a photo (enrolment, 1:1); a photo without a face is refused."""
        if not faces:
            return refused("no_face", self.threshold)
        largest = max(faces, key=lambda f: f.box.width * f.box.height)
        return self.assess(image, [largest])[0]


def _scores(model: PadModel, image: np.ndarray, boxes: list[Box]) -> list[float]:
    if not boxes:
        return []
    if isinstance(model, MiniFasNet):
        return model.scores(image, boxes)  # one batch per model
    return [model.score(image, b) for b in boxes]


@dataclass
class LivenessEvidence:
    """A face's liveness across frames: the scores of its latest scored frames, fused by their
    mean, and how many frames were refused. Undecided until `frames` frames were scored. Also
    its head poses (the head-turn challenge) and how its face moved (`planarity`: a flat sheet
    or a head; small grey crops of the face, in memory, dropped with the track)."""

    keep: int = 8
    scores: list[float] = field(default_factory=list)
    refused: int = 0
    poses: list[tuple[float, float]] = field(default_factory=list)  # (time, yaw): the head-turn challenge
    planarity: PlanarityEvidence = field(default_factory=PlanarityEvidence)

    def add(self, result: LivenessResult) -> None:
        if result.score is None:
            self.refused += 1
            return
        self.scores.append(result.score)
        del self.scores[: -self.keep]

    def fused(self) -> float | None:
        return float(np.mean(self.scores)) if self.scores else None

    def verdict(self, threshold: float, frames: int) -> Literal["live", "attack"] | None:
        fused = self.fused()
        if fused is None or len(self.scores) < frames:
            return None
        return "live" if fused >= threshold else "attack"

    def add_pose(self, now: float, landmarks: np.ndarray) -> None:
        self.poses.append((now, yaw(landmarks)))

    def turned(self, window_s: float, min_turn: float) -> bool:
        """Whether the head turned by `min_turn` (yaw, see `yaw`) within `window_s` of the first pose."""
        if not self.poses:
            return False
        start = self.poses[0][0]
        yaws = [y for t, y in self.poses if t - start <= window_s]
        return max(yaws) - min(yaws) >= min_turn


def yaw(landmarks: np.ndarray) -> float:
    """Signed head turn from dlib's 5 points: 0 frontal, -1 and 1 in profile to either side.

    The nose base moves along the eye line as the head turns; its offset from the eyes'
    midpoint, relative to half the eye distance, is the estimate (`quality.frontal` is 1 - |yaw|).
    """
    eye_a, eye_b, nose = landmarks[0:2].mean(axis=0), landmarks[2:4].mean(axis=0), landmarks[4]
    axis = eye_b - eye_a
    dist = float(np.linalg.norm(axis))
    if dist < 1e-6:
        return 0.0
    offset = float(np.dot(nose - (eye_a + eye_b) / 2.0, axis / dist))
    return float(np.clip(offset / (dist / 2.0), -1.0, 1.0))
