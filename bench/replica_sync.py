"""What another replica's write costs this one: the full reload of the gallery (what every
change cost before replicas) against catching up with only what changed, by gallery size, on
PostgreSQL; and the memory a replica's index holds per template.

Templates are random unit vectors of the engine's space (the cost does not depend on what they
encode), so this needs no photos.

    flock -x /tmp/facegate-bench.lock .venv/bin/python bench/replica_sync.py [--sizes 1000,10000,30000]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from common import RESULTS, machine, pg_missing, pg_schema


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,30000")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    if (why := pg_missing()) is not None:
        print(f"SKIP: {why}")
        return
    from facegate import Gallery, load_settings
    from facegate.gallery.people import Consent, NewTemplate

    rows = []
    with pg_schema() as url, tempfile.TemporaryDirectory() as d:
        s = load_settings(data_dir=d, secret_key="bench-secret-key-0123456789abcdef", database_url=url)
        writer = Gallery.open(s)
        reader = Gallery.open(s)  # the other replica
        space = writer.space
        consent = Consent("bench", datetime.now(UTC) + timedelta(days=30), "bench")
        rng = np.random.default_rng(0)
        dim = 128 if "sface" in space or "dlib" in space else 512
        enrolled = 0

        def enrol_one(i: int) -> None:
            v = rng.normal(size=dim).astype(np.float32)
            v /= np.linalg.norm(v)
            t = NewTemplate(space, v.tobytes(), None, f"{i:064d}", 120, 0.5, 0.9, 0.5)
            writer.store.enrol(None, f"Person {i:06d}", None, consent, [t], writer.cipher.encrypt)

        for size in sizes:
            t0 = time.perf_counter()
            while enrolled < size:
                enrol_one(enrolled)
                enrolled += 1
            print(f"{size} templates enrolled ({time.perf_counter() - t0:.0f} s)", flush=True)
            before = rss_mb()
            full = []
            for _ in range(3):
                t0 = time.perf_counter()
                reader.rebuild_index()
                full.append(time.perf_counter() - t0)
            held_mb = rss_mb() - before
            catch = []
            for _ in range(5):
                enrol_one(enrolled)  # another replica's enrolment...
                enrolled += 1
                t0 = time.perf_counter()
                reader.sync()  # ...seen at this one's next search
                catch.append(time.perf_counter() - t0)
            row = {
                "templates": len(reader.search_index.index),
                "full_reload_s": round(statistics.median(full), 3),
                "catch_up_s": round(statistics.median(catch), 4),
                "speedup": round(statistics.median(full) / statistics.median(catch), 1),
                "rss_growth_mb_first_load": round(held_mb, 1),
            }
            rows.append(row)
            print(row, flush=True)
        writer.close()
        reader.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "database": "PostgreSQL 15 on loopback", "space": space, "rows": rows}
    (RESULTS / "replica_sync.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
