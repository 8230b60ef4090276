"""An erasure inside a running `facegate serve`, CLI commands beside it, then SIGKILL: nothing the
server acknowledged is lost, it stays healthy, and what the CLI wrote reaches it.

The erasure's trace check once read the live SQLite files with plain `open()`/`close()`, which
drops the server process's POSIX locks on them; the next CLI command then thought it was the
last user, deleted the live `-wal`/`-shm`, and later acknowledged writes vanished at the kill.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.test_server import Server, _body, photos  # noqa: F401  (photos is a fixture)

pytestmark = pytest.mark.api


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facegate.cli", *args, "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _identify(c: httpx.Client, server: Server, photo: Path) -> dict[str, object]:
    r = c.post("/v1/identify", files={"file": (photo.name, photo.read_bytes())}, headers=server.operator)
    assert r.status_code == 200, r.text
    faces: list[dict[str, object]] = r.json()["faces"]
    return faces[0]


ROUNDS = 3


def test_erasure_in_the_server_then_cli_then_sigkill_loses_nothing(
    tmp_path: Path,
    photos: list[Path],  # noqa: F811
) -> None:
    # One photo per real person: the same face enrolled under three names is rightly too crowded
    # for any of them to be told apart (each one's threshold rises above what the others score).
    photos = list({re.sub(r"_\d{4}\.jpg$", "", p.name): p for p in photos}.values())
    assert len(photos) >= 4 * ROUNDS
    data = tmp_path / "data"
    server = Server(data)
    server.start()
    db = data / "facegate.db"
    kept: dict[str, str] = {}  # acknowledged and never erased: id -> name
    erased: list[str] = []
    withdrawn: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            for r in range(ROUNDS):
                ids = []
                for j in range(3):
                    res = c.post(
                        "/v1/people", json=_body(f"r{r}-p{j}", photos[3 * r + j]), headers=server.admin
                    )
                    assert res.status_code == 201, res.text
                    ids.append(res.json()["person"]["id"])
                gone, keep, withdraw = ids
                res = c.delete(f"/v1/people/{gone}", headers=server.admin)
                assert res.status_code == 200, res.text
                assert res.json()["receipt"]["clean"] is True
                erased.append(gone)
                # A CLI command that opens and closes the database beside the server.
                listed = _cli(server, "people", "list")
                assert listed.returncode == 0, listed.stderr
                assert gone not in listed.stdout
                assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists(), (
                    "the CLI deleted the live write-ahead log of the running server"
                )
                # A write by the server after the CLI closed: acknowledged, so it must survive the kill.
                late = c.post(
                    "/v1/people", json=_body(f"r{r}-late", photos[3 * ROUNDS + r]), headers=server.admin
                )
                assert late.status_code == 201, late.text
                kept[late.json()["person"]["id"]] = f"r{r}-late"
                kept[keep] = f"r{r}-p1"
                # A withdrawal made by the CLI takes effect in the server at once.
                w = _cli(server, "consent", "withdraw", withdraw, "--yes")
                assert w.returncode == 0, w.stderr
                withdrawn.append(withdraw)
                kept[withdraw] = f"r{r}-p2"
                face = _identify(c, server, photos[3 * r + 2])
                assert face["decision"] == "unknown", face
                assert c.get("/readyz").status_code == 200
                assert c.get("/v1/people", headers=server.admin).status_code == 200
        server.stop(signal.SIGKILL)
        server.start()
        with httpx.Client(base_url=server.url, timeout=120) as c:
            people = c.get("/v1/people", headers=server.admin)
            assert people.status_code == 200, people.text
            found = {p["id"]: p["name"] for p in people.json()["people"]}
            assert found == kept, "an acknowledged enrolment was lost, or an erased person came back"
            for pid in withdrawn:
                assert found[pid] and not [
                    x for x in people.json()["people"] if x["id"] == pid and x["consent"]["valid"]
                ]
            check = c.get("/v1/audit/verify", headers=server.auditor).json()
            assert check["ok"], check
            # Every acknowledged enrolment and erasure is in the trail.
            enrolments = _cli(server, "audit", "list", "--action", "enrol", "--limit", "1000")
            assert len(json.loads(enrolments.stdout)["entries"]) == 3 * ROUNDS + ROUNDS
            erasures = _cli(server, "audit", "list", "--action", "erasure", "--limit", "1000")
            assert len(json.loads(erasures.stdout)["entries"]) == ROUNDS
            late = photos[3 * ROUNDS]
            face = _identify(c, server, late)
            assert face["decision"] == "match", json.dumps(face)
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert "disk I/O error" not in log and "database disk image is malformed" not in log, log[-2000:]
