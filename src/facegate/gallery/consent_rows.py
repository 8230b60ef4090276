"""Consent records as rows: to and from `ConsentRow`, and which rows a withdrawal marks.

Called by `SqlStore` inside its own transactions; the rules themselves (what is in force, what
covers what) are `people.py`'s.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import PersonNotFound
from facegate.gallery.people import Consent, ConsentRecord, scope_covers
from facegate.gallery.schema import ConsentRow, PersonRow


def consent_row(person: PersonRow, consent: Consent) -> ConsentRow:
    return ConsentRow(
        person_id=person.id,
        subject_name=consent.subject_name or person.name,
        purpose=consent.purpose,
        given_at=consent.given_at,
        expires_at=consent.expires_at,
        recorded_by=consent.recorded_by,
        evidence_ref=consent.evidence_ref,
        withdrawn_at=consent.withdrawn_at,
        scope=json.dumps(list(consent.scope)),
    )


def scope_of(text: str | None) -> tuple[str, ...]:
    """The uses a stored scope names; anything unreadable counts as every use ("*")."""
    try:
        value = json.loads(text or '["*"]')
    except ValueError:
        return ("*",)
    return tuple(str(v) for v in value) if isinstance(value, list) else ("*",)


def to_record(row: ConsentRow) -> ConsentRecord:
    return ConsentRecord(
        id=row.id,
        person_id=row.person_id,
        subject_name=row.subject_name,
        purpose=row.purpose,
        given_at=row.given_at,
        expires_at=row.expires_at,
        recorded_by=row.recorded_by,
        evidence_ref=row.evidence_ref,
        withdrawn_at=row.withdrawn_at,
        scope=scope_of(row.scope),
    )


def to_withdraw(s: Session, person_id: str, consent_id: int | None) -> list[ConsentRow]:
    """The records not yet withdrawn that withdrawing `consent_id` (None: every one) withdraws.

    Withdrawing a record also withdraws every other record not yet withdrawn whose uses it
    covers: withdrawing a renewal must not leave the record it renewed in force.
    """
    if s.get(PersonRow, person_id) is None:
        raise PersonNotFound(f"no person with id {person_id}", person_id=person_id)
    q = select(ConsentRow).where(ConsentRow.person_id == person_id, ConsentRow.withdrawn_at.is_(None))
    if consent_id is not None:
        q = q.where(ConsentRow.id == consent_id)
    rows = list(s.scalars(q))
    if consent_id is None:
        return rows
    if not rows:
        raise PersonNotFound(
            f"person {person_id} has no consent record {consent_id} that is not already withdrawn",
            person_id=person_id,
        )
    scope = scope_of(rows[0].scope)
    others = s.scalars(
        select(ConsentRow).where(
            ConsentRow.person_id == person_id,
            ConsentRow.withdrawn_at.is_(None),
            ConsentRow.id != consent_id,
        )
    )
    return rows + [r for r in others if scope_covers(scope, scope_of(r.scope))]
