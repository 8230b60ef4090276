"""Vector indexes agree with exact search, and removals take effect at once."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.gallery.index import ExactIndex, VectorIndex, make_index
from facegate.gallery.index.faiss_index import FaissIndex

pytestmark = pytest.mark.unit


def _data(n: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.arange(1000, 1000 + n, dtype=np.int64), v


@pytest.mark.parametrize("index", [ExactIndex(32), FaissIndex(32, "flat"), FaissIndex(32, "hnsw")])
def test_search_matches_brute_force(index: VectorIndex) -> None:
    ids, v = _data(500)
    index.add(ids[:200], v[:200])
    index.add(ids[200:], v[200:])
    assert len(index) == 500
    q = v[:20] + 0.05 * np.random.default_rng(1).normal(size=(20, 32)).astype(np.float32)
    scores, got = index.search(q, 5)
    truth = np.argsort(-(q @ v.T), axis=1)[:, :5]
    assert (got[:, 0] == ids[truth[:, 0]]).all()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


@pytest.mark.parametrize("index", [ExactIndex(32), FaissIndex(32, "flat"), FaissIndex(32, "hnsw")])
def test_removed_vectors_are_never_returned(index: VectorIndex) -> None:
    ids, v = _data(300)
    index.add(ids, v)
    assert index.remove(ids[:100]) == 100
    assert len(index) == 200
    _scores, got = index.search(v[:100], 3)
    assert not np.isin(got, ids[:100]).any()
    assert index.remove(np.array([1, 2, 3])) == 0


def test_hnsw_rebuilds_after_many_removals() -> None:
    index = FaissIndex(32, "hnsw")
    ids, v = _data(3000)
    index.add(ids, v)
    index.remove(ids[:1500])
    assert len(index) == 1500 and not index._removed  # rebuilt without tombstones
    _, got = index.search(v[1500:1510], 1)
    assert (got[:, 0] == ids[1500:1510]).all()


def test_empty_index_and_short_results() -> None:
    for index in (ExactIndex(8), FaissIndex(8, "flat")):
        s, i = index.search(np.ones((2, 8), np.float32), 3)
        assert (i == -1).all() and np.isneginf(s).all()
        index.add(np.array([7]), np.ones((1, 8), np.float32) / np.sqrt(8))
        s, i = index.search(np.ones((1, 8), np.float32) / np.sqrt(8), 3)
        assert i[0, 0] == 7 and (i[0, 1:] == -1).all() and s[0, 0] == pytest.approx(1.0)


def test_make_index_chooses_by_size() -> None:
    assert make_index(8, "auto", 10).name == "exact"
    assert make_index(8, "auto", 100_000, approximate_above=50_000).name == "faiss-hnsw"
    assert make_index(8, "faiss", 10).name == "faiss-flat"
    with pytest.raises(ValueError, match="dimension"):
        ExactIndex(8).add(np.array([1]), np.ones((1, 4), np.float32))
