"""Verification metrics on scored pairs: k-fold accuracy (the LFW protocol), TAR at a FAR, EER."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (match if score >= t) with the highest accuracy on these pairs."""
    order = np.argsort(scores)
    s, y = scores[order], same[order].astype(bool)
    # Accuracy when the threshold sits at s[i]: pairs i.. are matches.
    genuine_below = np.concatenate([[0], np.cumsum(y)])  # genuine pairs rejected
    impostor_above = (~y).sum() - np.concatenate([[0], np.cumsum(~y)])  # impostors accepted
    errors = genuine_below + impostor_above
    i = int(np.argmin(errors))
    if i == 0:
        return float(s[0])
    if i == len(s):
        return float(np.nextafter(s[-1], np.inf))
    return float((s[i - 1] + s[i]) / 2)


@dataclass(frozen=True)
class KFold:
    accuracy: float
    std: float
    fold_accuracies: list[float]
    thresholds: list[float]


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> KFold:
    """LFW's protocol: each fold is scored at the threshold chosen on the other folds."""
    accs, ts = [], []
    for f in np.unique(folds):
        test = folds == f
        t = best_threshold(scores[~test], same[~test])
        accs.append(float(((scores[test] >= t) == same[test].astype(bool)).mean()))
        ts.append(t)
    return KFold(float(np.mean(accs)), float(np.std(accs)), accs, ts)


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float, int]:
    """(TAR, threshold, impostors allowed): the share of genuine pairs accepted when at most
    floor(far * impostors) impostor pairs are."""
    y = same.astype(bool)
    imp = np.sort(scores[~y])[::-1]
    allowed = int(np.floor(far * len(imp)))
    t = float(np.nextafter(imp[allowed], np.inf)) if allowed < len(imp) else float(imp[-1])
    return float((scores[y] >= t).mean()), t, allowed


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate: where the false-match and false-non-match rates cross."""
    _, fmr, fnmr = roc(scores, same)
    i = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[i] + fnmr[i]) / 2)


def roc(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, FMR, FNMR) at every distinct score, thresholds ascending.

    At threshold t a pair matches when score >= t: FMR is the share of impostor pairs that
    match, FNMR the share of genuine pairs that do not. TAR = 1 - FNMR.
    """
    y = same.astype(bool)
    ts = np.unique(scores)
    imp = np.sort(scores[~y])
    gen = np.sort(scores[y])
    fmr = 1.0 - np.searchsorted(imp, ts, side="left") / max(len(imp), 1)
    fnmr = np.searchsorted(gen, ts, side="left") / max(len(gen), 1)
    return ts, fmr, fnmr


def tar_table(scores: np.ndarray, same: np.ndarray, fars: tuple[float, ...]) -> list[dict[str, float | int]]:
    """TAR at each FAR that the number of impostor pairs supports (at least one may pass)."""
    n_imp = int((~same.astype(bool)).sum())
    rows: list[dict[str, float | int]] = []
    for far in fars:
        if far * n_imp < 1:
            continue
        tar, t, allowed = tar_at_far(scores, same, far)
        rows.append(
            {"far": far, "tar": tar, "threshold": t, "impostors_allowed": allowed, "impostors": n_imp}
        )
    return rows
