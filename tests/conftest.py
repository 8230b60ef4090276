"""Shared fixtures: real photos, one face engine per run, galleries on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GALLERY_PHOTOS = EXAMPLES / "gallery"
PROBES = EXAMPLES / "probes"
LFW = ROOT / "tests" / "data" / "lfw"
HARD = ROOT / "tests" / "data" / "hard"
SHARED = Path(os.environ.get("FACEGATE_SHARED", ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("FACEGATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECRET = "test-secret-key-0123456789abcdef"

OBAMA = GALLERY_PHOTOS / "Barack_Obama" / "obama2.jpg"
BIDEN = GALLERY_PHOTOS / "Joe_Biden" / "biden2.jpg"
ALEX = GALLERY_PHOTOS / "Alex_Lacamoire" / "alex-lacamoire.png"
LIN = GALLERY_PHOTOS / "Lin-Manuel_Miranda" / "lin-manuel-miranda.png"


def need(reason_missing: str | None) -> None:
    """Skip with a reason, except under CI=true where a missing service is a failure."""
    if reason_missing is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason_missing}")
    pytest.skip(reason_missing)


def consent(days: int = 365, **kw: object) -> object:
    from facegate import Consent

    return Consent(
        purpose=str(kw.pop("purpose", "door access")),
        expires_at=datetime.now(UTC) + timedelta(days=days),
        recorded_by=str(kw.pop("recorded_by", "test reception")),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("facegate-data")


@pytest.fixture(scope="session")
def engine(models_dir: Path):  # type: ignore[no-untyped-def]
    from facegate import FaceEngine, load_settings

    return FaceEngine(load_settings(data_dir=models_dir))


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    from facegate import load_settings

    return load_settings(data_dir=tmp_path / "data", secret_key=SECRET)


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} is not reachable ({exc.__class__.__name__}: {exc})"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL database, dropped afterwards."""
    need(_pg_available())
    import psycopg

    schema = f"fg_test_{uuid.uuid4().hex[:12]}"
    raw = PG_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(raw, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(raw, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gallery.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def gallery(settings, engine, database_url):  # type: ignore[no-untyped-def]
    from facegate import Gallery

    g = Gallery.open(settings, engine=engine, database_url=database_url)
    yield g
    g.close()
