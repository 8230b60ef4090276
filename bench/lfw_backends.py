"""LFW 10-fold accuracy and TAR at FAR 1e-3 for each embedder backend: dlib, ONNX fp32, ONNX int8.

    python bench/lfw_embeddings.py --engine facegate --set all   # dlib's embeddings (cached)
    python bench/lfw_backends.py

The faces are detected and aligned once; the same chips go through each backend. The int8
model is calibrated on 256 LFW photos that the pairs protocol does not use.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from rich.progress import track

from embedder_speed import calibration_photos, chips_from
from facegate import FaceEngine, load_settings
from facegate.eval.verification import kfold_accuracy, tar_at_far
from facegate.match import shipped_calibration
from facegate.vision.embed_dlib import l2_normalise
from facegate.vision.embed_onnx import OnnxResNetEmbedder
from facegate.vision.quantize import quantize_embedder
from lfw_verification import load_pairs

from common import CACHE, RESULTS, machine, require_lfw


def main() -> None:
    lfw = require_lfw()
    pairs, same, folds = load_pairs()
    names = sorted({p for pair in pairs for p in pair})
    data = Path(tempfile.mkdtemp())
    engine = FaceEngine(load_settings(data_dir=data))
    chips: dict[str, np.ndarray] = {}
    for name in track(names, description="aligning LFW faces"):
        res = engine.detect(lfw / "images" / name, expect_face=True)
        if res.faces:
            centre = min(
                res.faces,
                key=lambda f: (
                    ((f.box.left + f.box.right) / 2 - res.width / 2) ** 2
                    + ((f.box.top + f.box.bottom) / 2 - res.height / 2) ** 2
                ),
            )
            chips[name] = centre.chip
    models = data / "models"
    quantize_embedder(models, chips_from(engine, calibration_photos(256)))
    order = [n for n in names if n in chips]
    stack = [chips[n] for n in order]
    embeddings = {
        "onnx fp32": OnnxResNetEmbedder(models, provider="cpu").raw(stack),
        "onnx int8": OnnxResNetEmbedder(models, provider="cpu", int8=True).raw(stack),
    }
    cache = np.load(CACHE / "lfw_facegate_all.npz")
    where = {p: i for i, p in enumerate(cache["paths"])}
    embeddings["dlib"] = cache["embeddings"][[where[n] for n in order]]
    index = {n: i for i, n in enumerate(order)}
    cal = shipped_calibration("dlib_resnet_v1")
    report: dict[str, object] = {"machine": machine(), "faces": len(order), "images": len(names)}
    for backend in ("dlib", "onnx fp32", "onnx int8"):
        emb = l2_normalise(embeddings[backend])
        scores = np.array(
            [float(emb[index[a]] @ emb[index[b]]) if a in index and b in index else -1.0 for a, b in pairs]
        )
        kf = kfold_accuracy(scores, same, folds)
        t = cal.threshold(1e-3)
        report[backend] = {
            "accuracy_10fold": kf.accuracy,
            "accuracy_std": kf.std,
            "tar_at_far_1e-3_on_pairs": tar_at_far(scores, same, 1e-3)[0],
            "tar_at_calibrated_fmr_1e-3": float((scores[same == 1] >= t).mean()),
        }
        print(backend, report[backend], flush=True)
    d = embeddings["dlib"]
    for backend in ("onnx fp32", "onnx int8"):
        e = embeddings[backend]
        cos = (d * e).sum(1) / np.linalg.norm(d, axis=1) / np.linalg.norm(e, axis=1)
        report[f"{backend} vs dlib"] = {"min_cosine": float(cos.min()), "max_abs": float(np.abs(d - e).max())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lfw_backends.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
