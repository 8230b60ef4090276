"""Presentation-attack detection metrics in the terms of ISO/IEC 30107-3.

A score says how bona fide (live) a presentation looks; it is classified bona fide when
`score >= threshold`. APCER: the share of attack presentations of one attack type (PAI species)
classified bona fide; the figure for a system is the worst type's. BPCER: the share of bona fide
presentations classified as attacks. ACER: their mean (ISO/IEC 30107-3:2017; the 2023 edition
deprecates it, it is reported because it is widely quoted). Presentations the system refuses to
score (no usable face) are non-responses: counted apart (APNRR, BPNRR), never as bona fide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facegate.eval.calibration import wilson_interval


@dataclass(frozen=True)
class Rate:
    """k of n, with the 95% Wilson interval."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n)

    def to_dict(self) -> dict[str, object]:
        lo, hi = self.ci95
        return {"rate": self.value, "k": self.k, "n": self.n, "ci95": [lo, hi]}


@dataclass(frozen=True)
class PadScores:
    """Scores (NaN = refused), 1 bona fide / 0 attack, and each attack's type."""

    scores: np.ndarray
    bona_fide: np.ndarray
    types: np.ndarray

    @property
    def scored(self) -> np.ndarray:
        out: np.ndarray = ~np.isnan(self.scores)
        return out

    def attack_types(self) -> list[str]:
        return sorted({str(t) for t, b in zip(self.types, self.bona_fide, strict=True) if not b})

    def subset(self, mask: np.ndarray) -> PadScores:
        return PadScores(self.scores[mask], self.bona_fide[mask], self.types[mask])


def apcer(s: PadScores, threshold: float, attack_type: str | None = None) -> Rate:
    """Scored attacks (of one type, or all) classified bona fide."""
    m = s.scored & (s.bona_fide == 0)
    if attack_type is not None:
        m &= s.types == attack_type
    return Rate(int((s.scores[m] >= threshold).sum()), int(m.sum()))


def bpcer(s: PadScores, threshold: float) -> Rate:
    """Scored bona fide presentations classified as attacks."""
    m = s.scored & (s.bona_fide == 1)
    return Rate(int((s.scores[m] < threshold).sum()), int(m.sum()))


def worst_apcer(s: PadScores, threshold: float) -> Rate:
    """APCER of the system: the highest over attack types."""
    rates = [apcer(s, threshold, t) for t in s.attack_types()]
    return max(rates, key=lambda r: r.value) if rates else Rate(0, 0)


def non_response(s: PadScores, bona_fide: bool) -> Rate:
    m = s.bona_fide == (1 if bona_fide else 0)
    return Rate(int((~s.scored[m]).sum()), int(m.sum()))


def operating_point(s: PadScores, threshold: float) -> dict[str, Any]:
    a, b = worst_apcer(s, threshold), bpcer(s, threshold)
    return {
        "threshold": threshold,
        "APCER": a.to_dict(),
        "BPCER": b.to_dict(),
        "ACER": (a.value + b.value) / 2,
        "APCER per attack type": {t: apcer(s, threshold, t).to_dict() for t in s.attack_types()},
    }


def candidate_thresholds(s: PadScores) -> np.ndarray:
    """Every threshold at which a rate changes (each scored value), plus one above them all."""
    v = np.unique(s.scores[s.scored])
    return np.concatenate([v, [np.nextafter(v[-1], np.inf) if len(v) else 1.0]])


def det_curve(s: PadScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, worst APCER, BPCER) over every threshold, APCER falling."""
    ts = candidate_thresholds(s)
    a = np.array([worst_apcer(s, t).value for t in ts])
    b = np.array([bpcer(s, t).value for t in ts])
    return ts, a, b


def bpcer_at_apcer(s: PadScores, target: float) -> dict[str, object]:
    """BPCER at the lowest threshold whose APCER is at most `target` (BPCER20 = at 5%)."""
    for t in candidate_thresholds(s):
        a = worst_apcer(s, t)
        if a.value <= target:
            return {"APCER target": target, "threshold": float(t), "APCER": a.value, **_bp(s, t)}
    return {"APCER target": target, "threshold": None}


def apcer_at_bpcer(s: PadScores, target: float) -> dict[str, object]:
    """Worst APCER at the highest threshold whose BPCER is at most `target`."""
    for t in candidate_thresholds(s)[::-1]:
        b = bpcer(s, t)
        if b.value <= target:
            a = worst_apcer(s, t)
            return {
                "BPCER target": target,
                "threshold": float(t),
                "BPCER": b.value,
                "APCER": a.value,
                "APCER ci95": list(a.ci95),
            }
    return {"BPCER target": target, "threshold": None}


def _bp(s: PadScores, t: float) -> dict[str, object]:
    b = bpcer(s, t)
    return {"BPCER": b.value, "BPCER ci95": list(b.ci95)}


def fit_threshold(s: PadScores) -> float:
    """The threshold minimising APCER + BPCER on these scores; among equally good ones, the
    middle of the widest such interval in log-odds, so it sits away from both classes."""
    ts = candidate_thresholds(s)
    errs = np.array([worst_apcer(s, t).value + bpcer(s, t).value for t in ts])
    best = np.flatnonzero(errs == errs.min())
    # A threshold between consecutive candidates behaves as the upper one: runs of equally good
    # candidates span [previous candidate, last of the run].
    runs: list[tuple[float, float]] = []
    start = best[0]
    for prev, cur in zip(best, [*best[1:], -1], strict=True):
        if cur != prev + 1:
            lo = ts[start - 1] if start > 0 else 0.0
            runs.append((float(lo), float(ts[prev])))
            start = cur
    lo, hi = max(runs, key=lambda r: _logit(r[1]) - _logit(r[0]))
    return float(_sigmoid((_logit(lo) + _logit(hi)) / 2))


def _logit(p: float) -> float:
    q = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(q / (1 - q)))


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))
