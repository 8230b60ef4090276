"""Subject access: everything facegate holds about one person, in one zip with a README."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from facegate.errors import ConfigError, FacegateError
from facegate.events.snapshots import SnapshotStore, snapshot_store
from facegate.events.store import Event, EventStore
from facegate.gallery.schema import AuditRow, TemplateRow
from facegate.gallery.templates import open_chip, open_embedding

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery

README = """\
What facegate holds about {name}
Exported {at} from the facegate installation that enrolled this person.

person.json     The person record: id, name, external reference, when it was created and when
                the person was last recognised.
consents.json   Every consent record: purpose, scope (doors or uses), when it was given, when it
                expires, who recorded it, the evidence reference, and any withdrawal.
templates.json  One entry per enrolled photo: when, the quality measures, and the face template
                itself (128 numbers computed from the face; stored encrypted, decrypted here).
images/         The aligned face image kept with each template (template-<id>.jpg).
events.json     Door decisions that name this person, and those that show their face without
                naming anyone (a failed head-turn challenge, a photo held up to the camera, a
                face two enrolled people resemble alike): when, which camera and door, the
                decision and its score.
snapshots/      The picture kept of such a decision, while retention keeps it (event-<id>.jpg);
                other people's faces in it are blurred.
audit.json      Entries of the audit trail that concern this person: who enrolled, searched for,
                verified, changed or exported them, and when. The trail names people by a keyed
                pseudonym ({pseudonym} for this person), never by name.

Nothing else is kept: facegate stores no photos of other people as templates, no movement
history beyond the events above, and infers nothing (no age, gender, ethnicity or emotion).
"""


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n"


def export_subject(gallery: Gallery, person_id: str, out: Path, *, actor: str) -> dict[str, int]:
    """Write the zip; returns what it contains (counts). Audited."""
    store = gallery.store
    store.person(person_id)  # PersonNotFound before anything is written
    pseudonym = gallery.audit.pseudonym(person_id)
    with store.session() as s:
        rows = list(
            s.scalars(select(TemplateRow).where(TemplateRow.person_id == person_id).order_by(TemplateRow.id))
        )
        audit_rows = [
            r
            for r in s.scalars(select(AuditRow).order_by(AuditRow.id))
            if r.target == pseudonym or pseudonym in r.details
        ]
    events = EventStore(store).concerning(person_id)
    snaps = snapshot_store(gallery.settings, gallery.cipher)
    counts = {
        "consents": len(store.consents(person_id)),
        "templates": len(rows),
        "images": 0,
        "events": len(events),
        "snapshots": 0,
    }
    # Plaintext biometric data: owner-only, written under a temporary name, renamed when complete.
    tmp = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            _write(zf, gallery, person_id, pseudonym, rows, audit_rows, events, snaps, counts)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    gallery.audit.record(actor, "subject_export", None, counts, None, person=person_id)
    return counts


def _write(
    zf: zipfile.ZipFile,
    gallery: Gallery,
    person_id: str,
    pseudonym: str,
    rows: list[TemplateRow],
    audit_rows: list[AuditRow],
    events: list[Event],
    snaps: SnapshotStore,
    counts: dict[str, int],
) -> None:
    store = gallery.store
    person = store.person(person_id)
    consents = store.consents(person_id)
    now = datetime.now(UTC)
    zf.writestr("README.txt", README.format(name=person.name, at=now.isoformat(), pseudonym=pseudonym))
    zf.writestr("person.json", _json({**person.to_dict(), "last_seen_at": store.last_seen(person_id)}))
    zf.writestr("consents.json", _json([{"id": c.id, **c.to_dict()} for c in consents]))
    templates = []
    for r in rows:
        entry: dict[str, Any] = {
            "id": r.id,
            "model": r.space,
            "created_at": r.created_at.isoformat(),
            "face_px": r.face_px,
            "sharpness": r.sharpness,
            "frontal": r.frontal,
            "brightness": r.brightness,
            "source_photo_sha256": r.source_sha256,
        }
        try:
            vec = open_embedding(gallery.cipher, person_id, r.id, r.embedding_ct)
            entry["template"] = [round(float(x), 6) for x in vec]
        except FacegateError:
            entry["template"] = None
        templates.append(entry)
        if r.chip_ct is not None:
            zf.writestr(f"images/template-{r.id}.jpg", open_chip(gallery.cipher, person_id, r.id, r.chip_ct))
            counts["images"] += 1
    zf.writestr("templates.json", _json(templates))
    zf.writestr("events.json", _json([e.to_dict() for e in events]))
    for e in events:
        if e.snapshot:
            try:
                zf.writestr(f"snapshots/event-{e.id}.jpg", snaps.load(e.snapshot))
                counts["snapshots"] += 1
            except FacegateError:
                pass  # expired between the query and now
    zf.writestr(
        "audit.json",
        _json(
            [
                {
                    "id": r.id,
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "details": json.loads(r.details),
                    "results": r.results,
                }
                for r in audit_rows
            ]
        ),
    )
    counts["audit_entries"] = len(audit_rows)
