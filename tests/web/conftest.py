"""The console's site fixture: an app over HTTPS with one console user per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facegate import Gallery
from facegate.api.app import create_app
from facegate.web.users import UserStore

from tests.web.console import PASSWORD, ROLES


@pytest.fixture
def site(settings, engine, tmp_path: Path) -> Iterator[tuple[TestClient, Gallery]]:  # type: ignore[no-untyped-def]
    gallery = Gallery.open(settings, engine=engine, database_url=f"sqlite:///{tmp_path / 'g.db'}")
    users = UserStore(gallery.store)
    for role in ROLES:
        users.create(role, role, PASSWORD)
    # https: the session cookie is Secure, so a client only sends it back over TLS (or localhost).
    with TestClient(create_app(settings, gallery), base_url="https://testserver") as client:
        yield client, gallery
    gallery.close()
