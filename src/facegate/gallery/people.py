"""The gallery's domain objects: people, their consent records and templates."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from facegate.errors import BadRequest, ConsentExpired, ConsentMissing


def consent_in_force(
    given_at: datetime,
    expires_at: datetime,
    withdrawn_at: datetime | None,
    when: datetime,
    scope: tuple[str, ...] = ("*",),
    use: str | None = None,
) -> bool:
    """Whether a consent period covers `when` (given, not expired, not withdrawn) and `use`."""
    if withdrawn_at is not None and withdrawn_at <= when:
        return False
    if use is not None and "*" not in scope and use not in scope:
        return False
    return given_at <= when < expires_at


MAX_NAME_CHARS = 200


def normalise_name(name: str) -> str:
    """A person's name as stored: Unicode NFC, surrounding and repeated whitespace collapsed.

    Refuses names that are empty once trimmed, and any control or format character: a CR/LF
    forges lines in logs and exports, a bidirectional override shows one name as another.
    """
    text = unicodedata.normalize("NFC", name)
    bad = sorted({f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")})
    # Tabs and newlines are refused too: a name is one line.
    if bad:
        raise BadRequest(f"a name must not contain control or format characters ({', '.join(bad)})")
    text = " ".join(text.split())
    if not text:
        raise BadRequest("a name must not be empty or only whitespace")
    if len(text) > MAX_NAME_CHARS:
        raise BadRequest(f"a name is at most {MAX_NAME_CHARS} characters")
    return text


def scope_covers(scope: tuple[str, ...], other: tuple[str, ...]) -> bool:
    """Whether every use of `other` is one of `scope`'s (`"*"` covers them all)."""
    return "*" in scope or set(other) <= set(scope)


ConsentWindow = tuple[datetime, datetime, datetime | None, tuple[str, ...]]


@dataclass(frozen=True)
class Consent:
    """A person's consent to be enrolled: who, for what, from when, until when, recorded by whom."""

    purpose: str
    expires_at: datetime
    recorded_by: str
    given_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    subject_name: str | None = None  # defaults to the person's name
    evidence_ref: str | None = None  # e.g. a signed form's document number
    withdrawn_at: datetime | None = None
    # The uses it covers: "door:<name>", "identify", "verify"; "*" for all of them.
    scope: tuple[str, ...] = ("*",)

    def check(self, now: datetime | None = None) -> None:
        """Raise unless this consent allows enrolment now."""
        now = now or datetime.now(UTC)
        for name, value in (("given_at", self.given_at), ("expires_at", self.expires_at)):
            if value.tzinfo is None:
                raise ConsentMissing(f"consent {name} must carry a time zone")
        if not self.purpose.strip():
            raise ConsentMissing("consent needs a purpose")
        if not self.recorded_by.strip():
            raise ConsentMissing("consent needs the name of whoever recorded it")
        if self.given_at > now:
            raise ConsentMissing(f"consent is dated in the future ({self.given_at.isoformat()})")
        if self.withdrawn_at is not None and self.withdrawn_at <= now:
            raise ConsentExpired(f"consent was withdrawn on {self.withdrawn_at.isoformat()}")
        if self.expires_at <= now:
            raise ConsentExpired(f"consent expired on {self.expires_at.isoformat()}")
        if self.expires_at <= self.given_at:
            raise ConsentMissing("consent expires before it was given")
        if not self.scope or any(not u.strip() for u in self.scope):
            raise ConsentMissing("consent scope must name at least one use (or '*')")

    def valid_at(self, when: datetime, use: str | None = None) -> bool:
        return consent_in_force(self.given_at, self.expires_at, self.withdrawn_at, when, self.scope, use)

    def to_dict(self) -> dict[str, object]:
        return {
            "purpose": self.purpose,
            "scope": list(self.scope),
            "subject_name": self.subject_name,
            "given_at": self.given_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "recorded_by": self.recorded_by,
            "evidence_ref": self.evidence_ref,
            "withdrawn_at": self.withdrawn_at.isoformat() if self.withdrawn_at else None,
        }


@dataclass(frozen=True)
class ConsentRecord(Consent):
    id: int = 0
    person_id: str = ""


@dataclass(frozen=True)
class TemplateInfo:
    """What is known of a template without decrypting it."""

    id: int
    space: str
    face_px: int
    sharpness: float
    frontal: float
    brightness: float
    created_at: datetime
    has_chip: bool


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    external_id: str | None
    created_at: datetime
    templates: int
    consent: ConsentRecord | None  # the most recent record
    # The uses covered by the records in force when this was read: what matching uses.
    consent_in_force: tuple[str, ...] = ()

    @property
    def consent_valid(self) -> bool:
        """Whether any consent record is in force: the same rule as matching's."""
        return bool(self.consent_in_force)

    def to_dict(self) -> dict[str, object]:
        c = self.consent
        return {
            "id": self.id,
            "name": self.name,
            "external_id": self.external_id,
            "created_at": self.created_at.isoformat(),
            "templates": self.templates,
            "consent": None
            if c is None
            else {**c.to_dict(), "valid": self.consent_valid, "in_force_for": list(self.consent_in_force)},
        }


@dataclass(frozen=True)
class NewTemplate:
    """A template to store; the store seals `embedding` and `chip_jpeg` before writing."""

    space: str
    embedding: bytes  # float32, L2-normalised
    chip_jpeg: bytes | None
    source_sha256: str
    face_px: int
    sharpness: float
    frontal: float
    brightness: float


@dataclass(frozen=True)
class Deletion:
    """What deleting a person removed."""

    person_id: str
    templates: int
    consent_records: int
    template_ids: list[int]
    events: int = 0
    snapshots: list[str] = field(default_factory=list)  # files of the deleted events, to remove
