"""Build the shipped cohort statistics: two impostor score tables from LFW strangers.

Only statistics are shipped, never an embedding: a face template of someone who never enrolled
has no place in a user's install (their faces are never stored as templates).

    python bench/face_embeddings.py --set lfw [--model sface]
    python bench/make_cohort.py [--model sface] [--flip]

Reads bench/.cache/faces_lfw[_<model>].npz (bench/face_embeddings.py --set lfw). The cohort is COHORT_SIZE
LFW identities that have exactly one photo, chosen by the SHA-256 of their names (reproducible,
unrelated to how they look); `cohort_people()` is what the other benchmarks exclude, so nothing is
scored on the people the cohort was made of. Writes src/facegate/data/cohort_<space>.json (plain
or, with --flip, flip-fused embeddings) and prints its SHA-256, to be pinned in facegate.gallery.cohort.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from facegate.eval.cohort_stats import cohort_table
from facegate.vision.vectors import l2_normalise as normalise

from common import ROOT

COHORT_SIZE = 1500


def out_path(space: str) -> Path:
    return ROOT / "src" / "facegate" / "data" / f"cohort_{space}.json"


MODELS = {
    "dlib": "dlib_resnet_v1",
    "sface": "sface_2021dec",
    "reid0095": "reid0095",
    "sface+reid0095": "sface_2021dec+reid0095",
}


def space_of(flip: bool, model: str = "dlib") -> str:
    return MODELS[model] + ("_flip" if flip else "")


def load_set(name: str, model: str = "dlib") -> dict[str, np.ndarray]:
    """A cached set (bench/face_embeddings.py) as a dict of arrays."""
    from face_embeddings import cache_path

    if "+" in model:  # score fusion: each model's unit vectors joined, scaled by 1/sqrt(k)
        parts = [load_set(name, m) for m in model.split("+")]
        out = dict(parts[0])
        for key in ("embeddings", "flipped"):
            out[key] = np.concatenate([normalise(p[key]) for p in parts], axis=1) / np.sqrt(len(parts))
        out["found"] = np.logical_and.reduce([p["found"] for p in parts])
        return out
    d = np.load(cache_path(name, model))
    return {k: d[k] for k in ("paths", "identity", "embeddings", "flipped", "found")}


def has_set(name: str, model: str = "dlib") -> bool:
    """Whether the set is cached for the model (for a fusion: for each of its models)."""
    from face_embeddings import cache_path

    return all(cache_path(name, m).is_file() for m in model.split("+"))


def load_lfw(model: str = "dlib") -> dict[str, np.ndarray]:
    return load_set("lfw", model)


def cohort_people(identity: np.ndarray, found: np.ndarray) -> list[str]:
    """The cohort's LFW identities: one photo each, a face found, the first COHORT_SIZE by hash."""
    names, counts = np.unique(identity, return_counts=True)
    ok = set(identity[found].tolist())
    single = [str(n) for n, c in zip(names, counts, strict=True) if c == 1 and n in ok]
    single.sort(key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    return sorted(single[:COHORT_SIZE])


def embeddings(d: dict[str, np.ndarray], flip: bool) -> np.ndarray:
    """Every cached face's embedding, plain or flip-fused (the mirror's descriptor averaged in)."""
    e = normalise(d["embeddings"])
    return normalise(e + normalise(d["flipped"])) if flip else e


def cohort_embeddings(d: dict[str, np.ndarray], flip: bool = False) -> np.ndarray:
    """The cohort's faces, from the benchmark cache (for benchmarks only; never shipped)."""
    people = cohort_people(d["identity"], d["found"])
    return embeddings(d, flip)[np.isin(d["identity"], people) & d["found"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flip", action="store_true", help="flip-fused embeddings (space <model>_flip)")
    ap.add_argument("--model", choices=sorted(MODELS), default="dlib")
    ap.add_argument(
        "--gallery-weight",
        type=float,
        help="the open-set gallery weight measured for this space (bench/open_set.py)",
    )
    args = ap.parse_args()
    space = space_of(args.flip, args.model)
    out = out_path(space)
    d = load_lfw(args.model)
    people = cohort_people(d["identity"], d["found"])
    emb = cohort_embeddings(d, args.flip)
    meta = {
        "space": space,
        "version": 1,
        "source": f"LFW deep-funneled: {len(people)} identities with exactly one photo, chosen by the "
        "SHA-256 of their names (bench/make_cohort.py); embedded by facegate's default engine"
        + (", each face's descriptor averaged with its mirror image's" if args.flip else ""),
        "population": "LFW (public figures photographed by the press, mostly white men)",
        "tail": "z of each cohort face's impostor scores against the other cohort faces, standardised by "
        "its own mean and standard deviation; below the rates the pairs show, log(rate) quadratic in z",
        "scores": "the score a share of the cohort's impostor pairs (each pair once) reach; "
        "extrapolated the same way",
    }
    if args.gallery_weight is not None:
        meta["gallery_weight"] = args.gallery_weight
    table = cohort_table(emb, meta)
    rates, z = table["tail"]["rates"], table["tail"]["z"]
    s_rates, s_thr = table["scores"]["rates"], table["scores"]["thresholds"]
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{len(people)} people, {len(emb)} faces -> {out}")
    for r, v, t in zip(rates, z, s_thr, strict=True):
        print(f"  rate {r:.1e}: z {v:.3f} score {t:.4f}")
    for f, t in zip(s_rates, s_thr, strict=True):
        if 1e-6 <= f <= 1e-5:
            print(f"  check: cohort score at {f:.1e}: {t:.4f}")
    print("sha256", hashlib.sha256(out.read_bytes()).hexdigest(), "size", out.stat().st_size)


if __name__ == "__main__":
    main()
