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

import numpy as np


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
    sims = probes @ gallery.T
    # Best template per identity: a person is one candidate, however many templates they have.
    per_id = np.full((len(probes), len(ids)), -np.inf, np.float32)
    np.maximum.at(per_id.T, inverse, sims.T)
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
    hit = (results.mated_rank == 0) & (results.mated_score >= t)
    return float(1.0 - hit.mean())


def threshold_at_fpir(results: SearchResults, target: float) -> float:
    """The lowest threshold at which at most floor(target * non-mated) searches return someone."""
    s = np.sort(results.non_mated_top_score)[::-1]
    allowed = int(np.floor(target * len(s)))
    return float(np.nextafter(s[allowed], np.inf)) if allowed < len(s) else float(s[-1])


def cmc(results: SearchResults, rank: int) -> float:
    return float((results.mated_rank < rank).mean())


def fnir_at_fpir(results: SearchResults, targets: tuple[float, ...]) -> list[dict[str, float | int]]:
    rows: list[dict[str, float | int]] = []
    n = len(results.non_mated_top_score)
    for target in targets:
        if target * n < 1:
            continue
        t = threshold_at_fpir(results, target)
        rows.append({"fpir": target, "fnir": fnir(results, t), "threshold": t, "non_mated": n})
    return rows
