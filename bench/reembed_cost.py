"""What converting a dlib gallery to SFace from its kept face chips costs, against enrolling again.

    python bench/reembed_cost.py [--workers 2]   # -> bench/results/reembed_cost.json

A gallery made with dlib's model keeps, per template, an encrypted 150x150 dlib-aligned JPEG
chip (quality 90), not the photo. `facegate people reembed` finds YuNet's five landmarks again on
that chip and cuts SFace's crop from it. Here every photo of LFW's pairs protocol is embedded
both ways: from the photo (what enrolling again gives) and from its stored chip (the JPEG
round trip included), and the protocol is scored each way: 10-fold accuracy, and genuine pairs
accepted at the shipped 1e-3 and 1e-4 thresholds (both photos converted; and one converted, one
fresh, as when a converted template meets a new photo at the door).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import time

import numpy as np

from face_embeddings import central_face

from common import RESULTS, machine, require_lfw

_state: dict[str, object] = {}


def _init() -> None:
    from facegate.settings import load_settings
    from facegate.vision.engine import FaceEngine

    s = load_settings()
    s.embedder.threads = 1
    _state["fe"] = FaceEngine(s)


def _embed(path: str) -> tuple[str, np.ndarray, np.ndarray, bool]:
    from facegate.gallery.enrolment import decode_chip, encode_chip
    from facegate.vision.engine import FaceEngine

    fe = _state["fe"]
    assert isinstance(fe, FaceEngine)
    zero = np.zeros(fe.embedder.dim, np.float32)
    face = central_face(fe, path)
    if face is None:
        return path, zero, zero, False
    fe.embed([face])
    assert face.embedding is not None
    stored = decode_chip(encode_chip(face.chip))  # what the gallery keeps
    return path, face.embedding, fe.embed_chips([stored])[0], True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    lfw = require_lfw()
    from facegate.eval.verification import kfold_accuracy
    from facegate.match import shipped_calibration
    from facegate.vision.models import SFACE_SPACE

    with open(lfw / "pairs.csv") as fh:
        rows = list(csv.DictReader(fh))
    paths = sorted({r["img1"] for r in rows} | {r["img2"] for r in rows})
    started = time.perf_counter()
    with mp.Pool(args.workers, initializer=_init) as pool:
        got = {
            p: (a, b, f)
            for p, a, b, f in pool.imap_unordered(_embed, [str(lfw / "images" / p) for p in paths], 16)
        }
    seconds = time.perf_counter() - started
    photo = {p: got[str(lfw / "images" / p)] for p in paths}
    same = np.array([int(r["same"]) for r in rows])
    folds = np.array([int(r["fold"]) for r in rows])
    cal = shipped_calibration(SFACE_SPACE)
    out: dict[str, object] = {"machine": machine(), "photos": len(paths), "seconds": seconds}
    for name, (ka, kb) in {
        "from photos (enrol again)": (0, 0),
        "from chips (reembed)": (1, 1),
        "chip vs fresh photo": (1, 0),
    }.items():
        ok = np.array([photo[r["img1"]][2] and photo[r["img2"]][2] for r in rows])
        scores = np.array(
            [
                float(photo[r["img1"]][ka] @ photo[r["img2"]][kb]) if k else -1.0
                for r, k in zip(rows, ok, strict=True)
            ]
        )
        k = kfold_accuracy(scores, same, folds)
        gen = scores[same == 1]
        out[name] = {
            "accuracy": k.accuracy,
            "accuracy_std": k.std,
            "tar_at_1e-3": float((gen >= cal.threshold(1e-3)).mean()),
            "tar_at_1e-4": float((gen >= cal.threshold(1e-4)).mean()),
            "fmr_at_1e-3": float((scores[same == 0] >= cal.threshold(1e-3)).mean()),
        }
        print(name, json.dumps(out[name]), flush=True)
    same_photo = np.array([float(v[0] @ v[1]) for v in photo.values() if v[2]])
    out["photo_vs_own_chip_cosine"] = {
        "median": float(np.median(same_photo)),
        "p5": float(np.percentile(same_photo, 5)),
    }
    print(out["photo_vs_own_chip_cosine"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reembed_cost.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
