"""What liveness costs: ms per face per frame, ms per door decision, and camera frames/s with
the door's liveness rule off and required, side by side in one run.

Per frame: the NUAA frames of ../shared/pad (640x480, read in place), one face each, detected
once; then `LivenessCheck.assess` timed alone (both MiniFASNet models, crops included) at 1 and
2 ONNX Runtime threads. Per decision: a door needs `liveness.frames` scored frames.
Camera: every frame of the hamilton clip (tests/data/videos) through `CameraPipeline` with a
door whose liveness is off, then required (no peer has liveness: face_recognition, CompreFace
and Frigate have none), and the NUAA door scenario (a printed photo, then the resident) with
its decisions and their latency from the first frame.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np

from common import RESULTS, ROOT, SHARED, machine

NUAA = SHARED / "pad" / "nuaa_train"
HAMILTON = ROOT / "tests" / "data" / "videos" / "hamilton_clip.mp4"


def per_frame(limit: int) -> dict[str, object]:
    from facegate import FaceEngine, load_settings
    from facegate.settings import LivenessSettings
    from facegate.vision.decode import load_image
    from facegate.vision.liveness import LivenessCheck

    with (NUAA / "labels.csv").open(newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["image"])[::2][:limit]
    with tempfile.TemporaryDirectory() as d:
        engine = FaceEngine(load_settings(data_dir=d))
        shots = []
        detect_ms = []
        for r in rows:
            img = load_image(NUAA / r["image"])
            t = time.perf_counter()
            faces = engine.detect(img).faces
            detect_ms.append((time.perf_counter() - t) * 1000)
            if faces:
                shots.append((img, faces[:1]))
    out: dict[str, object] = {
        "frames": len(shots),
        "hog_detect_ms_median": round(statistics.median(detect_ms), 1),
    }
    for threads in (1, 2):
        check = LivenessCheck(LivenessSettings(threads=threads))
        check.assess(*shots[0])  # warm-up
        ms = []
        cpu0 = time.process_time()
        for img, faces in shots:
            t = time.perf_counter()
            check.assess(img, faces)
            ms.append((time.perf_counter() - t) * 1000)
        cpu_ms = (time.process_time() - cpu0) * 1000 / len(shots)
        ms.sort()
        out[f"threads_{threads}"] = {
            "median_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "mean_ms": round(statistics.fmean(ms), 2),
            "cpu_ms_per_face": round(cpu_ms, 2),  # all threads: the cost, whatever else runs
        }
    return out


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def camera(liveness: str, frames: list[np.ndarray], rate: float) -> dict[str, object]:
    from facegate import Gallery, load_settings
    from facegate.gallery.people import Consent
    from facegate.settings import AccessRule, CameraSettings, DoorSettings
    from facegate.video.pipeline import CameraPipeline
    from facegate.video.sources import Frame

    lin = ROOT / "examples" / "gallery" / "Lin-Manuel_Miranda" / "lin-manuel-miranda.png"
    with tempfile.TemporaryDirectory() as d:
        g = Gallery.open(load_settings(data_dir=d, events={"snapshots": False}))
        g.enroll("Lin-Manuel Miranda", [lin], Consent("bench", datetime.now(UTC) + timedelta(days=1), "b"))
        door = DoorSettings(name="d", cameras=["c"], rules=[AccessRule(people=["*"])], liveness=liveness)  # type: ignore[arg-type]
        p = CameraPipeline(CameraSettings(name="c", source="-", fps=rate), g, door=door)
        p.process(Frame(frames[0], 0, 0.0, 0.0), -100.0)  # warm-up, then a fresh tracker
        p.tracker.tracks.clear()
        decisions = []
        started, cpu0 = time.perf_counter(), time.process_time()
        for i, img in enumerate(frames):
            decisions += p.process(Frame(img, i, i / rate, 0.0), i / rate).decisions
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        scored = sum(len(t.liveness.scores) + t.liveness.refused for t in p.tracker.tracks.values())
        g.close()
    return {
        "liveness": liveness,
        "fps": round(len(frames) / seconds, 1),
        "cpu_ms_per_frame": round(cpu * 1000 / len(frames), 1),
        "faces_judged_in_live_tracks": scored,
        "decisions": [
            {"kind": x.kind, "reason": x.reason, "liveness": x.liveness, "latency_s": round(x.latency_s, 2)}
            for x in decisions
        ],
    }


def door_scenario(liveness: str) -> dict[str, object]:
    """The NUAA door test: a printed photo held up for 1.2 s at 5 fps, then the resident."""
    from facegate import Gallery, load_settings
    from facegate.gallery.people import Consent
    from facegate.settings import AccessRule, CameraSettings, DoorSettings
    from facegate.video.pipeline import CameraPipeline
    from facegate.video.sources import Frame
    from facegate.vision.decode import load_image

    attack = [NUAA / f"attack/0005_0005_00_00_01_{n}.jpg" for n in (104, 122, 136, 160, 183, 197)]
    live = [NUAA / f"real/0005_0005_00_00_01_{n}.jpg" for n in (51, 59, 95, 106, 152, 195)]
    with tempfile.TemporaryDirectory() as d:
        g = Gallery.open(load_settings(data_dir=d, events={"snapshots": False}))
        consent = Consent("bench", datetime.now(UTC) + timedelta(days=1), "b")
        g.enroll("Resident", [NUAA / "real/0005_0005_00_00_01_7.jpg"], consent)
        door = DoorSettings(name="d", cameras=["c"], rules=[AccessRule(people=["*"])], liveness=liveness)  # type: ignore[arg-type]
        p = CameraPipeline(CameraSettings(name="c", source="-", fps=5), g, door=door)
        out = []
        ms = []
        for start, paths in ((0.0, attack), (10.0, live)):
            for i, path in enumerate(paths):
                img = load_image(path)
                t = start + i * 0.2
                c = time.perf_counter()
                r = p.process(Frame(img, i, t, t), t)
                ms.append((time.perf_counter() - c) * 1000)
                out += [
                    {
                        "shown": "photo" if start == 0 else "resident",
                        "kind": x.kind,
                        "reason": x.reason,
                        "latency_s": round(x.latency_s, 2),
                    }
                    for x in r.decisions
                ]
        g.close()
    return {"liveness": liveness, "decisions": out, "ms_per_frame_median": round(statistics.median(ms), 1)}


def main() -> None:
    if not (NUAA / "labels.csv").is_file():
        print(f"SKIP: NUAA frames not found at {NUAA} (set FACEGATE_SHARED)", file=sys.stderr)
        sys.exit(0)
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    frames = frames_of(HAMILTON)
    result = {
        "machine": machine(),
        "per_frame": per_frame(limit),
        # Interleaved, twice each: other work on the machine moves wall-clock figures.
        "camera_hamilton_640x360": [camera(x, frames, 30.0) for x in ("off", "required", "off", "required")],
        "door_nuaa": [door_scenario(x) for x in ("off", "required")],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "liveness_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
