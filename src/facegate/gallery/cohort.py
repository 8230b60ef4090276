"""The shipped cohort: strangers' embeddings that every enrolled person is compared against.

One file per embedding space, pinned by SHA-256 (a replaced or corrupt file is refused, as the
models are). It holds L2-normalised embeddings of people unrelated to any user (LFW identities
with one photo each) and the space's standardised impostor tail (see `thresholds`). Made by
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
from facegate.gallery.thresholds import TailTable

# space -> (file in facegate/data, SHA-256)
COHORTS: dict[str, tuple[str, str]] = {
    "dlib_resnet_v1": (
        "cohort_dlib_resnet_v1.npz",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
}


@dataclass(frozen=True)
class Cohort:
    space: str
    embeddings: np.ndarray  # (M, d) float32, L2-normalised
    tail: TailTable
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
        tail = TailTable(tuple(float(r) for r in npz["tail_rates"]), tuple(float(z) for z in npz["tail_z"]))
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return Cohort(str(meta["space"]), emb, tail, meta)


@lru_cache(maxsize=4)
def shipped_cohort(space: str) -> Cohort | None:
    """The cohort shipped for `space`, or None where none is (thresholds fall back to the FMR table)."""
    entry = COHORTS.get(space)
    if entry is None:
        return None
    name, sha = entry
    return load_cohort(resources.files("facegate.data").joinpath(name).read_bytes(), sha, name)
