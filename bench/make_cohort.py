"""Build the shipped cohort: LFW strangers' embeddings and the standardised impostor tail.

    python bench/lfw_embeddings_all.py ... ; python bench/make_cohort.py

Reads bench/.cache/faces_lfw.npz (bench/face_embeddings.py --set lfw). The cohort is COHORT_SIZE
LFW identities that have exactly one photo, chosen by the SHA-256 of their names (reproducible,
unrelated to how they look); `cohort_people()` is what the other benchmarks exclude, so nothing is
scored on the people the cohort was made of. Writes src/facegate/data/cohort_dlib_resnet_v1.npz
and prints its SHA-256, to be pinned in facegate.gallery.cohort.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from common import CACHE, ROOT

COHORT_SIZE = 1500
# Rates of the tail table: every half decade from 10% down to 1e-6 (extrapolated below what
# the pairs can show, by the exponential fitted to the last decade they do show).
RATES = [10 ** (-k / 2) for k in range(2, 13)]
OUT = ROOT / "src" / "facegate" / "data" / "cohort_dlib_resnet_v1.npz"


def load_lfw() -> dict[str, np.ndarray]:
    d = np.load(CACHE / "faces_lfw.npz")
    return {k: d[k] for k in ("paths", "identity", "embeddings", "flipped", "found")}


def normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def cohort_people(identity: np.ndarray, found: np.ndarray) -> list[str]:
    """The cohort's LFW identities: one photo each, a face found, the first COHORT_SIZE by hash."""
    names, counts = np.unique(identity, return_counts=True)
    ok = set(identity[found].tolist())
    single = [str(n) for n, c in zip(names, counts, strict=True) if c == 1 and n in ok]
    single.sort(key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    return sorted(single[:COHORT_SIZE])


def tail_table(cohort: np.ndarray) -> tuple[list[float], list[float]]:
    """z at each rate: each cohort face against the others, standardised by its own mean/sd."""
    s = cohort @ cohort.T
    n = len(s)
    off = ~np.eye(n, dtype=bool)
    vals = s[off].reshape(n, n - 1)
    z = (vals - vals.mean(axis=1, keepdims=True)) / vals.std(axis=1, keepdims=True)
    z = np.sort(z.ravel())[::-1]
    total = len(z)
    rows: list[tuple[float, float]] = []
    for r in RATES:
        k = int(r * total)
        if k >= 100:  # enough exceedances for an empirical quantile
            rows.append((r, float(z[k])))
    # Exponential tail through the last decade seen empirically: log(rate) linear in z.
    (r1, z1), (r2, z2) = rows[-3], rows[-1]
    slope = (z2 - z1) / (np.log(r2) - np.log(r1))
    for r in RATES[len(rows) :]:
        rows.append((r, z2 + slope * (np.log(r) - np.log(r2))))
    return [r for r, _ in rows], [z for _, z in rows]


def score_table(cohort: np.ndarray) -> tuple[list[float], list[float]]:
    """The score that a share `rate` of the cohort's impostor pairs reach (each pair once)."""
    s = cohort @ cohort.T
    vals = np.sort(s[np.triu_indices(len(s), 1)])[::-1]
    total = len(vals)
    rows: list[tuple[float, float]] = []
    for r in RATES:
        k = int(r * total)
        if k >= 100:
            rows.append((r, float(vals[k])))
    (r1, t1), (r2, t2) = rows[-3], rows[-1]
    slope = (t2 - t1) / (np.log(r2) - np.log(r1))
    for r in RATES[len(rows) :]:
        rows.append((r, t2 + slope * (np.log(r) - np.log(r2))))
    return [r for r, _ in rows], [t for _, t in rows]


def main() -> None:
    d = load_lfw()
    people = cohort_people(d["identity"], d["found"])
    pick = np.isin(d["identity"], people) & d["found"]
    emb = normalise(d["embeddings"][pick])
    rates, z = tail_table(emb)
    s_rates, s_thr = score_table(emb)
    meta = {
        "space": "dlib_resnet_v1",
        "version": 1,
        "source": f"LFW deep-funneled: {len(people)} identities with exactly one photo, chosen by the "
        "SHA-256 of their names (bench/make_cohort.py); embedded by facegate's default engine",
        "population": "LFW (public figures photographed by the press, mostly white men)",
        "tail": "z of each cohort face's impostor scores against the other cohort faces, standardised by "
        "its own mean and standard deviation; below the rates the pairs show, an exponential tail",
        "scores": "the score a share of the cohort's impostor pairs (each pair once) reach; extrapolated the same way",
    }
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        embeddings=emb.astype(np.float16),
        tail_rates=np.array(rates),
        tail_z=np.array(z),
        score_rates=np.array(s_rates),
        score_thresholds=np.array(s_thr),
        meta=np.array(json.dumps(meta)),
    )
    OUT.write_bytes(buf.getvalue())
    print(f"{len(people)} people, {pick.sum()} faces -> {OUT}")
    for r, v, t in zip(rates, z, s_thr, strict=True):
        print(f"  rate {r:.1e}: z {v:.3f} score {t:.4f}")
    print("sha256", hashlib.sha256(OUT.read_bytes()).hexdigest(), "size", OUT.stat().st_size)


if __name__ == "__main__":
    main()
