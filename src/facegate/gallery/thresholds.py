"""Open-set thresholds from a target FPIR: the door's rate, a stranger accepted as anyone.

A per-comparison false-match rate multiplies with the gallery's size, and it differs between
regions of the embedding space (people who look alike crowd together: in dlib's space, East
Asian faces score far higher against each other than the faces it was calibrated on). So each
enrolled person p gets their own threshold t_p, without any label:

* a stranger at the door is modelled as coming from a mixture: with weight 1 - w from the
  general population (the shipped cohort's impostor score table, `cohort_rate(t)`), with weight
  w from the population of the people enrolled here;
* the second part is p's own impostor scores against every other enrolled person's templates:
  their mean m_p and standard deviation s_p, with the space's standardised tail `tail_rate(z)`;
* t_p is the score where (1 - w) * cohort_rate(t) + w * tail_rate((t - m_p) / s_p) falls to
  target_fpir / N, with N the number of enrolled people.

A stranger is then accepted as p with probability about target_fpir / N, and as anyone with at
most the sum, target_fpir (a union bound: tight when the rates are small). In a gallery of people
who look alike (a crowded region), m_p is high and p's threshold rises; elsewhere the cohort part
dominates and t_p is the population's threshold at target_fpir / N. The rule and the weight were
chosen on measurements (bench/open_set.py, docs/accuracy.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facegate.errors import ConfigError


@dataclass(frozen=True)
class RateTable:
    """A value reached by a share `rate` of impostors (a score, or a standardised score z).

    `rates` descending, `values` ascending. Log-linear between rows; past the last row the last
    segment's slope continues (an exponential tail); above the first row the first row holds.
    """

    rates: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.rates) < 2 or len(self.rates) != len(self.values):
            raise ConfigError("a rate table needs at least two (rate, value) rows")
        if any(b >= a for a, b in zip(self.rates, self.rates[1:], strict=False)) or any(
            b <= a for a, b in zip(self.values, self.values[1:], strict=False)
        ):
            raise ConfigError("a rate table's rates must fall and its values rise")

    def value_at(self, rate: float) -> float:
        if not 0 < rate < 1:
            raise ConfigError(f"a false-match rate must be between 0 and 1, got {rate}")
        logs = np.log(self.rates)
        lr = math.log(rate)
        if lr >= logs[0]:
            return self.values[0]
        i = next((k for k in range(1, len(logs)) if lr >= logs[k]), len(logs) - 1)
        t = (lr - logs[i - 1]) / (logs[i] - logs[i - 1])
        return float(self.values[i - 1] + t * (self.values[i] - self.values[i - 1]))

    def rate_at(self, values: np.ndarray) -> np.ndarray:
        """The inverse, elementwise: the share of impostors reaching each value (at most 1)."""
        v = np.asarray(values, np.float64)
        vs = np.array(self.values)
        logs = np.log(self.rates)
        out = np.interp(v, vs, logs)
        past = v > vs[-1]
        slope = (logs[-1] - logs[-2]) / (vs[-1] - vs[-2])
        out[past] = logs[-1] + (v[past] - vs[-1]) * slope
        before = v < vs[0]
        slope0 = (logs[1] - logs[0]) / (vs[1] - vs[0])
        out[before] = logs[0] + (v[before] - vs[0]) * slope0
        return np.exp(np.minimum(out, 0.0))


def best_per_owner(scores: np.ndarray, owners: np.ndarray, n_people: int) -> np.ndarray:
    """(templates, faces) scores to (people, faces): each person at their best template."""
    out = np.full((n_people, scores.shape[1]), -np.inf, np.float32)
    if len(owners) == 0:
        return out
    own = np.asarray(owners)
    rows = np.asarray(scores, np.float32)
    if np.any(own[1:] < own[:-1]):  # group each owner's templates together first
        order = np.argsort(own, kind="stable")
        own, rows = own[order], rows[order]
    starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
    # One reduction per run of the same owner (np.maximum.at is unbuffered, 30x slower).
    out[own[starts]] = np.maximum.reduceat(rows, starts, axis=0)
    return out


def gallery_scores(templates: np.ndarray, owners: np.ndarray, n_people: int) -> np.ndarray:
    """(P, T): person p's best template against each template, as a stranger's face would be
    scored; NaN where the template is p's own.

    `templates` (T, d) L2-normalised, `owners` (T,) the person index 0..n_people-1 of each.
    Each other template stands for one photo of a stranger: pairing people at their best pair
    of templates would overstate how close they are when people have several templates.
    """
    tpl = np.asarray(templates, np.float32)
    own = np.asarray(owners, np.int64)
    per = best_per_owner(tpl @ tpl.T, own, n_people).astype(np.float64)  # (P, T)
    per[own, np.arange(len(own))] = np.nan
    return per


def gallery_moments(
    templates: np.ndarray, owners: np.ndarray, n_people: int, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Each person's mean and standard deviation of `gallery_scores` (their best template
    against every other person's templates), a block of templates at a time so that a large
    gallery never holds its whole score matrix; 0 and 1 for a person alone."""
    if n_people < 2:
        return np.zeros(n_people), np.ones(n_people)
    own = np.asarray(owners, np.int64)
    order = np.argsort(own, kind="stable")  # sorted once: no reordering per block
    tpl, own = np.asarray(templates, np.float32)[order], own[order]
    total = np.zeros(n_people)
    squares = np.zeros(n_people)
    for start in range(0, len(tpl), block):
        stop = min(start + block, len(tpl))
        per = best_per_owner(tpl @ tpl[start:stop].T, own, n_people)  # (P, B)
        per[own[start:stop], np.arange(stop - start)] = 0.0  # a person's own templates
        total += per.sum(axis=1, dtype=np.float64)
        squares += np.einsum("ij,ij->i", per, per, dtype=np.float64)
    count = len(tpl) - np.bincount(own, minlength=n_people)
    mean = total / np.maximum(count, 1)
    std = np.sqrt(np.maximum(squares / np.maximum(count, 1) - mean**2, 1e-12))
    return mean, std


def person_thresholds(
    mean: np.ndarray,
    std: np.ndarray,
    scores: RateTable,
    tail: RateTable,
    target_fpir: float,
    gallery_weight: float,
) -> np.ndarray:
    """t_p for each of the N people: where the mixture's rate falls to target_fpir / N.

    `mean`, `std`: each person's impostor scores against the other enrolled people;
    `scores`: the cohort's score table; `tail`: the standardised tail (z per rate).
    """
    n = len(mean)
    if n == 0:
        return np.zeros(0)
    if not 0 < target_fpir < 1:
        raise ConfigError(f"target FPIR must be between 0 and 1, got {target_fpir}")
    return rate_thresholds(mean, std, scores, tail, target_fpir / n, gallery_weight if n > 1 else 0.0)


def rate_thresholds(
    mean: np.ndarray, std: np.ndarray, scores: RateTable, tail: RateTable, rate: float, weight: float
) -> np.ndarray:
    """For each person, the score where (1 - weight) * cohort_rate(t) + weight * own_tail(t) falls
    to `rate`: a stranger reaches it with about that probability (1:1 at `rate` = the target FMR,
    open-set at target FPIR / N)."""
    if len(mean) == 0:
        return np.zeros(0)
    s = np.maximum(np.asarray(std, np.float64), 1e-6)
    n = len(mean)

    def mixture(t: np.ndarray) -> np.ndarray:
        return (1 - weight) * scores.rate_at(t) + weight * tail.rate_at((t - mean) / s)

    # Bisection, all people at once: the mixture's rate falls as the threshold rises.
    lo, hi = np.full(n, -1.0), np.full(n, 2.0)
    for _ in range(50):
        mid = (lo + hi) / 2
        above = mixture(mid) > rate
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    # No score exceeds 1 (cosine): a person whose rule asks more (someone enrolled twice under
    # two names, identical twins) is matched only at 1, the photo enrolled itself; elsewhere the
    # ambiguity rule answers "unknown" for them, which is the truth: they cannot be told apart.
    capped: np.ndarray = np.minimum(hi, 1.0)
    return capped
