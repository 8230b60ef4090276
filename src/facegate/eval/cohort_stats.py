"""Cohort statistics: how strangers score in an embedding space, from photos of people unrelated
to any gallery (one photo each). The shipped cohorts are made this way (bench/make_cohort.py),
and `facegate eval cohort` makes one for an operator's own model from their own photos.

Two tables: the score a share of stranger pairs reach (the general population), and the
standardised tail of one face's impostor scores (a person's own distribution), each continued
below what the pairs can show by a Gaussian-type tail.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facegate.errors import ConfigError

# Rates of the tables: every half decade from 10% down to 1e-7. Below what the pairs can show
# (100 pairs at least), a Gaussian-type tail: log(rate) quadratic in the value, fitted to the
# rows from 1e-2 down. On LFW this lands within 0.002 of the score that all 87 million LFW
# impostor pairs give at 1e-5..1e-6; an exponential tail (log-linear) lands 0.005 too high.
RATES = [10 ** (-k / 2) for k in range(2, 15)]
MIN_EXCEEDANCES = 100  # pairs above a rate's value for an empirical quantile
MIN_FACES = 260  # ~34,000 pairs: 1e-2 and 3e-3 placed on 100 pairs or more (the tail fit needs two)


def extend(rows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """`rows` (rate, value) seen empirically, continued to every rate of RATES."""
    fit = [(r, v) for r, v in rows if r <= 1e-2]
    if len(fit) < 2:
        raise ConfigError("too few impostor pairs to fit the tail of a cohort table")
    coef = np.polyfit([v for _, v in fit], np.log([r for r, _ in fit]), 2)
    last = rows[-1][1]
    grid = np.linspace(last, last + 4 * (last - rows[0][1]), 400_001)
    logs = np.polyval(coef, grid)
    logs = np.minimum.accumulate(logs)  # the falling branch only
    out = list(rows)
    for r in RATES[len(rows) :]:
        out.append((r, float(grid[int(np.argmax(logs <= np.log(r)))])))
    return out


def _table(values: np.ndarray) -> list[tuple[float, float]]:
    total = len(values)
    rows: list[tuple[float, float]] = []
    for r in RATES:
        k = int(r * total)
        if k >= MIN_EXCEEDANCES:
            rows.append((r, float(values[k])))
    return extend(rows)


def tail_table(cohort: np.ndarray) -> tuple[list[float], list[float]]:
    """z at each rate: each cohort face against the others, standardised by its own mean/sd."""
    s = cohort @ cohort.T
    n = len(s)
    off = ~np.eye(n, dtype=bool)
    vals = s[off].reshape(n, n - 1)
    z = (vals - vals.mean(axis=1, keepdims=True)) / vals.std(axis=1, keepdims=True)
    rows = _table(np.sort(z.ravel())[::-1])
    return [r for r, _ in rows], [v for _, v in rows]


def score_table(cohort: np.ndarray) -> tuple[list[float], list[float]]:
    """The score that a share `rate` of the cohort's impostor pairs reach (each pair once)."""
    s = cohort @ cohort.T
    rows = _table(np.sort(s[np.triu_indices(len(s), 1)])[::-1])
    return [r for r, _ in rows], [t for _, t in rows]


def cohort_table(cohort: np.ndarray, meta: dict[str, Any]) -> dict[str, Any]:
    """The cohort file's content for these faces (one per person, L2-normalised)."""
    if len(cohort) < MIN_FACES:
        raise ConfigError(
            f"a cohort needs photos of at least {MIN_FACES} different people (one each); got {len(cohort)}"
        )
    rates, z = tail_table(cohort)
    s_rates, s_thr = score_table(cohort)
    return {"meta": meta, "tail": {"rates": rates, "z": z}, "scores": {"rates": s_rates, "thresholds": s_thr}}
