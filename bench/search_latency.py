"""1:N search latency and recall@1: exact numpy vs facegate's FAISS indexes, 10k to 1M templates.

    python bench/search_latency.py [--sizes 10000 100000 1000000]

Templates are synthetic but shaped like a gallery: identities are random unit vectors, each
with 3 templates scattered around it, and each query is a fresh noisy view of an enrolled
identity (cosine ~0.95 to its templates, as real genuine pairs). Recall@1 is against exact
search: the share of queries whose best template is the one exact search finds.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from facegate.gallery.index import ExactIndex
from facegate.gallery.index.faiss_index import FaissIndex

from common import RESULTS, machine

DIM = 128


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def gallery(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    people = unit(rng.normal(size=(n // 3 + 1, DIM)))
    owner = np.repeat(np.arange(len(people)), 3)[:n]
    templates = unit(people[owner] + rng.normal(scale=0.045, size=(n, DIM)))
    return templates, people


def timed_search(index: object, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[float]]:
    lat = []
    ids_all = []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q[None, :], k)  # type: ignore[attr-defined]
        lat.append((time.perf_counter() - t) * 1000)
        ids_all.append(ids[0])
    return np.array(ids_all), lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    report: dict[str, object] = {"machine": machine(), "dim": DIM, "queries": args.queries}
    for n in args.sizes:
        templates, people = gallery(n, rng)
        ids = np.arange(n, dtype=np.int64)
        who = rng.integers(0, len(people) - 1, args.queries)
        queries = unit(people[who] + rng.normal(scale=0.045, size=(args.queries, DIM)))
        row: dict[str, object] = {}
        truth = None
        for name, make in (
            ("numpy exact", lambda: ExactIndex(DIM)),
            ("faiss flat", lambda: FaissIndex(DIM, "flat")),
            ("faiss hnsw", lambda: FaissIndex(DIM, "hnsw")),
        ):
            index = make()
            t = time.perf_counter()
            index.add(ids, templates)
            index.search(queries[:1], 1)  # ExactIndex concatenates on first search
            build = time.perf_counter() - t
            got, lat = timed_search(index, queries, 10)
            if truth is None:
                truth = got[:, 0]
            row[name] = {
                "build_s": round(build, 2),
                "p50_ms": round(float(np.percentile(lat, 50)), 3),
                "p99_ms": round(float(np.percentile(lat, 99)), 3),
                "recall_at_1": float((got[:, 0] == truth).mean()),
            }
            print(n, name, row[name], flush=True)
            del index
        base = row["numpy exact"]["p50_ms"]  # type: ignore[index]
        for name in ("faiss flat", "faiss hnsw"):
            row[name]["speedup_vs_numpy_p50"] = round(base / row[name]["p50_ms"], 1)  # type: ignore[index]
        report[str(n)] = row
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search_latency.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
