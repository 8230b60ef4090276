"""What the gallery searches: the vector index over its opened templates, who owns each
template, people's names and consent periods; and the search over them.

Derived data: rebuilt from the store (`load`), changed only after the store's transaction has
committed (`added`, `removed`, `refresh_people`). Nothing here locks: `Gallery` holds its lock
around every call, so that a store write and the index change after it are one step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from facegate.errors import EmbeddingSpaceMismatch
from facegate.gallery.cohort import Cohort
from facegate.gallery.crypto import TemplateCipher
from facegate.gallery.index import VectorIndex, make_index
from facegate.gallery.people import ConsentWindow, consent_in_force
from facegate.gallery.store import SqlStore
from facegate.gallery.templates import open_embedding
from facegate.gallery.thresholds import gallery_moments, person_thresholds, rate_thresholds
from facegate.match import Candidate, OpenSetDecision, best_per_person
from facegate.settings import IndexSettings
from facegate.vision.types import Face


@dataclass
class FaceIdentification:
    face: Face
    result: OpenSetDecision

    @property
    def name(self) -> str | None:
        return self.result.person.name if self.result.person else None

    @property
    def score(self) -> float | None:
        return self.result.candidates[0].score if self.result.candidates else None

    def to_dict(self) -> dict[str, object]:
        return {
            **self.face.to_dict(),
            "decision": self.result.decision,
            "reason": self.result.reason,
            "person": self.result.person.to_dict() if self.result.person else None,
            "candidates": [c.to_dict() for c in self.result.candidates],
        }

    def disclosed(self, threshold: float) -> dict[str, object]:
        """`to_dict` as a caller who is not the gallery's keeper may see it: an unknown face with
        no candidates, whatever the reason (below the threshold, or two people alike: whom a
        stranger resembles would let a device list enrolled people and tune a probe against
        their scores); a recognised one with the candidates at or above `threshold` only."""
        shown = (
            [] if self.result.person is None else [c for c in self.result.candidates if c.score >= threshold]
        )
        return {**self.to_dict(), "candidates": [c.to_dict() for c in shown]}


class SearchIndex:
    def __init__(self) -> None:
        self.index: VectorIndex = make_index(128)  # re-made at the dimension of the space's vectors
        self._owner: dict[int, str] = {}
        self._held: Counter[str] = Counter()  # templates per person in the index
        self._names: dict[str, str] = {}
        self._consent: dict[str, list[ConsentWindow]] = {}
        self._foreign_spaces: dict[str, int] = {}
        self._vectors: dict[int, np.ndarray] = {}  # template id -> embedding, for the thresholds
        # Per-person thresholds by (rule, target, weight), and the moments they rest on: cleared
        # when the templates change.
        self._thresholds: dict[tuple[str, float, float], dict[str, float]] = {}
        self._moments: tuple[list[str], np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def load(self, store: SqlStore, cipher: TemplateCipher, space: str, settings: IndexSettings) -> None:
        """Open every template of `space` into a fresh index; reload people and their consent.
        Until the templates are all open, what was loaded before stays."""
        ids: list[int] = []
        vecs: list[np.ndarray] = []
        owner: dict[int, str] = {}
        for tid, pid, ct in store.templates(space):
            vecs.append(open_embedding(cipher, pid, tid, ct))
            ids.append(tid)
            owner[tid] = pid
        dim = len(vecs[0]) if vecs else self.index.dim
        index = make_index(dim, settings.backend, len(ids), settings.approximate_above)
        if ids:
            index.add(np.array(ids, np.int64), np.stack(vecs))
        self.index = index
        self._owner = owner
        self._vectors = dict(zip(ids, vecs, strict=True))
        self._thresholds, self._moments = {}, None
        self._held = Counter(owner.values())
        self._foreign_spaces = {sp: n for sp, n in store.spaces().items() if sp != space}
        self.refresh_people(store)

    def catch_up(self, store: SqlStore, cipher: TemplateCipher, space: str, settings: IndexSettings) -> bool:
        """Apply what other processes changed since the last load: templates gone are removed,
        new ones opened and added (only those), people and consent re-read. False (nothing
        changed here) when a full `load` is the better way: many changes, or an index that
        should now be of the other kind (exact below `approximate_above`, HNSW above)."""
        current = store.template_owners(space)
        gone = [t for t, pid in self._owner.items() if current.get(t) != pid]
        new = [t for t, pid in current.items() if self._owner.get(t) != pid]
        kind_before = len(self._owner) > settings.approximate_above
        if (
            len(gone) + len(new) > max(1000, len(current) // 5)
            or (len(current) > settings.approximate_above) != kind_before
        ):
            return False
        if gone:
            self.index.remove(np.array(gone, np.int64))
            for tid in gone:
                self._owner.pop(tid, None)
                self._vectors.pop(tid, None)
        opened = (
            [
                (tid, pid, open_embedding(cipher, pid, tid, ct))
                for tid, pid, ct in store.templates(space, ids=new)
            ]
            if new
            else []
        )
        if opened:
            vecs = np.stack([v for _, _, v in opened])
            if len(self.index) == 0 and vecs.shape[1] != self.index.dim:  # the first template of a space
                self.index = make_index(
                    vecs.shape[1], settings.backend, len(opened), settings.approximate_above
                )
            self.index.add(np.array([t for t, _, _ in opened], np.int64), vecs)
            for tid, pid, vec in opened:
                self._owner[tid], self._vectors[tid] = pid, vec
        self._held = Counter(self._owner.values())
        self._thresholds, self._moments = {}, None
        self._foreign_spaces = {sp: n for sp, n in store.spaces().items() if sp != space}
        self.refresh_people(store)
        return True

    def refresh_people(self, store: SqlStore) -> None:
        self._names = store.person_names()
        self._consent = store.consent_windows()

    def added(self, person_id: str, template_ids: list[int], vectors: np.ndarray) -> None:
        dim = np.atleast_2d(vectors).shape[1]
        if len(self.index) == 0 and dim != self.index.dim:  # the first template of a space
            self.index = make_index(dim)
        self.index.add(np.array(template_ids, np.int64), vectors)
        for tid, vec in zip(template_ids, vectors, strict=True):
            self._owner[tid] = person_id
            self._vectors[tid] = np.asarray(vec, np.float32)
        self._held[person_id] += len(template_ids)
        self._thresholds, self._moments = {}, None

    def removed(self, person_id: str, template_ids: list[int]) -> None:
        self.index.remove(np.array(template_ids, np.int64))
        for tid in template_ids:
            self._owner.pop(tid, None)
            self._vectors.pop(tid, None)
        self._held.pop(person_id, None)
        self._thresholds, self._moments = {}, None

    def person_thresholds(
        self, cohort: Cohort, target_fpir: float, gallery_weight: float
    ) -> dict[str, float]:
        """Each enrolled person's open-set threshold for `target_fpir` (see `thresholds`).

        Cached until the templates change (an enrolment, an erasure, a reload); then the
        gallery's own pairs are scored again in one matrix product.
        """
        key = ("fpir", target_fpir, gallery_weight)
        if key not in self._thresholds:
            people, mean, std = self._gallery_moments()
            values = person_thresholds(mean, std, cohort.scores, cohort.tail, target_fpir, gallery_weight)
            self._thresholds[key] = {p: float(v) for p, v in zip(people, values, strict=True)}
        return self._thresholds[key]

    def verify_thresholds(self, cohort: Cohort, target_fmr: float, gallery_weight: float) -> dict[str, float]:
        """Each enrolled person's own 1:1 threshold for `target_fmr`: where a stranger claiming to
        be them, drawn from the cohort or from people like those enrolled, passes at that rate."""
        key = ("fmr", target_fmr, gallery_weight)
        if key not in self._thresholds:
            people, mean, std = self._gallery_moments()
            w = gallery_weight if len(people) > 1 else 0.0
            values = rate_thresholds(mean, std, cohort.scores, cohort.tail, target_fmr, w)
            self._thresholds[key] = {p: float(v) for p, v in zip(people, values, strict=True)}
        return self._thresholds[key]

    def _gallery_moments(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        if self._moments is None:
            people = sorted(self._held)
            mean = std = np.zeros(0)
            if people:
                slot = {p: i for i, p in enumerate(people)}
                tids = list(self._vectors)
                tpl = np.stack([self._vectors[t] for t in tids])
                owners = np.array([slot[self._owner[t]] for t in tids], np.int64)
                mean, std = gallery_moments(tpl, owners, len(people))
            self._moments = (people, mean, std)
        return self._moments

    def holds(self, template_id: int) -> bool:
        """Whether the index still knows whose template this id is."""
        return template_id in self._owner

    def consent_valid(self, person_id: str, when: datetime, use: str | None = None) -> bool:
        """Whether a consent in force covers `when` and `use` ("door:<name>", "identify", "verify")."""
        return any(
            consent_in_force(g, e, w, when, scope, use) for g, e, w, scope in self._consent.get(person_id, [])
        )

    @property
    def foreign_spaces(self) -> dict[str, int]:
        """Templates per other embedding space: stored, not searched."""
        return dict(self._foreign_spaces)

    def check_space(self, space: str) -> None:
        """Refuse to search when every template is another model's: nothing could ever match."""
        other = self._foreign_spaces
        if other and not self._owner:
            raise EmbeddingSpaceMismatch(
                f"the gallery's templates were made in the embedding space {', '.join(other)}, not {space}: "
                "run `facegate people reembed` to convert them from their kept face chips, or switch "
                "the embedder back (`embedder.flip`)"
            )

    def candidates(
        self, emb: np.ndarray, want: int, when: datetime, use: str | None
    ) -> list[list[Candidate]]:
        """The best `want` people per row of `emb`, among those whose consent covers `when`, `use`."""
        # Per person, not per template: this runs on every search, galleries can be large.
        allowed = {p for p in self._held if self.consent_valid(p, when, use)}
        people = len(allowed)
        total = max(len(self.index), 1)
        # A person may hold many of the top templates, and templates of people without
        # valid consent are skipped: search deeper until enough people are seen.
        depth = min(max(want * 8, 32), total)
        while True:
            scores, ids = self.index.search(emb, depth)
            found = [
                best_per_person(scores[i], ids[i], self._owner, self._names, want, allowed)
                for i in range(len(emb))
            ]
            if depth >= total or all(len(c) >= min(want, people) for c in found):
                return found
            depth = min(depth * 4, total)
