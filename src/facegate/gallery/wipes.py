"""Erasures owed: a person's deletion has committed, the wipe after it (freed pages, trace checks,
the receipt) is still to do.

The record is written in the deletion's own transaction and removed in the receipt's, so a
process killed in between leaves it behind for whoever comes next (`facegate serve` at start-up,
a retried erasure) to finish. It holds what the wipe looks for (the person's id and names, the
first bytes of their template ciphertexts, their snapshot files), so it is sealed under the data
key and bound to its row: it is not itself a trace the checks would find.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from facegate.gallery.crypto import TemplateCipher
from facegate.gallery.schema import OwedWipeRow
from facegate.gallery.store import SqlStore, rowcount


@dataclass(frozen=True)
class OwedWipe:
    """What finishing an erasure needs once the person's rows are gone."""

    person_id: str
    subject: str  # the audit pseudonym at deletion time: the receipt's subject
    actor: str
    reason: str
    names: list[str]  # names only this person had: looked for in the database's rows
    byte_names: list[str]  # of those, the ones also looked for in raw files
    template_ids: list[int]
    needles: list[str]  # hex: the person id, the first bytes of each template and chip ciphertext
    removed: dict[str, int]  # what the deletion removed: templates, consent records, events...
    snapshots: list[str] = field(default_factory=list)  # files of the deleted events, to remove
    id: int = 0


def _label(wipe_id: int) -> str:
    return f"erasure-owed:{wipe_id}"


def _body(wipe: OwedWipe) -> bytes:
    return json.dumps({k: v for k, v in asdict(wipe).items() if k != "id"}, sort_keys=True).encode()


def owe(s: Session, cipher: TemplateCipher, wipe: OwedWipe) -> int:
    """Record, in the caller's (the deletion's) transaction, that this wipe is owed; its id."""
    row = OwedWipeRow(sealed=b"")
    s.add(row)
    s.flush()  # the id the ciphertext is bound to
    row.sealed = cipher.encrypt(_body(wipe), _label(row.id))
    s.flush()
    return int(row.id)


def owed(store: SqlStore, cipher: TemplateCipher) -> list[OwedWipe]:
    """Every wipe still owed, oldest first."""
    with store.session() as s:
        rows = list(s.scalars(select(OwedWipeRow).order_by(OwedWipeRow.id)))
    return [OwedWipe(**json.loads(cipher.decrypt(r.sealed, _label(r.id))), id=r.id) for r in rows]


def settle(s: Session, wipe_id: int) -> bool:
    """Remove the record in the caller's (the receipt's) transaction. False if it was gone
    already: someone else finished this wipe and wrote its receipt."""
    return rowcount(s.execute(delete(OwedWipeRow).where(OwedWipeRow.id == wipe_id))) == 1


def reseal_owed(s: Session, old: TemplateCipher, new: TemplateCipher) -> int:
    """Every owed wipe's record under the new key (key rotation); how many."""
    n = 0
    for row in s.scalars(select(OwedWipeRow)):
        row.sealed = new.encrypt(old.decrypt(row.sealed, _label(row.id)), _label(row.id))
        n += 1
    return n
