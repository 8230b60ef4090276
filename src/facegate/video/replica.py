"""This `facegate serve` process as one of several replicas on one database: a heartbeat, the
camera leases it holds, and the audit head it keeps in step with every other replica's writes.

Each round (every `heartbeat_s`): record the heartbeat, renew the leases held, hand over any
beyond a fair share (the names over the live replicas, rounded up: replicas that joined get
theirs), take free or expired ones up to that share, and follow the audit trail's newest entry.

A lease counts as held here only until `lease_ttl_s`, less a margin, after the round that last
renewed it *began* (the monotonic clock): the database extends it from a later instant, so this
process stops speaking for a camera before anyone else can take it, whether it lost the
database, stalled or was partitioned. A replica that dies is replaced within `lease_ttl_s` plus
one heartbeat.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from facegate.events.snapshots import SnapshotStore
from facegate.gallery.audit import AuditLog
from facegate.gallery.leases import Lease, LeaseTable, SnapshotWipes
from facegate.gallery.store import SqlStore
from facegate.settings import ReplicaSettings, Settings

log = logging.getLogger(__name__)


def lease_names(settings: Settings, cameras: Sequence[str]) -> list[str]:
    """What is leased: each camera, and each door without a camera (its MQTT commands)."""
    return [*cameras, *(f"door:{d.name}" for d in settings.doors if not d.cameras)]


def door_lease(settings: Settings, door: str) -> str:
    """The lease whose holder acts for a door: its first camera's, or its own."""
    d = settings.door(door)
    return d.cameras[0] if d.cameras else f"door:{d.name}"


def leases_wanted(settings: Settings, store: SqlStore) -> bool:
    mode = settings.replica.leases
    return mode == "on" or (mode == "auto" and store.backend == "postgresql")


class Replica:
    def __init__(
        self,
        store: SqlStore,
        settings: ReplicaSettings,
        names: Sequence[str],
        *,
        on_acquired: Callable[[str], None],
        on_lost: Callable[[str], None],
        audit: AuditLog | None = None,
        snapshots: SnapshotStore | None = None,
        snapshot_days: float = 7.0,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        self.table = LeaseTable(store)
        self.settings = settings
        self.id = settings.id
        self.names = list(names)
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.audit = audit
        self.snapshots = snapshots
        self.snapshot_days = snapshot_days
        self.on_round = on_round
        self.wipes = SnapshotWipes(store)
        self.host = socket.gethostname()
        # A clock running up to 10% fast, and a round's own latency, must not outlive the lease.
        self.margin_s = max(0.5, 0.1 * settings.lease_ttl_s)
        self._held: dict[str, Lease] = {}
        self._valid_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def holds(self, name: str) -> bool:
        """Whether this replica may act for `name` now (the camera's events, the door's commands)."""
        with self._lock:
            return time.monotonic() < self._valid_until.get(name, 0.0)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def start(self) -> None:
        """One round now (cameras start before `serve` answers), then one every heartbeat."""
        self.round()
        self._thread = threading.Thread(target=self._loop, name="replica:heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            self.round()

    def round(self) -> None:
        began = time.monotonic()
        self.rounds += 1
        # Each step on its own: the database away fails the heartbeat, yet what is held is kept
        # until it runs out (`_drop_expired`), and the other steps still run.
        steps: list[tuple[str, Callable[[], object]]] = [
            ("heartbeat failed", lambda: self._renew_and_take(began)),
            ("could not drop expired leases", self._drop_expired),
            ("could not check for snapshots to wipe", self._wipe_handed_over),
        ]
        if self.on_round is not None:
            steps.append(("the round's hook failed", self.on_round))
        if self.audit is not None:
            steps.append(("could not follow the audit trail's head", self.audit.follow_tip))
        for what, step in steps:
            try:
                step()
            except Exception as exc:
                log.warning("replica %s: %s: %s", self.id, what, exc)

    def _renew_and_take(self, began: float) -> None:
        ttl = self.settings.lease_ttl_s
        self.table.heartbeat(self.id, self.host)
        with self._lock:
            held = {n: lease.epoch for n, lease in self._held.items()}
        renewed = self.table.renew(held, self.id, ttl)
        for name in set(held) - renewed:
            self._lose(name, "another replica holds it now")
        with self._lock:
            for name in renewed:
                self._valid_until[name] = began + ttl - self.margin_s
        live = max(1, len(self.table.replicas(within_s=ttl)))
        share = math.ceil(len(self.names) / live)
        # More than a share (replicas joined since): hand the newest over, stopped here first.
        with self._lock:
            newest = sorted(self._held, key=lambda n: self._held[n].acquired_at, reverse=True)
        for name in newest[: max(0, len(newest) - share)]:
            self._lose(name, f"rebalancing: {live} replicas, a share is {share}")
            self.table.release([name], self.id)
        taken = self.table.leases()
        for name in self.names:
            if len(self._held) >= share:
                break
            if name in self._held or name in taken:
                continue
            lease = self.table.acquire(name, self.id, ttl)
            if lease is None:
                continue
            with self._lock:
                self._held[name] = lease
                self._valid_until[name] = began + ttl - self.margin_s
            log.info("replica %s: took %s (epoch %d)", self.id, name, lease.epoch)
            try:
                self.on_acquired(name)
            except Exception:
                log.exception("replica %s: could not start %s; giving it up", self.id, name)
                self._lose(name, "it failed to start here")
                self.table.release([name], self.id)

    def _wipe_handed_over(self) -> None:
        """Delete the snapshot files erasures elsewhere left on this disk."""
        if self.snapshots is None:
            return
        mine = [rel for rel in self.wipes.pending() if self.snapshots.delete(rel)]
        self.wipes.settle(mine)
        if mine:
            log.info("replica %s: wiped %d snapshot(s) erased through another replica", self.id, len(mine))
        if self.rounds % 600 == 1:  # now and then: rows no replica held a file for
            self.wipes.expire(datetime.now(UTC) - timedelta(days=self.snapshot_days + 1))

    def _drop_expired(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [n for n in self._held if now >= self._valid_until.get(n, 0.0)]
        for name in expired:
            self._lose(name, "its lease ran out before it could be renewed")

    def _lose(self, name: str, why: str) -> None:
        with self._lock:
            if self._held.pop(name, None) is None:
                return
            self._valid_until.pop(name, None)
        log.warning("replica %s: lost %s: %s", self.id, name, why)
        try:
            self.on_lost(name)
        except Exception:
            log.exception("replica %s: stopping %s failed", self.id, name)

    def stop(self) -> None:
        """Stop the heartbeat, stop everything held, then hand it over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.heartbeat_s + 10)
        for name in self.held():
            self._lose(name, "this replica is stopping")
        try:
            self.table.leave(self.id)
        except Exception as exc:
            log.warning("replica %s: leases not handed back (they expire by themselves): %s", self.id, exc)

    def placement(self) -> dict[str, Lease]:
        """Every unexpired lease, by name: which replica runs which camera."""
        return self.table.leases()
