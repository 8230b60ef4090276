"""Vector indexes behind one protocol; `make_index` picks one by setting and gallery size."""

from __future__ import annotations

from facegate.gallery.index.base import VectorIndex
from facegate.gallery.index.exact import ExactIndex

__all__ = ["ExactIndex", "VectorIndex", "make_index"]


def make_index(
    dim: int, backend: str = "auto", expected: int = 0, approximate_above: int = 50_000
) -> VectorIndex:
    """exact: numpy; faiss: FAISS flat, or HNSW above `approximate_above` templates;
    auto: numpy below `approximate_above`, FAISS HNSW above (where exact search gets slow)."""
    if backend == "exact":
        return ExactIndex(dim)
    large = expected > approximate_above
    if backend == "faiss" or (backend == "auto" and large):
        from facegate.gallery.index.faiss_index import FaissIndex

        return FaissIndex(dim, "hnsw" if large else "flat")
    if backend == "auto":
        return ExactIndex(dim)
    from facegate.errors import ConfigError

    raise ConfigError(f"unknown index backend {backend!r} (exact, faiss or auto)")
