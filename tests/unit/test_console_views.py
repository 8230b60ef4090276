"""The console's consent states and the gate's view of which paths are the console's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from facegate.gallery.people import ConsentRecord, Person
from facegate.web.paths import is_console_path
from facegate.web.views import consent_state, when

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def person(expires_in_days: float | None, withdrawn: bool = False, in_force: bool = True) -> Person:
    record = None
    if expires_in_days is not None:
        record = ConsentRecord(
            purpose="door",
            expires_at=NOW + timedelta(days=expires_in_days),
            recorded_by="desk",
            given_at=NOW - timedelta(days=100),
            withdrawn_at=NOW - timedelta(days=1) if withdrawn else None,
            id=1,
            person_id="p",
        )
    return Person("p", "Ann", None, NOW, 1, record, ("*",) if in_force else ())


@pytest.mark.parametrize(
    ("p", "state"),
    [
        (person(200), "valid"),
        (person(10), "expiring soon"),
        (person(30.5), "valid"),
        (person(-1, in_force=False), "expired"),
        (person(200, withdrawn=True, in_force=False), "withdrawn"),
        (person(None, in_force=False), "none"),
    ],
)
def test_consent_states(p: Person, state: str) -> None:
    assert consent_state(p, NOW, soon_days=30) == state


def test_times_read_in_utc() -> None:
    assert when(NOW) == "2026-06-01 12:00:00 UTC"
    assert when("2026-06-01T14:00:00+02:00") == "2026-06-01 12:00:00 UTC"
    assert when(None) == "" and when("not a time") == "not a time"


def test_console_paths() -> None:
    for path in ("/", "/login", "/people", "/people/abc/photos/1.jpg", "/static/console.css", "/events/live"):
        assert is_console_path(path), path
    for path in ("/v1/people", "/metrics", "/docs", "/openapi.json", "/healthz", "/peoplex", ""):
        assert not is_console_path(path), path
