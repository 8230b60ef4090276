"""The database sink: events stored for listing and filtering (and purged by retention)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from facegate.errors import PersonNotFound
from facegate.gallery.schema import EventRow, EventSubjectRow, PersonRow
from facegate.gallery.store import SqlStore, subject_events

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    camera: str
    kind: str
    person_id: str | None
    details: dict[str, Any]
    snapshot: str | None = None  # relative path of the encrypted snapshot, if one was kept

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "camera": self.camera,
            "kind": self.kind,
            "person_id": self.person_id,
            "details": self.details,
            "snapshot": self.snapshot is not None,
        }


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _readable(value: Any) -> Any:
    """`value` with every lone surrogate (JSON's `"\\ud800"`, which no answer can encode)
    replaced by U+FFFD, in keys and values at any depth."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_readable(k): _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


def _details(r: EventRow) -> dict[str, Any]:
    """A stored event's details as something every reader can answer: one row stored by an
    older version (a lone surrogate, text that is no JSON object) never breaks a listing."""
    try:
        details = json.loads(r.details)
    except ValueError:
        details = None
    if not isinstance(details, dict):
        log.warning("event %s: its stored details are not a JSON object; shown as unreadable", r.id)
        return {"unreadable": True}
    readable: dict[str, Any] = _readable(details)
    return readable


def _event(r: EventRow) -> Event:
    camera = _LONE_SURROGATE.sub("\ufffd", r.camera)
    return Event(r.id, r.at, camera, r.kind, r.person_id, _details(r), r.snapshot)


class EventStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def add(
        self,
        camera: str,
        kind: str,
        person_id: str | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
        snapshot: str | None = None,
        subjects: Sequence[str] = (),
    ) -> Event:
        """Store an event. `subjects`: enrolled people whose face it shows though it names
        nobody (`EventSubjectRow`): it is theirs for subject access and erasure, and not shown."""
        linked = sorted(set(subjects) - {person_id})
        with self.store.write() as s:
            for pid in [person_id, *linked] if person_id is not None else linked:
                # Erased (perhaps by another process) while this decision was in flight: an event
                # must not bring their id and name back after the erasure receipt said "clean".
                # The shared row lock orders this against the erasure's lock on the same row.
                q = select(PersonRow.id).where(PersonRow.id == pid).with_for_update(read=True)
                if s.execute(q).first() is None:
                    raise PersonNotFound(f"no person with id {pid}", person_id=pid)
            row = EventRow(
                at=at or datetime.now(UTC),
                camera=camera,
                kind=kind,
                person_id=person_id,
                details=json.dumps(details or {}, sort_keys=True, default=str),
                snapshot=snapshot,
            )
            s.add(row)
            s.flush()
            s.add_all(EventSubjectRow(event_id=row.id, person_id=pid) for pid in linked)
            return _event(row)

    def get(self, event_id: int) -> Event | None:
        with self.store.session() as s:
            row = s.get(EventRow, event_id)
            return _event(row) if row is not None else None

    def concerning(self, person_id: str) -> list[Event]:
        """Every event that names the person or shows their face (`subjects`), newest first:
        what their subject access holds."""
        theirs = or_(EventRow.person_id == person_id, EventRow.id.in_(subject_events(person_id)))
        q = select(EventRow).where(theirs).order_by(EventRow.at.desc(), EventRow.id.desc())
        with self.store.session() as s:
            return [_event(r) for r in s.scalars(q)]

    def list(
        self,
        *,
        camera: str | None = None,
        kind: str | None = None,
        person_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Newest first."""
        q = select(EventRow).order_by(EventRow.at.desc(), EventRow.id.desc()).limit(limit)
        for column, value in (
            (EventRow.camera, camera),
            (EventRow.kind, kind),
            (EventRow.person_id, person_id),
        ):
            if value is not None:
                q = q.where(column == value)
        if since is not None:
            q = q.where(EventRow.at >= since)
        if until is not None:
            q = q.where(EventRow.at < until)
        with self.store.session() as s:
            return [_event(r) for r in s.scalars(q)]
