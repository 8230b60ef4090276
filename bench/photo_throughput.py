"""Photo throughput of `identify`: facegate vs the face_recognition library, same photos, one run.

    python bench/photo_throughput.py [--repeat 3]

The photos are the portraits in examples/ (and ../shared/faces/portraits where present), cut
to 640x480 and 1280x720. face_recognition does what its README shows: face_locations() then
face_encodings() and compare_faces() against the known encodings. facegate runs
Gallery.identify() against a gallery holding the same people. Both use dlib's HOG detector
with one upsampling and the same 5-point landmarks and ResNet, in one process on one core.
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


def run_facegate(images: list[np.ndarray], gallery: object) -> tuple[float, int]:
    n_faces = 0
    start = time.perf_counter()
    for img in images:
        n_faces += len(gallery.identify(img))  # type: ignore[attr-defined]
    return time.perf_counter() - start, n_faces


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    import face_recognition

    from facegate import Consent, FaceEngine, Gallery, load_settings

    tmp = Path(tempfile.mkdtemp())
    settings = load_settings(data_dir=tmp, secret_key="benchmark-secret-key-123456")
    engine = FaceEngine(settings)
    gallery = Gallery.open(settings, engine=engine)
    consent = Consent("benchmark", datetime.now(UTC) + timedelta(days=1), recorded_by="bench")
    known = []
    for person in sorted((ROOT / "examples" / "gallery").iterdir()):
        photo = next(person.iterdir())
        gallery.enroll(person.name, [photo], consent)
        img = face_recognition.load_image_file(photo)
        known.append(face_recognition.face_encodings(img)[0])

    report: dict[str, object] = {"machine": machine(), "photos": len(photos()), "repeat": args.repeat}
    for label, size in SIZES.items():
        images = frames(size)
        run_facegate(images[:2], gallery)  # warm-up: first calls allocate
        row: dict[str, object] = {}
        for name, fn in (
            ("face_recognition", lambda images=images: run_face_recognition(images, known)),
            ("facegate", lambda images=images: run_facegate(images, gallery)),
        ):
            times, faces = [], 0
            for _ in range(args.repeat):
                t, faces = fn()
                times.append(t)
            best = min(times)
            row[name] = {"images_per_s": len(images) / best, "faces": faces, "seconds": best}
        fr = row["face_recognition"]["images_per_s"]  # type: ignore[index]
        fg = row["facegate"]["images_per_s"]  # type: ignore[index]
        row["ratio_facegate_over_face_recognition"] = fg / fr
        report[label] = row
        print(label, json.dumps(row, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "photo_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    gallery.close()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
