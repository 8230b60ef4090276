"""Small pure helpers the console's templates use: consent states and times as people read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from facegate.gallery.people import Person


def consent_state(person: Person, now: datetime | None = None, soon_days: float = 30) -> str:
    """valid, expiring soon, expired, withdrawn or none: of the most recent consent record, by
    the same rule as matching (valid means a record in force now)."""
    now = now or datetime.now(UTC)
    c = person.consent
    if person.consent_valid:
        if c is not None and c.valid_at(now) and c.expires_at - now <= timedelta(days=soon_days):
            return "expiring soon"
        return "valid"
    if c is None:
        return "none"
    if c.withdrawn_at is not None and c.withdrawn_at <= now:
        return "withdrawn"
    if c.expires_at <= now:
        return "expired"
    return "not yet valid"


def when(value: datetime | str | None) -> str:
    """A time as a person reads it: UTC, to the second."""
    if value is None:
        return ""
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
