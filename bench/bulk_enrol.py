"""Bulk enrolment: `enroll-dir`'s work on 60 photos, facegate vs face_recognition, one run.

    python bench/bulk_enrol.py

20 LFW people with 3 photos each (../shared/faces/lfw), upscaled to 640x640 as a phone photo's
face would be. face_recognition encodes every photo as its README shows (load_image_file,
face_encodings). facegate enrols each person (decode, detect, quality gate, align, embed,
encrypt, store, audit) the way `facegate enroll-dir` does: one process with one ONNX Runtime
thread, and with the vision worker pool (one process per core, one person per worker at a
time). Pool start-up (the workers load their models, ~2-4 s) is timed separately: the CLI pays
it once per command.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from common import RESULTS, machine, require_lfw


def people(root: Path, out: Path) -> dict[str, list[Path]]:
    chosen: dict[str, list[Path]] = {}
    for d in sorted(p for p in (root / "images").iterdir() if p.is_dir()):
        photos = sorted(d.glob("*.jpg"))
        if len(photos) >= 3:
            dst = out / d.name
            dst.mkdir(parents=True)
            chosen[d.name] = []
            for p in photos[:3]:
                Image.open(p).convert("RGB").resize((640, 640), Image.Resampling.LANCZOS).save(dst / p.name)
                chosen[d.name].append(dst / p.name)
        if len(chosen) == 20:
            break
    return chosen


def run_face_recognition(folders: dict[str, list[Path]]) -> tuple[float, int]:
    import face_recognition

    start = time.perf_counter()
    n = 0
    for photos in folders.values():
        for p in photos:
            n += len(face_recognition.face_encodings(face_recognition.load_image_file(p))[:1])
    return time.perf_counter() - start, n


def run_facegate(folders: dict[str, list[Path]], pooled: bool) -> tuple[float, float, int]:
    from facegate import Consent, FaceEngine, Gallery, load_settings
    from facegate.vision.pool import PooledEngine

    cores = os.cpu_count() or 1
    settings = load_settings(
        data_dir=Path(tempfile.mkdtemp()), secret_key="benchmark-secret-key-123456", embedder={"threads": 1}
    )
    started = time.perf_counter()
    engine: FaceEngine = PooledEngine(settings, cores) if pooled else FaceEngine(settings)
    if isinstance(engine, PooledEngine):
        engine.pool.warm()
    startup = time.perf_counter() - started
    consent = Consent("benchmark", datetime.now(UTC) + timedelta(days=1), recorded_by="bench")
    with Gallery.open(settings, engine=engine) as gallery:
        start = time.perf_counter()
        with ThreadPoolExecutor(cores if pooled else 1) as threads:
            done = list(
                threads.map(lambda kv: gallery.enroll(kv[0], kv[1], consent, skip_bad=True), folders.items())
            )
        seconds = time.perf_counter() - start
    if isinstance(engine, PooledEngine):
        engine.close()
    return seconds, startup, sum(len(e.template_ids) for e in done)


def main() -> None:
    lfw = require_lfw()
    with tempfile.TemporaryDirectory() as d:
        folders = people(lfw, Path(d))
        n = sum(len(p) for p in folders.values())
        fr_s, fr_n = run_face_recognition(folders)
        one_s, _one_start, one_n = run_facegate(folders, pooled=False)
        pool_s, pool_start, pool_n = run_facegate(folders, pooled=True)
    report = {
        "machine": machine(),
        "photos": n,
        "face_recognition": {"seconds": fr_s, "photos_per_s": n / fr_s, "encoded": fr_n},
        "facegate_one_process": {"seconds": one_s, "photos_per_s": n / one_s, "enrolled": one_n},
        "facegate_pool": {
            "seconds": pool_s,
            "photos_per_s": n / pool_s,
            "enrolled": pool_n,
            "pool_startup_s": pool_start,
        },
        "ratio_one_process": fr_s / one_s,
        "ratio_pool": fr_s / pool_s,
        "ratio_pool_with_startup": fr_s / (pool_s + pool_start),
    }
    print(json.dumps(report, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bulk_enrol.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
