"""Data key rotation: every template, face image, snapshot, owed wipe and audit link under a new key.

Templates and face images are re-encrypted and the audit chain re-keyed in one database
transaction; snapshots are re-encrypted to side files first and swapped in after the commit,
so a failure leaves everything readable under the old key. Afterwards the old key does not
open the gallery (its key check no longer matches).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import AuditTampered
from facegate.gallery.audit import (
    ANCHOR_KEY,
    GENESIS,
    AuditLog,
    digest,
)
from facegate.gallery.crypto import TemplateCipher, new_secret, write_key_file
from facegate.gallery.schema import AuditRow, EventRow, MetaRow, PersonRow, TemplateRow
from facegate.gallery.templates import reseal
from facegate.gallery.wipes import reseal_owed

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class NewKey:
    secret: str
    key_file: Path | None  # where it now is; None: it came from FACEGATE_SECRET_KEY, keep it yourself


def rotate_to_new_key(
    gallery: Gallery, *, actor: str, committed: Callable[[NewKey], None] | None = None
) -> tuple[Rotation, NewKey]:
    """Rotate to a fresh random key, kept where the old one was.

    A key from the key file: the new key is written (and synced) beside it before any data
    changes, and moved over it the moment the data opens only with the new key, so a crash can
    lose the swap, not the key. A key from FACEGATE_SECRET_KEY: the caller must keep the new
    one; `committed` runs at that moment (e.g. to show it) before anything else can fail.
    """
    settings = gallery.settings
    key = NewKey(new_secret(), None if settings.secret_key is not None else settings.key_file)
    pending = None
    if key.key_file is not None:
        pending = key.key_file.with_name(key.key_file.name + ".new")
        write_key_file(pending, key.secret)
    done = False

    def swap() -> None:
        # The data now opens only with the new key: put it in place before anything else.
        nonlocal done
        done = True
        if pending is not None and key.key_file is not None:
            os.replace(pending, key.key_file)
        if committed is not None:
            committed(key)

    try:
        result = rotate_data_key(gallery, key.secret, actor=actor, committed=swap)
    except BaseException:
        if pending is not None and not done:
            pending.unlink(missing_ok=True)
        raise
    return result, key


def _reencrypt_snapshots(
    s: Session, root: Path, old: TemplateCipher, new: TemplateCipher, side: list[tuple[Path, Path]]
) -> None:
    """Write each snapshot under the new key to a side file; `side` gets (side file, snapshot)
    as each is written, so a failure can remove them all."""
    # Snapshots listed under the lock: no event (and no snapshot of it) can be added now.
    rels = [r for (r,) in s.execute(select(EventRow.snapshot).where(EventRow.snapshot.is_not(None))) if r]
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


def _reencrypt_templates(s: Session, old: TemplateCipher, new: TemplateCipher) -> tuple[int, int]:
    """Templates and face images under the new key; returns how many of each."""
    n_templates = n_chips = 0
    for row in s.scalars(select(TemplateRow)):
        if reseal(row, old, new):
            n_chips += 1
        n_templates += 1
    return n_templates, n_chips


def _rekey_audit(s: Session, old_audit: AuditLog, new_audit: AuditLog) -> tuple[int, tuple[str, int] | None]:
    """Check every link of the chain under the old key, and that it reaches the signed head,
    then re-link it under the new one. Returns how many entries, and the new (hash, id) of the
    newest (the anchor's, if none is left)."""
    old_head = old_audit.head.read() if old_audit.head is not None else None
    # Pseudonyms of people still enrolled follow the new key; those of erased people stay
    # as they are: nobody can link them to anyone any more.
    renamed = {
        old_audit.pseudonym(pid): new_audit.pseudonym(pid) for (pid,) in s.execute(select(PersonRow.id))
    }
    anchor = old_audit.read_anchor(s)
    prev = anchor[0] if anchor is not None else GENESIS
    new_prev_hash = prev  # the first entry keeps its link to the anchor
    n_audit = 0
    last: tuple[str, int] | None = anchor
    head_seen = old_head is None or (anchor is not None and old_head.reached_at(anchor[1], anchor[0]))
    for r in s.scalars(select(AuditRow).order_by(AuditRow.id)):
        # Re-keying would also bless any edit made so far: check each link first.
        old_hash = digest(
            old_audit.mac_key, prev, r.id, r.at, r.actor, r.action, r.target, r.details, r.results
        )
        if r.prev_hash != prev or old_hash != r.hash:
            raise AuditTampered(f"audit entry {r.id} does not verify: not rotating over a tampered trail")
        if r.target in renamed:
            r.target = renamed[r.target]
        for a, b in renamed.items():
            if a in r.details:
                r.details = r.details.replace(a, b)
        new_prev = new_prev_hash
        new_prev_hash = digest(
            new_audit.mac_key, new_prev, r.id, r.at, r.actor, r.action, r.target, r.details, r.results
        )
        head_seen = head_seen or (old_head is not None and old_head.reached_at(r.id, r.hash))
        prev = r.hash
        r.prev_hash, r.hash = new_prev, new_prev_hash
        last = (new_prev_hash, r.id)
        n_audit += 1
    if not head_seen:
        raise AuditTampered("the newest audit entries were deleted: not rotating over a cut trail")
    if anchor is not None:
        meta = s.get(MetaRow, ANCHOR_KEY)
        assert meta is not None
        meta.value = new_audit.seal_anchor(*anchor)
    return n_audit, last


def rotate_data_key(
    gallery: Gallery, new_secret: str, *, actor: str, committed: Callable[[], None] | None = None
) -> Rotation:
    """Rotate; `committed` runs as soon as the new key is the only one that works (e.g. to move
    the new key file into place), before anything else that could fail."""
    old, new = gallery.cipher, TemplateCipher(new_secret)
    store = gallery.store
    new_audit = AuditLog.under(store, new, gallery.settings.audit_head_file)
    side: list[tuple[Path, Path]] = []
    try:
        # Exclusive from the first statement: no enrolment or audit entry may slip in under the
        # old key while this runs. The key check also refuses if another process already rotated.
        with store.write(bump_generation=True, exclusive=True) as s:
            store.replace_key_check(s, new.key_check)
            s.flush()
            _reencrypt_snapshots(s, gallery.settings.snapshots_dir, old, new, side)
            n_templates, n_chips = _reencrypt_templates(s, old, new)
            reseal_owed(s, old, new)  # erasures left unfinished must still open to be finished
            n_audit, last = _rekey_audit(s, gallery.audit, new_audit)
    except BaseException:
        for tmp, _ in side:
            tmp.unlink(missing_ok=True)
        raise
    # Committed: only the new key works now. Nothing below may lose it.
    gallery.use_key(new, new_audit)
    if committed is not None:
        committed()
    if new_audit.head is not None and last is not None:
        try:
            new_audit.head.reset(last[1], last[0])  # every hash changed with the key
        except OSError as exc:
            log.error("the audit head was not re-keyed (%s): `audit verify` will say so", exc)
    swapped = 0
    for tmp, path in side:
        try:
            tmp.replace(path)
            swapped += 1
        except OSError as exc:
            log.error("snapshot %s not swapped to the new key (%s): it stays unreadable", path, exc)
    result = Rotation(n_templates, n_chips, swapped, n_audit)
    try:
        new_audit.record(actor, "rotate_data_key", None, result.to_dict())
    except Exception as exc:
        log.error("rotation done but not audited: %s", exc)
    return result
