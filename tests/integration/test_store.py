"""The store's schema and key handling on SQLite and PostgreSQL."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from facegate import Gallery, load_settings
from facegate.errors import WrongKey
from facegate.gallery.schema import Base
from facegate.gallery.store import SqlStore

from tests.conftest import BIDEN, consent

pytestmark = pytest.mark.integration


def test_migrations_create_exactly_the_mapped_schema(database_url: str) -> None:
    store = SqlStore(database_url)
    store.migrate()
    store.migrate()  # idempotent
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    store.close()
    assert diff == [], diff


def test_generated_key_file_is_private_and_required(tmp_path: Path, engine) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    assert settings.secret_key is None
    g = Gallery.open(settings, engine=engine)
    g.enroll("Joe Biden", [BIDEN], consent())
    g.close()
    key = settings.key_file
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(Gallery.open(settings, engine=engine)) == 1
    key.unlink()  # a lost key file must not be silently replaced by a new key
    with pytest.raises(WrongKey, match=r"key file .* is missing"):
        Gallery.open(settings, engine=engine)
    assert not key.exists()
