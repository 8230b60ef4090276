"""The `VectorIndex` seam: inner-product search over L2-normalised templates."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorIndex(Protocol):
    """Maps template ids (int64) to vectors; `search` returns the best inner products."""

    name: str
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n_queries, k), best first; missing slots have id -1."""
        ...

    def __len__(self) -> int: ...


def as_batch(vectors: np.ndarray, dim: int) -> np.ndarray:
    arr = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
    if arr.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got {arr.shape[1]}")
    return arr
