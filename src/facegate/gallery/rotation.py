"""Data key rotation: every template, face image, snapshot and audit link under a new key.

Templates and face images are re-encrypted and the audit chain re-keyed in one database
transaction; snapshots are re-encrypted to side files first and swapped in after the commit,
so a failure leaves everything readable under the old key. Afterwards the old key does not
open the gallery (its key check no longer matches).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, text

from facegate.gallery.crypto import TemplateCipher
from facegate.gallery.schema import AuditRow, EventRow, PersonRow, TemplateRow
from facegate.privacy.audit import AUDIT_KEY_PURPOSE, AuditLog, digest

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery


@dataclass(frozen=True)
class Rotation:
    templates: int
    face_images: int
    snapshots: int
    audit_entries: int

    def to_dict(self) -> dict[str, int]:
        return {
            "templates": self.templates,
            "face_images": self.face_images,
            "snapshots": self.snapshots,
            "audit_entries": self.audit_entries,
        }


def rotate_data_key(gallery: Gallery, new_secret: str, *, actor: str) -> Rotation:
    old, new = gallery.cipher, TemplateCipher(new_secret)
    store = gallery.store
    old_audit = gallery.audit
    new_audit = AuditLog(store, new.derive(AUDIT_KEY_PURPOSE), new.derive("facegate person pseudonym v1"))
    root = gallery.settings.snapshots_dir
    side: list[tuple[Path, Path]] = []
    try:
        with store.session() as s:
            rels = [
                r for (r,) in s.execute(select(EventRow.snapshot).where(EventRow.snapshot.is_not(None))) if r
            ]
        for rel in rels:
            path = root / rel
            if not path.exists():
                continue
            plain = old.decrypt(path.read_bytes(), f"snapshot:{rel}")
            tmp = path.with_name(path.name + ".rotating")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(new.encrypt(plain, f"snapshot:{rel}"))
            side.append((tmp, path))
        n_templates = n_chips = n_audit = 0
        with store.session() as s, s.begin():
            if store.backend == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(4242001)"))  # no audit writes meanwhile
            for row in s.scalars(select(TemplateRow)):
                owner = f"{row.person_id}:{row.id}"
                row.embedding_ct = new.encrypt(old.decrypt(row.embedding_ct, owner), owner)
                n_templates += 1
                if row.chip_ct is not None:
                    row.chip_ct = new.encrypt(old.decrypt(row.chip_ct, owner + ":chip"), owner + ":chip")
                    n_chips += 1
            # Pseudonyms of people still enrolled follow the new key; those of erased people stay
            # as they are: nobody can link them to anyone any more.
            renamed = {
                old_audit.pseudonym(pid): new_audit.pseudonym(pid)
                for (pid,) in s.execute(select(PersonRow.id))
            }
            prev = None
            for r in s.scalars(select(AuditRow).order_by(AuditRow.id)):
                if r.target in renamed:
                    r.target = renamed[r.target]
                for a, b in renamed.items():
                    if a in r.details:
                        r.details = r.details.replace(a, b)
                prev = r.prev_hash if prev is None else prev  # the first keeps its anchor
                r.prev_hash = prev
                r.hash = digest(
                    new_audit.mac_key, prev, r.id, r.at, r.actor, r.action, r.target, r.details, r.results
                )
                prev = r.hash
                n_audit += 1
            store.replace_key_check(s, new.key_check)
    except BaseException:
        for tmp, _ in side:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in side:
        tmp.replace(path)
    gallery.cipher = new
    gallery.audit = new_audit
    result = Rotation(n_templates, n_chips, len(side), n_audit)
    new_audit.record(actor, "rotate_data_key", None, result.to_dict())
    return result
