"""Build the calibration table shipped with the model from LFW impostor pairs.

    python bench/lfw_embeddings.py --engine facegate --set all   # once, ~15 min on 2 cores
    python bench/lfw_calibrate.py [--set all]

Writes src/facegate/data/calibration_dlib_resnet_v1.json. The method is in
facegate.eval.calibration's docstring and in docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import numpy as np

from facegate.eval.calibration import DEFAULT_TARGETS, impostor_top_scores, tail_size, thresholds
from facegate.vision.embed_dlib import l2_normalise

from common import CACHE, ROOT


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["pairs", "all"], default="all")
    ap.add_argument(
        "--out", default=str(ROOT / "src" / "facegate" / "data" / "calibration_dlib_resnet_v1.json")
    )
    args = ap.parse_args()
    cache = CACHE / f"lfw_facegate_{args.set}.npz"
    if not cache.exists():
        raise SystemExit(f"{cache} missing: run bench/lfw_embeddings.py --engine facegate --set {args.set}")
    data = np.load(cache)
    found = data["found"]
    paths = data["paths"][found]
    emb = l2_normalise(data["embeddings"][found])
    ids = [p.split("/")[0] for p in paths]
    top, n = impostor_top_scores(emb, ids, keep=tail_size(len(emb)))
    points = thresholds(top, n, DEFAULT_TARGETS)
    table = {
        "space": "dlib_resnet_v1",
        "score": "cosine similarity of L2-normalised embeddings",
        "source": f"LFW deep-funneled, {len(emb)} images with a face found "
        f"({int((~found).sum())} without) of {len(set(ids))} identities",
        "method": "every pair of images of different identities is an impostor comparison; the "
        "threshold for FMR f is the lowest score reached by at most floor(f*N) impostors; "
        "fmr_ci95 is Wilson's interval of the observed rate (pairs share images, so it is optimistic)",
        "created": datetime.now(UTC).date().isoformat(),
        "points": points,
    }
    with open(args.out, "w") as fh:
        json.dump(table, fh, indent=2)
        fh.write("\n")
    for p in points:
        print(f"FMR {p['fmr']:>8g}: threshold {p['threshold']:.4f} ({p['false_matches']} of {n} impostors)")


if __name__ == "__main__":
    main()
