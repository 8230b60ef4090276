"""1:1 false-match rates within groups at the shipped threshold, raw and cohort-normalised.

    python bench/group_fmr.py [--flip]   # after face_embeddings.py (both sets) and make_cohort.py

Within-group FMR: impostor pairs of two different people of the same group (LFW women, LFW men
by ../shared/faces/lfw/gender_labels.csv, labels used only here, to measure; the East Asian
development set as one group). LFW people of the shipped cohort are left out. Scores:

  raw       cosine, at the shipped calibration table's threshold for FMR 1e-3;
  as-norm   adaptive symmetric normalisation against the cohort (each face's top-K
            cohort scores: mean and sd), at the threshold for FMR 1e-3 fitted on the cohort's own
            pairs (each cohort face normalised against the others), never on the scored people;
  fsn       Fair Score Normalization (Terhoerst et al., IJCB 2020): k-means (k=10) of the cohort,
            each cluster's threshold at FMR 1e-2 on the cohort pairs touching it, scores shifted
            by half the two faces' cluster offsets; threshold for FMR 1e-3 on the cohort's pairs.
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np

from facegate.match import shipped_calibration
from make_cohort import cohort_embeddings, cohort_people, embeddings, load_lfw, normalise, space_of

from common import CACHE, LFW, RESULTS, machine

TARGET = 1e-3
TOP_K = 200


def topk_stats(emb: np.ndarray, cohort: np.ndarray, skip_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    s = emb @ cohort.T
    if skip_self:
        np.fill_diagonal(s, -np.inf)
    top = -np.sort(-s, axis=1)[:, :TOP_K]
    return top.mean(axis=1), top.std(axis=1)


def kmeans(x: np.ndarray, k: int, rounds: int = 30) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(rounds):
        a = np.argmax(x @ centres.T, axis=1)
        centres = np.stack([x[a == j].mean(axis=0) if (a == j).any() else centres[j] for j in range(k)])
        centres = normalise(centres)
    return centres


def fsn(cohort: np.ndarray, k: int = 10, rate: float = 1e-2) -> tuple[np.ndarray, np.ndarray, float]:
    """(centres, per-cluster offsets, threshold for TARGET) fitted on the cohort only."""
    centres = kmeans(cohort, k)
    a = np.argmax(cohort @ centres.T, axis=1)
    iu = np.triu_indices(len(cohort), 1)
    v = (cohort @ cohort.T)[iu]
    t_all = np.sort(v)[::-1][int(rate * len(v))]
    offsets = np.zeros(k)
    for j in range(k):
        vj = np.sort(v[(a[iu[0]] == j) | (a[iu[1]] == j)])[::-1]
        offsets[j] = vj[int(rate * len(vj))] - t_all
    o = offsets[a]
    vn = np.sort(v - 0.5 * (o[iu[0]] + o[iu[1]]))[::-1]
    return centres, offsets, float(vn[int(TARGET * len(vn))])


def within_fmr_offsets(emb: np.ndarray, ident: np.ndarray, t: float, offsets: np.ndarray) -> float:
    s = emb @ emb.T - 0.5 * (offsets[:, None] + offsets[None, :])
    codes = np.unique(ident, return_inverse=True)[1]
    iu = np.triu_indices(len(emb), 1)
    return float((s[iu][codes[iu[0]] != codes[iu[1]]] >= t).mean())


def within_fmr(
    emb: np.ndarray, ident: np.ndarray, t: float, stats: tuple[np.ndarray, np.ndarray] | None
) -> tuple[float, int]:
    s = emb @ emb.T
    if stats is not None:
        m, sd = stats
        s = 0.5 * ((s - m[:, None]) / sd[:, None] + (s - m[None, :]) / sd[None, :])
    codes = np.unique(ident, return_inverse=True)[1]
    iu = np.triu_indices(len(emb), 1)
    imp = codes[iu[0]] != codes[iu[1]]
    vals = s[iu][imp]
    return float((vals >= t).mean()), len(vals)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flip", action="store_true", help="flip-fused embeddings (the shipped default)")
    args = ap.parse_args()
    lfw = load_lfw()
    c = cohort_embeddings(lfw, args.flip)  # the faces the shipped cohort's statistics were made of
    cal_t = shipped_calibration(space_of(args.flip)).threshold(TARGET)
    # AS-norm threshold from the cohort's own pairs (leave-one-out statistics).
    cm, cs = topk_stats(c, c, skip_self=True)
    cc = c @ c.T
    z = 0.5 * ((cc - cm[:, None]) / cs[:, None] + (cc - cm[None, :]) / cs[None, :])
    zv = np.sort(z[np.triu_indices(len(c), 1)])[::-1]
    as_t = float(zv[int(TARGET * len(zv))])
    d = lfw
    excluded = set(cohort_people(d["identity"], d["found"]))
    gender: dict[str, str] = {}
    with open(LFW / "gender_labels.csv") as fh:
        for row in csv.DictReader(fh):
            gender[row["image"]] = row["gender"]
    keep = d["found"] & ~np.isin(d["identity"], sorted(excluded))
    paths, ident = d["paths"][keep], d["identity"][keep]
    emb = embeddings(d, args.flip)[keep]
    rng = np.random.default_rng(0)
    rows = []
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for g in ("female", "male"):
        m = np.array([gender.get(str(p)) == g for p in paths])
        idx = np.nonzero(m)[0]
        if len(idx) > 4000:  # 8M pairs are plenty for 1e-3
            idx = np.sort(rng.choice(idx, 4000, replace=False))
        groups[f"LFW {'women' if g == 'female' else 'men'}"] = (emb[idx], ident[idx])
    ea = dict(np.load(CACHE / "faces_east_asian.npz"))
    groups["East Asian dev set"] = (embeddings(ea, args.flip)[ea["found"]], ea["identity"][ea["found"]])
    centres, offsets, fsn_t = fsn(c)
    for name, (e, i) in groups.items():
        raw, n = within_fmr(e, i, cal_t, None)
        asn, _ = within_fmr(e, i, as_t, topk_stats(e, c))
        fs = within_fmr_offsets(e, i, fsn_t, offsets[np.argmax(e @ centres.T, axis=1)])
        rows.append({"group": name, "pairs": n, "raw_fmr": raw, "as_norm_fmr": asn, "fsn_fmr": fs})
        print(
            f"{name:20s} {n:9d} pairs  raw FMR {raw:.2e} ({raw / TARGET:.1f}x)  "
            f"AS-norm {asn:.2e} ({asn / TARGET:.1f}x)  FSN {fs:.2e} ({fs / TARGET:.1f}x)"
        )
    # What the normalisation costs or gains overall: TAR at the same FMR, on the non-cohort LFW.
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"group_fmr{'_flip' if args.flip else ''}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "target_fmr": TARGET,
                "space": space_of(args.flip),
                "raw_threshold": cal_t,
                "as_norm_threshold": as_t,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
