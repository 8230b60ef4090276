"""Provable erasure: remove everything derived from a person, then look for any trace of them.

Two steps. The deletion is one transaction: the person's rows, its audit entry and the record of
the wipe it owes (`gallery/wipes.py`). The wipe follows: snapshot files, freed pages, the trace
checks, and the receipt, written in the transaction that removes the record. A process that dies
in between (killed, or its database gone) leaves the record behind: `finish_owed` (`facegate
serve` at start-up, the retention purge) or an erasure of the same person asked again finishes it.

The receipt says what was removed and what the checks found; it names the person only by the
audit trail's keyed pseudonym, so it can be kept (and is, in the audit trail) after the person
is gone.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import PersonNotFound
from facegate.events.snapshots import snapshot_store
from facegate.gallery.leases import SnapshotWipes
from facegate.gallery.people import Deletion
from facegate.gallery.schema import ConsentRow, PersonRow, TemplateRow
from facegate.gallery.templates import open_embedding
from facegate.gallery.wipes import OwedWipe, owe, owed, settle
from facegate.privacy.traces import database_traces, file_traces, index_traces

if TYPE_CHECKING:
    from facegate.events.snapshots import SnapshotStore
    from facegate.gallery.gallery import Gallery
    from facegate.gallery.store import SqlStore


@dataclass
class ErasureReceipt:
    subject: str  # the audit pseudonym, not the person id
    at: datetime
    reason: str
    removed: dict[str, int]
    checks: dict[str, int]  # traces found after erasure, by where they were looked for: all 0
    reclaimed: str  # how the database's freed pages were wiped
    digest: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not any(self.checks.values())

    def body(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "removed": self.removed,
            "checks": self.checks,
            "clean": self.clean,
            "reclaimed": self.reclaimed,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "digest": self.digest}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErasureReceipt:
        """A receipt as `to_dict` wrote it (the audit trail keeps them so)."""
        return cls(
            subject=str(data["subject"]),
            at=datetime.fromisoformat(str(data["at"])),
            reason=str(data["reason"]),
            removed={str(k): int(v) for k, v in data["removed"].items()},
            checks={str(k): int(v) for k, v in data["checks"].items()},
            reclaimed=str(data["reclaimed"]),
            digest=str(data["digest"]),
        )


# Owed wipes this process is finishing, by (database, wipe id): a sweep (`finish_owed`) leaves
# them alone. Another process may still finish the same one: only one receipt is written.
_finishing: set[tuple[str, int]] = set()
_finishing_lock = threading.Lock()


def _claim(gallery: Gallery, wipe_id: int) -> bool:
    key = (gallery.store.url.render_as_string(hide_password=True), wipe_id)
    with _finishing_lock:
        if key in _finishing:
            return False
        _finishing.add(key)
        return True


def _release(gallery: Gallery, wipe_id: int) -> None:
    with _finishing_lock:
        _finishing.discard((gallery.store.url.render_as_string(hide_password=True), wipe_id))


def erase(gallery: Gallery, person_id: str, *, actor: str, reason: str = "request") -> ErasureReceipt:
    """Delete the person and everything derived from them; wipe, check and audit the result.

    Asked again for someone already deleted: an erasure of theirs left unfinished is finished
    now, and one that finished answers with its receipt again; `PersonNotFound` otherwise.
    """
    try:
        wipe, vectors = _plan(gallery, person_id, actor, reason)
        wipe = _delete(gallery, wipe)
    except PersonNotFound:
        again = _again(gallery, person_id)
        if again is None:
            raise
        return again
    try:
        # At once: until then the database file alone (a plain copy, a backup) still holds them.
        gallery.store.checkpoint()
        return wipe_owed(gallery, wipe, vectors)
    finally:
        _release(gallery, wipe.id)


def _plan(gallery: Gallery, person_id: str, actor: str, reason: str) -> tuple[OwedWipe, list[np.ndarray]]:
    """What the wipe will look for, read before the deletion: the person's names (those nobody
    else has), template ids and the first bytes of their ciphertexts; and the opened vectors,
    for the index check. `PersonNotFound` if absent."""
    store = gallery.store
    person = store.person(person_id)  # PersonNotFound if absent
    names = {person.name} | {c.subject_name for c in store.consents(person_id) if c.subject_name}
    # Names shared with someone else cannot be looked for: they are that person's data too.
    with store.session() as s:  # two queries, not one per enrolled person
        others = set(s.scalars(select(PersonRow.name).where(PersonRow.id != person_id)))
        others |= set(s.scalars(select(ConsentRow.subject_name).where(ConsentRow.person_id != person_id)))
        blobs = [
            (int(tid), bytes(emb), None if chip is None else bytes(chip))
            for tid, emb, chip in s.execute(
                select(TemplateRow.id, TemplateRow.embedding_ct, TemplateRow.chip_ct).where(
                    TemplateRow.person_id == person_id
                )
            )
        ]
    unique_names = sorted(n for n in names if n and n not in others)
    # In raw bytes a name is only evidence if it is not part of someone else's, and long enough
    # not to turn up by chance in binary data.
    byte_names = [n for n in unique_names if len(n) >= 4 and not any(n in o for o in others)]
    vectors = []
    for tid, emb, _ in blobs:
        try:
            vectors.append(open_embedding(gallery.cipher, person_id, tid, emb))
        except Exception:
            continue  # a template of another space or key: its id and bytes are still checked
    needles = [person_id.encode()] + [ct[:48] for _, emb, chip in blobs for ct in (emb, chip) if ct]
    wipe = OwedWipe(
        person_id=person_id,
        subject=gallery.audit.pseudonym(person_id),
        actor=actor,
        reason=reason,
        names=unique_names,
        byte_names=byte_names,
        template_ids=[tid for tid, _, _ in blobs],
        needles=[n.hex() for n in needles],
        removed={"enrolment_images": sum(1 for _, _, chip in blobs if chip)},
    )
    return wipe, vectors


def _delete(gallery: Gallery, planned: OwedWipe) -> OwedWipe:
    """The deletion, audited ("erasure") and with the record of the wipe it owes, in one
    transaction; the wipe as recorded (claimed by this process until `_release`)."""
    owing: list[OwedWipe] = []

    def also(s: Session, d: Deletion) -> None:
        removed = {
            "templates": d.templates,
            "enrolment_images": planned.removed["enrolment_images"],
            "consent_records": d.consent_records,
            "events": d.events,
            "index_entries": len(d.template_ids),
        }
        ids = sorted({*planned.template_ids, *d.template_ids})
        wipe = replace(planned, removed=removed, template_ids=ids, snapshots=[r for r in d.snapshots if r])
        wipe = replace(wipe, id=owe(s, gallery.cipher, wipe))
        _claim(gallery, wipe.id)
        owing.append(wipe)

    try:
        gallery.delete(
            planned.person_id,
            actor=planned.actor,
            action="erasure",
            details={"reason": planned.reason},
            also=also,
        )
    except BaseException:
        for w in owing:
            _release(gallery, w.id)
        raise
    return owing[0]


def delete_snapshots(store: SqlStore, snaps: SnapshotStore, rels: Sequence[str]) -> int:
    """Delete the snapshot files on this disk; a file not here may be on another replica's,
    which deletes it on its next heartbeat. How many were handed over so."""
    elsewhere = [rel for rel in rels if not snaps.delete(rel) and not (snaps.root / rel).exists()]
    return SnapshotWipes(store).hand_over(elsewhere)


def wipe_owed(gallery: Gallery, wipe: OwedWipe, vectors: Sequence[np.ndarray] = ()) -> ErasureReceipt:
    """The wipe of a committed deletion: snapshot files, freed pages, trace checks, the receipt
    (audited, "erasure_receipt", in the transaction that settles the record). If someone else
    settled it meanwhile, their receipt."""
    store = gallery.store
    snaps = snapshot_store(gallery.settings, gallery.cipher)
    handed_over = delete_snapshots(store, snaps, wipe.snapshots)
    reclaimed = store.reclaim()
    roots = [gallery.settings.data_dir]
    db_file = store.sqlite_path
    if db_file is not None and gallery.settings.data_dir not in db_file.parents:
        roots += [db_file, Path(f"{db_file}-wal")]
    left = sum(1 for rel in wipe.snapshots if (snaps.root / rel).exists())
    checks = {
        "database_rows": database_traces(gallery, wipe.person_id, wipe.names, wipe.template_ids),
        "files": file_traces(
            roots, [bytes.fromhex(n) for n in wipe.needles], [n.encode() for n in wipe.byte_names]
        ),
        "index_entries": index_traces(gallery, list(vectors), wipe.template_ids),
        "snapshots_left": left,
    }
    r = wipe.removed
    receipt = ErasureReceipt(
        subject=wipe.subject,
        at=datetime.now(UTC),
        reason=wipe.reason,
        removed={
            "templates": r["templates"],
            "enrolment_images": r["enrolment_images"],
            "consent_records": r["consent_records"],
            "events": r["events"],
            "snapshots": len(wipe.snapshots) - left - handed_over,
            "snapshots_handed_over": handed_over,
            "index_entries": r["index_entries"],
        },
        checks=checks,
        reclaimed=reclaimed,
    )
    receipt.digest = hashlib.sha256(json.dumps(receipt.body(), sort_keys=True).encode()).hexdigest()
    with store.write(audit_first=True) as s:
        settled = settle(s, wipe.id)
        if settled:
            gallery.audit.append(
                s, wipe.actor, "erasure_receipt", wipe.subject, receipt.to_dict(), r["templates"]
            )
    return receipt if settled else (stored_receipt(gallery, wipe.subject) or receipt)


def stored_receipt(gallery: Gallery, subject: str) -> ErasureReceipt | None:
    """The newest erasure receipt the audit trail keeps for a pseudonym."""
    found = gallery.audit.entries(1, action="erasure_receipt", target=subject)
    return ErasureReceipt.from_dict(found[0].details) if found else None


def _again(gallery: Gallery, person_id: str) -> ErasureReceipt | None:
    """An erasure asked again: finish the one owed for this person, or show its receipt."""
    for wipe in owed(gallery.store, gallery.cipher):
        if wipe.person_id == person_id:
            return wipe_owed(gallery, wipe)
    return stored_receipt(gallery, gallery.audit.pseudonym(person_id))


def finish_owed(gallery: Gallery) -> list[ErasureReceipt]:
    """Finish every wipe still owed (a process died after the deletion committed), except those
    this process is finishing already; their receipts."""
    done = []
    for wipe in owed(gallery.store, gallery.cipher):
        if not _claim(gallery, wipe.id):
            continue
        try:
            done.append(wipe_owed(gallery, wipe))
        finally:
            _release(gallery, wipe.id)
    return done
