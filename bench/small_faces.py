"""Small-face recall: which face sizes each detector finds on a 1080p camera frame.

    python bench/small_faces.py [--faces 24]

LFW photos (../shared/faces/lfw) scaled so that the face is 12-80 px tall and pasted, four per
frame, on a 1920x1080 grey frame. Each detector runs as a camera runs it: YuNet on a 960 px copy
(the camera default), the MMOD CNN on a 640 px copy without and with one upsampling (the camera
default before YuNet, and the slower option), and HOG at upsample 1 on the full frame (the photo
default before YuNet). A face counts as found when a box's centre lies within half a face of the
pasted face's centre. Also the detection time per frame.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
from PIL import Image

from common import RESULTS, machine, require_lfw

SIZES = (12, 16, 20, 24, 32, 40, 48, 60, 80)
FACE_OF_PHOTO = 0.42  # LFW deep-funneled: the face (HOG box) is ~42% of the 250 px photo


def frames(paths: list, side: int) -> list[tuple[np.ndarray, list[tuple[float, float]]]]:
    out = []
    s = round(side / FACE_OF_PHOTO)
    for k in range(0, len(paths), 4):
        canvas = Image.new("RGB", (1920, 1080), (118, 118, 118))
        centres = []
        for j, p in enumerate(paths[k : k + 4]):
            x, y = 200 + j * 420, 300 + (j % 2) * 300
            canvas.paste(Image.open(p).convert("RGB").resize((s, s), Image.Resampling.LANCZOS), (x, y))
            centres.append((x + s / 2, y + s / 2))
        out.append((np.asarray(canvas), centres))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=24, help="faces per size (4 per frame)")
    args = ap.parse_args()
    import tempfile
    from pathlib import Path

    from facegate.vision.detect_dlib import HogDetector
    from facegate.vision.detect_onnx import OnnxMmodDetector
    from facegate.vision.detect_yunet import YuNetDetector

    models = Path(tempfile.mkdtemp())
    detectors = {
        "yunet 960 (camera default)": YuNetDetector(max_side=960, threads=1),
        "mmod cnn 640 (camera default before)": OnnxMmodDetector(models, 0, 640, 0.0, threads=1),
        "mmod cnn 640 upsample 1": OnnxMmodDetector(models, 1, 640, 0.0, threads=1),
        "hog upsample 1 (photo default before)": HogDetector(upsample=1, max_side=1920),
    }
    random.seed(5)
    paths = random.sample(sorted((require_lfw() / "images").glob("*/*.jpg")), args.faces)
    report: dict[str, object] = {"machine": machine(), "faces_per_size": args.faces, "frame": "1920x1080"}
    for name, det in detectors.items():
        row: dict[str, object] = {}
        spent, n = 0.0, 0
        for side in SIZES:
            found = 0
            for img, centres in frames(paths, side):
                t = time.perf_counter()
                dets = det.detect(img)
                spent += time.perf_counter() - t
                n += 1
                for cx, cy in centres:
                    found += any(
                        abs((d.box.left + d.box.right) / 2 - cx) < side / 2
                        and abs((d.box.top + d.box.bottom) / 2 - cy) < side / 2
                        for d in dets
                    )
            row[str(side)] = round(found / args.faces, 3)
        reliable = [s for s in SIZES if row[str(s)] >= 0.95]  # type: ignore[operator]
        row["smallest_found_95pct"] = min(
            (s for s in reliable if all(row[str(t)] >= 0.95 for t in SIZES if t >= s)),
            default=None,  # type: ignore[operator]
        )
        row["ms_per_1080p_frame"] = round(1000 * spent / n, 1)
        report[name] = row
        print(name, json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "small_faces.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
