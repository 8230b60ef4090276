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
    y = same.astype(bool)
    ts = np.unique(scores)
    fmr = np.array([(scores[~y] >= t).mean() for t in ts])
    fnmr = np.array([(scores[y] < t).mean() for t in ts])
    i = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[i] + fnmr[i]) / 2)
