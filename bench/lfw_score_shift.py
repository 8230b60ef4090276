"""How much the default detector's alignment moves embeddings and scores, against HOG's, on LFW.

    python bench/lfw_embeddings.py && python bench/lfw_embeddings.py --detector hog
    python bench/lfw_score_shift.py

Per image: cosine between the two embeddings of the same photo. Per pair (the 6,000 LFW pairs):
the change of the genuine and impostor scores, which is what moves the calibrated thresholds.
"""

from __future__ import annotations

import json

import numpy as np

from facegate.vision.embed_dlib import l2_normalise
from lfw_verification import load_pairs

from common import CACHE, RESULTS, machine


def main() -> None:
    a, b = (np.load(CACHE / f"lfw_{e}_pairs.npz") for e in ("facegate", "facegate-hog"))
    assert list(a["paths"]) == list(b["paths"])
    ea, eb = l2_normalise(a["embeddings"]), l2_normalise(b["embeddings"])
    both = a["found"] & b["found"]
    same_photo = np.einsum("ij,ij->i", ea, eb)[both]
    pairs, same, _ = load_pairs()
    index = {p: i for i, p in enumerate(a["paths"])}
    i = np.array([index[x] for x, _ in pairs])
    j = np.array([index[y] for _, y in pairs])
    sa, sb = np.einsum("ij,ij->i", ea[i], ea[j]), np.einsum("ij,ij->i", eb[i], eb[j])
    report = {
        "machine": machine(),
        "images": len(a["paths"]),
        "no_face_yunet": int((~a["found"]).sum()),
        "no_face_hog_then_cnn": int((~b["found"]).sum()),
        "same_photo_cosine": {
            "median": float(np.median(same_photo)),
            "p1": float(np.percentile(same_photo, 1)),
            "min": float(same_photo.min()),
        },
        "genuine_score_shift_mean": float((sa - sb)[same == 1].mean()),
        "impostor_score_shift_mean": float((sa - sb)[same == 0].mean()),
        "pair_score_shift_abs_median": float(np.median(np.abs(sa - sb))),
        "genuine_mean": {"yunet": float(sa[same == 1].mean()), "hog": float(sb[same == 1].mean())},
        "impostor_mean": {"yunet": float(sa[same == 0].mean()), "hog": float(sb[same == 0].mean())},
    }
    print(json.dumps(report, indent=1))
    (RESULTS / "lfw_score_shift.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
