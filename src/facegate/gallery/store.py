"""The gallery's persistent store on SQLAlchemy: SQLite by default, PostgreSQL by URL.

Every write that belongs together (a person, their consent and their templates) happens in
one transaction, so a crash leaves the whole enrolment or none of it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Integer,
    Select,
    Text,
    cast,
    create_engine,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ConfigError, DatabaseUnavailable, KeyRotated, PersonNotFound, WrongKey
from facegate.gallery.consent_rows import consent_row, scope_of, to_record, to_withdraw
from facegate.gallery.people import (
    Consent,
    ConsentRecord,
    ConsentWindow,
    Deletion,
    NewTemplate,
    Person,
    TemplateInfo,
)
from facegate.gallery.schema import (
    ConsentRow,
    EventRow,
    EventSubjectRow,
    MetaRow,
    PersonRow,
    TemplateRow,
)
from facegate.gallery.templates import Sealer, add_templates, template_info
from facegate.private_files import private_dir, private_file

MIGRATIONS = Path(__file__).parent / "migrations"
DATABASE_RETRY_AFTER = 2  # seconds a client is told to wait while the database is away
AUDIT_WRITERS_LOCK = 4242001  # PostgreSQL advisory lock: one audit writer at a time
MIGRATION_LOCK = 4242002  # ... and one migration at a time (replicas starting together)

# Writes the audit entry of a change inside its transaction: (session, person id, facts such
# as counts known only inside it).
AuditHook = Callable[[Session, str, dict[str, Any]], object]
# Writes more that must commit with a deletion (an erasure's record of the wipe it owes).
DeletionHook = Callable[[Session, Deletion], object]


class Store(Protocol):
    """What the gallery needs from persistence; `SqlStore` is the implementation."""

    def enrol(
        self,
        person_id: str | None,
        name: str,
        external_id: str | None,
        consent: Consent | None,
        templates: list[NewTemplate],
        seal: Sealer,
    ) -> tuple[str, list[int]]: ...

    def delete_person(
        self, person_id: str, audit: AuditHook | None = None, also: DeletionHook | None = None
    ) -> Deletion: ...

    def person(self, person_id: str) -> Person: ...

    def people(self, name: str | None = None) -> list[Person]: ...

    def templates(
        self, space: str, person_id: str | None = None, ids: list[int] | None = None
    ) -> Iterator[tuple[int, str, bytes]]: ...

    def template_owners(self, space: str) -> dict[int, str]: ...

    def person_names(self) -> dict[str, str]: ...


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # an acknowledged enrolment survives power loss
    cur.execute("PRAGMA secure_delete=ON")  # deleted templates are overwritten, not left in free pages
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def subject_events(person_id: str) -> Select[int]:
    """The ids of the events that show the person's face without naming them."""
    return select(EventSubjectRow.event_id).where(EventSubjectRow.person_id == person_id)


def _unavailable(ctx: ExceptionContext) -> None:
    """Every statement's and connection's error passes here: one that says the database is
    away (PostgreSQL stopped or restarting, the connection cut, a connection refused; SQLite
    locked past its busy timeout) becomes `DatabaseUnavailable` (503 with Retry-After, exit 1)
    for every caller at once. Other errors go on as SQLAlchemy raised them."""
    if ctx.is_pre_ping:
        return  # the pool then opens a fresh connection itself; its failure comes here again
    error = ctx.sqlalchemy_exception
    outage = ctx.is_disconnect or isinstance(error, OperationalError)
    if outage and ctx.dialect.name == "sqlite":
        outage = any(w in str(ctx.original_exception) for w in ("locked", "busy"))
    if outage:
        raise DatabaseUnavailable(
            "the database cannot be reached just now; try again shortly",
            retry_after=DATABASE_RETRY_AFTER,
        ) from error


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names (None: another database, or one in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return None if parsed.database.startswith("file:") else Path(parsed.database)


def rowcount(result: object) -> int:
    """Rows a statement's result says it changed (0 where the driver does not say)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _truncate_wal(c: Connection, tries: int) -> bool:
    """`wal_checkpoint(TRUNCATE)`, retried every 0.1 s while a reader keeps it busy."""
    for _ in range(tries):
        busy = c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy is None or not busy[0]:
            return True
        time.sleep(0.1)
    return False


class SqlStore:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ConfigError(f"invalid database URL: {exc}") from exc
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        db = sqlite_file(parsed)
        if db is not None:
            if not db.parent.exists():
                private_dir(db.parent)
            # Before SQLite creates it (0644 by the umask); its -wal and -shm take its mode.
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                if path is db or path.exists():
                    private_file(path)
        elif parsed.get_backend_name() == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
            # After a restart of the server, pooled connections are dead: test each before use.
            kwargs["pool_pre_ping"] = True
            if "connect_timeout" not in parsed.query:  # a server that does not answer: 503, not a hang
                kwargs["connect_args"] = {"connect_timeout": 5}
        self.url = parsed
        self.engine: Engine = create_engine(parsed, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        event.listen(self.engine, "handle_error", _unavailable)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.bound_key: str | None = None
        # Called after a write was refused because another process rotated the key (the
        # gallery's: load the new key).
        self.key_rotated: Callable[[], None] | None = None
        self.last_generation = 0  # the generation this store's last write produced

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if self.backend == "postgresql":  # the second replica waits, then finds it done
                    conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except (SQLAlchemyError, DatabaseUnavailable) as exc:
            raise ConfigError(
                f"cannot open the database at {self.url!r}: {getattr(exc, 'orig', None) or exc}"
            ) from exc

    def session(self) -> Session:
        return self._sessions()

    def ping(self) -> None:
        """One round trip to the database (`DatabaseUnavailable` if it is away)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # --- key check ---------------------------------------------------------------------------

    def key_check(self) -> str | None:
        with self.session() as s:
            row = s.get(MetaRow, "key_check")
            return row.value if row else None

    def holds_gallery(self) -> bool:
        """Whether a gallery was ever made here (its key check recorded); creates nothing."""
        return inspect(self.engine).has_table(MetaRow.__tablename__) and self.key_check() is not None

    @property
    def location(self) -> str:
        """Where the data is, for messages: the SQLite file, or the URL without its password."""
        db = sqlite_file(self.url)
        return str(db) if db is not None else self.url.render_as_string(hide_password=True)

    def bind_key(self, key_check: str) -> bool:
        """Record the key's check value on first use (True: a new gallery); refuse a different
        key afterwards."""
        self.bound_key = key_check
        with self.session() as s, s.begin():  # not `write`: this records the key it checks against
            row = s.get(MetaRow, "key_check")
            if row is None:
                s.add(MetaRow(key="key_check", value=key_check))
                return True
            if row.value != key_check:
                raise WrongKey(
                    "the secret key does not match the one this gallery was created with "
                    "(check FACEGATE_SECRET_KEY or the key file)"
                )
            return False

    def replace_key_check(self, session: Session, key_check: str) -> None:
        row = session.get(MetaRow, "key_check")
        if row is None:
            session.add(MetaRow(key="key_check", value=key_check))
        else:
            row.value = key_check

    @contextmanager
    def write(
        self, *, bump_generation: bool = False, audit_first: bool = False, exclusive: bool = False
    ) -> Iterator[Session]:
        """A session in a transaction that commits when the block ends (rolls back if it raises),
        opened the way every write is: the write lock and the key check (`_check_key`) first, and
        for a write to people, consent or templates (`bump_generation`) the generation bump too.

        PostgreSQL only, before the write lock: `audit_first` takes the audit writers' lock, in
        the order the audit trail's own writers take them (a write that appends its audit entry
        must ask for it, or it deadlocks against an identification's entry); `exclusive` locks
        the tables first, so that nothing else writes until this commits (SQLite: the write lock
        is the database's).
        """
        try:
            with self._write(exclusive=exclusive, audit_first=audit_first) as s:
                if bump_generation:
                    self._bump_generation(s)
                yield s
        except KeyRotated:
            # Rolled back: now (not inside the transaction, which the old key began) the owner
            # may load the new key, so that the retried request succeeds.
            if self.key_rotated is not None:
                self.key_rotated()
            raise

    @contextmanager
    def _write(self, *, exclusive: bool, audit_first: bool) -> Iterator[Session]:
        with self.session() as s, s.begin():
            if self.backend == "postgresql":
                if exclusive:
                    s.execute(text("LOCK TABLE templates, audit_log, facegate_meta IN EXCLUSIVE MODE"))
                if exclusive or audit_first:
                    self.lock_audit_writers(s)
            self._check_key(s)
            yield s

    def lock_audit_writers(self, s: Session) -> None:
        """One audit writer at a time until the transaction ends (PostgreSQL; SQLite has one writer)."""
        if self.backend == "postgresql":
            s.execute(text(f"SELECT pg_advisory_xact_lock({AUDIT_WRITERS_LOCK})"))

    def _check_key(self, s: Session) -> None:
        """First in a write transaction (after `write`'s PostgreSQL locks): take the write lock
        (a no-op update of the key check), then refuse to write under a key another process has
        rotated away. Reading before the lock would let a rotation commit in between."""
        s.execute(update(MetaRow).where(MetaRow.key == "key_check").values(value=MetaRow.value))
        if self.bound_key is not None:
            row = s.execute(select(MetaRow.value).where(MetaRow.key == "key_check")).scalar_one_or_none()
            if row is not None and row != self.bound_key:
                raise KeyRotated(
                    "the data key was rotated by another process; nothing was written under the old "
                    "one: try again (a service loads the new key from its key file; one given "
                    "FACEGATE_SECRET_KEY must be restarted with the new key)",
                    retry_after=1,
                )

    def _bump_generation(self, s: Session) -> None:
        """Next in a write to people, consent or templates, once the write lock is held: bump
        (atomically, in the database) the generation other processes watch to reload what they
        cached."""
        bumped = s.execute(
            update(MetaRow)
            .where(MetaRow.key == "generation")
            .values(value=cast(cast(MetaRow.value, Integer) + 1, Text))
        )
        if rowcount(bumped) == 0:
            s.add(MetaRow(key="generation", value="1"))
            s.flush()
        self.last_generation = int(
            s.execute(select(MetaRow.value).where(MetaRow.key == "generation")).scalar_one()
        )

    def generation(self) -> int:
        """Changes with every write to people, consent or templates, by any process."""
        with self.session() as s:
            row = s.get(MetaRow, "generation")
            return int(row.value) if row is not None else 0

    # --- writes ------------------------------------------------------------------------------

    def enrol(
        self,
        person_id: str | None,
        name: str,
        external_id: str | None,
        consent: Consent | None,
        templates: list[NewTemplate],
        seal: Sealer,
        audit: AuditHook | None = None,
    ) -> tuple[str, list[int]]:
        """Create (or extend) a person with consent and templates, all in one transaction
        (`templates.add_templates` seals them once the database has given them ids)."""
        with self.write(bump_generation=True, audit_first=audit is not None) as s:
            if person_id is None:
                person = PersonRow(id=str(uuid.uuid4()), name=name, external_id=external_id)
                s.add(person)
            else:
                found = s.get(PersonRow, person_id)
                if found is None:
                    raise PersonNotFound(f"no person with id {person_id}", person_id=person_id)
                person = found
            if consent is not None:
                s.add(consent_row(person, consent))
            template_ids = add_templates(s, person.id, templates, seal)
            if audit is not None:
                audit(s, person.id, {"templates": len(template_ids)})
            return person.id, template_ids

    def update_person(
        self, person_id: str, name: str | None, external_id: str | None, audit: AuditHook | None = None
    ) -> None:
        with self.write(bump_generation=True, audit_first=audit is not None) as s:
            row = s.get(PersonRow, person_id)
            if row is None:
                raise PersonNotFound(f"no person with id {person_id}", person_id=person_id)
            if name is not None:
                row.name = name
            if external_id is not None:
                row.external_id = external_id
            if audit is not None:
                audit(s, person_id, {})

    def add_consent(self, person_id: str, consent: Consent, audit: AuditHook | None = None) -> None:
        with self.write(bump_generation=True, audit_first=audit is not None) as s:
            row = s.get(PersonRow, person_id)
            if row is None:
                raise PersonNotFound(f"no person with id {person_id}", person_id=person_id)
            s.add(consent_row(row, consent))
            if audit is not None:
                audit(s, person_id, {})

    def delete_person(
        self, person_id: str, audit: AuditHook | None = None, also: DeletionHook | None = None
    ) -> Deletion:
        """Remove the person and everything derived from them, in one transaction (with the
        audit entry and whatever `also` writes)."""
        with self.write(bump_generation=True, audit_first=audit is not None) as s:
            # Locked first: an event being written for this person waits for us or we for it,
            # so none can slip in after its events were deleted (PostgreSQL; SQLite has one writer).
            if (
                s.scalars(select(PersonRow).where(PersonRow.id == person_id).with_for_update()).first()
                is None
            ):
                raise PersonNotFound(f"no person with id {person_id}", person_id=person_id)
            # Their events: those that name them, and those that show their face naming nobody.
            theirs = or_(EventRow.person_id == person_id, EventRow.id.in_(subject_events(person_id)))
            event_ids = list(s.scalars(select(EventRow.id).where(theirs)))
            snapshots = [
                r
                for (r,) in s.execute(
                    select(EventRow.snapshot).where(
                        EventRow.id.in_(event_ids), EventRow.snapshot.is_not(None)
                    )
                )
                if r
            ]
            template_ids = list(s.scalars(select(TemplateRow.id).where(TemplateRow.person_id == person_id)))
            # Explicit deletes rather than trusting ON DELETE CASCADE alone: the counts go on
            # the receipt, and a database with foreign keys off still loses every row.
            n_templates = rowcount(s.execute(delete(TemplateRow).where(TemplateRow.person_id == person_id)))
            n_consents = rowcount(s.execute(delete(ConsentRow).where(ConsentRow.person_id == person_id)))
            s.execute(delete(EventSubjectRow).where(EventSubjectRow.event_id.in_(event_ids)))
            s.execute(delete(EventSubjectRow).where(EventSubjectRow.person_id == person_id))
            n_events = rowcount(s.execute(delete(EventRow).where(EventRow.id.in_(event_ids))))
            s.execute(delete(PersonRow).where(PersonRow.id == person_id))
            deletion = Deletion(person_id, n_templates, n_consents, template_ids, n_events, snapshots)
            if audit is not None:
                audit(
                    s,
                    person_id,
                    {"templates": n_templates, "consent_records": n_consents, "events": n_events},
                )
            if also is not None:
                also(s, deletion)
        return deletion

    # --- reads -------------------------------------------------------------------------------

    def _person(self, s: Session, row: PersonRow, n_templates: int) -> Person:
        records = [
            to_record(r)
            for r in s.scalars(
                select(ConsentRow)
                .where(ConsentRow.person_id == row.id)
                .order_by(ConsentRow.created_at, ConsentRow.id)
            )
        ]
        now = datetime.now(UTC)
        in_force = sorted({u for r in records if r.valid_at(now) for u in r.scope})
        return Person(
            id=row.id,
            name=row.name,
            external_id=row.external_id,
            created_at=row.created_at,
            templates=n_templates,
            consent=records[-1] if records else None,
            consent_in_force=tuple(in_force),
        )

    def person(self, person_id: str) -> Person:
        with self.session() as s:
            row = s.get(PersonRow, person_id)
            if row is None:
                raise PersonNotFound(f"no person with id {person_id}", person_id=person_id)
            n = s.scalar(select(func.count()).where(TemplateRow.person_id == person_id)) or 0
            return self._person(s, row, int(n))

    def people(self, name: str | None = None) -> list[Person]:
        with self.session() as s:
            counts = {
                pid: n
                for pid, n in s.execute(
                    select(TemplateRow.person_id, func.count()).group_by(TemplateRow.person_id)
                )
            }
            q = select(PersonRow).order_by(PersonRow.name, PersonRow.created_at)
            if name is not None:
                q = q.where(PersonRow.name == name)
            return [self._person(s, r, int(counts.get(r.id, 0))) for r in s.scalars(q)]

    def person_names(self) -> dict[str, str]:
        """Person id -> name, in one query (what a search names its matches by)."""
        with self.session() as s:
            return {pid: name for pid, name in s.execute(select(PersonRow.id, PersonRow.name))}

    def consents(self, person_id: str) -> list[ConsentRecord]:
        with self.session() as s:
            rows = s.scalars(
                select(ConsentRow).where(ConsentRow.person_id == person_id).order_by(ConsentRow.id)
            )
            return [to_record(r) for r in rows]

    def consent_windows(self) -> dict[str, list[ConsentWindow]]:
        """Every person's consent periods: (given_at, expires_at, withdrawn_at, scope)."""
        out: dict[str, list[ConsentWindow]] = {}
        with self.session() as s:
            for r in s.execute(
                select(
                    ConsentRow.person_id,
                    ConsentRow.given_at,
                    ConsentRow.expires_at,
                    ConsentRow.withdrawn_at,
                    ConsentRow.scope,
                )
            ):
                out.setdefault(r[0], []).append((r[1], r[2], r[3], scope_of(r[4])))
        return out

    def withdraw_consent(
        self, person_id: str, consent_id: int | None, when: datetime, audit: AuditHook | None = None
    ) -> list[int]:
        """Mark one consent record (or every one) withdrawn at `when`, with the records it covers
        (`consent_rows.to_withdraw`); returns their ids."""
        with self.write(bump_generation=True, audit_first=audit is not None) as s:
            rows = to_withdraw(s, person_id, consent_id)
            for r in rows:
                r.withdrawn_at = when
            ids = sorted(r.id for r in rows)
            if audit is not None:
                audit(s, person_id, {"consent_records": ids})
            return ids

    def touch(self, person_ids: list[str], when: datetime) -> None:
        """Record that these people were just recognised."""
        if not person_ids:
            return
        with self.write() as s:
            s.execute(update(PersonRow).where(PersonRow.id.in_(person_ids)).values(last_seen_at=when))

    def last_seen(self, person_id: str) -> datetime | None:
        with self.session() as s:
            row = s.get(PersonRow, person_id)
            return row.last_seen_at if row is not None else None

    @property
    def sqlite_path(self) -> Path | None:
        if self.backend != "sqlite" or not self.url.database or self.url.database == ":memory:":
            return None
        return Path(self.url.database).resolve()

    def checkpoint(self, tries: int = 20) -> bool:
        """SQLite: copy the write-ahead log into the database file and empty it, so that the file
        alone (a plain copy of it, say) holds nothing just deleted. Retried while another
        connection reads; False if it stayed busy. Other databases: nothing to do."""
        if self.backend != "sqlite":
            return True
        with self.engine.connect() as c:
            return _truncate_wal(c, tries)

    def reclaim(self) -> str:
        """Wipe freed pages so deleted rows are gone from the database files, not just unlinked."""
        if self.backend == "sqlite":
            # secure_delete (always on) zeroes freed content; VACUUM rebuilds the file, and the
            # checkpoint empties the write-ahead log, which still held the old pages.
            with self.engine.connect() as c:
                c.exec_driver_sql("VACUUM")
                if _truncate_wal(c, 50):
                    return "sqlite: secure_delete, VACUUM, wal_checkpoint(TRUNCATE)"
            return "sqlite: secure_delete, VACUUM; the write-ahead log was busy and still holds old pages"
        if self.backend == "postgresql":
            # VACUUM FULL rewrites each table into new files and drops the old ones.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                for table in ("templates", "consent_records", "events", "people"):
                    c.exec_driver_sql(f"VACUUM FULL {table}")
            return "postgresql: VACUUM FULL templates, consent_records, events, people"
        return "none"

    def template_infos(self, person_id: str) -> list[TemplateInfo]:
        with self.session() as s:
            rows = s.scalars(
                select(TemplateRow).where(TemplateRow.person_id == person_id).order_by(TemplateRow.id)
            )
            return [template_info(r) for r in rows]

    def templates(
        self, space: str, person_id: str | None = None, ids: list[int] | None = None
    ) -> Iterator[tuple[int, str, bytes]]:
        """(template id, person id, encrypted embedding) for every template of a space (of one
        person, or with one of `ids`)."""
        with self.session() as s:
            q = select(TemplateRow.id, TemplateRow.person_id, TemplateRow.embedding_ct).where(
                TemplateRow.space == space
            )
            if person_id is not None:
                q = q.where(TemplateRow.person_id == person_id)
            if ids is not None:
                q = q.where(TemplateRow.id.in_(ids))
            for tid, pid, ct in s.execute(q.execution_options(yield_per=2000)):
                yield int(tid), pid, bytes(ct)

    def template_owners(self, space: str) -> dict[int, str]:
        """Template id -> person id for every template of a space: what a replica compares with
        its index to catch up with the others' writes (no ciphertext read)."""
        with self.session() as s:
            q = select(TemplateRow.id, TemplateRow.person_id).where(TemplateRow.space == space)
            return {int(tid): pid for tid, pid in s.execute(q)}

    def chip(self, template_id: int) -> tuple[str, bytes | None]:
        with self.session() as s:
            row = s.get(TemplateRow, template_id)
            if row is None:
                raise PersonNotFound(f"no template with id {template_id}")
            return row.person_id, row.chip_ct

    def spaces(self) -> dict[str, int]:
        with self.session() as s:
            return {
                sp: int(n)
                for sp, n in s.execute(select(TemplateRow.space, func.count()).group_by(TemplateRow.space))
            }

    def known_sources(self, person_id: str, space: str) -> set[str]:
        """Digests of the photos a person's templates of `space` were made from (a photo enrolled
        for another model does not count: enrolling it again is how that person is brought over)."""
        with self.session() as s:
            return set(
                s.scalars(
                    select(TemplateRow.source_sha256).where(
                        TemplateRow.person_id == person_id, TemplateRow.space == space
                    )
                )
            )
