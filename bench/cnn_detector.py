"""The MMOD CNN face detector: dlib vs its ONNX port, speed and detection counts vs HOG.

    python bench/cnn_detector.py

Speed: ms per photo at 640x480 and 1280x720 (the portraits, cut to size), upsample 0 for
both CNNs (dlib's own is timed on the first 6 photos only: it takes seconds each).
Counts: faces found on 1,000 random LFW photos and on the portraits, HOG (upsample 1, the
default) vs the CNN (upsample 0).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from rich.progress import track

from facegate.vision.decode import load_image
from facegate.vision.detect_dlib import HogDetector, MmodDetector
from facegate.vision.detect_onnx import OnnxMmodDetector
from photo_throughput import SIZES, frames, photos

from common import LFW, RESULTS, machine


def mean_ms(detector, images) -> float:  # type: ignore[no-untyped-def]
    detector.detect(images[0])
    start = time.perf_counter()
    for img in images:
        detector.detect(img)
    return 1000 * (time.perf_counter() - start) / len(images)


def main() -> None:
    onnx = OnnxMmodDetector(Path(tempfile.mkdtemp()), upsample=0, max_side=4000, provider="cpu")
    dlib_cnn = MmodDetector(upsample=0, max_side=4000)
    hog = HogDetector(upsample=1, max_side=4000)
    report: dict[str, object] = {"machine": machine()}
    for label, size in SIZES.items():
        images = frames(size)
        row = {
            "hog (upsample 1)": mean_ms(hog, images),
            "onnx cnn": mean_ms(onnx, images),
            "dlib cnn": mean_ms(dlib_cnn, images[:6]),
        }
        row["onnx speedup vs dlib"] = row["dlib cnn"] / row["onnx cnn"]
        report[f"ms per {label} photo"] = row
        print(label, row, flush=True)
    sets = {"portraits": photos()}
    if (LFW / "pairs.csv").is_file():
        sets["lfw (1000 random)"] = random.Random(0).sample(sorted((LFW / "images").glob("*/*.jpg")), 1000)
    for name, paths in sets.items():
        counts = {"photos": len(paths), "hog": 0, "onnx cnn": 0, "hog found none": 0, "cnn found none": 0}
        for p in track(paths, description=f"counting faces: {name}"):
            img = load_image(p)
            h, c = len(hog.detect(img)), len(onnx.detect(img))
            counts["hog"] += h
            counts["onnx cnn"] += c
            counts["hog found none"] += h == 0
            counts["cnn found none"] += c == 0
        report[f"faces found: {name}"] = counts
        print(name, counts, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cnn_detector.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
