"""The shipped cohort: strangers' embeddings that every enrolled person is compared against.

One file per embedding space, pinned by SHA-256 (a replaced or corrupt file is refused, as the
models are). It holds L2-normalised embeddings of people unrelated to any user (LFW identities
with one photo each), their impostor score table and the space's standardised impostor tail
(see `thresholds`). Made by
bench/make_cohort.py.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from facegate.errors import ModelIntegrityError
from facegate.gallery.thresholds import RateTable

# space -> (file in facegate/data, SHA-256)
COHORTS: dict[str, tuple[str, str]] = {
    "dlib_resnet_v1": (
        "cohort_dlib_resnet_v1.npz",
        "dafeb03874dc751cc7111aa89cda52a00c8c9833a5ab092a9f600527f9c992d5",
    ),
}


@dataclass(frozen=True)
class Cohort:
    space: str
    embeddings: np.ndarray  # (M, d) float32, L2-normalised
    tail: RateTable  # standardised impostor score z per rate (a person's own distribution)
    scores: RateTable  # the cohort's impostor score per rate (the general population)
    meta: dict[str, Any]


def load_cohort(data: bytes, expected_sha256: str, name: str) -> Cohort:
    """Parse a cohort file's bytes after checking them against their pinned SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise ModelIntegrityError(
            f"cohort file {name} has SHA-256 {digest}, expected {expected_sha256}: corrupt or replaced",
            file=name,
        )
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        emb = np.asarray(npz["embeddings"], np.float32)
        tail = RateTable(tuple(float(r) for r in npz["tail_rates"]), tuple(float(z) for z in npz["tail_z"]))
        scores = RateTable(
            tuple(float(r) for r in npz["score_rates"]), tuple(float(t) for t in npz["score_thresholds"])
        )
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return Cohort(str(meta["space"]), emb, tail, scores, meta)


@lru_cache(maxsize=4)
def shipped_cohort(space: str) -> Cohort | None:
    """The cohort shipped for `space`, or None where none is (thresholds fall back to the FMR table)."""
    entry = COHORTS.get(space)
    if entry is None:
        return None
    name, sha = entry
    return load_cohort(resources.files("facegate.data").joinpath(name).read_bytes(), sha, name)
