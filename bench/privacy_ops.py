"""What privacy operations cost on a realistic gallery: provable erasure (delete, wipe freed pages,
look for traces) and the retention purge, on SQLite, with 2,000 people and 20,000 events.

There is no peer to compare with: `face_recognition` keeps no data, and its users' own stores
(a pickle of encodings) have no erasure to measure. Templates here are random unit vectors
(the cost does not depend on what they encode), so this needs no photos.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from common import RESULTS, machine

PEOPLE = 2000
EVENTS = 20000


def main() -> None:
    from facegate import Gallery, load_settings
    from facegate.events.store import EventStore
    from facegate.gallery.people import Consent, NewTemplate
    from facegate.privacy.erasure import erase
    from facegate.privacy.retention import purge

    with tempfile.TemporaryDirectory() as d:
        s = load_settings(data_dir=d, secret_key="bench-secret-key-0123456789abcdef")
        g = Gallery.open(s)
        consent = Consent("bench", datetime.now(UTC) + timedelta(days=30), "bench")
        rng = np.random.default_rng(0)
        ids = []
        for i in range(PEOPLE):
            v = rng.normal(size=128).astype(np.float32)
            v /= np.linalg.norm(v)
            chip = bytes(rng.integers(0, 255, 5000, dtype=np.uint8))  # the size of a face chip JPEG
            t = NewTemplate("dlib_resnet_v1", v.tobytes(), chip, f"{i:064d}", 120, 0.5, 0.9, 0.5)
            pid, _ = g.store.enrol(None, f"Person {i:04d}", None, consent, [t], g.cipher.encrypt)
            ids.append(pid)
        events = EventStore(g.store)
        now = datetime.now(UTC)
        for i in range(EVENTS):
            p = i % PEOPLE
            events.add(
                "door",
                "granted",
                ids[p],
                {"door": "front", "name": f"Person {p:04d}"},
                at=now - timedelta(days=i % 60),
            )
        g.rebuild_index()
        size_mb = (s.data_dir / "facegate.db").stat().st_size / 1e6
        times = []
        for pid in ids[:5]:
            t0 = time.perf_counter()
            receipt = erase(g, pid, actor="bench")
            times.append(time.perf_counter() - t0)
            assert receipt.clean, receipt.checks
        t0 = time.perf_counter()
        preview = purge(g, s.privacy, dry_run=True)
        dry = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = purge(g, s.privacy)
        real = time.perf_counter() - t0
        g.close()
    result = {
        "machine": machine(),
        "people": PEOPLE,
        "events": EVENTS,
        "database_mb": round(size_mb, 1),
        "erasure_seconds": [round(t, 3) for t in times],
        "erasure_median_s": round(float(np.median(times)), 3),
        "purge_dry_run_s": round(dry, 3),
        "purge_s": round(real, 3),
        "purged_events": report.events,
        "would_purge": preview.events,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "privacy_ops.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
