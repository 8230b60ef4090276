"""Provable erasure: remove everything derived from a person, then look for any trace of them.

The receipt says what was removed and what the checks found; it names the person only by the
audit trail's keyed pseudonym, so it can be kept (and is, in the audit trail) after the person
is gone.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import String, Text, func, or_, select

from facegate.errors import FacegateError
from facegate.events.snapshots import snapshot_store
from facegate.gallery.schema import Base, ConsentRow, EventRow, PersonRow, TemplateRow
from facegate.gallery.templates import open_embedding
from facegate.privacy import trace_scan

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery

# Files too large to hold a person's data and too costly to scan on every erasure.
SKIP_DIRS = {"models"}


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


def _text_columns(table: Any) -> list[Any]:
    return [c for c in table.columns if isinstance(c.type, (String, Text))]


def database_traces(gallery: Gallery, person_id: str, names: list[str], template_ids: list[int]) -> int:
    """Rows that still refer to the person: their id anywhere in any text column, their name
    where names are kept, surviving template rows."""
    found = 0
    with gallery.store.session() as s:
        for table in Base.metadata.sorted_tables:
            cols = _text_columns(table)
            if not cols:
                continue
            cond = or_(*[c.contains(person_id, autoescape=True) for c in cols])
            found += int(s.execute(select(func.count()).select_from(table).where(cond)).scalar_one())
        for name in names:
            # Exact matches only: erasing "Ann" must not trip over "Anna".
            in_details = json.dumps({"name": name})[1:-1]  # how events.details spells it
            for query in (
                select(func.count()).select_from(PersonRow).where(PersonRow.name == name),
                select(func.count()).select_from(ConsentRow).where(ConsentRow.subject_name == name),
                select(func.count())
                .select_from(EventRow)
                .where(EventRow.details.contains(in_details, autoescape=True)),
            ):
                found += int(s.execute(query).scalar_one())
        if template_ids:
            found += int(s.execute(select(func.count()).where(TemplateRow.id.in_(template_ids))).scalar_one())
    return found


def file_traces(roots: list[Path], needles: Sequence[bytes], plain_needles: Sequence[bytes] = ()) -> int:
    """Files under `roots` (and the roots themselves, if files) that contain a needle;
    `plain_needles` (names) are looked for only in files that are not encrypted.

    The files are read by a child process (see `trace_scan`): reading the live SQLite files
    from this one would drop its database locks.
    """
    job = {
        "roots": [str(r) for r in roots],
        "skip_dirs": sorted(SKIP_DIRS),
        "needles": [n.hex() for n in needles if n],
        "plain": [n.hex() for n in plain_needles if n],
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(Path(trace_scan.__file__))],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise FacegateError(f"the file trace check failed: {done.stderr.strip()[-500:]}")
    return int(json.loads(done.stdout)["hits"])


def index_traces(gallery: Gallery, vectors: list[np.ndarray], template_ids: list[int]) -> int:
    """Template ids still in the index, found by searching with the erased vectors themselves."""
    if not vectors or len(gallery.index) == 0:
        return 0
    _, ids = gallery.index.search(np.stack(vectors), min(len(gallery.index), 10))
    gone = set(template_ids)
    return sum(1 for i in ids.ravel().tolist() if i in gone) + sum(
        1 for t in template_ids if gallery.search_index.holds(t)
    )


def erase(gallery: Gallery, person_id: str, *, actor: str, reason: str = "request") -> ErasureReceipt:
    """Delete the person and everything derived from them; check and audit the result."""
    store = gallery.store
    person = store.person(person_id)  # PersonNotFound if absent
    subject = gallery.audit.pseudonym(person_id)
    names = {person.name} | {c.subject_name for c in store.consents(person_id) if c.subject_name}
    # Names shared with someone else cannot be looked for: they are that person's data too.
    with store.session() as s:  # two queries, not one per enrolled person
        others = set(s.scalars(select(PersonRow.name).where(PersonRow.id != person_id)))
        others |= set(s.scalars(select(ConsentRow.subject_name).where(ConsentRow.person_id != person_id)))
    unique_names = sorted(n for n in names if n and n not in others)
    # In raw bytes a name is only evidence if it is not part of someone else's, and long enough
    # not to turn up by chance in binary data.
    byte_names = [n for n in unique_names if len(n) >= 4 and not any(n in o for o in others)]
    with store.session() as s:
        blobs = [
            (tid, emb, chip)
            for tid, emb, chip in s.execute(
                select(TemplateRow.id, TemplateRow.embedding_ct, TemplateRow.chip_ct).where(
                    TemplateRow.person_id == person_id
                )
            )
        ]
    vectors = []
    for tid, emb, _ in blobs:
        try:
            vectors.append(open_embedding(gallery.cipher, person_id, tid, emb))
        except Exception:
            continue  # a template of another space or key: its id and bytes are still checked
    # Audited in the deletion's own transaction; the receipt follows once the checks are done.
    deletion = gallery.delete(person_id, actor=actor, action="erasure", details={"reason": reason})
    snapshot_paths = deletion.snapshots  # read inside the deletion's transaction
    snaps = snapshot_store(gallery.settings, gallery.cipher)
    removed_snapshots = sum(1 for rel in snapshot_paths if rel and snaps.delete(rel))
    reclaimed = store.reclaim()
    template_ids = [tid for tid, _, _ in blobs]
    byte_needles = [person_id.encode()]
    for _, emb, chip in blobs:
        byte_needles.append(bytes(emb)[:48])
        if chip:
            byte_needles.append(bytes(chip)[:48])
    roots = [gallery.settings.data_dir]
    db_file = store.sqlite_path
    if db_file is not None and gallery.settings.data_dir not in db_file.parents:
        roots += [db_file, Path(f"{db_file}-wal")]
    checks = {
        "database_rows": database_traces(gallery, person_id, unique_names, template_ids),
        "files": file_traces(roots, byte_needles, [n.encode() for n in byte_names]),
        "index_entries": index_traces(gallery, vectors, template_ids),
        "snapshots_left": sum(1 for rel in snapshot_paths if rel and (snaps.root / rel).exists()),
    }
    receipt = ErasureReceipt(
        subject=subject,
        at=datetime.now(UTC),
        reason=reason,
        removed={
            "templates": deletion.templates,
            "enrolment_images": sum(1 for _, _, chip in blobs if chip),
            "consent_records": deletion.consent_records,
            "events": deletion.events,
            "snapshots": removed_snapshots,
            "index_entries": len(deletion.template_ids),
        },
        checks=checks,
        reclaimed=reclaimed,
    )
    receipt.digest = hashlib.sha256(json.dumps(receipt.body(), sort_keys=True).encode()).hexdigest()
    gallery.audit.record(
        actor, "erasure_receipt", None, receipt.to_dict(), deletion.templates, person=person_id
    )
    return receipt
