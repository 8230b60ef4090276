"""Re-embedding: templates of another embedding space brought into the engine's, from their kept
face chips, so that a change of model (flip fusion switched on or off, say) does not mean asking
every enrolled person to come back.

Each person is converted in one transaction (their audit entry with it): a crash leaves every
person wholly in one space or the other, and running it again finishes the job. Templates
without a kept chip (`gallery.keep_face_chips: false`) cannot be converted; their people are
reported, to enrol again. Converted templates are rewritten in place: the old space's vectors
do not linger.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from sqlalchemy import select

from facegate.gallery.schema import TemplateRow
from facegate.gallery.templates import embedding_label, open_chip

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery


@dataclass
class Reembedding:
    space: str
    converted: int = 0  # templates rewritten into `space`
    people: int = 0  # people with at least one converted template
    without_chip: int = 0  # templates left in another space: no chip to work from
    to_enrol_again: list[str] = field(default_factory=list)  # person ids with no template in `space`

    def to_dict(self) -> dict[str, object]:
        return {
            "space": self.space,
            "converted": self.converted,
            "people": self.people,
            "without_chip": self.without_chip,
            "to_enrol_again": self.to_enrol_again,
        }


def foreign_templates(gallery: Gallery) -> dict[str, int]:
    """Templates per embedding space other than the configured one (what a re-embedding would convert)."""
    space = gallery.space
    return {sp: n for sp, n in gallery.store.spaces().items() if sp != space}


def _chip(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def reembed(
    gallery: Gallery, *, actor: str, progress: Callable[[int, int], None] | None = None
) -> Reembedding:
    """Convert every template of another space that has a chip into the engine's space.
    `progress(people done, people in all)` after each person."""
    engine = gallery.engine
    space = engine.space
    store = gallery.store
    with store.session() as s:
        rows = s.execute(
            select(TemplateRow.person_id, TemplateRow.id, TemplateRow.chip_ct)
            .where(TemplateRow.space != space)
            .order_by(TemplateRow.person_id, TemplateRow.id)
        ).all()
    by_person: dict[str, list[tuple[int, bytes | None]]] = {}
    for pid, tid, ct in rows:
        by_person.setdefault(pid, []).append((int(tid), bytes(ct) if ct is not None else None))
    report = Reembedding(space)
    for i, (pid, templates) in enumerate(by_person.items(), 1):
        with_chip = [(tid, ct) for tid, ct in templates if ct is not None]
        report.without_chip += len(templates) - len(with_chip)
        if with_chip:
            # The network runs outside the transaction; the write checks each row is still there.
            chips = [_chip(open_chip(gallery.cipher, pid, tid, ct)) for tid, ct in with_chip]
            vectors = engine.embedder.embed(chips)
            done = _write(gallery, pid, [tid for tid, _ in with_chip], vectors, space, actor)
            report.converted += done
            report.people += 1 if done else 0
        if progress is not None:
            progress(i, len(by_person))
    if report.without_chip:
        with store.session() as s:
            have = set(s.scalars(select(TemplateRow.person_id).where(TemplateRow.space == space)))
        report.to_enrol_again = sorted(p for p in by_person if p not in have)
    gallery.rebuild_index()
    return report


def _write(
    gallery: Gallery, person_id: str, ids: list[int], vectors: np.ndarray, space: str, actor: str
) -> int:
    """Rewrite one person's templates in place, with their audit entry; returns how many."""
    store = gallery.store
    done = 0
    with store.write(bump_generation=True, audit_first=True) as s:
        for tid, vec in zip(ids, vectors, strict=True):
            row = s.get(TemplateRow, tid)
            if row is None or row.person_id != person_id or row.space == space:
                continue  # erased or converted meanwhile
            data = np.asarray(vec, np.float32).tobytes()
            row.embedding_ct = gallery.cipher.encrypt(data, embedding_label(person_id, tid))
            row.space = space
            row.dim = len(vec)
            done += 1
        if done:
            gallery.audit.append(s, actor, "reembed", None, {"space": space}, done, person=person_id)
    return done
