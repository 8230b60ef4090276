"""Does the web console add work to the recognition path? `/v1/identify` latency with a camera
running, without and with a console open on its live view.

    python bench/console_overhead.py [--requests 40] [--rounds 4]

`facegate serve` runs one camera (an MJPEG camera on loopback looping hamilton_clip.mp4 at
15 fps, processed at 5 fps, as a door would). One client sends the same 640x480 photo of two
people to `/v1/identify`, one request at a time. In the "console open" rounds a second client
does what the console's camera page does in a browser: the newest annotated frame and its
caption every second (`/cameras/stage/live.jpg`, `.json`) and the live event stream
(`/events/live`) held open. Rounds alternate (idle, console, idle, console, ...) so that drift
of a shared machine falls on both.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import av
import httpx
from PIL import Image, ImageOps

from common import RESULTS, ROOT, machine
from tests.support.mjpeg import serve_mjpeg

PASSWORD = "bench console password"


def mjpeg_camera(clip: Path, fps: float = 15) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP MJPEG camera on loopback playing `clip` in a loop."""
    with av.open(str(clip)) as c:
        jpegs = []
        for f in c.decode(video=0):
            buf = io.BytesIO()
            f.to_image().save(buf, format="JPEG", quality=85)
            jpegs.append(buf.getvalue())

    return serve_mjpeg(lambda i: jpegs[i % len(jpegs)], fps)


class ConsoleViewer:
    """What a browser on the camera page does: the live frame and caption each second, and the
    event stream held open."""

    def __init__(self, base: str, cookie: str) -> None:
        self.headers = {"cookie": cookie}
        self.base = base
        self.stop = threading.Event()
        self.frames = 0
        self.frame_ms: list[float] = []
        self.threads = [threading.Thread(target=self._poll), threading.Thread(target=self._stream)]

    def _poll(self) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as c:
            while not self.stop.is_set():
                t = time.perf_counter()
                r = c.get("/cameras/stage/live.jpg")
                self.frame_ms.append((time.perf_counter() - t) * 1000)
                c.get("/cameras/stage/live.json")
                self.frames += r.status_code == 200
                self.stop.wait(1.0)

    def _stream(self) -> None:
        with (
            httpx.Client(base_url=self.base, headers=self.headers, timeout=None) as c,
            c.stream("GET", "/events/live") as r,
        ):
            for _ in r.iter_lines():
                if self.stop.is_set():
                    return

    def __enter__(self) -> ConsoleViewer:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.threads[0].join(30)  # the stream thread ends at its next keep-alive (daemon otherwise)


def identify_ms(base: str, token: str, photo: bytes, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=60) as c:
        for _ in range(n):
            t = time.perf_counter()
            r = c.post("/v1/identify", files={"file": ("p.jpg", photo, "image/jpeg")})
            out.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
    return out


def summary(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=20)
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p95_ms": q[18], "mean_ms": statistics.fmean(ms)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=40, help="identify requests per round")
    ap.add_argument("--rounds", type=int, default=4, help="rounds of each condition")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    camera, url = mjpeg_camera(ROOT / "tests" / "data" / "videos" / "hamilton_clip.mp4")
    buf = io.BytesIO()
    ImageOps.fit(Image.open(ROOT / "examples" / "probes" / "two_people.jpg").convert("RGB"), (640, 480)).save(
        buf, "JPEG"
    )
    photo = buf.getvalue()
    data = work / "data"
    data.mkdir()
    (data / "config.yaml").write_text(
        f"cameras:\n  - name: stage\n    source: {url}\n    fps: 5\n"
        "doors:\n  - name: stage\n    cameras: [stage]\n"
    )
    env = {
        **os.environ,
        "FACEGATE_DATA_DIR": str(data),
        "FACEGATE_SECRET_KEY": "bench-secret-key-0123456789",
        "FACEGATE_API__RATE_LIMIT": "1000000/minute",
    }
    env.pop("FACEGATE_CONFIG", None)
    os.environ.update(env)
    from facegate import Consent, Gallery, load_settings
    from facegate.api.keys import KeyStore
    from facegate.web.users import UserStore

    with Gallery.open(load_settings()) as g:
        consent = Consent("benchmark", datetime.now(UTC) + timedelta(days=1), recorded_by="bench")
        for person in sorted((ROOT / "examples" / "gallery").iterdir()):
            g.enroll(person.name.replace("_", " "), [next(person.iterdir())], consent)
        token = KeyStore(g.store).create("bench", "operator")[1]
        UserStore(g.store).create("viewer", "operator", PASSWORD)
    base = "http://127.0.0.1:8092"
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegate.cli", "serve", "--port", "8092"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "serve.log").open("wb"),
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=base) as c:
            form = c.get("/login")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            r = c.post(
                "/login",
                data={"name": "viewer", "password": PASSWORD, "csrf": csrf},
                headers={"cookie": f"facegate_login={form.cookies['facegate_login']}"},
            )
            session = r.history[0].cookies["facegate_session"] if r.history else r.cookies["facegate_session"]
        cookie = f"facegate_session={session}"
        identify_ms(base, token, photo, 5)  # warm-up: models loaded, the camera running
        rows: dict[str, list[float]] = {"idle": [], "console open": []}
        viewer_frames, frame_ms = 0, []
        for i in range(args.rounds):
            rows["idle"] += identify_ms(base, token, photo, args.requests)
            with ConsoleViewer(base, cookie) as v:
                rows["console open"] += identify_ms(base, token, photo, args.requests)
            viewer_frames += v.frames
            frame_ms += v.frame_ms
            idle, open_ = statistics.median(rows["idle"]), statistics.median(rows["console open"])
            print(f"round {i + 1}: p50 idle {idle:.1f} ms, console open {open_:.1f} ms", flush=True)
        cams = httpx.get(base + "/v1/cameras", headers={"authorization": f"Bearer {token}"}).json()["cameras"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        camera.shutdown()
    report = {
        "machine": machine(),
        "photo": "640x480, two faces",
        "camera": "MJPEG, hamilton_clip.mp4 looped at 15 fps, processed at 5 fps",
        "identify": {k: summary(v) for k, v in rows.items()},
        "live_frames_served": viewer_frames,
        "live_frame_ms": summary(frame_ms) if len(frame_ms) > 1 else None,
        "camera_status": cams,
    }
    report["p50_ratio"] = report["identify"]["console open"]["p50_ms"] / report["identify"]["idle"]["p50_ms"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "console_overhead.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
