"""Small faces: how often a face of 24-64 px is recognised, dlib's model against SFace (the default).

    python bench/small_face_recognition.py [--people 100]   # -> bench/results/small_face_recognition.json

LFW people with two photos or more: the first photo is enrolled as it is (250x250, the face ~105
px), the second is scaled so that its face is 24, 32, 48 or 64 px tall and pasted on a 640x480
grey frame, and the frame is identified against the gallery at the shipped defaults (YuNet,
per-person thresholds at target FPIR 0.01). Counted: recognised (the right person), found but
not recognised (unknown), no face found, and given to someone else. Same photos for both models.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from common import RESULTS, machine, require_lfw

SIZES = (24, 32, 48, 64)
FACE_OF_PHOTO = 0.42  # LFW deep-funneled: the face is ~42% of the 250 px photo


def frame(path: Path, face_px: int) -> np.ndarray:
    side = round(face_px / FACE_OF_PHOTO)
    canvas = Image.new("RGB", (640, 480), (118, 118, 118))
    photo = Image.open(path).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    canvas.paste(photo, (320 - side // 2, 240 - side // 2))
    return np.asarray(canvas)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100)
    args = ap.parse_args()
    root = require_lfw()
    from facegate import Consent, Gallery, load_settings
    from facegate.errors import FacegateError

    with open(root / "pairs.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["same"] == "1"]
    people: dict[str, tuple[Path, Path]] = {}
    for r in rows:  # one genuine pair per person, in the protocol's order
        who = r["img1"].split("/")[0]
        people.setdefault(who, (root / "images" / r["img1"], root / "images" / r["img2"]))
    chosen = sorted(people)[: args.people]
    consent = Consent("benchmark", datetime.now(UTC) + timedelta(days=1), recorded_by="bench")
    report: dict[str, object] = {"machine": machine(), "people": len(chosen), "models": {}}
    for label, embedder in (
        ("dlib (flip-fused, default before)", {"model": "dlib"}),
        ("sface (default)", {}),
    ):
        settings = load_settings(
            data_dir=Path(tempfile.mkdtemp()), secret_key="benchmark-secret-key-123456", embedder=embedder
        )
        gallery = Gallery.open(settings)
        ids = {}
        for who in chosen:
            try:
                ids[who] = gallery.enroll(who, [people[who][0]], consent).person.id
            except FacegateError as exc:  # a group photo or a poor face: not enrolled, not probed
                print(f"not enrolled: {who}: {exc}")
        by_size = {}
        started = time.perf_counter()
        for size in SIZES:
            counts = {"recognised": 0, "unknown": 0, "no_face": 0, "wrong_person": 0}
            for who in ids:
                faces = gallery.identify(frame(people[who][1], size))
                if not faces:
                    counts["no_face"] += 1
                    continue
                person = faces[0].result.person
                if person is None:
                    counts["unknown"] += 1
                else:
                    counts["recognised" if person.person_id == ids[who] else "wrong_person"] += 1
            counts["rate"] = counts["recognised"] / len(ids)  # type: ignore[assignment]
            by_size[size] = counts
            print(label, f"{size} px", counts, flush=True)
        report["models"][label] = {
            "space": gallery.space,
            "seconds": time.perf_counter() - started,
            "by_size": by_size,
        }  # type: ignore[index]
        gallery.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "small_face_recognition.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
