"""LFW verification, standard 10-fold protocol, facegate vs the face_recognition library.

    python bench/lfw_embeddings.py --engine facegate            # YuNet + dlib's predictor (default)
    python bench/lfw_embeddings.py --align landmarks            # YuNet's landmarks mapped to dlib's
    python bench/lfw_embeddings.py --detector hog               # the detector before YuNet
    python bench/lfw_embeddings.py --engine face_recognition
    python bench/lfw_verification.py

Each engine whose embeddings are cached is reported; results for one that is not cached now are
kept from the previous report (so a slow one, such as HOG, need not be embedded again).

Pairs where no face was found in either photo are scored as non-matches (the lowest possible
score), as a deployed system would treat them, and counted.
"""

from __future__ import annotations

import csv
import json

import numpy as np

from facegate.eval.verification import eer, kfold_accuracy, tar_at_far
from facegate.match import shipped_calibration
from facegate.vision.embed_dlib import l2_normalise

from common import CACHE, RESULTS, machine, require_lfw

# "facegate" is the default engine (YuNet, dlib's predictor); "facegate-hog" the one before it.
ENGINES = ("facegate", "facegate-landmarks", "facegate-hog", "face_recognition")


def load_pairs() -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    with open(require_lfw() / "pairs.csv") as fh:
        rows = list(csv.DictReader(fh))
    return (
        [(r["img1"], r["img2"]) for r in rows],
        np.array([int(r["same"]) for r in rows]),
        np.array([int(r["fold"]) for r in rows]),
    )


def pair_scores(engine: str, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, int, float]:
    # The whole-LFW cache (made for calibration) holds every pair image too.
    cache = CACHE / f"lfw_{engine}_all.npz"
    data = np.load(cache if cache.exists() else CACHE / f"lfw_{engine}_pairs.npz")
    index = {p: i for i, p in enumerate(data["paths"])}
    emb, found = data["embeddings"], data["found"]
    a = np.array([index[x] for x, _ in pairs])
    b = np.array([index[y] for _, y in pairs])
    ok = found[a] & found[b]
    if engine.startswith("facegate"):
        n = l2_normalise(emb)
        scores = np.einsum("ij,ij->i", n[a], n[b])
        floor = -1.0
    else:  # face_recognition compares Euclidean distances; negate so that higher = same
        scores = -np.linalg.norm(emb[a] - emb[b], axis=1)
        floor = -10.0
    scores = np.where(ok, scores, floor)
    return scores, int((~ok).sum()), float(data["seconds"])


def main() -> None:
    pairs, same, folds = load_pairs()
    report: dict[str, object] = {"machine": machine(), "pairs": len(pairs)}
    previous_file = RESULTS / "lfw_verification.json"
    previous = json.loads(previous_file.read_text()) if previous_file.exists() else {}
    for engine in ENGINES:
        if not (CACHE / f"lfw_{engine}_pairs.npz").exists():
            if engine in previous:
                report[engine] = {**previous[engine], "from_previous_run": True}
                print(f"{engine}: kept from the previous report (not cached now)")
            else:
                print(f"skip {engine}: run lfw_embeddings.py (see the docstring)")
            continue
        scores, missing, seconds = pair_scores(engine, pairs)
        kf = kfold_accuracy(scores, same, folds)
        tar, _, allowed = tar_at_far(scores, same, 1e-3)
        row: dict[str, object] = {
            "accuracy_10fold": kf.accuracy,
            "accuracy_std": kf.std,
            "tar_at_far_1e-3_on_pairs": tar,
            "impostors_allowed_at_1e-3": allowed,
            "eer": eer(scores, same),
            "pairs_without_face": missing,
            "embedding_seconds": seconds,
        }
        if engine.startswith("facegate"):
            cal = shipped_calibration("dlib_resnet_v1")
            for fmr in (1e-3, 1e-4, 1e-5):
                t = cal.threshold(fmr)
                row[f"tar_at_calibrated_fmr_{fmr:g}"] = float((scores[same == 1] >= t).mean())
                row[f"impostor_accept_at_calibrated_fmr_{fmr:g}"] = float((scores[same == 0] >= t).mean())
        else:
            row["accuracy_at_default_tolerance_0.6"] = float(((scores >= -0.6) == (same == 1)).mean())
        report[engine] = row
        print(f"{engine}: {json.dumps(row, indent=1)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lfw_verification.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
