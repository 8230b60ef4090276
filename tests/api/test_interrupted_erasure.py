"""An erasure whose `facegate serve` dies right after the deletion commits, before the wipe (the
wipe step replaced by `os._exit(137)`, tests/support/die_at_wipe.py), on SQLite and PostgreSQL.

What a user saw before: no receipt ever; the wipe never resumed; the DELETE asked again answered
404; and the SQLite database file copied without its write-ahead log (a plain file backup) held
the erased person as a live row with their template and name.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api.test_erasure_server import _cli
from tests.api.test_server import Server, _body
from tests.conftest import BIDEN, OBAMA, ROOT

pytestmark = pytest.mark.api

DIE_AT_WIPE = str(ROOT / "tests" / "support" / "die_at_wipe.py")
NAME = "Wanda Erasable-Quist"  # a name found nowhere else, to look for in raw bytes


def _rows(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql), params)]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("backend", "resumed_by"),
    [
        ("sqlite", "retried delete"),
        ("sqlite", "start-up"),
        ("postgresql", "retried delete"),
        ("postgresql", "start-up"),
    ],
)
def test_an_erasure_killed_before_its_wipe_is_finished_with_one_receipt(
    backend: str, resumed_by: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    db = data / "facegate.db"
    url = f"sqlite:///{db}" if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    server = Server(data, None if backend == "sqlite" else url)
    server.start(launcher=(DIE_AT_WIPE,))
    try:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            gone = c.post("/v1/people", json=_body(NAME, OBAMA), headers=server.admin)
            kept = c.post("/v1/people", json=_body("Kept Person", BIDEN), headers=server.admin)
            assert gone.status_code == 201 and kept.status_code == 201, (gone.text, kept.text)
            pid, kept_id = gone.json()["person"]["id"], kept.json()["person"]["id"]
            blobs = [
                bytes(b)[:48]
                for row in _rows(
                    url, "SELECT embedding_ct, chip_ct FROM templates WHERE person_id = :p", p=pid
                )
                for b in row
                if b
            ]
            assert blobs
            if backend == "sqlite":
                # As any earlier checkpoint would have: the enrolment is in the file itself now.
                with closing(sqlite3.connect(db)) as raw:
                    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                assert NAME.encode() in db.read_bytes()
            with pytest.raises(httpx.HTTPError):
                c.delete(f"/v1/people/{pid}", headers=server.admin)  # the server dies answering it
        assert server.proc is not None and server.proc.wait(timeout=60) == 137
        if backend == "sqlite":
            # Before anything opens the database again (the last connection to close checkpoints).
            copy = tmp_path / "backup.db"
            shutil.copyfile(db, copy)
        # Killed at the exact step: the deletion and its audit entry committed, no receipt.
        actions = [a for (a,) in _rows(url, "SELECT action FROM audit_log WHERE action LIKE 'erasure%'")]
        assert actions == ["erasure"]
        assert _rows(url, "SELECT id FROM people WHERE id = :p", p=pid) == []
        if backend == "sqlite":
            # The copy of the database file without its write-ahead log, as a plain backup is.
            raw_bytes = copy.read_bytes()
            left = [n for n in (pid.encode(), NAME.encode(), *blobs) if n in raw_bytes]
            assert not left, "the database file alone still holds the erased person"
            with closing(sqlite3.connect(copy)) as backup:
                assert backup.execute("SELECT count(*) FROM people WHERE id = ?", (pid,)).fetchone() == (0,)
                assert backup.execute(
                    "SELECT count(*) FROM templates WHERE person_id = ?", (pid,)
                ).fetchone() == (0,)

        first: dict[str, object] | None = None
        if resumed_by == "retried delete":
            # Asked again from the command line (no server running): the wipe is finished now.
            again = _cli(server, "people", "delete", pid, "--yes")
            assert again.returncode == 0, again.stdout + again.stderr
            first = json.loads(again.stdout)["receipt"]
        server.start()  # the normal command; at start-up it finishes what is still owed
        receipts = [
            json.loads(str(d))
            for (d,) in _rows(url, "SELECT details FROM audit_log WHERE action = 'erasure_receipt'")
        ]
        assert len(receipts) == 1, receipts
        with httpx.Client(base_url=server.url, timeout=120) as c:
            r = c.delete(f"/v1/people/{pid}", headers=server.admin)
            assert r.status_code == 200, r.text
            receipt = r.json()["receipt"]
            assert receipt == receipts[0] and (first is None or first == receipt)
            assert receipt["clean"] is True and receipt["checks"] == {
                "database_rows": 0,
                "files": 0,
                "index_entries": 0,
                "snapshots_left": 0,
            }
            assert receipt["removed"]["templates"] == 1 and receipt["removed"]["consent_records"] == 1
            assert receipt["subject"].startswith("p:") and pid not in json.dumps(receipt)
            people = c.get("/v1/people", headers=server.admin).json()["people"]
            assert [p["id"] for p in people] == [kept_id]
            assert c.get("/v1/audit/verify", headers=server.auditor).json()["ok"]
            # Someone never enrolled is still not found.
            assert c.delete("/v1/people/no-such-person", headers=server.admin).status_code == 404
        assert len(_rows(url, "SELECT id FROM audit_log WHERE action = 'erasure_receipt'")) == 1
        if backend == "sqlite":
            for f in data.glob("facegate.db*"):
                raw_bytes = f.read_bytes()
                assert not [n for n in (pid.encode(), NAME.encode(), *blobs) if n in raw_bytes], f.name
    finally:
        server.stop()
