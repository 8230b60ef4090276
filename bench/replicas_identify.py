"""`/v1/identify` throughput: one `facegate serve` replica against two behind a local reverse
proxy (Debian's haproxy), on one PostgreSQL, in one run.

Rows: the replica direct; haproxy in front of that one replica (the proxy's own cost); haproxy
round-robin over two replicas. The same 640x480 photo of two people from wrk at 4 and 16
connections (`api_load.py`'s script). On a 2-core machine two replicas share the same two cores
that one replica's thread pool already uses, so this shows the proxy's cost and that replicas
are for availability and for more machines, not for more throughput on one.

    flock -x /tmp/facegate-bench.lock .venv/bin/python bench/replicas_identify.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageOps

from api_load import LUA, run_wrk, wait_ready

from common import RESULTS, ROOT, machine, pg_missing, pg_schema

HAPROXY = """
global
  maxconn 256
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend api
  bind 127.0.0.1:%(port)d
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /readyz
%(servers)s
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    args = ap.parse_args()
    for tool in ("wrk", "haproxy"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is not installed (apt-get install {tool})")
            return
    if (why := pg_missing()) is not None:
        print(f"SKIP: {why}")
        return
    with pg_schema() as url:
        measure(url, args.seconds)


def measure(url: str, seconds: int) -> None:
    work = Path(tempfile.mkdtemp())
    procs: list[subprocess.Popen[bytes]] = []
    try:
        photo = work / "two_people_640x480.jpg"
        ImageOps.fit(
            Image.open(ROOT / "examples" / "probes" / "two_people.jpg").convert("RGB"), (640, 480)
        ).save(photo)
        env = {
            **os.environ,
            "FACEGATE_DATABASE_URL": url,
            "FACEGATE_SECRET_KEY": "bench-secret-key-0123456789",
            "FACEGATE_API__RATE_LIMIT": "1000000/minute",
            "FACEGATE_API__MAX_PENDING": "64",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        from facegate import Consent, Gallery, load_settings
        from facegate.api.keys import KeyStore

        os.environ.update(env, FACEGATE_DATA_DIR=str(work / "setup"))
        with Gallery.open(load_settings()) as g:
            consent = Consent("benchmark", datetime.now(UTC) + timedelta(days=1), recorded_by="bench")
            for person in sorted((ROOT / "examples" / "gallery").iterdir()):
                g.enroll(person.name.replace("_", " "), [next(person.iterdir())], consent)
            token = KeyStore(g.store).create("bench", "operator")[1]
        script = work / "post.lua"
        script.write_text(LUA % {"token": token, "photo": photo})

        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "facegate.cli", "serve", "--port", str(port)],
                    env={
                        **env,
                        "FACEGATE_DATA_DIR": str(work / f"replica-{i}"),
                        "FACEGATE_REPLICA__ID": f"r{i}",
                    },
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}/readyz")

        def proxy(backends: list[int]) -> tuple[subprocess.Popen[bytes], int]:
            port = free_port()
            servers = "\n".join(f"  server r{i} 127.0.0.1:{p} check" for i, p in enumerate(backends))
            cfg = work / f"haproxy-{port}.cfg"
            cfg.write_text(HAPROXY % {"port": port, "servers": servers})
            p = subprocess.Popen(
                ["haproxy", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            procs.append(p)
            wait_ready(f"http://127.0.0.1:{port}/readyz")
            return p, port

        report: dict[str, object] = {
            "machine": machine(),
            "photo": "640x480, two faces",
            "seconds": seconds,
            "database": "PostgreSQL on loopback",
            "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[
                0
            ],
        }
        rows: dict[str, dict[str, dict[str, float]]] = {}
        one_proxy, one_port = proxy(ports[:1])
        targets = {
            "one replica, direct": f"http://127.0.0.1:{ports[0]}",
            "haproxy -> one replica": f"http://127.0.0.1:{one_port}",
        }
        for name, base in targets.items():
            run_wrk(base + "/v1/identify", script, 2, 3)  # warm-up
            rows[name] = {}
            for conns in (4, 16):
                rows[name][str(conns)] = run_wrk(base + "/v1/identify", script, conns, seconds)
                print(name, conns, rows[name][str(conns)], flush=True)
        one_proxy.terminate()
        _, two_port = proxy(ports)
        name = "haproxy -> two replicas"
        run_wrk(f"http://127.0.0.1:{two_port}/v1/identify", script, 2, 3)
        rows[name] = {}
        for conns in (4, 16):
            rows[name][str(conns)] = run_wrk(
                f"http://127.0.0.1:{two_port}/v1/identify", script, conns, seconds
            )
            print(name, conns, rows[name][str(conns)], flush=True)
        report["rows"] = rows
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "replicas_identify.json").write_text(json.dumps(report, indent=2) + "\n")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
