"""Three real `facegate serve` replicas on one PostgreSQL with two live cameras: each camera is
decided by one replica; when the replica holding one is killed -9 another takes it over within
the lease's time, with no door event twice and no acknowledged enrolment lost; an erasure made
through one replica stops matching on the others at once."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from tests.api.test_server import Server
from tests.conftest import LFW, OBAMA, PROBES
from tests.support.mjpeg import serve_mjpeg
from tests.web.console import PASSWORD, sign_in

pytestmark = pytest.mark.api

CYCLE_S, FACE_S = 3.0, 1.2  # the scene: a resident's face for 1.2 s every 3 s, else an empty hall
TTL_S, HEARTBEAT_S = 5.0, 1.0


def _jpeg(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


@pytest.fixture
def scene() -> Iterator[list[str]]:
    """Two live MJPEG cameras on loopback, both showing the same scene by the wall clock (a live
    camera: whoever connects sees now, not a replay)."""
    import cv2

    canvas = np.full((480, 640, 3), 90, np.uint8)
    face = cv2.imread(str(PROBES / "obama.jpg"))
    h, w = face.shape[:2]
    scale = 360 / h
    face = cv2.resize(face, (int(w * scale), 360))
    shown = canvas.copy()
    x = (640 - face.shape[1]) // 2
    shown[60:420, max(0, x) : max(0, x) + min(640, face.shape[1])] = face[:, : min(640, face.shape[1])]
    frames = {True: _jpeg(shown), False: _jpeg(canvas)}

    cameras = [serve_mjpeg(lambda _i: frames[time.time() % CYCLE_S < FACE_S], 10) for _ in range(2)]
    yield [url for _, url in cameras]
    for server, _ in cameras:
        server.shutdown()


def _cameras(r: Server) -> dict[str, str | None]:
    got = httpx.get(f"{r.url}/v1/cameras", headers=r.operator, timeout=10).json()["cameras"]
    return {c["camera"]: c.get("replica") for c in got}


def _granted(r: Server) -> list[dict[str, object]]:
    got = httpx.get(
        f"{r.url}/v1/events", params={"kind": "granted", "limit": 1000}, headers=r.operator, timeout=10
    )
    assert got.status_code == 200, got.text
    return list(got.json()["events"])


def _wait(cond, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _body(name: str, photo: Path) -> dict[str, object]:
    import base64

    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    return {
        "name": name,
        "consent": {"purpose": "replica test", "recorded_by": "tests", "expires_at": expires},
        "images_base64": [base64.b64encode(photo.read_bytes()).decode()],
    }


def test_three_replicas_share_the_cameras_fail_over_and_erase_everywhere(
    tmp_path: Path, pg_url: str, scene: list[str]
) -> None:
    config = {
        "cameras": [
            {"name": name, "source": url, "fps": 5}
            for name, url in zip(("north", "south"), scene, strict=True)
        ],
        "doors": [
            {"name": f"{name}-door", "cameras": [name], "rules": [{"people": ["Resident"]}]}
            for name in ("north", "south")
        ],
        "replica": {"lease_ttl_s": TTL_S, "heartbeat_s": HEARTBEAT_S},
    }
    replicas: list[Server] = []
    for i in range(3):
        data = tmp_path / f"replica-{i}"
        data.mkdir()
        (data / "config.yaml").write_text(yaml.safe_dump(config))
        replicas.append(
            Server(
                data, database_url=pg_url, FACEGATE_REPLICA__ID=f"r{i}", FACEGATE_WEB__SECURE_COOKIES="false"
            )
        )
    subprocess.run(
        [sys.executable, "-m", "facegate.cli", "users", "create", "guard", "--role", "operator",
         "--password-stdin"],
        input=PASSWORD, env=replicas[0].env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    first = replicas[0]
    for rep in replicas:
        rep.start()
    try:
        enrolled = httpx.post(
            f"{first.url}/v1/people", json=_body("Resident", OBAMA), headers=first.admin, timeout=60
        )
        assert enrolled.status_code == 201, enrolled.text
        resident = enrolled.json()["person"]["id"]

        # Each camera on exactly one replica, and every replica agrees which.
        _wait(lambda: all(_cameras(first).values()), 20, "both cameras to be leased")
        placement = _cameras(first)
        assert all(_cameras(rep) == placement for rep in replicas), [_cameras(rep) for rep in replicas]
        assert placement["north"] != placement["south"]  # a fair share: one each
        _wait(
            lambda: {e["camera"] for e in _granted(first)} == {"north", "south"}, 30, "a grant at each door"
        )

        # Enrolments through every replica while the holder of "north" is killed -9.
        acknowledged: list[str] = []
        stop = threading.Event()
        photos = sorted(LFW.glob("*.jpg"))

        def enrol_meanwhile() -> None:
            for i in range(10_000):
                if stop.is_set():
                    return
                rep = replicas[i % 3]
                try:
                    got = httpx.post(
                        f"{rep.url}/v1/people",
                        json=_body(f"Visitor {i}", photos[i % len(photos)]),
                        headers=rep.admin,
                        timeout=30,
                    )
                except httpx.HTTPError:
                    continue  # the killed replica: never acknowledged
                if got.status_code == 201:
                    acknowledged.append(got.json()["person"]["id"])

        enroller = threading.Thread(target=enrol_meanwhile, daemon=True)
        enroller.start()
        time.sleep(2.0)
        victim = next(rep for rep in replicas if rep.env["FACEGATE_REPLICA__ID"] == placement["north"])
        survivors = [rep for rep in replicas if rep is not victim]
        victim.stop(signal.SIGKILL)

        ids = {rep.env["FACEGATE_REPLICA__ID"] for rep in survivors}
        took = _wait(lambda: _cameras(survivors[0]).get("north") in ids, 15, "north to be taken over")
        assert took <= TTL_S + 2 * HEARTBEAT_S, f"north taken over after {took:.1f} s"
        new_holder = _cameras(survivors[0])["north"]
        assert _cameras(survivors[0])["south"] == placement["south"]  # south never moved
        _wait(
            lambda: any(
                e["camera"] == "north" and e["details"]["replica"] == new_holder
                for e in _granted(survivors[0])
            ),  # type: ignore[index]
            30,
            "a grant at north from its new replica",
        )
        stop.set()
        enroller.join(60)
        print(f"north taken over {took:.2f} s after kill -9 (lease {TTL_S} s, heartbeat {HEARTBEAT_S} s)")

        # The console says which replica runs which camera.
        with httpx.Client(base_url=survivors[0].url, timeout=30) as console:
            sign_in(console, "guard")  # type: ignore[arg-type]
            page = console.get("/cameras").text
        here = survivors[0].env["FACEGATE_REPLICA__ID"]
        for holder in {new_holder, placement["south"]}:
            assert f"<dd>{holder}{' (this one)' if holder == here else ''}</dd>" in page, page

        # No acknowledged enrolment lost.
        assert acknowledged, "no enrolment was acknowledged"
        for pid in acknowledged:
            rep = survivors[len(pid) % 2]
            assert (
                httpx.get(f"{rep.url}/v1/people/{pid}", headers=rep.admin, timeout=10).status_code == 200
            ), pid

        # No door event twice: one grant per appearance of the face, whichever replica made it,
        # and each camera's grants come from one replica at a time.
        grants = sorted(_granted(survivors[0]), key=lambda e: str(e["at"]))
        by_appearance: dict[tuple[str, int], list[str]] = {}
        for e in grants:
            details = e["details"]
            assert isinstance(details, dict)
            seen = datetime.fromisoformat(str(e["at"])).timestamp() - details["latency_ms"] / 1000
            by_appearance.setdefault((str(e["camera"]), math.floor(seen / CYCLE_S)), []).append(
                details["replica"]
            )
        twice = {k: v for k, v in by_appearance.items() if len(v) > 1}
        assert not twice, f"appearances granted more than once: {twice}"
        for camera in ("north", "south"):
            order = [e["details"]["replica"] for e in grants if e["camera"] == camera]  # type: ignore[index]
            blocks = [rid for i, rid in enumerate(order) if i == 0 or order[i - 1] != rid]
            assert len(blocks) == len(set(blocks)), f"{camera}: replicas interleaved {order}"
        south = {e["details"]["replica"] for e in grants if e["camera"] == "south"}  # type: ignore[index]
        assert south == {placement["south"]}, south

        # An erasure through one replica: the others stop matching at once.
        a, b = survivors
        probe = PROBES / "obama.jpg"

        def matched(rep: Server) -> bool:
            got = httpx.post(
                f"{rep.url}/v1/identify", files={"file": probe.open("rb")}, headers=rep.operator, timeout=60
            )
            assert got.status_code == 200, got.text
            return any((f.get("person") or {}).get("person_id") == resident for f in got.json()["faces"])

        assert matched(a) and matched(b)
        dirs = [Path(rep.env["FACEGATE_DATA_DIR"]) / "snapshots" for rep in replicas]
        before = {f for d in dirs for f in d.rglob("*.enc")}  # the resident's grants
        assert {f.parents[3] for f in before} >= {dirs[replicas.index(victim)]}
        erased = httpx.delete(f"{a.url}/v1/people/{resident}", headers=a.admin, timeout=60)
        assert erased.status_code == 200, erased.text
        erased_at = time.monotonic()
        assert not matched(b)
        bound = time.monotonic() - erased_at
        assert bound <= 1.0, f"replica b still matched {bound:.2f} s after the erasure"
        print(f"erasure through one replica: no match on another {bound:.3f} s later (its next request)")
        # ... and at the doors: no grant after it (the resident's earlier events went with them).
        time.sleep(2 * CYCLE_S)
        assert _granted(a) == [] and _granted(b) == []
        # Their snapshots were on three disks: each replica wipes what it holds, the killed one
        # when it is back.
        receipt = erased.json()["receipt"]
        assert receipt["removed"]["snapshots_handed_over"] > 0, receipt
        victim.start()
        dirs = [Path(rep.env["FACEGATE_DATA_DIR"]) / "snapshots" for rep in replicas]
        _wait(
            lambda: not any(f for d in dirs for f in d.rglob("*.enc")),
            20,
            "every replica to wipe its snapshots",
        )
    finally:
        for rep in replicas:
            rep.stop()
