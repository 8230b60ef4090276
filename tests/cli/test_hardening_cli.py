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
