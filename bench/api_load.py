"""identify over HTTP under load: facegate serve vs a face_recognition FastAPI endpoint.

    python bench/api_load.py [--seconds 20]

Both servers run on loopback (one uvicorn process each) and get the same 640x480 photo of
two people as multipart uploads from wrk (Debian's `wrk`, driven by a Lua script) at 1, 4
and 16 concurrent connections. Latency percentiles and requests per second come from wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from PIL import Image, ImageOps

from common import RESULTS, ROOT, machine

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=fgbench"
wrk.headers["Authorization"] = "Bearer %(token)s"
local f = io.open("%(photo)s", "rb")
local data = f:read("*all")
f:close()
wrk.body = "--fgbench\\r\\nContent-Disposition: form-data; name=\\"file\\"; filename=\\"p.jpg\\"\\r\\n" ..
  "Content-Type: image/jpeg\\r\\n\\r\\n" .. data .. "\\r\\n--fgbench--\\r\\n"
done = function(summary, latency, requests)
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"errors\\": %%d, \\"seconds\\": %%f, " ..
    "\\"p50\\": %%f, \\"p95\\": %%f, \\"p99\\": %%f}\\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.timeout, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3))
end
"""


def wait_ready(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def run_wrk(url: str, script: Path, conns: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(conns, 2)),
            "-c",
            str(conns),
            "-d",
            f"{seconds}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    r["requests_per_s"] = r["requests"] / r["seconds"]
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("SKIP: wrk is not installed (apt-get install wrk)")
        return
    work = Path(tempfile.mkdtemp())
    photo = work / "two_people_640x480.jpg"
    ImageOps.fit(Image.open(ROOT / "examples" / "probes" / "two_people.jpg").convert("RGB"), (640, 480)).save(
        photo
    )
    env = {
        **os.environ,
        "FACEGATE_DATA_DIR": str(work / "data"),
        "FACEGATE_SECRET_KEY": "bench-secret-key-0123456789",
        "FACEGATE_API__RATE_LIMIT": "1000000/minute",
        # The servers start in bench/: this tree's sources, whatever a relative PYTHONPATH says.
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    from facegate import Consent, Gallery, load_settings
    from facegate.api.keys import KeyStore

    os.environ.update(env)
    with Gallery.open(load_settings()) as g:
        consent = Consent("benchmark", datetime.now(UTC) + timedelta(days=1), recorded_by="bench")
        for person in sorted((ROOT / "examples" / "gallery").iterdir()):
            g.enroll(person.name.replace("_", " "), [next(person.iterdir())], consent)
        token = KeyStore(g.store).create("bench", "operator")[1]
    servers = {
        "facegate": (
            [sys.executable, "-m", "facegate.cli", "serve", "--port", "8090"],
            "http://127.0.0.1:8090",
            "/v1/identify",
            "http://127.0.0.1:8090/healthz",
        ),
        "face_recognition + FastAPI": (
            [sys.executable, "-m", "uvicorn", "peer_server:app", "--port", "8091", "--log-level", "warning"],
            "http://127.0.0.1:8091",
            "/identify",
            "http://127.0.0.1:8091/docs",
        ),
    }
    script = work / "post.lua"
    script.write_text(LUA % {"token": token, "photo": photo})
    report: dict[str, object] = {"machine": machine(), "photo": "640x480, two faces", "seconds": args.seconds}
    for name, (cmd, base, path, ready) in servers.items():
        proc = subprocess.Popen(
            cmd, env=env, cwd=Path(__file__).parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_ready(ready)
            run_wrk(base + path, script, 1, 3)  # warm-up: model loading, first allocations
            rows = {}
            for conns in (1, 4, 16):
                rows[str(conns)] = run_wrk(base + path, script, conns, args.seconds)
                print(name, conns, rows[str(conns)], flush=True)
            report[name] = rows
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api_load.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
