"""`facegate users ...`: console users created from the command line sign in to the console."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facegate import Gallery, load_settings
from facegate.api.app import create_app
from facegate.web.users import UserStore

from tests.conftest import SECRET
from tests.web.console import sign_in

pytestmark = pytest.mark.cli


def facegate(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACEGATE_DATA_DIR": str(data_dir), "FACEGATE_SECRET_KEY": SECRET}
    env.pop("FACEGATE_DATABASE_URL", None)
    env.pop("FACEGATE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "facegate.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def test_users_create_list_disable_and_sign_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert facegate(data, "init").returncode == 0  # only enrolment, serve and init make a gallery
    r = facegate(data, "users", "create", "reception", "--role", "admin", "--password-stdin", "--json",
                 stdin="a long enough console password\n")  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    user = json.loads(r.stdout)
    assert user["name"] == "reception" and user["role"] == "admin" and "password" not in r.stdout
    # Refused: a device has no console, a short password, the same name twice.
    for args, stdin in (
        (["users", "create", "door", "--role", "device"], "a long enough console password\n"),
        (["users", "create", "short", "--role", "operator"], "short\n"),
        (["users", "create", "reception", "--role", "auditor"], "a long enough console password\n"),
    ):
        r = facegate(data, *args, "--password-stdin", "--json", stdin=stdin)
        assert r.returncode != 0 and json.loads(r.stdout)["error"], (args, r.stdout)
    # Without a terminal and without --password-stdin: a clear error, not a hang.
    r = facegate(data, "users", "create", "someone", "--json", stdin="")
    assert r.returncode != 0 and "--password-stdin" in r.stdout
    listed = json.loads(facegate(data, "users", "list", "--json").stdout)["users"]
    assert [u["name"] for u in listed] == ["reception"]

    settings = load_settings(data_dir=data, secret_key=SECRET)
    gallery = Gallery.open(settings)
    try:
        with TestClient(create_app(settings, gallery), base_url="https://testserver") as client:
            sign_in(client, "reception", "a long enough console password")
            assert client.get("/people").status_code == 200
        actions = [e.action for e in gallery.audit.entries(10)]
        assert "console_user_create" in actions and "console_sign_in" in actions
    finally:
        gallery.close()
    r = facegate(data, "users", "disable", "reception", "--yes", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["disabled_at"]
    with Gallery.open(settings) as g:
        assert UserStore(g.store).authenticate("reception", "a long enough console password") is None


def test_console_users_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", secret_key=SECRET)
    with Gallery.open(settings, database_url=pg_url) as g:
        users = UserStore(g.store)
        u = users.create("ops", "operator", "a long enough console password")
        assert users.authenticate("ops", "a long enough console password") == u
        assert users.authenticate("ops", "wrong password, long") is None
        assert users.authenticate("nobody", "a long enough console password") is None
        assert users.get(u.id) == u and [x.name for x in users.list()] == ["ops"]
