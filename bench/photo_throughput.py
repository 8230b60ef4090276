"""Photo throughput of `identify`: facegate vs the face_recognition library, same photos, one run.

    python bench/photo_throughput.py [--repeat 3]

The photos are the portraits in examples/ (and ../shared/faces/portraits where present), cut
to 640x480 and 1280x720. face_recognition does what its README shows: face_locations() then
face_encodings() and compare_faces() against the known encodings. facegate runs
Gallery.identify() against a gallery holding the same people: with its defaults (YuNet, SFace
since issue 22), with dlib's flip-fused ResNet (the default before), in one process with one
ONNX Runtime thread; and with the vision worker pool (one process per core, photos submitted
from as many threads), as `serve` and the bulk commands run it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from common import RESULTS, ROOT, SHARED, machine

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}


def photos() -> list[Path]:
    found = sorted((ROOT / "examples").rglob("*.[jp][pn]g"))
    extra = SHARED / "faces" / "portraits"
    if extra.is_dir():
        found += sorted(p for p in extra.glob("*.[jp][pn]g") if p.name not in {f.name for f in found})
    return found


def frames(size: tuple[int, int]) -> list[np.ndarray]:
    return [np.asarray(ImageOps.fit(Image.open(p).convert("RGB"), size)) for p in photos()]


def run_face_recognition(images: list[np.ndarray], known: list[np.ndarray]) -> tuple[float, int]:
    import face_recognition

    n_faces = 0
    start = time.perf_counter()
    for img in images:
        locations = face_recognition.face_locations(img)
        for enc in face_recognition.face_encodings(img, locations):
            face_recognition.compare_faces(known, enc)
            n_faces += 1
    return time.perf_counter() - start, n_faces


def run_facegate(images: list[np.ndarray], gallery: object, at_once: int = 1) -> tuple[float, int]:
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    with ThreadPoolExecutor(at_once) as threads:
        found = list(threads.map(gallery.identify, images))  # type: ignore[attr-defined]
    return time.perf_counter() - start, sum(len(f) for f in found)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    import face_recognition

    from facegate import Consent, FaceEngine, Gallery, load_settings
    from facegate.vision.pool import PooledEngine

    consent = Consent("benchmark", datetime.now(UTC) + timedelta(days=1), recorded_by="bench")
    galleries: dict[str, tuple[object, int]] = {}
    cores = os.cpu_count() or 1
    for label, model, pooled in (
        ("facegate", "sface", False),
        ("facegate_dlib", "dlib", False),
        ("facegate_pool", "sface", True),
    ):
        settings = load_settings(
            data_dir=Path(tempfile.mkdtemp()),
            secret_key="benchmark-secret-key-123456",
            embedder={"threads": 1, "model": model},
        )
        engine = PooledEngine(settings, cores) if pooled else FaceEngine(settings)
        if isinstance(engine, PooledEngine):
            engine.pool.warm()
        gallery = Gallery.open(settings, engine=engine)
        for person in sorted((ROOT / "examples" / "gallery").iterdir()):
            gallery.enroll(person.name, [next(person.iterdir())], consent)
        galleries[label] = (gallery, cores if pooled else 1)
    known = []
    for person in sorted((ROOT / "examples" / "gallery").iterdir()):
        img = face_recognition.load_image_file(next(person.iterdir()))
        known.append(face_recognition.face_encodings(img)[0])

    report: dict[str, object] = {"machine": machine(), "photos": len(photos()), "repeat": args.repeat}
    for label, size in SIZES.items():
        images = frames(size)
        runs: dict[str, object] = {
            "face_recognition": lambda images=images: run_face_recognition(images, known)
        }
        for name, (gallery, at_once) in galleries.items():
            run_facegate(images[:4], gallery, at_once)  # warm-up: first calls allocate
            runs[name] = lambda images=images, g=gallery, n=at_once: run_facegate(images, g, n)
        row: dict[str, object] = {}
        for name, fn in runs.items():
            times, faces = [], 0
            for _ in range(args.repeat):
                t, faces = fn()  # type: ignore[operator]
                times.append(t)
            best = min(times)
            row[name] = {"images_per_s": len(images) / best, "faces": faces, "seconds": best}
        fr = row["face_recognition"]["images_per_s"]  # type: ignore[index]
        for name in galleries:
            row[f"ratio_{name}_over_face_recognition"] = row[name]["images_per_s"] / fr  # type: ignore[index]
        report[label] = row
        print(label, json.dumps(row, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "photo_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    for gallery, _ in galleries.values():
        gallery.close()  # type: ignore[attr-defined]
        engine = gallery.engine  # type: ignore[attr-defined]
        if isinstance(engine, PooledEngine):
            engine.close()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
