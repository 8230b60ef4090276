"""FAISS: an exact flat index for small galleries, HNSW for large ones.

HNSW cannot remove vectors, so removals are hidden at once (an id selector excludes them from
every search) and the graph is rebuilt once they reach a tenth of the index.
"""

from __future__ import annotations

import faiss
import numpy as np

from facegate.gallery.index.base import as_batch


class FaissIndex:
    def __init__(self, dim: int, kind: str = "flat", hnsw_m: int = 32, ef_search: int = 128) -> None:
        if kind not in ("flat", "hnsw"):
            raise ValueError(f"unknown FAISS index kind {kind!r}")
        self.dim = dim
        self.kind = kind
        self.name = f"faiss-{kind}"
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self._index = self._new()
        self._vectors: dict[int, np.ndarray] = {}  # HNSW only: kept to rebuild without the store
        self._removed: set[int] = set()

    def _new(self) -> faiss.Index:
        if self.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = 80
        inner.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap2(inner)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vecs = as_batch(vectors, self.dim)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vecs):
            raise ValueError("ids and vectors differ in length")
        if self.kind == "hnsw":
            if self._removed.intersection(ids.tolist()):
                self._rebuild()  # a hidden old vector under a reused id must not come back
            for i, v in zip(ids.tolist(), vecs, strict=True):
                self._vectors[i] = v
                self._removed.discard(i)
        self._index.add_with_ids(vecs, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self.kind == "flat":
            return int(self._index.remove_ids(faiss.IDSelectorArray(ids)))
        present = [i for i in ids.tolist() if i in self._vectors]
        for i in present:
            del self._vectors[i]
            self._removed.add(i)
        if len(self._removed) > max(1000, len(self._vectors) // 10):
            self._rebuild()
        return len(present)

    def _rebuild(self) -> None:
        self._index = self._new()
        self._removed.clear()
        if self._vectors:
            ids = np.fromiter(self._vectors.keys(), dtype=np.int64, count=len(self._vectors))
            self._index.add_with_ids(np.stack(list(self._vectors.values())), ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = as_batch(queries, self.dim)
        if self._index.ntotal == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        params = None
        if self._removed:
            excluded = np.fromiter(self._removed, dtype=np.int64, count=len(self._removed))
            self._selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(excluded))
            params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                sel=self._selector, efSearch=max(self.ef_search, k)
            )
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                efSearch=max(self.ef_search, k)
            )
        scores, ids = self._index.search(q, k, params=params)
        scores[ids < 0] = -np.inf
        return scores, ids

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._removed)
