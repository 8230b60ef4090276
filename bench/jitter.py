"""dlib's jittered descriptors (compute_face_descriptor with num_jitters), measured on a subsample.

    python bench/jitter.py --folds 2 --jitters 10

Costly (num_jitters network passes per face), so only the photos of the first `--folds` folds of
LFW's pairs.csv are embedded, with plain, flip-fused and jittered descriptors from the dlib
backend; each variant's accuracy is the folds' cross-validated accuracy (threshold chosen on the
other folds of the subsample), and the cost is the embedding time per face, on this machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import time

import numpy as np

from facegate.eval.verification import kfold_accuracy
from make_cohort import normalise

from common import RESULTS, machine, require_lfw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--jitters", type=int, default=10)
    args = ap.parse_args()
    lfw = require_lfw()
    import dlib

    from facegate.settings import load_settings
    from facegate.vision.embed_dlib import DlibResNetEmbedder
    from facegate.vision.engine import FaceEngine

    s = load_settings()
    s.embedder.threads = 1
    fe = FaceEngine(s)
    net = DlibResNetEmbedder()
    with open(lfw / "pairs.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["fold"]) < args.folds]
    names = sorted({r["img1"] for r in rows} | {r["img2"] for r in rows})
    chips: dict[str, np.ndarray] = {}
    for n in names:
        res = fe.detect(str(lfw / "images" / n), expect_face=True)
        if res.faces:
            w, h = res.width, res.height
            f = min(
                res.faces,
                key=lambda f: (f.box.left + f.box.right - w) ** 2 + (f.box.top + f.box.bottom - h) ** 2,
            )
            chips[n] = f.chip
    keys = sorted(chips)
    variants: dict[str, np.ndarray] = {}
    cost: dict[str, float] = {}
    model = net._net  # the dlib network itself: compute_face_descriptor(chip, num_jitters)
    for name, jit, flip in (
        ("plain", 0, False),
        ("flip-fused", 0, True),
        (f"jitter{args.jitters}", args.jitters, False),
    ):
        t0 = time.perf_counter()
        out = []
        for k in keys:
            c = np.ascontiguousarray(chips[k])
            v = normalise(
                np.array(model.compute_face_descriptor(c, jit) if jit else model.compute_face_descriptor(c))
            )
            if flip:
                v = normalise(
                    v + normalise(np.array(model.compute_face_descriptor(np.ascontiguousarray(c[:, ::-1]))))
                )
            out.append(v)
        cost[name] = (time.perf_counter() - t0) / len(keys) * 1000
        variants[name] = np.stack(out)
    idx = {k: i for i, k in enumerate(keys)}
    results = {}
    same = np.array([int(r["same"]) for r in rows])
    folds = np.array([int(r["fold"]) for r in rows])
    for name, emb in variants.items():
        sc = np.array(
            [
                float(emb[idx[r["img1"]]] @ emb[idx[r["img2"]]])
                if r["img1"] in idx and r["img2"] in idx
                else -1.0
                for r in rows
            ]
        )
        acc = kfold_accuracy(sc, same, folds).accuracy
        results[name] = {"accuracy": acc, "ms_per_face": cost[name]}
        print(
            f"{name:12s} accuracy {acc:.4f} on {len(rows)} pairs, {cost[name]:.1f} ms/face (dlib backend)",
            flush=True,
        )
    del dlib
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "jitter.json").write_text(
        json.dumps(
            {"machine": machine(), "pairs": len(rows), "faces": len(keys), "results": results}, indent=1
        )
    )


if __name__ == "__main__":
    main()
