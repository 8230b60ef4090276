"""Database tables of the gallery (SQLAlchemy 2 declarative); Alembic migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the gallery; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "facegate_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PersonRow(Base):
    __tablename__ = "people"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The last time the person was recognised (retention: destroyed after long inactivity).
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    consents: Mapped[list[ConsentRow]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )
    templates: Mapped[list[TemplateRow]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )


class ConsentRow(Base):
    __tablename__ = "consent_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    subject_name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
    evidence_ref: Mapped[str | None] = mapped_column(Text)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # JSON list of the uses this consent covers: "door:<name>", "identify", "verify", or "*".
    scope: Mapped[str] = mapped_column(Text, default='["*"]')
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[PersonRow] = relationship(back_populates="consents")


class TemplateRow(Base):
    __tablename__ = "templates"
    # Never reuse a deleted template's id: an id still cached somewhere (an index, a log line)
    # must not come to mean somebody else.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it on the class)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    space: Mapped[str] = mapped_column(String(64), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    embedding_ct: Mapped[bytes] = mapped_column(LargeBinary)
    chip_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Hash of the source photo's bytes: spots a photo enrolled twice without keeping the photo.
    source_sha256: Mapped[str] = mapped_column(String(64))
    face_px: Mapped[int] = mapped_column(Integer)
    sharpness: Mapped[float] = mapped_column(Float)
    frontal: Mapped[float] = mapped_column(Float)
    brightness: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[PersonRow] = relationship(back_populates="templates")


class AuditRow(Base):
    """One entry of the append-only, hash-chained audit trail (never images or templates)."""

    __tablename__ = "audit_log"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it on the class)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200), index=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    results: Mapped[int | None] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ApiKeyRow(Base):
    """An API key of the REST service: only a hash of the key is kept."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    cameras: Mapped[str | None] = mapped_column(Text)  # device keys: the cameras they speak for
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleUserRow(Base):
    """A person who signs in to the web console: only a scrypt hash of the password is kept."""

    __tablename__ = "console_users"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EventRow(Base):
    """Something that happened at a camera or door: a decision, a state change."""

    __tablename__ = "events"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it on the class)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    camera: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    person_id: Mapped[str | None] = mapped_column(String(36), index=True)
    details: Mapped[str] = mapped_column(Text)  # JSON: scores, door, never images or templates
    # Relative path of an encrypted JPEG under the data directory, removed with the event.
    snapshot: Mapped[str | None] = mapped_column(String(200), default=None)


class EventSubjectRow(Base):
    """An event that names nobody but shows an enrolled person's face (a failed head-turn
    challenge, a presentation attack, a face two people resemble alike): whose it is, for their
    subject access and their erasure. Never shown with the event."""

    __tablename__ = "event_subjects"
    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("events.id", ondelete="CASCADE"),
        primary_key=True,
    )
    person_id: Mapped[str] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class OwedWipeRow(Base):
    """An erasure whose deletion committed but whose wipe (freed pages, trace checks, receipt)
    is not done yet: written in the deletion's transaction, removed in the receipt's. What the
    wipe needs names the person, so it is kept sealed (`gallery/wipes.py`)."""

    __tablename__ = "erasures_owed"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it on the class)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ReplicaRow(Base):
    """A `facegate serve` process sharing this database, while it renews its heartbeat."""

    __tablename__ = "replicas"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch, the database's clock
    seen_at: Mapped[float] = mapped_column(Float, index=True)


class LeaseRow(Base):
    """Which replica runs a camera (or acts for a door without one), until `expires_at`.
    `epoch` grows with every change of holder: a fencing token for what the holder does."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), index=True)
    epoch: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    acquired_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class SnapshotWipeRow(Base):
    """A snapshot file that an erasure removed the event of, left on another replica's disk:
    whichever replica holds the file deletes it on its next heartbeat, then this row."""

    __tablename__ = "snapshot_wipes"
    rel: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
