"""Gallery: enrolled, consenting people, their encrypted templates, and search over them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from facegate.errors import ConsentMissing, FacegateError, GalleryNotFound, KeyRotated, NoFaceFound, WrongKey
from facegate.gallery.audit import AuditLog
from facegate.gallery.cohort import cohort_for
from facegate.gallery.crypto import TemplateCipher, load_or_create_key_file
from facegate.gallery.enrolment import Enrolment, Refusal, decode_chip, drafts, source_digest, source_name
from facegate.gallery.index import VectorIndex
from facegate.gallery.people import (
    Consent,
    ConsentRecord,
    Deletion,
    Person,
    TemplateInfo,
    normalise_name,
)
from facegate.gallery.search import FaceIdentification, SearchIndex
from facegate.gallery.store import AuditHook, DeletionHook, SqlStore, sqlite_file
from facegate.gallery.templates import open_chip, open_embedding
from facegate.match import (
    Calibration,
    OpenSetDecision,
    Verification,
    ambiguity_margin,
    calibration_for,
    decide,
    verify,
    verify_photos,
)
from facegate.private_files import private_dir
from facegate.settings import Settings, load_settings
from facegate.vision.decode import ImageInput
from facegate.vision.engine import FaceEngine, default_space
from facegate.vision.types import Face

__all__ = ["Enrolment", "FaceIdentification", "Gallery", "Refusal"]

log = logging.getLogger(__name__)


def _not_found(settings: Settings, where: str) -> GalleryNotFound:
    return GalleryNotFound(
        f"no gallery at {where} (FACEGATE_DATA_DIR is {settings.data_dir}): check FACEGATE_DATA_DIR "
        "and FACEGATE_DATABASE_URL, or create one with `facegate init`",
        location=where,
    )


class Gallery:
    """The enrolled people and the search index over their templates.

    >>> gallery = Gallery.open()
    >>> gallery.enroll("Alice", ["alice.jpg"], consent)
    >>> [f.name for f in gallery.identify("door.jpg")]
    ['Alice']
    """

    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        cipher: TemplateCipher,
        engine: FaceEngine | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.cipher = cipher
        self._engine = engine
        self._calibration = calibration
        self._lock = threading.RLock()  # a store write and the index change after it are one step
        self.search_index = SearchIndex()
        self.audit = AuditLog.under(store, cipher, settings.audit_head_file)
        self._generation = -1
        self._foreign_warned: dict[str, int] = {}
        # Where the data key came from, when a file: after another process rotates the key,
        # the new one is read from there (`follow_key`). None: given by FACEGATE_SECRET_KEY or
        # the caller, which only a restart can change.
        self.key_file: Path | None = None
        self.created = False  # opening made this gallery: a new database and data key
        # Called with the new cipher whenever the key changes (the live service's snapshots).
        self.key_listeners: list[Callable[[TemplateCipher], None]] = []
        store.key_rotated = self.follow_key

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        engine: FaceEngine | None = None,
        database_url: str | None = None,
        secret_key: str | None = None,
        create: bool = True,
    ) -> Gallery:
        """Open the gallery in the configured database and rebuild its index. With `create`, a
        new gallery (database and data key) is made if there is none (`created` then says so);
        without, `GalleryNotFound` is raised and nothing is created."""
        settings = settings or load_settings()
        url = database_url or settings.resolved_database_url
        db = sqlite_file(url)
        if not create and db is not None and not db.exists():
            raise _not_found(settings, str(db))
        private_dir(settings.data_dir)
        store = SqlStore(url)
        try:
            if not create and not store.holds_gallery():
                raise _not_found(settings, store.location)
            return cls._open(settings, store, engine, secret_key)
        except BaseException:
            store.close()
            raise

    @classmethod
    def _open(
        cls, settings: Settings, store: SqlStore, engine: FaceEngine | None, secret_key: str | None
    ) -> Gallery:
        store.migrate()
        if secret_key is None and settings.secret_key is not None:
            secret_key = settings.secret_key.get_secret_value()
        key_file = None
        if secret_key is None:
            if not settings.key_file.exists() and store.key_check() is not None:
                # Generating a fresh key here would only hide the loss of the old one.
                raise WrongKey(
                    f"this gallery is encrypted, but its key file {settings.key_file} is missing: "
                    "restore it or set FACEGATE_SECRET_KEY"
                )
            secret_key = load_or_create_key_file(settings.key_file)
            key_file = settings.key_file
        cipher = TemplateCipher(secret_key)
        created = store.bind_key(cipher.key_check)
        gallery = cls(settings, store, cipher, engine)
        gallery.key_file = key_file
        gallery.created = created
        gallery.rebuild_index()
        return gallery

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> FaceEngine:
        if self._engine is None:
            with self._lock:  # concurrent first requests must not load the models twice
                if self._engine is None:
                    self._engine = FaceEngine(self.settings)
        return self._engine

    @property
    def space(self) -> str:
        # Without a loaded engine, the configured model's space: opening a gallery to list or
        # delete people must not cost a model load.
        return self._engine.space if self._engine is not None else default_space(self.settings)

    @property
    def foreign_spaces(self) -> dict[str, int]:
        """Templates per other embedding space, as of the last reload: stored, not searched
        (what `facegate people reembed` converts)."""
        return self.search_index.foreign_spaces

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = calibration_for(self.settings.match.calibration_file, self.space)
        return self._calibration

    @property
    def threshold(self) -> float:
        return self.calibration.threshold(self.settings.match.target_fmr)

    def open_set_thresholds(self, floor: float | None = None) -> dict[str, float] | None:
        """Each enrolled person's threshold for the target FPIR (None: the single `threshold` at
        the target FMR, when so configured or when the model ships no cohort).

        Never below `floor` (default: the 1:1 threshold): a face is not identified at a score
        that verification would reject (this binds only in galleries of a few people)."""
        found = self._person_thresholds()
        if found is None:
            return None
        floor = self.threshold if floor is None else floor
        return {p: max(t, floor) for p, t in found.items()}

    def verify_threshold(self, person_id: str) -> float:
        """The 1:1 threshold a claim to be this person is held to: the table's at the target FMR,
        raised to the person's own where `match.verify_thresholds: person` (docs/accuracy.md)."""
        m = self.settings.match
        cohort = cohort_for(m.cohort_file, self.space) if m.verify_thresholds == "person" else None
        if cohort is None:
            return self.threshold
        self.sync()
        with self._lock:
            own = self.search_index.verify_thresholds(cohort, m.target_fmr, cohort.weight(m.gallery_weight))
        return max(own.get(person_id, self.threshold), self.threshold)

    def _person_thresholds(self) -> Mapping[str, float] | None:
        """The search index's cached per-person thresholds, before any floor (no copy: a search
        reads them as they are, and `decide` applies its floor)."""
        m = self.settings.match
        if m.open_set_thresholds != "fpir":
            return None
        cohort = cohort_for(m.cohort_file, self.space)
        if cohort is None:
            return None
        with self._lock:
            return self.search_index.person_thresholds(cohort, m.target_fpir, cohort.weight(m.gallery_weight))

    @property
    def index(self) -> VectorIndex:
        """The vector index over the templates of the engine's space (template ids)."""
        return self.search_index.index

    def rebuild_index(self, *, incremental: bool = False) -> None:
        """Decrypt every template of the engine's space into a fresh index; `incremental`: only
        what changed since (other processes' writes), where that is the cheaper way."""
        with self._lock:
            generation = self.store.generation()  # read first: writes made meanwhile reload again
            args = (self.store, self.cipher, self.space, self.settings.index)
            if not (incremental and self.search_index.catch_up(*args)):
                self.search_index.load(*args)
            self._generation = generation  # only once everything is reloaded
            foreign = self.foreign_spaces
        if foreign and foreign != self._foreign_warned:  # once per change, not on every reload
            self._foreign_warned = foreign
            log.warning(
                "%s template(s) of another embedding space (%s) are not searched: "
                "run `facegate people reembed` to convert them to %s",
                sum(foreign.values()),
                ", ".join(foreign),
                self.space,
            )

    def sync(self) -> None:
        """Reload if another process changed people, consent or templates since we last looked:
        a withdrawal or an erasure made by the CLI must stop a running service matching at once."""
        try:
            if self.store.generation() != self._generation:
                self.follow_key()  # a rotation bumps the generation too (and reloads everything)
                self.rebuild_index(incremental=True)
        except KeyRotated:
            raise  # deciding on under a key the database no longer holds would write nothing
        except (SQLAlchemyError, FacegateError) as exc:
            # The database is away: keep deciding on what is cached, and try again next time.
            log.warning("could not check for changes by other processes: %s", exc)

    def check_ready(self) -> None:
        """Raise unless this gallery can serve: its database answers (`DatabaseUnavailable`)
        and opens with its key, loading a key rotated by another process if it can
        (`KeyRotated` otherwise)."""
        self.store.ping()
        self.follow_key()

    def use_key(self, cipher: TemplateCipher, audit: AuditLog | None = None) -> None:
        """From now on, work under `cipher`'s key (one the database now holds): templates,
        audit links (`audit`, or one made under the key), pseudonyms, snapshots, console
        sessions."""
        with self._lock:
            self.cipher = cipher
            self.audit = audit or AuditLog.under(self.store, cipher, self.settings.audit_head_file)
            self.store.bound_key = cipher.key_check
            for listener in self.key_listeners:
                listener(cipher)

    def follow_key(self) -> None:
        """If another process rotated the data key (`facegate keys rotate-data-key`), load the
        new one from the key file and reload the index under it; `KeyRotated` if the new key
        cannot be had (given by FACEGATE_SECRET_KEY: restart with the new one)."""
        current = self.store.key_check()
        if current is None or current == self.cipher.key_check:
            return
        with self._lock:
            if current == self.cipher.key_check:  # another thread got here first
                return
            new = None
            if self.key_file is not None and self.key_file.exists():
                candidate = TemplateCipher(load_or_create_key_file(self.key_file))
                new = candidate if candidate.key_check == current else None
            if new is None:
                raise KeyRotated(
                    "the data key was rotated by another process and this one cannot load the new "
                    "key: restart it with the new key (FACEGATE_SECRET_KEY)",
                    retry_after=1,
                )
            log.warning("the data key was rotated by another process: the new one is from %s", self.key_file)
            self.use_key(new)
            self.rebuild_index()

    def _wrote(self) -> None:
        """After our own write: no reload needed unless someone else wrote in between."""
        if self.store.last_generation == self._generation + 1:
            self._generation = self.store.last_generation

    def _audited(
        self, actor: str, action: str, details: Mapping[str, object] | None = None, results: str | None = None
    ) -> AuditHook:
        """The audit entry of a store write, made in the write's own transaction: the entry
        commits with the change or not at all. `results`: which of the store's facts to count."""

        def append(s: Session, person_id: str, facts: dict[str, Any]) -> None:
            counted = facts.get(results) if results else None
            self.audit.append(
                s,
                actor,
                action,
                None,
                {**facts, **(details or {})},
                int(counted) if isinstance(counted, int) else None,
                person=person_id,
            )

        return append

    def consent_valid(self, person_id: str, when: datetime | None = None, use: str | None = None) -> bool:
        """Whether a consent in force covers `when` and `use` ("door:<name>", "identify", "verify")."""
        return self.search_index.consent_valid(person_id, when or datetime.now(UTC), use)

    # --- enrolment ---------------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        images: Sequence[ImageInput],
        consent: Consent | None = None,
        *,
        person_id: str | None = None,
        external_id: str | None = None,
        skip_bad: bool = False,
        progress: Callable[[str], None] | None = None,
        actor: str = "library",
        liveness: bool = False,
    ) -> Enrolment:
        """Enrol a new person (or add photos to `person_id`) from photos showing one face each.

        All-or-nothing by default: any refused photo raises and nothing is written. With
        `skip_bad`, refused photos are reported in the result and the rest are enrolled.
        `liveness`: refuse photos judged presentation attacks (remote onboarding by selfie).
        """
        name = normalise_name(name)
        if not images:
            raise NoFaceFound("no images given to enrol")
        now = datetime.now(UTC)
        if consent is not None:
            consent.check(now)
        elif person_id is None or not self.consent_valid(person_id, now):
            raise ConsentMissing(
                "enrolment needs a consent record (purpose, expiry, who recorded it)"
                + (" and this person's consent is not valid now" if person_id else "")
            )
        known = self.store.known_sources(person_id, self.space) if person_id else set()
        faces: list[tuple[Face, str]] = []
        refused: list[Refusal] = []
        duplicates: list[str] = []
        for i, source in enumerate(images):
            label = source_name(source, i)
            try:
                image = self.engine.load(source)
                digest = source_digest(source, image)
                if digest in known:
                    duplicates.append(label)
                    continue
                faces.append((self.engine.enrolment_face(image, label, liveness=liveness), digest))
                known.add(digest)
            except FacegateError as exc:
                if not skip_bad:
                    raise
                refused.append(Refusal(label, exc))
            finally:
                if progress:
                    progress(label)
        if not faces:
            if refused:
                raise refused[0].error
            if person_id is None:
                raise NoFaceFound("no new photos to enrol (all were already enrolled)")
            return Enrolment(self.store.person(person_id), [], refused, duplicates)
        audit = self._audited(
            actor, "enrol", {"refused": len(refused), "consent_recorded": consent is not None}, "templates"
        )
        return self._store_enrolment(name, faces, consent, person_id, external_id, refused, duplicates, audit)

    def _store_enrolment(
        self,
        name: str,
        faces: list[tuple[Face, str]],
        consent: Consent | None,
        person_id: str | None,
        external_id: str | None,
        refused: list[Refusal],
        duplicates: list[str],
        audit: AuditHook,
    ) -> Enrolment:
        new = drafts(faces, self.engine.space, self.settings.gallery.keep_face_chips)
        with self._lock:
            pid, tids = self.store.enrol(
                person_id, name, external_id, consent, new, self.cipher.encrypt, audit
            )
            vectors = np.stack([np.asarray(f.embedding, np.float32) for f, _ in faces])
            self.search_index.added(pid, tids, vectors)
            self.search_index.refresh_people(self.store)
            self._wrote()
        return Enrolment(self.store.person(pid), tids, refused, duplicates)

    # --- people ------------------------------------------------------------------------------

    def people(self, name: str | None = None) -> list[Person]:
        return self.store.people(name)

    def person(self, person_id: str) -> Person:
        return self.store.person(person_id)

    def templates(self, person_id: str) -> list[TemplateInfo]:
        self.store.person(person_id)  # PersonNotFound if absent
        return self.store.template_infos(person_id)

    def update_person(
        self,
        person_id: str,
        *,
        name: str | None = None,
        external_id: str | None = None,
        actor: str = "library",
    ) -> Person:
        name = normalise_name(name) if name is not None else None
        changed = [f for f, v in (("name", name), ("external_id", external_id)) if v is not None]
        with self._lock:
            audit = self._audited(actor, "update_person", {"changed": changed})
            self.store.update_person(person_id, name, external_id, audit)
            self.search_index.refresh_people(self.store)
            self._wrote()
        return self.store.person(person_id)

    def add_consent(self, person_id: str, consent: Consent, actor: str = "library") -> Person:
        """Record a further consent (a renewal, a new purpose); it counts from `given_at`."""
        consent.check()
        details = {"expires_at": consent.expires_at.isoformat(), "scope": list(consent.scope)}
        with self._lock:
            self.store.add_consent(person_id, consent, self._audited(actor, "add_consent", details))
            self.search_index.refresh_people(self.store)
            self._wrote()
        return self.store.person(person_id)

    def consents(self, person_id: str) -> list[ConsentRecord]:
        self.store.person(person_id)  # PersonNotFound if absent
        return self.store.consents(person_id)

    def withdraw_consent(
        self, person_id: str, consent_id: int | None = None, *, actor: str = "library"
    ) -> list[int]:
        """Withdraw one consent record (or all in force): the person stops matching at once.

        Their templates are destroyed by the retention purge after `privacy.consent_grace_days`.
        """
        now = datetime.now(UTC)
        with self._lock:
            audit = self._audited(actor, "withdraw_consent")
            withdrawn = self.store.withdraw_consent(person_id, consent_id, now, audit)
            self.search_index.refresh_people(self.store)
            self._wrote()
        return withdrawn

    def face_chip(self, template_id: int) -> np.ndarray | None:
        pid, ct = self.store.chip(template_id)
        if ct is None:
            return None
        return decode_chip(open_chip(self.cipher, pid, template_id, ct))

    def template_vectors(self, person_id: str) -> list[np.ndarray]:
        """The person's templates of the engine's space, opened. No consent check: the caller's."""
        return [
            open_embedding(self.cipher, pid, tid, ct)
            for tid, pid, ct in self.store.templates(self.space, person_id)
        ]

    def delete(
        self,
        person_id: str,
        actor: str = "library",
        *,
        audit: bool = True,
        action: str = "delete_person",
        details: Mapping[str, object] | None = None,
        also: DeletionHook | None = None,
    ) -> Deletion:
        """Delete a person with every template, chip and consent record; drop them from the index.
        `also` writes what must commit with the deletion.

        This is the database step; `facegate.privacy.erasure.erase` adds snapshots, the wiping of
        freed pages, the trace checks and the receipt (what the CLI and the API use).
        """
        with self._lock:
            deletion = self.store.delete_person(
                person_id,
                self._audited(actor, action, details, results="templates") if audit else None,
                also,
            )
            self.search_index.removed(person_id, deletion.template_ids)
            self.search_index.refresh_people(self.store)
            self._wrote()
        return deletion

    def __len__(self) -> int:
        return len(self.index)

    # --- search ------------------------------------------------------------------------------

    def search(
        self,
        embeddings: np.ndarray,
        k: int | None = None,
        threshold: float | None = None,
        use: str | None = None,
    ) -> list[OpenSetDecision]:
        """Open-set decisions for embeddings (one per row).

        Each person is held to their threshold for `match.target_fpir`, never below `threshold`
        (default: the 1:1 threshold at `match.target_fmr`; a door passes its own). With
        `match.open_set_thresholds: fmr`, everyone is held to `threshold` alone. Only people
        whose consent is in force now, for `use` if given, can be found.
        """
        k = k or self.settings.match.top_k
        threshold = self.threshold if threshold is None else threshold
        margin = ambiguity_margin(self.settings.match.ambiguity_margin, self.calibration)
        emb = np.atleast_2d(np.asarray(embeddings, np.float32))
        now = datetime.now(UTC)
        # At least two people, so that a close second can make the answer ambiguous.
        want = max(k, 2)
        self.sync()
        with self._lock:
            found = self.search_index.candidates(emb, want, now, use)
        per_person = self._person_thresholds()  # `decide` holds each at least to `threshold`
        decisions = [decide(c, threshold, margin, per_person) for c in found]
        return [replace(d, candidates=d.candidates[:k]) for d in decisions]

    def identify(
        self, image: ImageInput, *, max_faces: int | None = None, actor: str = "library"
    ) -> list[FaceIdentification]:
        """Who is in this photo? One result per face, largest face first. Audited."""
        result = self.engine.analyse(image, max_faces or self.settings.gallery.max_faces_per_image)
        return self.identify_faces(result.faces, actor=actor)

    def identify_faces(self, faces: list[Face], *, actor: str = "library") -> list[FaceIdentification]:
        """Open-set decisions for faces already detected (embedded here if needed). Audited."""
        self.search_index.check_space(self.space)
        self.engine.embed([f for f in faces if f.embedding is None])
        found = []
        if faces:
            decisions = self.search(
                np.stack([f.embedding for f in faces if f.embedding is not None]), use="identify"
            )
            found = [FaceIdentification(f, d) for f, d in zip(faces, decisions, strict=True)]
        matched = [f.result.person.person_id for f in found if f.result.person is not None]
        self.store.touch(matched, datetime.now(UTC))
        self.audit.record(actor, "identify", None, {"faces": len(found)}, len(matched), people=matched)
        return found

    def verify_person(
        self, image: ImageInput, person_id: str, actor: str = "library", *, liveness: bool = False
    ) -> Verification:
        """1:1 against an enrolled person: the photo's largest face vs their best template.
        `liveness`: refuse a photo judged a presentation attack."""
        self.store.person(person_id)
        self.sync()
        if not self.consent_valid(person_id, use="verify"):
            raise ConsentMissing(f"person {person_id} has no valid consent; their templates are not used")
        face = self.engine.largest_face(image, liveness=liveness)
        assert face.embedding is not None
        vectors = self.template_vectors(person_id)
        if not vectors:
            hint = " (run `facegate people reembed`)" if self.foreign_spaces else ""
            raise NoFaceFound(f"person {person_id} has no templates for {self.space}{hint}")
        # Against the person's best-matching template: each template is one enrolled photo.
        threshold = self.verify_threshold(person_id)
        results = [verify(face.embedding, v, threshold, self.settings.match.target_fmr) for v in vectors]
        best = max(results, key=lambda r: r.score)
        if best.same_person:
            self.store.touch([person_id], datetime.now(UTC))
        self.audit.record(
            actor,
            "verify_person",
            None,
            {"same_person": best.same_person},
            int(best.same_person),
            person=person_id,
        )
        return best

    def verify_photos(
        self, a: ImageInput, b: ImageInput, *, actor: str = "library", liveness: bool = False
    ) -> Verification:
        """1:1 between two photos, no one enrolled involved: `facegate.verify` with this gallery's
        engine. Audited (the verdict only: neither photo concerns a known person). `liveness`:
        refuse a first photo (the selfie; the second may be an ID photo) judged an attack."""
        result = verify_photos(self.engine, a, b, liveness=liveness)
        self.audit.record(actor, "verify", None, {"same_person": result.same_person}, int(result.same_person))
        return result
