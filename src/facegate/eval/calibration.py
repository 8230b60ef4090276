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


def tail_size(n_photos: int, targets: Iterable[float] = DEFAULT_TARGETS, limit: int = 20_000_000) -> int:
    """How many of the highest impostor scores `impostor_top_scores` must keep to place the
    highest target rate among `n_photos` photos (there are at most n^2/2 pairs), up to `limit`."""
    return min(int(n_photos**2 * 0.5 * max(targets) * 1.1) + 10, limit)


def threshold_at(top_scores_desc: np.ndarray, n_impostors: int, f: float) -> tuple[float, int] | None:
    """The threshold for FMR `f` and how many impostors reach it; None where the impostors (or the
    kept tail of their scores) cannot place `f`."""
    allowed = math.floor(f * n_impostors)
    if allowed < 1 or allowed >= len(top_scores_desc):
        return None
    # Rounded up to 6 decimals so that the published number keeps the "at most" promise.
    threshold = math.ceil(float(np.nextafter(top_scores_desc[allowed], np.float32(np.inf))) * 1e6) / 1e6
    return threshold, int((top_scores_desc >= threshold).sum())


def _point(f: float, threshold: float, observed: int, n_impostors: int) -> dict[str, object]:
    lo, hi = wilson_interval(observed, n_impostors)
    return {
        "fmr": f,
        "threshold": threshold,
        "impostor_pairs": n_impostors,
        "false_matches": observed,
        "fmr_ci95": [lo, hi],
    }


def thresholds(
    top_scores_desc: np.ndarray, n_impostors: int, targets: Iterable[float] = DEFAULT_TARGETS
) -> list[dict[str, object]]:
    """Calibration points for each target FMR that the number of impostors supports."""
    points = []
    for f in sorted(targets, reverse=True):
        placed = threshold_at(top_scores_desc, n_impostors, f)
        if placed is not None:
            points.append(_point(f, *placed, n_impostors))
    return points


# A group sets its own threshold only where this many of its impostor pairs exceed it: fewer
# cannot locate the rate. Below, the group's offset at its lowest such rate is carried down.
MIN_GROUP_FALSE_MATCHES = 10


def worst_group_thresholds(
    embeddings: np.ndarray,
    identities: Sequence[str],
    groups: Sequence[str],
    targets: Iterable[float] = DEFAULT_TARGETS,
    keep: int = 20_000_000,
    min_false_matches: int = MIN_GROUP_FALSE_MATCHES,
) -> list[dict[str, object]]:
    """Calibration points that hold for every labelled group: for each target FMR f, the highest
    of the threshold over all impostor pairs and each group's threshold over its own impostor
    pairs (two different people of the same group, who look more alike than people in general).
    Each point's "groups" says, for every labelled group, the threshold it asked for, or why it
    could not ask (one identity only; too few pairs): a table never claims a group it did not
    measure. A threshold is never above 1, the highest score there is (nothing matches there).

    Photos labelled "" count in the all-pairs threshold only. A group with too few pairs to
    place f (fewer than `min_false_matches` false matches at it) keeps the offset above the
    overall threshold it showed at its lowest placeable rate: a group that needed a higher
    threshold there is assumed to need as much further down. The labels serve this measurement
    only; the table holds thresholds, never a group of anyone.
    """
    rates = sorted(targets, reverse=True)
    emb = np.asarray(embeddings, np.float32)
    ids = np.asarray(identities)
    labels = np.asarray(groups)
    top, n = impostor_top_scores(emb, list(ids), keep=tail_size(len(emb), rates, keep))
    overall = {f: t for f in rates if (t := threshold_at(top, n, f)) is not None}
    own: dict[str, dict[float, tuple[float, int]]] = {}  # group -> rate -> (threshold, pairs)
    unmeasured: dict[str, str] = {}
    for g in sorted(set(labels.tolist()) - {""}):
        idx = np.flatnonzero(labels == g)
        if len(set(ids[idx].tolist())) < 2:
            unmeasured[g] = "one identity: no impostor pair"
            continue
        g_top, g_n = impostor_top_scores(emb[idx], list(ids[idx]), keep=tail_size(len(idx), rates, keep))
        own[g] = {
            f: (t[0], g_n)
            for f in rates
            if (t := threshold_at(g_top, g_n, f)) is not None and t[1] >= min_false_matches
        }
    points = []
    for f, (t_all, _) in overall.items():
        best, binding = t_all, "all pairs"
        detail: dict[str, object] = {g: {"threshold": None, "why": why} for g, why in unmeasured.items()}
        for g, placed in own.items():
            if f in placed:
                t_g, pairs = placed[f]
                carried = False
            else:
                higher = [r for r in placed if r > f and r in overall]
                if not higher:
                    detail[g] = {"threshold": None, "why": f"too few pairs to place {f:g} or any higher rate"}
                    continue
                r = min(higher)
                t_g = min(round(t_all + placed[r][0] - overall[r][0], 6), 1.0)
                pairs, carried = placed[r][1], True
            detail[g] = {"threshold": t_g, "impostor_pairs": pairs, "carried": carried}
            if t_g > best:
                best, binding = t_g, g
        point = _point(f, best, int((top >= best).sum()), n)
        point.update({"all_pairs_threshold": t_all, "binding": binding, "groups": detail})
        points.append(point)
    return points
