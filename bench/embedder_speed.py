"""Face embedding speed: dlib vs ONNX Runtime fp32 vs int8, batch 1/8/32, 1 and 2 threads, with
flip fusion (each face and its mirror: two passes per face); and the five-point models: SFace (the
default since issue 22), reid0095 and their score fusion.

    python bench/embedder_speed.py

All in one run on the same aligned chips. dlib's network runs on one core whatever the batch
(it has no thread setting); ONNX Runtime is given 1 or 2 intra-op threads.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facegate import FaceEngine, load_settings
from facegate.vision.embed_dlib import DlibResNetEmbedder
from facegate.vision.embed_five import FivePointEmbedder
from facegate.vision.embed_flip import FlipFused
from facegate.vision.embed_onnx import OnnxResNetEmbedder
from facegate.vision.quantize import int8_path, quantize_embedder

from common import LFW, RESULTS, ROOT, machine


def chips_from(engine: FaceEngine, photos: list[Path]) -> list[np.ndarray]:
    """Each photo's main face as the engine's embedder takes it (dlib's chip or a model's crop)."""
    out = []
    for p in photos:
        out += [f.chip if f.crop is None else f.crop for f in engine.detect(p, expect_face=True).faces[:1]]
    return out


def previous_recipe(data: Path) -> dict[str, Callable[[int], FivePointEmbedder]]:
    """SFace and reid0095 as built before 2026-12-03 (every PRelu as Relu arithmetic, which ONNX
    Runtime runs outside its blocked layout), to time beside the graphs that replaced them."""
    from facegate.vision.embed_five import REID0095_MODEL, SFACE_MODEL
    from facegate.vision.models import REID0095_BIN, REID0095_XML, SFACE, verified_path
    from facegate.vision.onnx_fold import fast_graph
    from facegate.vision.openvino_ir import ir_to_onnx

    sface = data / "sface_previous_recipe.onnx"
    sface.write_bytes(fast_graph(verified_path(SFACE).read_bytes(), blocked=False))
    reid = data / "reid0095_previous_recipe.onnx"
    ir = ir_to_onnx(
        verified_path(REID0095_XML).read_bytes(), verified_path(REID0095_BIN).read_bytes(), blocked=False
    )
    reid.write_bytes(ir.SerializeToString())
    return {
        "sface, previous recipe": lambda t: FivePointEmbedder(SFACE_MODEL, sface, "cpu", t),
        "reid0095, previous recipe": lambda t: FivePointEmbedder(REID0095_MODEL, reid, "cpu", t),
    }


def calibration_photos(n: int) -> list[Path]:
    """LFW photos of images outside the pairs protocol (no test leakage), else the fixtures."""
    if (LFW / "pairs.csv").is_file():
        import csv

        with open(LFW / "pairs.csv") as fh:
            used = {p for r in csv.DictReader(fh) for p in (r["img1"], r["img2"])}
        rest = sorted(
            p for p in (LFW / "images").glob("*/*.jpg") if str(p.relative_to(LFW / "images")) not in used
        )
        return random.Random(0).sample(rest, n)
    return sorted((ROOT / "tests" / "data" / "lfw").glob("*.jpg"))


def ms_per_face(fn, chips: list[np.ndarray], batch: int, seconds: float = 3.0) -> float:  # type: ignore[no-untyped-def]
    batches = [chips[i : i + batch] for i in range(0, len(chips) - batch + 1, batch)] or [chips[:batch]]
    fn(batches[0])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for b in batches:
            fn(b)
            n += len(b)
    return 1000 * (time.perf_counter() - start) / n


def main() -> None:
    data = Path(tempfile.mkdtemp())
    engine = FaceEngine(load_settings(data_dir=data, embedder={"model": "dlib"}))
    models = data / "models"
    photos = sorted((ROOT / "examples").rglob("*.[jp][pn]g")) + sorted(
        (ROOT / "tests" / "data" / "lfw").glob("*.jpg")
    )
    chips = chips_from(engine, photos)
    chips = (chips * (64 // len(chips) + 1))[:64]
    calib = chips_from(engine, calibration_photos(256))
    quantize_embedder(models, calib)
    assert int8_path(models).exists()
    report: dict[str, object] = {"machine": machine(), "calibration_faces": len(calib), "rows": []}
    rows: list[dict[str, object]] = []
    dlib = DlibResNetEmbedder()
    for batch in (1, 8, 32):
        ms = ms_per_face(dlib.raw, chips, batch)
        rows.append({"backend": "dlib", "threads": 1, "batch": batch, "ms_per_face": ms})
        print(rows[-1], flush=True)
    for int8 in (False, True):
        for threads in (1, 2):
            emb = OnnxResNetEmbedder(models, provider="cpu", threads=threads, int8=int8)
            for batch in (1, 8, 32):
                ms = ms_per_face(emb.raw, chips, batch)
                rows.append(
                    {
                        "backend": "onnx int8" if int8 else "onnx fp32",
                        "threads": threads,
                        "batch": batch,
                        "ms_per_face": ms,
                    }
                )
                print(rows[-1], flush=True)
    for threads in (1, 2):
        fused = FlipFused(OnnxResNetEmbedder(models, provider="cpu", threads=threads))
        for batch in (1, 8, 32):
            ms = ms_per_face(fused.embed, chips, batch)
            rows.append(
                {
                    "backend": "onnx fp32 + flip (dlib's default)",
                    "threads": threads,
                    "batch": batch,
                    "ms_per_face": ms,
                }
            )
            print(rows[-1], flush=True)
    previous = previous_recipe(data)
    for model in ("sface", "reid0095", "sface+reid0095"):
        for threads in (1, 2):
            settings = load_settings(
                data_dir=data, embedder={"model": model, "flip": False, "threads": threads, "provider": "cpu"}
            )
            five = FaceEngine(settings)
            crops = chips_from(five, photos)
            crops = (crops * (64 // len(crops) + 1))[:64]
            for batch in (1, 8, 32):
                ms = ms_per_face(five.embedder.embed, crops, batch)
                name = "sface (default)" if model == "sface" else model
                rows.append({"backend": name, "threads": threads, "batch": batch, "ms_per_face": ms})
                print(rows[-1], flush=True)
            build = previous.get(f"{model}, previous recipe")
            before = build(threads) if build is not None else None
            for batch in (1, 8, 32) if before is not None else ():  # the same crops, side by side
                ms = ms_per_face(before.embed, crops, batch)
                rows.append(
                    {
                        "backend": f"{model}, previous recipe",
                        "threads": threads,
                        "batch": batch,
                        "ms_per_face": ms,
                    }
                )
                print(rows[-1], flush=True)
    base = {r["batch"]: r["ms_per_face"] for r in rows if r["backend"] == "dlib"}
    for r in rows:
        r["faces_per_s"] = 1000 / float(r["ms_per_face"])  # type: ignore[arg-type]
        r["speedup_vs_dlib"] = float(base[r["batch"]]) / float(r["ms_per_face"])  # type: ignore[index,arg-type]
    fp = OnnxResNetEmbedder(models, provider="cpu").raw(chips)
    q = OnnxResNetEmbedder(models, provider="cpu", int8=True).raw(chips)
    d = dlib.raw(chips)
    cos = lambda a, b: (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)  # noqa: E731
    report["fp32_vs_dlib"] = {"min_cosine": float(cos(fp, d).min()), "max_abs": float(np.abs(fp - d).max())}
    report["int8_vs_dlib"] = {"min_cosine": float(cos(q, d).min()), "mean_cosine": float(cos(q, d).mean())}
    report["rows"] = rows
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embedder_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
