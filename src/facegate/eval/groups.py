"""Error rates by group, with groups given by the dataset's own labels (NIST IR 8280 style).

facegate never infers a group from a face; labels come from a file the operator supplies.
Comparisons are within one group (both photos carry the same label): FMR from impostor pairs
of different people of the group, FNMR from genuine pairs, all at one shared threshold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.errors import ConfigError
from facegate.eval.calibration import impostor_top_scores


def load_labels(path: Path, column: str | None = None) -> dict[str, str]:
    """{image path: group} from a CSV with an `image` column and one label column."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "image" not in fields:
            raise ConfigError(f"{path}: needs an 'image' column, found {fields}")
        candidates = [f for f in fields if f not in ("image", "identity")]
        col = column or (candidates[0] if len(candidates) == 1 else None)
        if col is None or col not in fields:
            raise ConfigError(f"{path}: choose the label column with --column (one of {candidates})")
        return {r["image"]: r[col] for r in reader if r[col]}


@dataclass(frozen=True)
class GroupRates:
    group: str
    images: int
    identities: int
    impostor_pairs: int
    genuine_pairs: int
    fmr: float
    fnmr: float
    threshold_for_target: float  # where this group's FMR meets the target


def group_rates(
    vectors: np.ndarray,
    identities: list[str],
    groups: list[str],
    threshold: float,
    target_fmr: float,
    max_images: int = 6000,
    seed: int = 0,
) -> list[GroupRates]:
    """Per-group FMR and FNMR at `threshold`; images per group are sampled to `max_images`."""
    rng = np.random.default_rng(seed)
    out = []
    g_arr, id_arr = np.asarray(groups), np.asarray(identities)
    for g in sorted(set(groups)):
        idx = np.flatnonzero(g_arr == g)
        if len(idx) > max_images:
            idx = np.sort(rng.choice(idx, max_images, replace=False))
        emb, ids = vectors[idx], id_arr[idx]
        n_allowed = max(1, int(target_fmr * len(idx) ** 2))
        top, n_imp = impostor_top_scores(emb, ids.tolist(), keep=n_allowed + 1)
        fm = _count_at_least(emb, ids, threshold, same=False)
        genuine = _genuine_scores(emb, ids)
        allowed = int(np.floor(target_fmr * n_imp))
        if len(top) == 0:
            t_target = float("nan")  # one identity: no impostor pairs, no threshold to find
        elif allowed < len(top):
            t_target = float(np.nextafter(top[allowed], np.inf))
        else:
            t_target = float(top[-1])
        out.append(
            GroupRates(
                group=g,
                images=len(idx),
                identities=len(set(ids.tolist())),
                impostor_pairs=n_imp,
                genuine_pairs=len(genuine),
                fmr=fm / n_imp if n_imp else float("nan"),
                fnmr=float((genuine < threshold).mean()) if len(genuine) else float("nan"),
                threshold_for_target=t_target,
            )
        )
    return out


def _count_at_least(emb: np.ndarray, ids: np.ndarray, t: float, same: bool, block: int = 2048) -> int:
    n, count = len(emb), 0
    for s in range(0, n, block):
        e = min(s + block, n)
        sims = emb[s:e] @ emb[s:].T
        upper = np.arange(s, n)[None, :] > np.arange(s, e)[:, None]
        pair = (ids[s:e, None] == ids[None, s:]) if same else (ids[s:e, None] != ids[None, s:])
        count += int(((sims >= t) & upper & pair).sum())
    return count


def _genuine_scores(emb: np.ndarray, ids: np.ndarray) -> np.ndarray:
    scores = []
    for v in np.unique(ids):
        rows = emb[ids == v]
        if len(rows) > 1:
            s = rows @ rows.T
            scores.append(s[np.triu_indices(len(rows), 1)])
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)
