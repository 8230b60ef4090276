"""Live video side by side: facegate's camera pipeline against the face_recognition video loop.

Clips from ../shared/videos with hand-labelled segments (frame ranges where one person's face
is on screen). For each engine: frames per second processed, latency from the first frame of
a segment to the first correct grant in it (media time, plus the compute time behind it),
recall of enrolled people per segment, and false grants (a grant naming someone who is not on
screen). The peer is the loop of face_recognition's documented video examples: detect and encode
every frame (facerec_from_video_file.py, tolerance 0.5) or every other frame at 1/4 size
(facerec_from_webcam_faster.py, tolerance 0.6), compare with the known encodings.

Then capacity: how many 720p streams at 5 fps one machine sustains with the pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from common import RESULTS, ROOT, SHARED, machine

VIDEOS = SHARED / "videos"
PORTRAITS = SHARED / "faces" / "portraits"


@dataclass(frozen=True)
class Segment:
    who: str  # an enrolled name, or "" for people who are not enrolled
    first: int  # frame range, inclusive
    last: int
    x: tuple[float, float] = (0.0, 1.0)  # where the face's centre is, as a fraction of the width

    def holds(self, frame: int, cx: float) -> bool:
        return self.first <= frame <= self.last and self.x[0] <= cx < self.x[1]


@dataclass(frozen=True)
class Clip:
    name: str
    file: str
    enrol: dict[str, list[str]]  # name -> portrait files, or ["@frame0"] for the clip's first frame
    segments: tuple[Segment, ...]


CLIPS = (
    Clip(
        "hamilton",
        "hamilton_clip.mp4",
        {"Lin-Manuel Miranda": ["lin-manuel-miranda.png"], "Alex Lacamoire": ["alex-lacamoire.png"]},
        (
            Segment("Lin-Manuel Miranda", 0, 19),  # far away, ~53 px
            Segment("Alex Lacamoire", 20, 45),  # close-up, profile
            Segment("Lin-Manuel Miranda", 82, 210),
            Segment("", 211, 274),  # the audience
        ),
    ),
    Clip(
        "head-pose-male", "head-pose-face-detection-male.mp4", {"Man": ["@frame0"]}, (Segment("Man", 0, 61),)
    ),
    Clip(
        "head-pose-pair",
        "head-pose-face-detection-female-and-male.mp4",
        {"Man": ["@male0"]},
        (Segment("Man", 0, 55, (0.5, 1.0)), Segment("", 0, 55, (0.0, 0.5))),  # he is on the right
    ),
)


def frames_of(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate or 25)
        return [f.to_ndarray(format="rgb24") for f in c.decode(stream)], rate


def enrol_images(clip: Clip) -> dict[str, list[np.ndarray | Path]]:
    out: dict[str, list[np.ndarray | Path]] = {}
    for name, files in clip.enrol.items():
        imgs: list[np.ndarray | Path] = []
        for f in files:
            if f == "@frame0":
                imgs.append(frames_of(VIDEOS / clip.file)[0][0])
            elif f == "@male0":
                imgs.append(frames_of(VIDEOS / "head-pose-face-detection-male.mp4")[0][0])
            else:
                imgs.append(PORTRAITS / f)
        out[name] = imgs
    return out


Grant = tuple[int, str, float]  # frame, name, centre of the face box as a fraction of the width


def score(clip: Clip, grants: list[Grant], rate: float, compute_s: float) -> dict[str, object]:
    """A segment is recalled by a grant of its person inside it; a grant elsewhere is false."""
    enrolled = [s for s in clip.segments if s.who]
    recalled, latencies = 0, []
    for s in enrolled:
        hits = [f for f, n, cx in grants if n == s.who and s.holds(f, cx)]
        if hits:
            recalled += 1
            latencies.append((hits[0] - s.first) / rate)
    false = [(f, n) for f, n, cx in grants if not any(s.who == n and s.holds(f, cx) for s in enrolled)]
    return {
        "segments": len(enrolled),
        "recalled": recalled,
        "recall": round(recalled / len(enrolled), 3),
        "latency_media_s": [round(x, 2) for x in latencies],
        "latency_plus_compute_s": [round(x + compute_s, 3) for x in latencies],
        "grants": len(grants),
        "false_grants": len(false),
        "false_grant_frames": sorted({f for f, _ in false})[:20],
    }


# The camera detector before YuNet: the MMOD CNN on a 640 px copy.
CNN_640: dict[str, object] = {"detector": "cnn", "detect_max_side": 640}
DLIB: dict[str, object] = {"model": "dlib"}  # the embedder before issue 22 (flip-fused ResNet)


def run_facegate(
    clip: Clip,
    frames: list[np.ndarray],
    rate: float,
    target_fmr: float,
    camera: dict[str, object] | None = None,
    embedder: dict[str, object] | None = None,
) -> dict[str, object]:
    from facegate import Gallery, load_settings
    from facegate.gallery.people import Consent
    from facegate.settings import AccessRule, CameraSettings, DoorSettings
    from facegate.video.pipeline import CameraPipeline
    from facegate.video.sources import Frame

    with tempfile.TemporaryDirectory() as d:
        settings = load_settings(
            data_dir=d, quality={"min_face_px": 60}, events={"snapshots": False}, embedder=embedder or {}
        )
        g = Gallery.open(settings)
        consent = Consent("bench", datetime.now(UTC) + timedelta(days=1), "bench")
        for name, imgs in enrol_images(clip).items():
            g.enroll(name, imgs, consent)
        door = DoorSettings(name="d", cameras=["c"], target_fmr=target_fmr, rules=[AccessRule(people=["*"])])
        door = door.model_copy(update={"cooldown_s": 0.0})  # count every track's grant
        p = CameraPipeline(CameraSettings(name="c", source="-", fps=rate, **(camera or {})), g, door=door)
        p.process(Frame(frames[0], 0, 0.0, 0.0), -100.0)  # warm-up (model load), then a fresh tracker
        p.tracker.tracks.clear()
        grants: list[Grant] = []
        started = time.perf_counter()
        for i, img in enumerate(frames):
            r = p.process(Frame(img, i, i / rate, time.monotonic()), i / rate)
            w = img.shape[1]
            grants += [
                (i, d.name or "", (d.box.left + d.box.right) / 2 / w)
                for d in r.decisions
                if d.kind == "granted"
            ]
        seconds = time.perf_counter() - started
        g.close()
    per_frame = seconds / len(frames)
    return {"fps": round(len(frames) / seconds, 1), **score(clip, grants, rate, per_frame)}


def run_peer(
    clip: Clip, frames: list[np.ndarray], rate: float, scale: float, every: int, tolerance: float
) -> dict[str, object]:
    import face_recognition
    from PIL import Image

    known, names = [], []
    for name, imgs in enrol_images(clip).items():
        for img in imgs:
            arr = face_recognition.load_image_file(img) if isinstance(img, Path) else img
            enc = face_recognition.face_encodings(arr)
            if enc:
                known.append(enc[0])
                names.append(name)
    grants: list[Grant] = []
    started = time.perf_counter()
    for i, img in enumerate(frames):
        if i % every:
            continue
        small = img
        if scale != 1:
            h, w = img.shape[:2]
            small = np.asarray(Image.fromarray(img).resize((int(w * scale), int(h * scale))))
        locations = face_recognition.face_locations(small)
        encodings = face_recognition.face_encodings(small, locations)
        for (_top, right, _bottom, left), enc in zip(locations, encodings, strict=True):
            match = face_recognition.compare_faces(known, enc, tolerance=tolerance)
            if True in match:
                grants.append((i, names[match.index(True)], (left + right) / 2 / small.shape[1]))
    seconds = time.perf_counter() - started
    return {"fps": round(len(frames) / seconds, 1), **score(clip, grants, rate, seconds / len(frames))}


def make_720p(src: Path, dst: Path) -> None:
    from PIL import Image

    frames, rate = frames_of(src)
    with av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1000))
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        for img in frames:
            big = np.asarray(Image.fromarray(img).resize((1280, 720), Image.Resampling.BILINEAR))
            for pkt in s.encode(av.VideoFrame.from_ndarray(big, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def capacity(streams: int, clip720: Path, gallery_photos: list[Path]) -> dict[str, object]:
    """`streams` cameras at 5 fps, paced in real time: a frame later than 0.2 s is skipped."""
    from facegate import Gallery, load_settings
    from facegate.gallery.people import Consent
    from facegate.settings import CameraSettings
    from facegate.video.pipeline import CameraPipeline
    from facegate.video.sources import VideoSource

    with tempfile.TemporaryDirectory() as d:
        g = Gallery.open(load_settings(data_dir=d, events={"snapshots": False}))
        g.enroll(
            "Lin-Manuel Miranda", gallery_photos, Consent("bench", datetime.now(UTC) + timedelta(days=1), "b")
        )
        pipes = [
            CameraPipeline(CameraSettings(name=f"c{i}", source=str(clip720), fps=5), g)
            for i in range(streams)
        ]
        results: list[tuple[int, int]] = [(0, 0)] * streams
        barrier = threading.Barrier(streams)

        def run(k: int) -> None:
            src = VideoSource(str(clip720), fps=5, live=False)
            done = skipped = 0
            barrier.wait()
            t0 = time.monotonic()
            for frame in src.frames():
                lag = (time.monotonic() - t0) - frame.media_s
                if lag < 0:
                    time.sleep(-lag)
                elif lag > 0.2:
                    skipped += 1  # a live camera would have replaced this frame by now
                    continue
                pipes[k].process(frame, frame.media_s)
                done += 1
            results[k] = (done, skipped)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        g.close()
    done = sum(r[0] for r in results)
    skipped = sum(r[1] for r in results)
    return {
        "streams": streams,
        "processed": done,
        "skipped": skipped,
        "skipped_share": round(skipped / (done + skipped), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-streams", type=int, default=6)
    ap.add_argument("--skip-capacity", action="store_true", help="Keep the capacity figures of the last run")
    ap.add_argument(
        "--skip-peer", action="store_true", help="Keep the face_recognition figures of the last run"
    )
    args = ap.parse_args()
    if not (VIDEOS / "hamilton_clip.mp4").is_file():
        print(f"SKIP: videos not found at {VIDEOS} (set FACEGATE_SHARED)", file=sys.stderr)
        sys.exit(0)
    report: dict[str, object] = {"machine": machine(), "clips": {}}
    for clip in CLIPS:
        frames, rate = frames_of(VIDEOS / clip.file)
        h, w = frames[0].shape[:2]
        row = {
            "frames": len(frames),
            "size": f"{w}x{h}",
            "facegate (fmr 1e-3)": run_facegate(clip, frames, rate, 1e-3),
            "facegate (fmr 1e-2)": run_facegate(clip, frames, rate, 1e-2),
            "facegate dlib, before SFace (fmr 1e-3)": run_facegate(clip, frames, rate, 1e-3, None, DLIB),
            "facegate CNN 640 (fmr 1e-3)": run_facegate(clip, frames, rate, 1e-3, CNN_640),
        }
        peers = {
            "face_recognition video_file (every frame, tol 0.5)": (1.0, 1, 0.5),
            "face_recognition webcam_faster (1/4 size, every 2nd, tol 0.6)": (0.25, 2, 0.6),
        }
        last = json.loads((RESULTS / "video_pipeline.json").read_text()) if args.skip_peer else {}
        for name, (scale, every, tol) in peers.items():
            kept = last.get("clips", {}).get(clip.name, {}).get(name)
            row[name] = kept if kept is not None else run_peer(clip, frames, rate, scale, every, tol)
        report["clips"][clip.name] = row  # type: ignore[index]
        print(json.dumps({clip.name: row}, indent=1), flush=True)
    previous = RESULTS / "video_pipeline.json"
    if args.skip_capacity and previous.is_file():
        old = json.loads(previous.read_text())
        report["capacity_720p_5fps"] = old.get("capacity_720p_5fps")
        report["sustained_720p_streams"] = old.get("sustained_720p_streams")
    else:
        report.update(measure_capacity(args.max_streams))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "video_pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'video_pipeline.json'}")


def measure_capacity(max_streams: int) -> dict[str, object]:
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as d:
        clip720 = Path(d) / "hamilton_720p.mp4"
        make_720p(VIDEOS / "hamilton_clip.mp4", clip720)
        cap = []
        for n in range(1, max_streams + 1):
            r = capacity(
                n, clip720, [ROOT / "examples" / "gallery" / "Lin-Manuel_Miranda" / "lin-manuel-miranda.png"]
            )
            print(json.dumps(r), flush=True)
            cap.append(r)
            if r["skipped_share"] > 0.05 and n > 1:
                break
        out["capacity_720p_5fps"] = cap
        out["sustained_720p_streams"] = max(
            [r["streams"] for r in cap if r["skipped_share"] <= 0.05], default=0
        )
    return out


if __name__ == "__main__":
    main()
