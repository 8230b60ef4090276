"""Open-set 1:N identification metrics in NIST's terms (FRVT 1:N, NIST IR 8271).

A *mated* search is a probe whose identity is enrolled; a *non-mated* search is one whose
identity is not. At threshold t:
- FPIR(t): share of non-mated searches that return any candidate scoring >= t;
- FNIR(t): share of mated searches whose enrolled mate is not returned at rank 1 with a
  score >= t.
CMC rank-k: share of mated searches whose mate is among the top k (no threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facegate.gallery.thresholds import best_per_owner


@dataclass(frozen=True)
class SearchResults:
    """Per search: the best score, the rank of the mate (0-based, -1 if absent) and its score."""

    mated_top_score: np.ndarray  # best candidate's score of each mated search
    mated_rank: np.ndarray  # rank of the true mate among gallery identities
    mated_score: np.ndarray  # the true mate's score
    non_mated_top_score: np.ndarray


def search(
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    probes: np.ndarray,
    probe_ids: np.ndarray,
    mated: np.ndarray,
) -> SearchResults:
    """Exhaustive search of unit-vector probes against a gallery (one or more rows per id)."""
    ids, inverse = np.unique(gallery_ids, return_inverse=True)
    # Best template per identity: a person is one candidate, however many templates they have
    # (the same reduction as the gallery's own thresholds use).
    per_id = best_per_owner(gallery @ probes.T, inverse, len(ids)).T
    top = per_id.max(axis=1)
    m = mated.astype(bool)
    col = {v: i for i, v in enumerate(ids.tolist())}
    mate_col = np.array([col.get(v, -1) for v in probe_ids[m].tolist()])
    mate_score = per_id[m][np.arange(m.sum()), mate_col]
    rank = (per_id[m] > mate_score[:, None]).sum(axis=1)
    return SearchResults(top[m], rank, mate_score, top[~m])


def fpir(results: SearchResults, t: float) -> float:
    return float((results.non_mated_top_score >= t).mean())


def fnir(results: SearchResults, t: float) -> float:
    return _missed(results.mated_rank, results.mated_score, t)


def threshold_at_fpir(results: SearchResults, target: float) -> float:
    """The lowest threshold at which at most floor(target * non-mated) searches return someone."""
    return _threshold_for(results.non_mated_top_score, target)


def _threshold_for(non_mated_top: np.ndarray, target: float) -> float:
    s = np.sort(non_mated_top)[::-1]
    allowed = int(np.floor(target * len(s)))
    return float(np.nextafter(s[allowed], np.inf)) if allowed < len(s) else float(s[-1])


def _missed(rank: np.ndarray, mate_score: np.ndarray, t: float) -> float:
    return float(1.0 - ((rank == 0) & (mate_score >= t)).mean())


def cmc(results: SearchResults, rank: int) -> float:
    return float((results.mated_rank < rank).mean())


def fnir_at_fpir(
    results: SearchResults, targets: tuple[float, ...], resamples: int = 400, seed: int = 0
) -> list[dict[str, Any]]:
    """FNIR at the threshold that gives each target FPIR, with a 95% bootstrap interval
    (mated and non-mated searches resampled apart, the threshold re-chosen in each resample).

    Targets that fewer than one non-mated search could reach are left out: no threshold can
    be chosen for them from this data.
    """
    rows: list[dict[str, Any]] = []
    non_mated, rank, mate = results.non_mated_top_score, results.mated_rank, results.mated_score
    n, m = len(non_mated), len(rank)
    rng = np.random.default_rng(seed)
    draws = [(rng.integers(0, n, n), rng.integers(0, m, m)) for _ in range(resamples)] if n and m else []
    for target in targets:
        if target * n < 1:
            continue
        t = threshold_at_fpir(results, target)
        boot = [_missed(rank[jm], mate[jm], _threshold_for(non_mated[jn], target)) for jn, jm in draws]
        ci = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))] if boot else None
        rows.append(
            {"fpir": target, "fnir": fnir(results, t), "fnir_ci95": ci, "threshold": t, "non_mated": n}
        )
    return rows
