"""The motion cue of liveness (issue 24): its values on moved prints and real heads, and what it
costs per door decision and per camera frame.

Values: each clip's largest face sampled as the camera pipeline samples it (every 0.1 s of clip
time, `PlanarityEvidence`), the track's verdict with the shipped thresholds:
- the issue's attack: a NUAA print of subject 0002 with a dark band above it, sheared from -0.6
  to +0.6 and back every 2 s, 10 frames/s, written to H.264 in a temporary folder and read back;
- a print of each of the nine NUAA subjects sheared, tilted in perspective, zoomed and rotated
  while sheared, and banded and sheared (in memory);
- real heads: the head-pose clips (../shared/videos), the hamilton clip's close-up of Lin-Manuel
  Miranda (frames 82-210), and the first eight drawn frames of every real NUAA session (as if
  0.1 s apart); for comparison the NUAA attack sessions (prints held by hand, flat and bent).
Door: the attack and the head-pose clips through `CameraPipeline` at a door with
`liveness: required`, with and without `challenge: head_turn`, the cue on and off.
Cost: `sample` and `compare` alone; then every frame of the head-pose clips and of the hamilton
clip through `CameraPipeline` with the cue off and on (interleaved, twice): frames/s, CPU per
frame, and the cue's own CPU time per decided track (the thread's CPU clock: other work on the
machine does not inflate it). NUAA frames are read in place; nothing made from them but numbers
is written.

    flock -x /tmp/facegate-bench.lock python bench/planarity.py
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from common import RESULTS, ROOT, SHARED, machine

NUAA = SHARED / "pad" / "nuaa_train"
VIDEOS = SHARED / "videos"
HAMILTON = ROOT / "tests" / "data" / "videos" / "hamilton_clip.mp4"
LIN = ROOT / "examples" / "gallery" / "Lin-Manuel_Miranda" / "lin-manuel-miranda.png"
ATTACK = NUAA / "attack" / "0002_0002_01_00_01_337.jpg"
ENROL = NUAA / "real" / "0002_0002_01_00_01_116.jpg"


def frames_of(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate or 12)
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], rate


def band(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    rows = img.shape[0] // 4
    out[:rows] = (out[:rows].astype(np.float32) * 0.1).astype(np.uint8)
    return out


def shear(img: np.ndarray, k: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = np.array([[1, k, -k * h / 2], [0, 1, 0]], np.float64)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def perspective(img: np.ndarray, a: float) -> np.ndarray:
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = src.copy()
    d = a * h
    dst[0, 1] += max(d, 0)
    dst[3, 1] -= max(d, 0)
    dst[1, 1] += max(-d, 0)
    dst[2, 1] -= max(-d, 0)
    return cv2.warpPerspective(
        img, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE
    )


def zoom_shear(img: np.ndarray, a: float) -> np.ndarray:
    h, w = img.shape[:2]
    r = cv2.getRotationMatrix2D((w / 2, h / 2), 15 * a, 1 + 0.2 * a)
    return cv2.warpAffine(shear(img, 0.4 * a), r, (w, h), borderMode=cv2.BORDER_REPLICATE)


EDITS = {
    "shear": lambda img, a: shear(img, 0.6 * a),
    "perspective": lambda img, a: perspective(img, 0.15 * a),
    "zoom+rotate+shear": zoom_shear,
    "dark_band+shear": lambda img, a: shear(band(img), 0.6 * a),
}


def issue_video(folder: Path) -> tuple[list[np.ndarray], float]:
    """The issue's attack, through an H.264 file as a camera would deliver it."""
    still = band(load(ATTACK))
    fps = 10
    frames = [shear(still, -0.6 * np.cos(2 * np.pi * (i / fps) / 2.0)) for i in range(40)]
    path = folder / "sheared.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return frames_of(path)


def load(path: Path) -> np.ndarray:
    from facegate.vision.decode import load_image

    return load_image(path)


def cue(engine: Any, frames: list[np.ndarray], fps: float, gap_s: float = 0.1) -> dict[str, object]:
    from facegate.settings.live import PlanaritySettings
    from facegate.vision.planarity import PlanarityEvidence, sample

    s = PlanaritySettings()
    ev = PlanarityEvidence()
    for i, img in enumerate(frames):
        t = i / fps
        if not ev.due(t, gap_s - 1e-6):
            continue
        faces = engine.detect(img).faces
        if faces:
            f = max(faces, key=lambda f: f.box.width * f.box.height)
            ev.add(sample(img, f.rules_box, f.landmarks, t))
    return ev.result(s.min_motion, s.max_planar_ratio, s.min_three_d_ratio, s.min_pairs).to_dict()


def summary(results: list[dict[str, object]]) -> dict[str, object]:
    ratios = [float(r["ratio"]) for r in results if r["ratio"] is not None]  # type: ignore[arg-type]
    return {
        "sequences": len(results),
        "verdicts": dict(collections.Counter(str(r["verdict"]) for r in results)),
        "ratio_min": min(ratios) if ratios else None,
        "ratio_median": round(statistics.median(ratios), 4) if ratios else None,
        "ratio_max": max(ratios) if ratios else None,
    }


def values(engine: Any, folder: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    frames, fps = issue_video(folder)
    out["issue attack (0002 print, dark band, shear -0.6..+0.6, H.264)"] = cue(engine, frames, fps)
    by_subject: dict[str, list[Path]] = collections.defaultdict(list)
    for path in sorted((NUAA / "attack").glob("*.jpg")):
        by_subject[path.name[:4]].append(path)
    for name, edit in EDITS.items():
        results = []
        for _, paths in sorted(by_subject.items()):
            photo = load(paths[len(paths) // 2])
            moved = [edit(photo, float(np.sin(2 * np.pi * (i / 10) / 2.0))) for i in range(20)]
            results.append(cue(engine, moved, 10.0))
        out[f"moved print, 9 subjects: {name}"] = summary(results)
    for clip in ("female", "male", "female-and-male"):
        frames, fps = frames_of(VIDEOS / f"head-pose-face-detection-{clip}.mp4")
        out[f"head-pose {clip}"] = cue(engine, frames, fps)
    frames, fps = frames_of(HAMILTON)
    out["hamilton, Lin-Manuel Miranda close-up (frames 82-210)"] = cue(engine, frames[82:211], fps)
    for label in ("real", "attack"):
        sessions: dict[str, list[tuple[int, Path]]] = collections.defaultdict(list)
        for path in (NUAA / label).glob("*.jpg"):
            stem, number = path.stem.rsplit("_", 1)
            sessions[stem].append((int(number), path))
        results = [
            cue(engine, [load(p) for _, p in sorted(v)[:8]], 10.0) for _, v in sorted(sessions.items())
        ]
        out[f"NUAA {label} sessions (8 drawn frames each)"] = summary(results)
    return out


def gallery(folder: Path, name: str, enrol: object, planarity: bool, engine: Any) -> Any:
    from facegate import FaceEngine, Gallery, load_settings
    from facegate.gallery.people import Consent

    settings = load_settings(
        data_dir=folder / f"g{time.monotonic_ns()}",
        events={"snapshots": False},
        quality={"min_face_px": 60, "min_sharpness": 0.05},
        liveness={"planarity": {"enabled": planarity}},
    )
    e = FaceEngine(settings, detector=engine.detector, aligner=engine.aligner, embedder=engine.embedder)
    g = Gallery.open(settings, engine=e)
    g.enroll(name, [enrol], Consent("bench", datetime.now(UTC) + timedelta(days=1), "b"))  # type: ignore[list-item]
    return g


class CueTimer:
    """The cue's own CPU time (its thread's) in a pipeline: `sample` and `PlanarityEvidence.add`,
    per evidence (per track)."""

    def __init__(self) -> None:
        from facegate.vision import planarity

        self.module = planarity
        self.seconds: dict[int, float] = collections.defaultdict(float)
        self._sample, self._add = planarity.sample, planarity.PlanarityEvidence.add
        timer = self

        def sample(*a: Any, **k: Any) -> Any:
            t = time.thread_time()
            try:
                return timer._sample(*a, **k)
            finally:
                timer.seconds[-1] += time.thread_time() - t

        def add(ev: Any, s: Any) -> None:
            t = time.thread_time()
            try:
                timer._add(ev, s)
            finally:
                timer.seconds[id(ev)] += time.thread_time() - t + timer.seconds.pop(-1, 0.0)

        planarity.sample = sample  # type: ignore[assignment]
        planarity.PlanarityEvidence.add = add  # type: ignore[method-assign]

    def close(self) -> None:
        self.module.sample = self._sample  # type: ignore[assignment]
        self.module.PlanarityEvidence.add = self._add  # type: ignore[method-assign]


def camera(
    engine: Any,
    folder: Path,
    frames: list[np.ndarray],
    rate: float,
    enrol: object,
    challenge: str,
    planarity: bool,
) -> dict[str, object]:
    from facegate.settings import AccessRule, CameraSettings, DoorSettings
    from facegate.video.pipeline import CameraPipeline
    from facegate.video.sources import Frame

    g = gallery(folder, "Resident", enrol, planarity, engine)
    door = DoorSettings(
        name="d", cameras=["c"], rules=[AccessRule(people=["*"])], liveness="required", challenge=challenge
    )  # type: ignore[arg-type]
    p = CameraPipeline(CameraSettings(name="c", source="-", fps=rate), g, door=door)
    p.process(Frame(frames[0], 0, 0.0, 0.0), -100.0)  # warm-up, then a fresh tracker
    p.tracker.tracks.clear()
    timer = CueTimer()
    decisions = []
    decided: dict[int, float] = {}
    try:
        started, cpu0 = time.perf_counter(), time.process_time()
        for i, img in enumerate(frames):
            r = p.process(Frame(img, i, i / rate, 0.0), i / rate)
            for d in r.decisions:
                decisions.append(d)
                track = next(t for t in r.tracks.values() if t.id == d.track_id)
                decided[d.track_id] = timer.seconds.get(id(track.liveness.planarity), 0.0)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
    finally:
        timer.close()
    g.close()
    cue_total = sum(timer.seconds.values())
    return {
        "challenge": challenge,
        "planarity": planarity,
        "frames": len(frames),
        "fps": round(len(frames) / seconds, 1),
        "cpu_ms_per_frame": round(cpu * 1000 / len(frames), 1),
        "cue_ms_per_frame": round(cue_total * 1000 / len(frames), 2),
        "cue_ms_per_decided_track": [round(v * 1000, 1) for v in decided.values()],
        "decisions": [
            {
                "kind": d.kind,
                "reason": d.reason,
                "latency_s": round(d.latency_s, 2),
                "planarity": None if d.planarity is None else d.planarity.to_dict(),
            }
            for d in decisions
        ],
    }


def unit_cost(engine: Any) -> dict[str, object]:
    from facegate.vision.planarity import PlanarityEvidence, compare, sample

    frames, fps = frames_of(VIDEOS / "head-pose-face-detection-female.mp4")
    faces = [max(engine.detect(f).faces, key=lambda f: f.box.width * f.box.height) for f in frames]
    nuaa = load(ATTACK)
    nf = max(engine.detect(nuaa).faces, key=lambda f: f.box.width * f.box.height)
    sample_ms, compare_ms, add_ms = [], [], []
    for _ in range(5):
        for img, f in zip(frames, faces, strict=True):
            t = time.thread_time()
            sample(img, f.rules_box, f.landmarks, 0.0)
            sample(nuaa, nf.rules_box, nf.landmarks, 0.0)
            sample_ms.append((time.thread_time() - t) * 500)
        samples = [
            sample(img, f.rules_box, f.landmarks, i / fps)
            for i, (img, f) in enumerate(zip(frames, faces, strict=True))
        ]
        for a, b in itertools.pairwise(samples):
            t = time.thread_time()
            compare(a, b)
            compare_ms.append((time.thread_time() - t) * 1000)
        ev = PlanarityEvidence()
        for s in samples:
            t = time.thread_time()
            ev.add(s)
            add_ms.append((time.thread_time() - t) * 1000)
    return {
        "sample_ms_median (one 640x480 NUAA face and one 480x270 clip face, averaged)": round(
            statistics.median(sample_ms), 3
        ),
        "compare_ms_median": round(statistics.median(compare_ms), 2),
        "add_ms_median (up to 3 compares)": round(statistics.median(add_ms), 2),
        "crop_bytes": 96 * 96,
    }


def main() -> None:
    if not (NUAA / "labels.csv").is_file() or not VIDEOS.is_dir():
        print(f"SKIP: NUAA frames or videos not found under {SHARED} (set FACEGATE_SHARED)", file=sys.stderr)
        sys.exit(0)
    from facegate import FaceEngine, load_settings

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        engine = FaceEngine(load_settings(data_dir=folder / "models"))
        result: dict[str, object] = {
            "machine": machine(),
            "date": datetime.now(UTC).date().isoformat(),
            "load_average_before": [round(x, 1) for x in os.getloadavg()],
        }
        result["unit_cost"] = unit_cost(engine)
        result["values"] = values(engine, folder)
        attack, attack_rate = issue_video(folder)
        female, female_rate = frames_of(VIDEOS / "head-pose-face-detection-female.mp4")
        male, male_rate = frames_of(VIDEOS / "head-pose-face-detection-male.mp4")
        door = {}
        for label, frames, rate, enrol in (
            ("issue attack", attack, attack_rate, load(ENROL)),
            ("head-pose female", female, female_rate, female[9]),
            ("head-pose male", male, male_rate, male[0]),
        ):
            for challenge in ("none", "head_turn"):
                for on in (False, True):
                    r = camera(engine, folder, frames, rate, enrol, challenge, on)
                    door[f"{label}, challenge {challenge}, planarity {'on' if on else 'off'}"] = r[
                        "decisions"
                    ]
        result["door"] = door
        hamilton, hamilton_rate = frames_of(HAMILTON)
        runs: dict[str, list[dict[str, object]]] = {}
        for label, frames, rate, enrol, challenge in (
            ("head-pose female 480x270 (23 frames), head_turn", female, female_rate, female[9], "head_turn"),
            ("head-pose male 480x270 (62 frames), no challenge", male, male_rate, male[0], "none"),
            ("hamilton 640x360 (275 frames), no challenge", hamilton, hamilton_rate, LIN, "none"),
        ):
            # Interleaved, twice each: other work on the machine moves wall-clock figures.
            runs[label] = [
                camera(engine, folder, frames, rate, enrol, challenge, on)
                for on in (False, True, False, True)
            ]
        result["camera"] = runs
    result["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "planarity.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
