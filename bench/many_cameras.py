"""How many 1080p cameras at 10 frames/s one machine serves with no dropped frame, and the
first-frame-to-decision latency at 5 cameras: every camera in the server's process (threads,
`camera_workers: off`) beside a worker process per camera (mode "workers": `camera_workers`
the number of cameras) and the cameras grouped into N worker processes (mode "N workers";
`camera_workers: auto` is as many as cores), in one run.

Each camera is a live HTTP MJPEG stream on loopback, paced at 10 frames/s, of a deterministic
1080p clip made from ../shared/videos/hamilton_clip.mp4 (upscaled, looped). The cameras ask for
12 frames/s so that the pacing never skips a frame itself: every dropped frame is one the
pipeline was too slow for.

    flock -x /tmp/facegate-bench.lock .venv/bin/python bench/many_cameras.py [--seconds 12] [--max 8]

Each row runs in a fresh process (memory and threads of one row never weigh on the next), so
its resident memory is that of a server running those cameras.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import numpy as np

from common import CACHE, RESULTS, ROOT, SHARED, machine
from tests.support.mjpeg import played, serve_mjpeg

CLIP = SHARED / "videos" / "hamilton_clip.mp4"
FPS = 10
WARM_UP_FRAMES = 30  # a camera's first 3 s
LIN = ROOT / "examples" / "gallery" / "Lin-Manuel_Miranda" / "lin-manuel-miranda.png"


def frames_1080p(seconds: float = 6.0) -> list[bytes]:
    """The clip's first `seconds` at 10 frames/s, upscaled to 1920x1080, as JPEGs (cached)."""
    cache = CACHE / "many_cameras_1080p.npz"
    if cache.exists():
        with np.load(cache) as z:  # one byte buffer and the JPEGs' ends: no pickled objects
            data, ends = z["data"].tobytes(), z["ends"].tolist()
            return [data[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    jpegs: list[bytes] = []
    with av.open(str(CLIP)) as c:
        stream = c.streams.video[0]
        due = 0.0
        for f in c.decode(stream):
            if f.time is None or f.time + 1e-6 < due:
                continue
            due += 1 / FPS
            buf = io.BytesIO()
            f.to_image().resize((1920, 1080)).save(buf, format="JPEG", quality=85)
            jpegs.append(buf.getvalue())
            if len(jpegs) >= seconds * FPS:
                break
    CACHE.mkdir(parents=True, exist_ok=True)
    ends = np.cumsum([len(j) for j in jpegs])
    np.savez(cache, data=np.frombuffer(b"".join(jpegs), np.uint8), ends=ends)
    return jpegs


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def camera_server(jpegs: list[bytes], seconds: float, start: int = 0) -> ThreadingHTTPServer:
    """A live camera playing the clip (looped, from frame `start`) at 10 frames/s for `seconds`
    (a reconnect is refused)."""
    clip = jpegs[start:] + jpegs[:start]
    server, _ = serve_mjpeg(played(clip, count=int(seconds * FPS)), FPS, once=True)
    return server


# The cameras' settings in each configuration measured: facegate's defaults, a door camera whose
# faces are at least 60 px (detection on a 640 px copy, where a 60 px face is 20 px), and ...
CONFIGS: dict[str, dict[str, object]] = {
    "default": {},
    "door (min_face_px 60, detect_max_side 640)": {"min_face_px": 60, "detect_max_side": 640},
    # The defaults with the whole frame searched every third frame, and in between only the
    # regions of the faces tracked.
    "default, full_detect_every 3": {"full_detect_every": 3},
    # Frames wait up to half a second or a second while a camera is busy, instead of being
    # dropped for the newest.
    "door, max_lag_s 0.5": {"min_face_px": 60, "detect_max_side": 640, "max_lag_s": 0.5},
    "door, max_lag_s 1": {"min_face_px": 60, "detect_max_side": 640, "max_lag_s": 1.0},
    # Both: what a building with many door cameras would configure.
    "door, full_detect_every 3": {"min_face_px": 60, "detect_max_side": 640, "full_detect_every": 3},
    "door, full_detect_every 3, max_lag_s 1": {
        "min_face_px": 60,
        "detect_max_side": 640,
        "full_detect_every": 3,
        "max_lag_s": 1.0,
    },
}


def camera_workers(mode: str, cameras: int = 1) -> str | int:
    """The `camera_workers` setting of a mode: "one process", "workers" (one per camera) or
    "N workers"."""
    if mode == "one process":
        return "off"
    if mode == "workers":
        return cameras
    count, _, rest = mode.partition(" ")
    if rest != "workers" or not count.isdigit() or int(count) < 1:
        raise SystemExit(f"mode {mode!r}: 'one process', 'workers' or 'N workers'")
    return int(count)


def run(
    n: int,
    mode: str,
    jpegs: list[bytes],
    seconds: float,
    lin: Path,
    config: str = "default",
    stagger: bool = False,
) -> dict[str, object]:
    from facegate import Consent, Gallery, load_settings
    from facegate.events.store import EventStore
    from facegate.settings import CameraSettings
    from facegate.video.service import LiveService

    # Staggered: camera i starts i/n of the way into the clip, as independent cameras would;
    # else all play it in lockstep (its cut reaches every camera in the same frame: bursts).
    servers = [camera_server(jpegs, seconds, i * len(jpegs) // n if stagger else 0) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        cams = [
            CameraSettings(
                name=f"cam{i}",
                source=f"http://127.0.0.1:{s.server_address[1]}/video.mjpg",
                fps=12,
                **CONFIGS[config],  # type: ignore[arg-type]
            )
            for i, s in enumerate(servers)
        ]
        settings = load_settings(
            data_dir=data,
            secret_key="bench-many-cameras-key-0123456789",
            cameras=cams,
            camera_workers=camera_workers(mode, n),
        )
        workers = mode != "one process"
        g = Gallery.open(settings)
        g.enroll(
            "Lin-Manuel Miranda",
            [lin],
            Consent(
                purpose="door access", expires_at=datetime.now(UTC) + timedelta(days=1), recorded_by="bench"
            ),
        )
        # Work per track, counted in this process (cameras in worker processes are not): a
        # dropped frame can break a track, and a new track is embedded at once.
        from facegate.video import tracker

        counts = {"embeddings": 0}
        add_evidence = tracker.Track.add_evidence

        def counted(self: tracker.Track, *a: Any, **k: Any) -> None:
            counts["embeddings"] += 1
            add_evidence(self, *a, **k)

        tracker.Track.add_evidence = counted  # type: ignore[method-assign]
        live = LiveService(g, workers=workers)
        live.start()
        started = time.monotonic()
        rss: list[int] = []
        warm: dict[str, int] = {}  # camera -> frames it dropped in its first WARM_UP_FRAMES
        while time.monotonic() < started + seconds + 5:  # the streams end; a source then retries
            for row in live.status():
                dropped = int(row.get("frames_skipped", 0))  # type: ignore[call-overload]
                # Received: in-process sources count them; workers count processed + dropped.
                got = int(row.get("frames_decoded", int(row.get("frames", 0)) + dropped))  # type: ignore[call-overload]
                if row["camera"] not in warm and got >= WARM_UP_FRAMES:
                    warm[str(row["camera"])] = dropped
            if not rss and time.monotonic() >= started + seconds * 0.6:
                pids = (
                    sorted({live.workers.pid(c.name) or 0 for c in cams} - {0})
                    if live.workers is not None
                    else [os.getpid()]
                )
                rss = [rss_bytes(p) for p in pids if p is not None]
            time.sleep(0.1)
        status = live.status()
        live.stop()
        if workers:
            assert live.workers is not None
            by_camera = {name: c.stats for name, c in live.workers.cameras.items()}
        else:
            by_camera = {
                name: {"frames": s.frames, "decoded": s.decoded, "skipped": s.skipped}
                for name, s in live.stats.items()
            }
        stats = list(by_camera.values())
        events = EventStore(g.store).list(limit=100000)
        g.close()
    for s in servers:
        s.shutdown()
    lat = sorted(e.details["latency_ms"] for e in events if "latency_ms" in e.details)
    # Grants apart: an unknown is called only after `tracking.unknown_min_s` (1 s) by design.
    grant_lat = sorted(
        e.details["latency_ms"] for e in events if e.kind == "granted" and "latency_ms" in e.details
    )
    return {
        "cameras": n,
        "mode": mode,
        "config": config,
        "staggered": stagger,
        "frames": sum(int(s.get("frames", 0)) for s in stats),
        "decoded": sum(int(s.get("decoded", 0)) for s in stats),
        "dropped": sum(int(s.get("skipped", 0)) for s in stats),
        # Once each camera is past its first WARM_UP_FRAMES (sessions' first runs, the other
        # worker processes loading their models): what the machine sustains.
        "dropped_after_warm_up": sum(
            int(s.get("skipped", 0)) - min(warm.get(name, 0), int(s.get("skipped", 0)))
            for name, s in by_camera.items()
        ),
        "sent": n * int(seconds * FPS),
        "decisions": len(lat),
        "embeddings": None if workers else counts["embeddings"],
        "p95_latency_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None,
        "p95_grant_latency_ms": grant_lat[min(len(grant_lat) - 1, int(0.95 * len(grant_lat)))]
        if grant_lat
        else None,
        "rss_mb_each": [round(r / 2**20) for r in rss],
        "status": status,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--max", type=int, default=8)
    ap.add_argument("--min", type=int, default=1)
    ap.add_argument("--stagger", action="store_true", help="start each camera elsewhere in the clip")
    ap.add_argument("--lin", type=Path, default=LIN)
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="MODE:CONFIG",
        help='rows to run, e.g. "2 workers:door, full_detect_every 3"; MODE: "one process", "workers"'
        ' (one per camera) or "N workers" (default: every config in one process, the defaults with'
        " workers)",
    )
    ap.add_argument("--out", help="results file under bench/results (default many_cameras[_staggered].json)")
    ap.add_argument("--row", nargs=3, metavar=("N", "MODE", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    jpegs = frames_1080p()
    if args.row:  # one row, in a process of its own: rows must not inherit each other's memory
        n, mode, config = int(args.row[0]), args.row[1], args.row[2]
        row = run(n, mode, jpegs, args.seconds, args.lin, config, args.stagger)
        print("ROW " + json.dumps(row, default=str), flush=True)
        return
    rows = []
    modes = [("one process", c) for c in CONFIGS] + [("workers", "default")]
    if args.only:
        modes = []
        for spec in args.only:
            mode, _, config = spec.partition(":")
            camera_workers(mode)
            if config not in CONFIGS:
                raise SystemExit(f"--only {spec!r}: CONFIG is one of {list(CONFIGS)}")
            modes.append((mode, config))
    for n in range(args.min, args.max + 1):
        for mode, config in modes:
            cmd = [sys.executable, __file__, "--seconds", str(args.seconds), "--lin", str(args.lin)]
            cmd += ["--stagger"] if args.stagger else []
            out = subprocess.run([*cmd, "--row", str(n), mode, config], capture_output=True, text=True)
            found = [line[4:] for line in out.stdout.splitlines() if line.startswith("ROW ")]
            if out.returncode != 0 or not found:
                raise SystemExit(f"row {n} {mode} {config} failed:\n{out.stderr[-3000:]}")
            row = json.loads(found[0])
            print(json.dumps({k: v for k, v in row.items() if k != "status"}), flush=True)
            rows.append(row)
    best = {
        f"{mode}, {config}{after}": max(
            (
                r["cameras"]
                for r in rows
                if r["mode"] == mode and r["config"] == config and r[key] == 0  # type: ignore[literal-required]
            ),
            default=0,
        )
        for mode, config in modes
        for key, after in (("dropped", ""), ("dropped_after_warm_up", ", after warm-up"))
    }
    out = {
        "machine": machine(),
        "cpus": os.cpu_count(),
        "fps": FPS,
        "seconds": args.seconds,
        "rows": rows,
        "largest_n_without_drops": best,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.out or ("many_cameras_staggered.json" if args.stagger else "many_cameras.json")
    (RESULTS / name).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps(best))


if __name__ == "__main__":
    main()
