"""Events read back by people: listed, followed live, snapshots opened. Each read is audited.

What cameras saw is personal data; whoever looks at it (an API key, someone at the command
line) leaves the same entry in the audit trail, written here rather than by each front end.
"""

from __future__ import annotations

from datetime import datetime

from facegate.errors import SnapshotNotFound
from facegate.events.snapshots import snapshot_store
from facegate.events.store import Event, EventStore
from facegate.gallery.gallery import Gallery


class EventHistory:
    def __init__(self, gallery: Gallery, events: EventStore) -> None:
        self.gallery = gallery
        self.events = events

    def list(
        self,
        *,
        actor: str,
        camera: str | None = None,
        kind: str | None = None,
        person_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """The events that match, newest first. Audited ("events_read", with how many)."""
        found = self.events.list(
            camera=camera, kind=kind, person_id=person_id, since=since, until=until, limit=limit
        )
        self.gallery.audit.record(
            actor, "events_read", None, {"camera": camera}, len(found), person=person_id
        )
        return found

    def get(self, event_id: int, *, actor: str) -> Event | None:
        """One event, if it is still kept. Audited ("events_read", 1 or 0)."""
        event = self.events.get(event_id)
        person = event.person_id if event is not None else None
        self.gallery.audit.record(
            actor, "events_read", None, {"event": event_id}, int(event is not None), person=person
        )
        return event

    def follow(self, *, actor: str, camera: str | None = None) -> None:
        """Audits that `actor` starts following events live ("events_stream"); the events
        themselves reach them through the SSE hub."""
        self.gallery.audit.record(actor, "events_stream", None, {"camera": camera})

    def snapshot(self, event_id: int, *, actor: str) -> bytes:
        """The decrypted JPEG kept for the event (`SnapshotNotFound` if none is, or no longer).
        Audited ("snapshot_read", about the event's person if known)."""
        event = self.events.get(event_id)
        if event is None or event.snapshot is None:
            raise SnapshotNotFound(f"event {event_id} has no snapshot")
        # The gallery's cipher of the moment: a key rotation replaces it.
        data = snapshot_store(self.gallery.settings, self.gallery.cipher).load(event.snapshot)
        self.gallery.audit.record(actor, "snapshot_read", None, {"event": event_id}, person=event.person_id)
        return data
