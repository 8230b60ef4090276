"""Thresholds for target false-match rates, computed from impostor scores.

Method: every comparison between embeddings of two *different* identities is an impostor
score. For a target FMR f over N impostor scores, the threshold is the smallest score that
at most floor(f*N) impostors reach (a match is `score >= threshold`). The 95% interval of the
FMR actually observed at that threshold is Wilson's score interval; note that impostor pairs
share images, so they are not independent and the true uncertainty is somewhat wider.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

DEFAULT_TARGETS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def impostor_top_scores(
    embeddings: np.ndarray, identities: Sequence[str], keep: int, block: int = 2048
) -> tuple[np.ndarray, int]:
    """The `keep` highest impostor scores among all pairs i<j of different identities, and N.

    Works in blocks so that all pairs of a large set (LFW: 87 million) fit in memory.
    """
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    ids = np.unique(np.asarray(identities), return_inverse=True)[1]
    n = len(emb)
    best = np.empty(0, np.float32)
    total = 0
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = emb[start:stop] @ emb[start:].T  # upper triangle rows start..stop
        rows = np.arange(start, stop)[:, None]
        cols = np.arange(start, n)[None, :]
        mask = (cols > rows) & (ids[start:stop][:, None] != ids[start:][None, :])
        vals = sims[mask]
        total += int(vals.size)
        if vals.size > keep:
            vals = np.partition(vals, vals.size - keep)[-keep:]
        best = np.concatenate([best, vals])
        if best.size > keep:
            best = np.partition(best, best.size - keep)[-keep:]
    return np.sort(best)[::-1], total


def thresholds(
    top_scores_desc: np.ndarray, n_impostors: int, targets: Iterable[float] = DEFAULT_TARGETS
) -> list[dict[str, object]]:
    """Calibration points for each target FMR that the number of impostors supports."""
    points = []
    for f in sorted(targets, reverse=True):
        allowed = math.floor(f * n_impostors)
        if allowed < 1 or allowed >= len(top_scores_desc):
            continue  # too few impostors to estimate this rate, or the kept tail is too short
        # Rounded up to 6 decimals so that the published number keeps the "at most" promise.
        threshold = math.ceil(float(np.nextafter(top_scores_desc[allowed], np.float32(np.inf))) * 1e6) / 1e6
        observed = int((top_scores_desc >= threshold).sum())
        lo, hi = wilson_interval(observed, n_impostors)
        points.append(
            {
                "fmr": f,
                "threshold": threshold,
                "impostor_pairs": n_impostors,
                "false_matches": observed,
                "fmr_ci95": [lo, hi],
            }
        )
    return points
