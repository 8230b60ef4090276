"""Replicas and leases in the database: which `facegate serve` process is alive, and which one
runs each camera.

Every time is the database's clock (seconds since the epoch), never a replica's own: replicas
on several hosts then agree on when a lease expired however their clocks drift. A lease changes
holder only once it has expired, and each change bumps its `epoch`, so a holder can tell it was
replaced even if its old lease and a new one carry the same replica name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from facegate.gallery.schema import LeaseRow, ReplicaRow, SnapshotWipeRow
from facegate.gallery.store import SqlStore


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    epoch: int
    acquired_at: float
    expires_at: float


@dataclass(frozen=True)
class ReplicaSeen:
    id: str
    host: str
    started_at: float
    seen_at: float


class LeaseTable:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def _now(self, s: Session) -> float:
        """The database's clock, in seconds since the epoch."""
        expr: ColumnElement[Any]
        if self.store.backend == "postgresql":
            expr = func.extract("epoch", func.clock_timestamp())
        else:  # SQLite: julianday('now') has millisecond precision
            expr = (func.julianday("now") - literal_column("2440587.5")) * literal_column("86400.0")
        return float(s.execute(select(expr)).scalar_one())

    def _upsert(self, table: type[ReplicaRow] | type[LeaseRow]):  # type: ignore[no-untyped-def]
        dialect = postgresql if self.store.backend == "postgresql" else sqlite
        return dialect.insert(table)

    def heartbeat(self, replica: str, host: str) -> None:
        """Record that `replica` is alive now."""
        with self.store.session() as s, s.begin():
            now = self._now(s)
            ins = self._upsert(ReplicaRow).values(id=replica, host=host, started_at=now, seen_at=now)
            s.execute(ins.on_conflict_do_update(index_elements=[ReplicaRow.id], set_={"seen_at": now}))

    def replicas(self, within_s: float | None = None) -> list[ReplicaSeen]:
        """Replicas seen (within the last `within_s` seconds), oldest first."""
        with self.store.session() as s:
            q = select(ReplicaRow).order_by(ReplicaRow.started_at, ReplicaRow.id)
            if within_s is not None:
                q = q.where(ReplicaRow.seen_at >= self._now(s) - within_s)
            return [ReplicaSeen(r.id, r.host, r.started_at, r.seen_at) for r in s.scalars(q)]

    def leave(self, replica: str) -> None:
        """A replica that stops: its heartbeat row and its leases go (others take them at once)."""
        with self.store.session() as s, s.begin():
            s.execute(update(LeaseRow).where(LeaseRow.holder == replica).values(expires_at=0.0))
            s.execute(delete(ReplicaRow).where(ReplicaRow.id == replica))

    def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take `name` if nobody holds it or its lease expired; the new lease, or None."""
        with self.store.session() as s, s.begin():
            now = self._now(s)
            ins = self._upsert(LeaseRow).values(
                name=name, holder=holder, epoch=1, acquired_at=now, expires_at=now + ttl_s
            )
            row = s.execute(
                ins.on_conflict_do_update(
                    index_elements=[LeaseRow.name],
                    set_={
                        "holder": holder,
                        "epoch": LeaseRow.epoch + 1,
                        "acquired_at": now,
                        "expires_at": now + ttl_s,
                    },
                    where=LeaseRow.expires_at < now,
                ).returning(LeaseRow.epoch)
            ).first()  # no row: the conflict's update did not apply (someone holds it)
            return None if row is None else Lease(name, holder, int(row[0]), now, now + ttl_s)

    def renew(self, held: dict[str, int], holder: str, ttl_s: float) -> set[str]:
        """Extend the leases `holder` still holds (name -> epoch, unexpired); the names renewed."""
        if not held:
            return set()
        with self.store.session() as s, s.begin():
            now = self._now(s)
            rows = s.execute(
                update(LeaseRow)
                .where(LeaseRow.holder == holder, LeaseRow.name.in_(held), LeaseRow.expires_at >= now)
                .values(expires_at=now + ttl_s)
                .returning(LeaseRow.name, LeaseRow.epoch)
            ).all()
            return {name for name, epoch in rows if held.get(name) == epoch}

    def release(self, names: list[str], holder: str) -> None:
        """Give leases up now (a camera stopped here): another replica may take them at once."""
        if names:
            with self.store.session() as s, s.begin():
                s.execute(
                    update(LeaseRow)
                    .where(LeaseRow.holder == holder, LeaseRow.name.in_(names))
                    .values(expires_at=0.0)
                )

    def leases(self) -> dict[str, Lease]:
        """Every unexpired lease, by name."""
        with self.store.session() as s:
            q = select(LeaseRow).where(LeaseRow.expires_at >= self._now(s))
            return {
                r.name: Lease(r.name, r.holder, r.epoch, r.acquired_at, r.expires_at) for r in s.scalars(q)
            }


class SnapshotWipes:
    """Snapshot files to delete wherever they are: an erasure on one replica removes the events,
    and the replica whose disk holds a file deletes it (`Replica` rounds)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def hand_over(self, rels: list[str]) -> int:
        """Leave `rels` (files not on this disk) to the replicas sharing this database; how many
        were handed over (none where no replica shares it: those files are simply gone)."""
        if not rels or not LeaseTable(self.store).replicas():
            return 0
        with self.store.session() as s, s.begin():
            for rel in rels:
                s.merge(SnapshotWipeRow(rel=rel))
        return len(rels)

    def pending(self, limit: int = 500) -> list[str]:
        with self.store.session() as s:
            return list(s.scalars(select(SnapshotWipeRow.rel).order_by(SnapshotWipeRow.at).limit(limit)))

    def settle(self, rels: list[str]) -> None:
        if rels:
            with self.store.session() as s, s.begin():
                s.execute(delete(SnapshotWipeRow).where(SnapshotWipeRow.rel.in_(rels)))

    def expire(self, before: datetime) -> None:
        """Rows older than any snapshot may live: whoever held those files has purged them."""
        with self.store.session() as s, s.begin():
            s.execute(delete(SnapshotWipeRow).where(SnapshotWipeRow.at < before))
