"""Jittered enrolment templates on top of flip fusion: does dlib's recipe pay where it is cheap?

    python bench/enrol_jitter.py [--jitters 10] [--folds 10]

A door can afford many network passes when someone enrols (once), not on every frame. On LFW's
pairs protocol the first photo of each pair plays the enrolment photo and the second the probe.
Templates compared, all with the shipped ONNX embedder on the shipped pipeline's chips:

  flip            both sides flip-fused (the shipped default);
  enrol jitter    the enrolment side: the normalised mean of the chip, its mirror and
                  `--jitters` copies from dlib.jitter_image (random shifts, zooms, rotations,
                  mirrors); the probe side flip-fused;
  both jitter     both sides so (what dlib's published figure does; not affordable per frame).

Reported: 10-fold accuracy (threshold chosen on the other folds), and milliseconds of
embedding per enrolment photo on this machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import time

import numpy as np
from rich.progress import track

from facegate.eval.verification import kfold_accuracy
from facegate.vision.vectors import l2_normalise

from common import RESULTS, machine, require_lfw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jitters", type=int, default=10)
    ap.add_argument("--folds", type=int, default=10)
    args = ap.parse_args()
    lfw = require_lfw()
    import dlib

    from facegate.settings import load_settings
    from facegate.vision.engine import FaceEngine

    fe = FaceEngine(load_settings())
    inner = fe.embedder.inner  # type: ignore[attr-defined]
    with open(lfw / "pairs.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["fold"]) < args.folds]
    names = sorted({r["img1"] for r in rows} | {r["img2"] for r in rows})
    flip: dict[str, np.ndarray] = {}
    jit: dict[str, np.ndarray] = {}
    t_flip = t_jit = 0.0
    for n in track(names, description="embedding"):
        res = fe.detect(str(lfw / "images" / n), expect_face=True)
        if not res.faces:
            continue
        w, h = res.width, res.height
        face = min(
            res.faces,
            key=lambda f: (f.box.left + f.box.right - w) ** 2 + (f.box.top + f.box.bottom - h) ** 2,
        )
        chip = np.ascontiguousarray(face.chip)
        t0 = time.perf_counter()
        flip[n] = fe.embedder.embed([chip])[0]
        t1 = time.perf_counter()
        copies = [chip, np.ascontiguousarray(chip[:, ::-1])] + [
            np.ascontiguousarray(c) for c in dlib.jitter_image(chip, args.jitters)
        ]
        jit[n] = l2_normalise(inner.embed(copies).mean(axis=0))
        t2 = time.perf_counter()
        t_flip += t1 - t0
        t_jit += t2 - t1
    same = np.array([int(r["same"]) for r in rows])
    folds = np.array([int(r["fold"]) for r in rows])
    variants = {
        "flip": (flip, flip),
        f"enrol jitter {args.jitters}": (jit, flip),
        f"both jitter {args.jitters}": (jit, jit),
    }
    results = {}
    for name, (enrol, probe) in variants.items():
        sc = np.array(
            [
                float(enrol[r["img1"]] @ probe[r["img2"]])
                if r["img1"] in enrol and r["img2"] in probe
                else -1.0
                for r in rows
            ]
        )
        acc = kfold_accuracy(sc, same, folds)
        results[name] = {"accuracy": acc.accuracy, "accuracy_std": acc.std}
        print(f"{name:18s} accuracy {acc.accuracy:.4f} +- {acc.std:.4f} on {len(rows)} pairs", flush=True)
    cost = {"flip": 1000 * t_flip / len(flip), f"jitter {args.jitters}": 1000 * t_jit / len(jit)}
    print(f"ms per enrolment photo: {cost}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "enrol_jitter.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "pairs": len(rows),
                "faces": len(flip),
                "results": results,
                "ms_per_face": cost,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
