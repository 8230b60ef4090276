"""Embed every LFW image named in pairs.csv (or all of LFW) once, for the other LFW benchmarks.

    python bench/lfw_embeddings.py --engine facegate          # facegate's engine
    python bench/lfw_embeddings.py --engine face_recognition  # the face_recognition library
    python bench/lfw_embeddings.py --detector hog             # facegate with another detector

Writes bench/.cache/lfw_<engine>_<set>.npz (engine "facegate" is the default detector, YuNet;
"facegate-hog" / "facegate-cnn" the others; "-landmarks" aligns on YuNet's own landmarks):
paths, embeddings (the engine's own: flip-fused and normalised by default), whether a face was
found, and how many faces the detector saw. The face nearest the image centre is used
(LFW images are centred on their subject).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from common import CACHE, machine, require_lfw

_state: dict[str, object] = {}


def _init(engine: str, detector: str, align: str) -> None:
    _state["engine"] = engine
    if engine == "facegate":
        from facegate.settings import load_settings
        from facegate.vision.engine import FaceEngine

        settings = load_settings(detector={"backend": detector})
        aligner = None
        if align == "landmarks":
            from lfw_landmark_aligner import LandmarkAligner

            aligner = LandmarkAligner()
        _state["fe"] = FaceEngine(settings, aligner=aligner)


def _centre_index(boxes: list[tuple[float, float]], w: int, h: int) -> int:
    d = [(x - w / 2) ** 2 + (y - h / 2) ** 2 for x, y in boxes]
    return int(np.argmin(d))


def _embed(path: str) -> tuple[str, np.ndarray, bool, int]:
    engine = _state["engine"]
    if engine == "facegate":
        from facegate.vision.engine import FaceEngine

        fe = _state["fe"]
        assert isinstance(fe, FaceEngine)
        res = fe.detect(path, expect_face=True)  # a verification photo: a face is expected
        if not res.faces:
            return path, np.zeros(128, np.float32), False, 0
        i = _centre_index(
            [((f.box.left + f.box.right) / 2, (f.box.top + f.box.bottom) / 2) for f in res.faces],
            res.width,
            res.height,
        )
        emb = fe.embedder.embed([res.faces[i].chip])[0]  # the shipped engine's (flip-fused) embedding
        return path, emb, True, len(res.faces)
    import face_recognition

    img = face_recognition.load_image_file(path)
    encs = face_recognition.face_encodings(img)  # what a face_recognition user writes
    if not encs:
        return path, np.zeros(128, np.float32), False, 0
    return path, np.asarray(encs[0], np.float32), True, len(encs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["facegate", "face_recognition"], default="facegate")
    ap.add_argument("--set", choices=["pairs", "all"], default="pairs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--detector", choices=["yunet", "hog", "cnn"], default="yunet")
    ap.add_argument(
        "--align",
        choices=["predictor", "landmarks"],
        default="predictor",
        help="dlib's 5-point predictor (on a box from YuNet's landmarks), "
        "or YuNet's landmarks mapped to dlib's",
    )
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (a quick look)")
    args = ap.parse_args()
    lfw = require_lfw()
    images = lfw / "images"
    if args.set == "pairs":
        names: set[str] = set()
        with open(lfw / "pairs.csv") as fh:
            for row in csv.DictReader(fh):
                names.update((row["img1"], row["img2"]))
        rel = sorted(names)
    else:
        rel = sorted(str(p.relative_to(images)) for p in images.glob("*/*.jpg"))
    if args.limit:
        rel = rel[: args.limit]
    label = args.engine
    if args.engine == "facegate":
        label += "" if args.detector == "yunet" else f"-{args.detector}"
        label += "-landmarks" if args.align == "landmarks" else ""
    out = CACHE / f"lfw_{label}_{args.set}.npz"
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, tuple[np.ndarray, bool, int]] = {}
    init = (args.engine, args.detector, args.align)
    with mp.Pool(args.workers, initializer=_init, initargs=init) as pool, Progress() as bar:
        task = bar.add_task(f"embedding LFW ({label})", total=len(rel))
        for path, emb, found, n in pool.imap_unordered(_embed, [str(images / r) for r in rel], chunksize=8):
            results[str(Path(path).relative_to(images))] = (emb, found, n)
            bar.advance(task)
    elapsed = time.perf_counter() - started
    np.savez_compressed(
        out,
        paths=np.array(rel),
        embeddings=np.stack([results[r][0] for r in rel]),
        found=np.array([results[r][1] for r in rel]),
        n_faces=np.array([results[r][2] for r in rel]),
        seconds=elapsed,
        machine=machine(),
    )
    print(f"{len(rel)} images in {elapsed:.0f} s ({len(rel) / elapsed:.1f}/s) -> {out}")


if __name__ == "__main__":
    main()
