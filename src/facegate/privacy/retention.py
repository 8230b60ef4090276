"""Retention: how long each kind of data is kept, and the purge that enforces it.

`schedule()` is the policy as an operator can publish it; `purge()` applies it (or, with
`dry_run`, says what it would remove). `facegate serve` runs the purge periodically.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from facegate.events.snapshots import snapshot_store
from facegate.gallery.audit import ANCHOR_KEY
from facegate.gallery.people import consent_in_force
from facegate.gallery.schema import AuditRow, ConsentRow, EventRow, EventSubjectRow, MetaRow, PersonRow
from facegate.settings import PrivacySettings

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery

log = logging.getLogger(__name__)

DECISIONS = ("granted", "denied", "unknown")


@dataclass(frozen=True)
class RetentionRule:
    data: str
    where: str
    kept: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"data": self.data, "where": self.where, "kept": self.kept, "why": self.why}


def _days(n: float) -> str:
    return f"{n:g} day" + ("" if n == 1 else "s")


def schedule(p: PrivacySettings) -> list[RetentionRule]:
    """The retention schedule in force, in words."""
    return [
        RetentionRule(
            "Face templates and enrolment face images (encrypted)",
            "database: templates",
            f"while consent is in force; destroyed {_days(p.consent_grace_days)} after it expires or is "
            f"withdrawn, or {_days(p.max_inactive_days)} after the person was last recognised",
            "identification and verification for the consented purpose",
        ),
        RetentionRule(
            "Consent records",
            "database: consent_records",
            "as long as the person is enrolled; erased with them",
            "proof of consent (GDPR art. 7(1), BIPA 15(b))",
        ),
        RetentionRule(
            "Door decision events (granted, denied, unknown) and camera state events",
            "database: events",
            _days(p.event_days),
            "access history the operator configured; unknown visitors are never named",
        ),
        RetentionRule(
            "Snapshots of decisions of enrolled people (encrypted, other faces blurred)",
            "data directory: snapshots/",
            _days(p.snapshot_days),
            "reviewing a decision",
        ),
        RetentionRule(
            "Snapshots of unknown visitors (encrypted, other faces blurred; never turned into templates)",
            "data directory: snapshots/",
            _days(p.unknown_snapshot_days),
            "the doorbell notification",
        ),
        RetentionRule(
            "Audit trail (who searched, enrolled, deleted; people named by keyed pseudonyms)",
            "database: audit_log",
            _days(p.audit_days),
            "accountability (GDPR art. 5(2), 30)",
        ),
        RetentionRule(
            "Erasure receipts (counts and checks, no personal data)",
            "database: audit_log",
            _days(p.audit_days),
            "proof that erasure requests were carried out",
        ),
    ]


@dataclass
class PurgeReport:
    at: datetime
    dry_run: bool
    events: int = 0
    snapshots: int = 0
    unknown_snapshots: int = 0
    audit_entries: int = 0
    people: int = 0  # erased: consent lapsed past the grace period, or inactive too long
    orphan_files: int = 0  # snapshots no event refers to (a crash between file and row), leftovers
    receipts: list[str] = field(default_factory=list)  # erasure receipt digests

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "events": self.events,
            "snapshots": self.snapshots,
            "unknown_snapshots": self.unknown_snapshots,
            "audit_entries": self.audit_entries,
            "people": self.people,
            "orphan_files": self.orphan_files,
            "receipts": self.receipts,
        }

    @property
    def total(self) -> int:
        return (
            self.events
            + self.snapshots
            + self.unknown_snapshots
            + self.audit_entries
            + self.people
            + self.orphan_files
        )


ORPHAN_AGE_S = 3600  # younger files may belong to an event being written right now


def orphan_snapshots(gallery: Gallery, now: datetime) -> list[Path]:
    """Files under snapshots/ that no event refers to, older than an hour."""
    root = gallery.settings.snapshots_dir
    if not root.is_dir():
        return []
    with gallery.store.session() as s:
        known = {r for (r,) in s.execute(select(EventRow.snapshot).where(EventRow.snapshot.is_not(None)))}
    cutoff = now.timestamp() - ORPHAN_AGE_S
    out = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        try:
            old = path.stat().st_mtime < cutoff
        except OSError:
            continue
        if old and rel not in known:
            out.append(path)
    return out


def people_due(gallery: Gallery, p: PrivacySettings, now: datetime) -> list[str]:
    """People whose templates must go: consent lapsed past the grace, or not seen for too long."""
    due = []
    grace = timedelta(days=p.consent_grace_days)
    inactive = timedelta(days=p.max_inactive_days)
    with gallery.store.session() as s:
        people = {r.id: r for r in s.scalars(select(PersonRow))}
        consents: dict[str, list[ConsentRow]] = {}
        for c in s.scalars(select(ConsentRow)):
            consents.setdefault(c.person_id, []).append(c)
    for pid, row in people.items():
        records = consents.get(pid, [])
        if not any(consent_in_force(c.given_at, c.expires_at, c.withdrawn_at, now) for c in records):
            ended = max(
                (min(c.expires_at, c.withdrawn_at) if c.withdrawn_at else c.expires_at for c in records),
                default=row.created_at,
            )
            if ended + grace <= now:
                due.append(pid)
                continue
        last = max([row.created_at, row.last_seen_at or row.created_at, *(c.given_at for c in records)])
        if last + inactive <= now:
            due.append(pid)
    return due


def _trim_audit(s: Session, gallery: Gallery, cut: datetime, dry_run: bool) -> int:
    """Remove (or count) the audit entries older than `cut`.

    The audit trail loses its oldest entries only: the hash of the last one removed becomes the
    anchor the remaining chain is verified from.
    """
    last_old = s.scalars(
        select(AuditRow).where(AuditRow.at < cut).order_by(AuditRow.id.desc()).limit(1)
    ).first()
    if last_old is None:
        return 0
    count = int(
        s.execute(select(func.count()).select_from(AuditRow).where(AuditRow.id <= last_old.id)).scalar_one()
    )
    if not dry_run:
        sealed = gallery.audit.seal_anchor(last_old.hash, last_old.id)
        anchor = s.get(MetaRow, ANCHOR_KEY)
        if anchor is None:
            s.add(MetaRow(key=ANCHOR_KEY, value=sealed))
        else:
            anchor.value = sealed
        s.execute(delete(AuditRow).where(AuditRow.id <= last_old.id))
    return count


def purge(
    gallery: Gallery,
    p: PrivacySettings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str = "retention",
) -> PurgeReport:
    """Remove what the policy no longer allows to keep (or count it, with `dry_run`)."""
    from facegate.privacy.erasure import delete_snapshots, erase, finish_owed

    now = now or datetime.now(UTC)
    report = PurgeReport(now, dry_run)
    store = gallery.store
    snaps = snapshot_store(gallery.settings, gallery.cipher)
    files: list[str] = []
    event_cut = now - timedelta(days=p.event_days)
    snap_cut = now - timedelta(days=p.snapshot_days)
    unknown_cut = now - timedelta(days=p.unknown_snapshot_days)
    audit_cut = now - timedelta(days=p.audit_days)
    # The audit writers' lock first, then the key check: a service left on a rotated-away key
    # must not re-anchor the trail. A dry run writes nothing and takes neither.
    with store.session() if dry_run else store.write(audit_first=True) as s:
        has_snap = EventRow.snapshot.is_not(None)
        old_events = and_(EventRow.at < event_cut)
        unknown_snaps = and_(has_snap, EventRow.kind == "unknown", EventRow.at < unknown_cut, ~old_events)
        known_snaps = and_(has_snap, EventRow.kind != "unknown", EventRow.at < snap_cut, ~old_events)
        for cond, attr in ((unknown_snaps, "unknown_snapshots"), (known_snaps, "snapshots")):
            rels = [r for (r,) in s.execute(select(EventRow.snapshot).where(cond))]
            setattr(report, attr, len(rels))
            files += [r for r in rels if r]
            if not dry_run:
                s.execute(update(EventRow).where(cond).values(snapshot=None))
        rels = [r for (r,) in s.execute(select(EventRow.snapshot).where(old_events, has_snap))]
        report.snapshots += len(rels)
        files += [r for r in rels if r]
        report.events = int(
            s.execute(select(func.count()).select_from(EventRow).where(old_events)).scalar_one()
        )
        if not dry_run:
            old_ids = select(EventRow.id).where(old_events)
            s.execute(delete(EventSubjectRow).where(EventSubjectRow.event_id.in_(old_ids)))
            s.execute(delete(EventRow).where(old_events))
        report.audit_entries = _trim_audit(s, gallery, audit_cut, dry_run)
    orphans = orphan_snapshots(gallery, now)
    report.orphan_files = len(orphans)
    if not dry_run:
        delete_snapshots(store, snaps, files)  # those on other replicas' disks: theirs to delete
        for path in orphans:
            path.unlink(missing_ok=True)
    due = people_due(gallery, p, now)
    report.people = len(due)
    if not dry_run:
        for pid in due:
            receipt = erase(gallery, pid, actor=actor, reason="retention")
            report.receipts.append(receipt.digest)
        # Erasures whose process died after the deletion committed: wiped, checked, receipted.
        report.receipts += [r.digest for r in finish_owed(gallery)]
        if report.total:
            gallery.audit.record(
                actor, "purge", None, {k: v for k, v in report.to_dict().items() if k != "receipts"}
            )
    return report


class PurgeScheduler:
    """Runs `purge` every `interval_s` in a daemon thread (inside `facegate serve`)."""

    def __init__(self, gallery: Gallery, p: PrivacySettings) -> None:
        self.gallery = gallery
        self.policy = p
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention-purge", daemon=True)
        self.last: PurgeReport | None = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = purge(self.gallery, self.policy)
                if self.last.total:
                    log.info("retention purge: %s", self.last.to_dict())
            except Exception:
                log.exception("retention purge failed; will retry")
            self._stop.wait(self.policy.purge_interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
