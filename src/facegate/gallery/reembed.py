"""Re-embedding: templates of another embedding space brought into the engine's, from their kept
face chips, so that a change of model (flip fusion switched on or off, say) does not mean asking
every enrolled person to come back.

People are converted a batch at a time, each batch in one transaction with an audit entry per
person: a crash leaves every person wholly in one space or the other, running it again finishes
the job, and a running service reloads once per batch, not once per person. Templates without a
kept chip (`gallery.keep_face_chips: false`), or whose chip cannot be opened, cannot be
converted: their people are reported, to enrol again, and `drop_unconvertible` deletes those
templates (nothing can match them any more). Converted templates are rewritten in place and the
freed database pages wiped at the end, so the old space's vectors do not linger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from facegate.errors import FacegateError
from facegate.gallery.enrolment import decode_chip
from facegate.gallery.schema import TemplateRow
from facegate.gallery.templates import embedding_label, open_chip

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery

log = logging.getLogger(__name__)

PEOPLE_PER_TRANSACTION = 50


@dataclass
class Reembedding:
    space: str
    converted: int = 0  # templates rewritten into `space`
    people: int = 0  # people with at least one converted template
    without_chip: int = 0  # templates of another space with no chip to work from
    unreadable: list[int] = field(default_factory=list)  # template ids whose chip would not open
    dropped: int = 0  # unconvertible templates deleted (drop_unconvertible)
    to_enrol_again: list[str] = field(default_factory=list)  # person ids with no template in `space`
    reclaimed: str = ""  # how freed pages were wiped

    @property
    def complete(self) -> bool:
        """Whether everyone can be searched again without enrolling anew."""
        return not self.to_enrol_again and not self.unreadable

    def to_dict(self) -> dict[str, object]:
        return {
            "space": self.space,
            "converted": self.converted,
            "people": self.people,
            "without_chip": self.without_chip,
            "unreadable": self.unreadable,
            "dropped": self.dropped,
            "to_enrol_again": self.to_enrol_again,
            "reclaimed": self.reclaimed,
        }


def reembed(
    gallery: Gallery,
    *,
    actor: str,
    progress: Callable[[int, int], None] | None = None,
    drop_unconvertible: bool = False,
) -> Reembedding:
    """Convert every template of another space that has a readable chip into the engine's space.
    `progress(people done, people in all)` after each batch."""
    engine = gallery.engine
    space = engine.space
    store = gallery.store
    with store.session() as s:
        rows = s.execute(
            select(TemplateRow.person_id, TemplateRow.id, TemplateRow.space, TemplateRow.chip_ct.is_not(None))
            .where(TemplateRow.space != space)
            .order_by(TemplateRow.person_id, TemplateRow.id)
        ).all()
    by_person: dict[str, list[tuple[int, bool]]] = {}
    for pid, tid, _sp, has_chip in rows:
        by_person.setdefault(pid, []).append((int(tid), bool(has_chip)))
    from_spaces = sorted({str(sp) for _, _, sp, _ in rows})
    people = list(by_person)
    report = Reembedding(space)
    for start in range(0, len(people), PEOPLE_PER_TRANSACTION):
        batch = people[start : start + PEOPLE_PER_TRANSACTION]
        ids = [tid for pid in batch for tid, has in by_person[pid] if has]
        with store.session() as s:  # this batch's chips only: a large gallery is not held in memory
            cts = dict(
                s.execute(select(TemplateRow.id, TemplateRow.chip_ct).where(TemplateRow.id.in_(ids))).all()
            )
        chips: list[np.ndarray] = []
        owners: list[tuple[str, int]] = []
        drop: list[tuple[str, int]] = []
        for pid in batch:
            for tid, has in by_person[pid]:
                if not has:
                    report.without_chip += 1
                    drop.append((pid, tid))
                    continue
                ct = cts.get(tid)
                if ct is None:
                    continue  # erased meanwhile
                try:
                    chips.append(decode_chip(open_chip(gallery.cipher, pid, tid, bytes(ct))))
                except (FacegateError, OSError, ValueError) as exc:
                    log.warning("template %s: its face chip cannot be opened (%s)", tid, exc)
                    report.unreadable.append(tid)
                    drop.append((pid, tid))
                    continue
                owners.append((pid, tid))
        # The network runs outside the transaction; the write checks each row is still there.
        vectors = engine.embed_chips(chips) if chips else np.zeros((0, engine.embedder.dim), np.float32)
        converted, dropped = _write(
            gallery, owners, vectors, drop if drop_unconvertible else [], space, from_spaces, actor
        )
        report.converted += sum(converted.values())
        report.people += len(converted)
        report.dropped += dropped
        if progress is not None:
            progress(min(start + PEOPLE_PER_TRANSACTION, len(people)), len(people))
    with store.session() as s:
        have = set(s.scalars(select(TemplateRow.person_id).where(TemplateRow.space == space)))
    report.to_enrol_again = sorted(p for p in by_person if p not in have)
    if report.converted or report.dropped:
        report.reclaimed = store.reclaim()
    gallery.rebuild_index()
    return report


def _write(
    gallery: Gallery,
    owners: list[tuple[str, int]],
    vectors: np.ndarray,
    drop: list[tuple[str, int]],
    space: str,
    from_spaces: list[str],
    actor: str,
) -> tuple[dict[str, int], int]:
    """Rewrite a batch of templates in place and delete `drop`, in one transaction with an audit
    entry per person; returns templates converted per person, and how many were deleted."""
    converted: dict[str, int] = {}
    dropped: dict[str, int] = {}
    with gallery.store.write(bump_generation=True, audit_first=True) as s:
        for (pid, tid), vec in zip(owners, vectors, strict=True):
            row = s.get(TemplateRow, tid)
            if row is None or row.person_id != pid or row.space == space:
                continue  # erased or converted meanwhile
            data = np.asarray(vec, np.float32).tobytes()
            row.embedding_ct = gallery.cipher.encrypt(data, embedding_label(pid, tid))
            row.space = space
            row.dim = len(vec)
            converted[pid] = converted.get(pid, 0) + 1
        for pid, tid in drop:
            row = s.get(TemplateRow, tid)
            if row is not None and row.person_id == pid and row.space != space:
                s.delete(row)
                dropped[pid] = dropped.get(pid, 0) + 1
        for pid in sorted(set(converted) | set(dropped)):
            details = {"space": space, "from": from_spaces, "dropped": dropped.get(pid, 0)}
            gallery.audit.append(s, actor, "reembed", None, details, converted.get(pid, 0), person=pid)
    return converted, sum(dropped.values())
