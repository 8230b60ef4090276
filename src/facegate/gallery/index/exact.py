"""Exact search with numpy: a matrix product over every template."""

from __future__ import annotations

import numpy as np

from facegate.gallery.index.base import as_batch


class ExactIndex:
    name = "exact"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def _flush(self) -> None:
        # Appends are batched: rebuilding by add() one row at a time would be quadratic.
        if self._pending:
            self._ids = np.concatenate([self._ids, *(i for i, _ in self._pending)])
            self._vectors = np.concatenate([self._vectors, *(v for _, v in self._pending)])
            self._pending.clear()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vecs = as_batch(vectors, self.dim)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vecs):
            raise ValueError("ids and vectors differ in length")
        self._pending.append((ids, vecs.copy()))

    def remove(self, ids: np.ndarray) -> int:
        self._flush()
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        removed = int((~keep).sum())
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        return removed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._flush()
        q = as_batch(queries, self.dim)
        n = len(self._ids)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        if n == 0:
            return scores, ids
        sims = q @ self._vectors.T
        kk = min(k, n)
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (len(q), 1))
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1)
        scores[:, :kk] = np.take_along_axis(top_scores, order, axis=1)
        ids[:, :kk] = self._ids[np.take_along_axis(top, order, axis=1)]
        return scores, ids

    def __len__(self) -> int:
        return len(self._ids) + sum(len(i) for i, _ in self._pending)
