"""The audit trail: append-only and hash-chained, so an edited or deleted entry shows.

Each entry's hash covers its own fields and the previous entry's hash. `verify` recomputes
the chain: an edited entry breaks its own hash, a deleted one breaks the next entry's link.
Entries hold who did what to whom and how many results came back, never images or templates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from facegate.errors import AuditTampered
from facegate.gallery.audit_head import SignedHead
from facegate.gallery.crypto import TemplateCipher
from facegate.gallery.schema import AuditRow, MetaRow
from facegate.gallery.store import SqlStore

GENESIS = "0" * 64
ANCHOR_KEY = "audit_anchor"  # hash of the newest entry removed by retention: where the chain starts
AUDIT_KEY_PURPOSE = "facegate audit chain v1"
PSEUDONYM_KEY_PURPOSE = "facegate person pseudonym v1"


def digest(
    mac_key: bytes,
    prev: str,
    row_id: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    details: str,
    results: int | None,
) -> str:
    body = json.dumps(
        [
            row_id,
            at.astimezone(UTC).isoformat(timespec="microseconds"),
            actor,
            action,
            target,
            details,
            results,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    # Keyed: someone who can write to the database but lacks the secret key cannot rewrite an
    # entry and then recompute every later link.
    return hmac.new(mac_key, f"{prev}|{body}".encode(), hashlib.sha256).hexdigest()


AnchorAltered = AuditTampered


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    results: int | None
    hash: str

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "results": self.results,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    head: str  # hash of the newest entry: record it elsewhere to detect a cut-off tail
    first_bad: int | None = None
    reason: str = ""


class AuditLog:
    """Entries name people only by a keyed pseudonym: after an erasure, nothing in the trail
    leads back to the person, yet a subject access request can still find their entries."""

    def __init__(
        self,
        store: SqlStore,
        mac_key: bytes,
        pseudonym_key: bytes | None = None,
        head_file: Path | None = None,
    ) -> None:
        self.store = store
        self.mac_key = mac_key
        self._pseudonym_key = pseudonym_key or mac_key
        # The newest entry this machine wrote, MAC'd, outside the database: a cut-off tail shows.
        self.head = (
            SignedHead(head_file, mac_key, store.url.render_as_string(hide_password=True))
            if head_file is not None
            else None
        )

    @classmethod
    def under(cls, store: SqlStore, cipher: TemplateCipher, head_file: Path | None) -> AuditLog:
        """The trail as linked and pseudonymised under `cipher`'s data key."""
        return cls(store, cipher.derive(AUDIT_KEY_PURPOSE), cipher.derive(PSEUDONYM_KEY_PURPOSE), head_file)

    def pseudonym(self, person_id: str) -> str:
        return "p:" + hmac.new(self._pseudonym_key, person_id.encode(), hashlib.sha256).hexdigest()[:24]

    def seal_anchor(self, last_hash: str, last_id: int) -> str:
        """The anchor as stored: the hash and id of the newest removed entry, MAC'd, so that
        cutting entries off the front of the chain and moving the anchor shows."""
        mac = hmac.new(self.mac_key, f"anchor|{last_hash}|{last_id}".encode(), hashlib.sha256).hexdigest()
        return json.dumps({"hash": last_hash, "id": last_id, "mac": mac})

    def read_anchor(self, s: Session) -> tuple[str, int] | None:
        """(hash, id) of the anchor; None if the chain starts at its genesis. Raises if altered."""
        row = s.get(MetaRow, ANCHOR_KEY)
        if row is None:
            return None
        try:
            data = json.loads(row.value)
            last_hash, last_id, mac = str(data["hash"]), int(data["id"]), str(data["mac"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorAltered("the audit anchor is not valid") from exc
        expected = json.loads(self.seal_anchor(last_hash, last_id))["mac"]
        if not hmac.compare_digest(mac, expected):
            raise AnchorAltered("the audit anchor was altered")
        return last_hash, last_id

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        results: int | None = None,
        *,
        person: str | None = None,
        people: list[str] | None = None,
    ) -> AuditEntry:
        """Append an entry in a write transaction of its own (see `append`)."""
        with self.store.write(audit_first=True) as s:
            return self.append(s, actor, action, target, details, results, person=person, people=people)

    def append(
        self,
        s: Session,
        actor: str,
        action: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        results: int | None = None,
        *,
        person: str | None = None,
        people: list[str] | None = None,
    ) -> AuditEntry:
        """Append an entry inside the caller's write transaction (`SqlStore.write`, which checked
        the key), so that it commits (or not) with the write it records. `person`: the entry is
        about this person (stored as their pseudonym, as the target); `people`: other people it
        concerns (pseudonyms under details["people"])."""
        details = dict(details or {})
        if person is not None:
            target = self.pseudonym(person)
        if people:
            details["people"] = [self.pseudonym(p) for p in people]
        body = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
        # Two entries must never share a predecessor. PostgreSQL: one writer at a time by an
        # advisory lock. SQLite: the insert below takes the database's write lock, so the
        # predecessor read after it is final until this transaction ends.
        self.store.lock_audit_writers(s)
        row = AuditRow(
            at=datetime.now(UTC),
            actor=actor,
            action=action,
            target=target,
            details=body,
            results=results,
            prev_hash="",
            hash="",
        )
        s.add(row)
        s.flush()
        last = s.scalars(
            select(AuditRow).where(AuditRow.id < row.id).order_by(AuditRow.id.desc()).limit(1)
        ).first()
        if last is not None:
            prev = last.hash
        else:
            anchor = self.read_anchor(s)
            prev = anchor[0] if anchor is not None else GENESIS
        row.prev_hash = prev
        row.hash = digest(self.mac_key, prev, row.id, row.at, actor, action, target, body, results)
        if self.head is not None:
            head, entry_id, entry_hash = self.head, row.id, row.hash
            event.listen(s, "after_commit", lambda _s: head.advance(entry_id, entry_hash), once=True)
        return AuditEntry(row.id, row.at, actor, action, target, details, results, row.hash)

    def follow_tip(self) -> int | None:
        """Move this machine's signed head to the newest entry in the trail, whoever wrote it,
        if that entry's hash is its own (recomputed under the key); the id followed, or None.

        With several writers (replicas on other hosts) a head that covers only this machine's
        own entries would miss the others' being cut off the end: replicas call this on their
        heartbeat, so each head also covers what every other replica wrote up to a heartbeat ago.
        """
        if self.head is None:
            return None
        with self.store.session() as s:
            r = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(1)).first()
            if r is None:
                return None
            fields = (r.id, r.at, r.actor, r.action, r.target, r.details, r.results)
            ok = digest(self.mac_key, r.prev_hash, *fields) == r.hash
        if not ok:  # not one of ours: `verify` reports it; never sign a forged entry
            return None
        self.head.advance(r.id, r.hash)
        return r.id

    def entries(
        self,
        limit: int = 100,
        action: str | None = None,
        target: str | None = None,
        person: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first; `person` finds entries about a person by their pseudonym."""
        if person is not None:
            target = self.pseudonym(person)
        with self.store.session() as s:
            q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if action:
                q = q.where(AuditRow.action == action)
            if target:
                q = q.where(AuditRow.target == target)
            return [
                AuditEntry(r.id, r.at, r.actor, r.action, r.target, json.loads(r.details), r.results, r.hash)
                for r in s.scalars(q)
            ]

    def verify(self, expect: str | None = None) -> ChainCheck:
        """Recompute the chain from its anchor (the genesis, or the last entry retention removed),
        then check that it reaches the signed head and passes through `expect` (a head hash
        printed earlier and kept elsewhere): entries cut off the end show."""
        count = 0
        seen_expected = expect is None or expect == GENESIS
        with self.store.session() as s:
            try:
                anchor = self.read_anchor(s)
            except AnchorAltered as exc:
                return ChainCheck(False, 0, GENESIS, None, str(exc))
            prev, last_id = anchor if anchor is not None else (GENESIS, 0)
            seen_expected = seen_expected or prev == expect
            try:
                head = self.head.read() if self.head is not None else None
            except AuditTampered as exc:
                return ChainCheck(False, 0, GENESIS, None, str(exc))
            head_seen = head is None or head.reached_at(last_id, prev)
            for r in s.scalars(select(AuditRow).order_by(AuditRow.id).execution_options(yield_per=1000)):
                count += 1
                if r.prev_hash != prev:
                    return ChainCheck(
                        False,
                        count,
                        prev,
                        r.id,
                        f"entry {r.id} does not follow entry {last_id}: "
                        "an entry before it was deleted or altered",
                    )
                if (
                    digest(self.mac_key, prev, r.id, r.at, r.actor, r.action, r.target, r.details, r.results)
                    != r.hash
                ):
                    return ChainCheck(
                        False, count, prev, r.id, f"entry {r.id} was altered after it was written"
                    )
                prev, last_id = r.hash, r.id
                seen_expected = seen_expected or r.hash == expect
                if head is not None and r.id == head.id and r.hash != head.hash:
                    return ChainCheck(
                        False, count, prev, r.id, f"entry {r.id} is not the one the signed head names"
                    )
                head_seen = head_seen or (head is not None and head.reached_at(r.id, r.hash))
        if head is not None and not head_seen:
            return ChainCheck(
                False,
                count,
                prev,
                None,
                f"the trail ends at entry {last_id}, but entry {head.id} was written: "
                "the newest entries were deleted",
            )
        if not seen_expected:
            return ChainCheck(
                False, count, prev, None, f"the trail does not pass through the expected head {expect}"
            )
        return ChainCheck(True, count, prev)
