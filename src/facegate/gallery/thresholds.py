"""Open-set thresholds from a target FPIR: the door's rate, a stranger accepted as anyone.

A per-comparison false-match rate multiplies with the gallery's size, and it differs between
regions of the embedding space (people who look alike crowd together). So each enrolled person
gets their own threshold, from their own impostor scores, without any label:

* person p's impostor scores: their best template's score against every face of the shipped
  cohort (strangers) and against every other enrolled person (whoever is enrolled is the best
  sample of who comes to this door);
* their mean m_p and standard deviation s_p (the other enrolled people weigh `gallery_weight`
  of the whole, the cohort the rest);
* t_p = m_p + z(target_fpir / N) * s_p, with N the number of enrolled people and z(rate) the
  standardised impostor tail of the embedding space (the shipped cohort's table).

A stranger is accepted as p with probability about target_fpir / N, and as anyone with at most
the sum of those, target_fpir (a union bound, tight when the rates are small).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facegate.errors import ConfigError


@dataclass(frozen=True)
class TailTable:
    """z(rate): the standardised impostor score that a share `rate` of impostors reach.

    `rates` descending, `z` ascending. Log-linear between rows; below the last row the last
    segment's slope continues (an exponential tail), above the first the first row holds.
    """

    rates: tuple[float, ...]
    z: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.rates) < 2 or len(self.rates) != len(self.z):
            raise ConfigError("a tail table needs at least two (rate, z) rows")
        if any(b >= a for a, b in zip(self.rates, self.rates[1:], strict=False)) or any(
            b < a for a, b in zip(self.z, self.z[1:], strict=False)
        ):
            raise ConfigError("a tail table's rates must fall and its z rise")

    def z_at(self, rate: float) -> float:
        if not 0 < rate < 1:
            raise ConfigError(f"a false-match rate must be between 0 and 1, got {rate}")
        lr = math.log(rate)
        logs = [math.log(r) for r in self.rates]
        if lr >= logs[0]:
            return self.z[0]
        i = next((k for k in range(1, len(logs)) if lr >= logs[k]), len(logs) - 1)
        t = (lr - logs[i - 1]) / (logs[i] - logs[i - 1])
        return self.z[i - 1] + t * (self.z[i] - self.z[i - 1])


def best_per_owner(scores: np.ndarray, owners: np.ndarray, n_people: int) -> np.ndarray:
    """(templates, faces) scores to (people, faces): each person at their best template."""
    out = np.full((n_people, scores.shape[1]), -np.inf, np.float32)
    np.maximum.at(out, owners, scores)
    return out


def cohort_moments(
    templates: np.ndarray, owners: np.ndarray, n_people: int, cohort: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per person: the mean and mean square of their best template's scores against the cohort.

    `templates` (T, d) L2-normalised, `owners` (T,) the person index 0..n_people-1 of each;
    `cohort` (M, d) L2-normalised strangers. Depends on nobody else: cacheable per person.
    """
    tpl = np.asarray(templates, np.float32)
    vs = best_per_owner(tpl @ np.asarray(cohort, np.float32).T, np.asarray(owners, np.int64), n_people)
    return vs.mean(axis=1, dtype=np.float64), np.square(vs, dtype=np.float64).mean(axis=1)


def gallery_scores(templates: np.ndarray, owners: np.ndarray, n_people: int) -> np.ndarray:
    """(P, P): person p against person q at the best pair of their templates; 0 on the diagonal."""
    tpl = np.asarray(templates, np.float32)
    own = np.asarray(owners, np.int64)
    per = best_per_owner(tpl @ tpl.T, own, n_people)  # (P, T)
    pair = best_per_owner(np.ascontiguousarray(per.T), own, n_people).astype(np.float64)
    np.fill_diagonal(pair, 0.0)
    return pair


def combine(
    c_mean: np.ndarray, c_sq: np.ndarray, pair: np.ndarray | None, gallery_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each person's impostor scores: the other enrolled people
    (rows of `pair`) weigh `gallery_weight`, the cohort the rest; the cohort alone when the
    person is alone or the weight is 0."""
    n = len(c_mean)
    if pair is None or n < 2 or gallery_weight <= 0:
        mean, sq = c_mean, c_sq
    else:
        g_mean = pair.sum(axis=1) / (n - 1)
        g_sq = np.square(pair).sum(axis=1) / (n - 1)
        mean = (1 - gallery_weight) * c_mean + gallery_weight * g_mean
        sq = (1 - gallery_weight) * c_sq + gallery_weight * g_sq
    return mean, np.sqrt(np.maximum(sq - mean**2, 1e-12))


def impostor_stats(
    templates: np.ndarray,
    owners: np.ndarray,
    n_people: int,
    cohort: np.ndarray,
    gallery_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per person: the weighted mean and standard deviation of their impostor scores."""
    c_mean, c_sq = cohort_moments(templates, owners, n_people, cohort)
    pair = gallery_scores(templates, owners, n_people) if gallery_weight > 0 and n_people > 1 else None
    return combine(c_mean, c_sq, pair, gallery_weight)


def person_thresholds(mean: np.ndarray, std: np.ndarray, tail: TailTable, target_fpir: float) -> np.ndarray:
    """t_p = m_p + z(target_fpir / N) * s_p for each of the N people."""
    n = len(mean)
    if n == 0:
        return np.zeros(0)
    z = tail.z_at(target_fpir / n)
    return np.asarray(mean + z * std, np.float64)
