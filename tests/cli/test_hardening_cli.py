"""The CLI's part of the hardening (issue 11): admin keys in the journal, the audit trail's
checkpoint, owner-only files."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from facegate.errors import ExitCode

from tests.cli.test_cli import CONSENT, FACEGATE, Cli
from tests.conftest import OBAMA, PROBES

pytestmark = pytest.mark.cli


def _serve(cli: Cli, *extra: str) -> str:
    """Start `facegate serve`, wait until it answers, stop it; what it wrote to stderr."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [*FACEGATE, "serve", "--port", str(port), *extra],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("facegate serve did not start")
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    return stderr


def test_serve_prints_an_admin_key_only_for_an_empty_store_or_when_asked(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    first = _serve(cli)
    assert "fgk_" in first  # an empty store: the first admin key, shown once
    for key in cli.json("keys", "list")["keys"]:
        cli.json("keys", "revoke", key["id"], "--yes")
    second = _serve(cli)
    assert "fgk_" not in second and "No active API key" in second
    third = _serve(cli, "--init-admin-key")
    assert "fgk_" in third
    assert len([k for k in cli.json("keys", "list")["keys"] if k["revoked_at"] is None]) == 1


def test_audit_verify_against_a_checkpoint_kept_elsewhere(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli.json("enroll", "Barack Obama", OBAMA, *CONSENT)
    checkpoint = cli.json("audit", "verify")["head"]
    cli.json("identify", PROBES / "obama.jpg")
    assert cli.json("audit", "verify", "--expect", checkpoint)["ok"]
    # Someone with the database and the key directory empties the trail and the head file.
    with sqlite3.connect(cli.data_dir / "facegate.db") as c:
        c.execute("DELETE FROM audit_log")
    (cli.data_dir / "keys" / "audit-head.json").unlink()
    assert cli.json("audit", "verify")["ok"]  # nothing left on this machine to compare with
    check = cli.json("audit", "verify", "--expect", checkpoint, code=int(ExitCode.SECURITY))
    assert not check["ok"] and checkpoint in check["reason"]


def test_everything_the_cli_writes_is_owner_only(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli.json("enroll", "Barack Obama", OBAMA, *CONSENT)
    pid = cli.json("people", "list")["people"][0]["id"]
    cli.json("identify", PROBES / "obama.jpg", "--annotate", cli.data_dir / "annotated" / "o.jpg")
    cli.json("people", "export", pid, "--out", cli.data_dir / "exports" / "o.zip")
    cli.json("audit", "verify")
    paths = [cli.data_dir, *cli.data_dir.rglob("*")]
    assert len(paths) > 5
    open_ = [f"{p} {p.stat().st_mode & 0o777:o}" for p in paths if p.stat().st_mode & 0o077]
    assert open_ == []


# --- a wrong data directory (issue 21) ------------------------------------------------------------


READ_ONLY = (
    ("people", "list"),
    ("people", "show", "00000000-0000-0000-0000-000000000000"),
    ("consent", "list"),
    ("keys", "list"),
    ("users", "list"),
    ("audit", "verify"),
    ("audit", "list"),
    ("purge", "--dry-run"),
    ("identify", PROBES / "obama.jpg"),
    ("verify", PROBES / "obama.jpg", "--person", "00000000-0000-0000-0000-000000000000"),
)


def test_a_missing_data_directory_is_refused_not_made_into_a_new_gallery(tmp_path: Path) -> None:
    wrong = Cli(tmp_path / "no-such-dir")
    wrong.env.pop("FACEGATE_SECRET_KEY")  # the key would be made in the key file
    for args in READ_ONLY:
        r = wrong(*args)
        assert r.returncode == ExitCode.USAGE, (args, r.returncode, r.stdout, r.stderr)
        assert "no gallery at" in r.stderr and "FACEGATE_DATA_DIR" in r.stderr, (args, r.stderr)
        assert str(tmp_path / "no-such-dir") in r.stderr
        assert not (tmp_path / "no-such-dir").exists(), args  # no database, no key, no directory
    # Writes that are not enrolment refuse too: the key would land in a gallery nobody serves.
    assert wrong("keys", "create", "door", "--role", "device").returncode == ExitCode.USAGE
    assert wrong.json("people", "list", code=ExitCode.USAGE)["error"] == "no_gallery"
    assert not (tmp_path / "no-such-dir").exists()
    # An existing, empty data directory (a mounted volume without the gallery) is no gallery either.
    (tmp_path / "empty").mkdir()
    assert Cli(tmp_path / "empty")("people", "list").returncode == ExitCode.USAGE
    assert list((tmp_path / "empty").iterdir()) == []
    # `detect` draws names only where there is a gallery, and needs none (it may cache models).
    assert wrong("detect", PROBES / "obama.jpg").returncode == ExitCode.OK
    assert not (tmp_path / "no-such-dir" / "facegate.db").exists()
    assert not (tmp_path / "no-such-dir" / "keys").exists()


def test_init_enrolment_and_serve_make_a_gallery_and_say_where(tmp_path: Path) -> None:
    made = Cli(tmp_path / "a")
    made.env.pop("FACEGATE_SECRET_KEY")
    r = made("init")
    db, key = tmp_path / "a" / "facegate.db", tmp_path / "a" / "keys" / "secret.key"
    assert r.returncode == 0 and f"created a new gallery at {db}" in r.stderr and str(key) in r.stderr
    assert made.json("init") == {
        "created": False,
        "database": str(db),
        "data_dir": str(tmp_path / "a"),
        "key_file": str(key),
    }
    assert made.json("people", "list")["people"] == []
    enrolled = Cli(tmp_path / "b")
    r = enrolled("enroll", "Barack Obama", OBAMA, *CONSENT)
    assert r.returncode == 0 and f"created a new gallery at {tmp_path / 'b' / 'facegate.db'}" in r.stderr
    assert "created a new gallery" not in enrolled("enroll", "Barack Obama", OBAMA, *CONSENT).stderr
    assert f"created a new gallery at {tmp_path / 'c' / 'facegate.db'}" in _serve(Cli(tmp_path / "c"))
