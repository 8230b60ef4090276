"""The shipped cohort statistics: how strangers score in an embedding space.

One JSON file per embedding space, pinned by SHA-256 (a replaced or corrupt file is refused, as
the models are). It holds two impostor tables measured on people unrelated to any user (LFW
identities with one photo each): the score a share of stranger pairs reach, and the standardised
tail of one face's impostor scores (see `thresholds`). Statistics only: no embedding of anyone
is shipped. Made by bench/make_cohort.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from facegate.errors import ConfigError, ModelIntegrityError
from facegate.gallery.thresholds import RateTable
from facegate.match import check_pinned

# space -> (file in facegate/data, SHA-256)
COHORTS: dict[str, tuple[str, str]] = {
    "dlib_resnet_v1": (
        "cohort_dlib_resnet_v1.json",
        "3b9c10ab602f37cf4a1fbbf22b3a8fb360b504826b4070590ae6b2c3af2d2bd6",
    ),
    "dlib_resnet_v1_flip": (
        "cohort_dlib_resnet_v1_flip.json",
        "c5779b9aa6f3b5a6b5782f9a80b8099471b250f74e4ff31af8bd034eaa29cb6e",
    ),
    "sface_2021dec": (
        "cohort_sface_2021dec.json",
        "65ce18ffa03b7bcfc71f2907528216ffec8d712cc84c52f27d0794ada8cfec8f",
    ),
    "reid0095_flip": (
        "cohort_reid0095_flip.json",
        "58cee86cdde118cb8746a560d052bc19b184586a0e58077925c4dd0514bf9105",
    ),
    "sface_2021dec+reid0095": (
        "cohort_sface_2021dec+reid0095.json",
        "13180d1163793e87b208dae55255cbcfbf50b6dd0c64dd96ecf901a2fd635b64",
    ),
}


@dataclass(frozen=True)
class Cohort:
    space: str
    tail: RateTable  # standardised impostor score z per rate (a person's own distribution)
    scores: RateTable  # the cohort's impostor score per rate (the general population)
    meta: dict[str, Any]

    @property
    def gallery_weight(self) -> float:
        """The gallery weight measured for this space (docs/accuracy.md); 0.2 where none was."""
        return float(self.meta.get("gallery_weight", 0.2))

    def weight(self, configured: float | None) -> float:
        return self.gallery_weight if configured is None else configured


def load_cohort(data: bytes, expected_sha256: str, name: str) -> Cohort:
    """Parse a cohort file's bytes after checking them against their pinned SHA-256."""
    check_pinned(data, expected_sha256, name)
    try:
        table = json.loads(data)
        meta = dict(table["meta"])
        tail = RateTable(tuple(map(float, table["tail"]["rates"])), tuple(map(float, table["tail"]["z"])))
        scores = RateTable(
            tuple(map(float, table["scores"]["rates"])), tuple(map(float, table["scores"]["thresholds"]))
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"cohort file {name} is not valid: {exc!r}", file=name) from exc
    return Cohort(str(meta["space"]), tail, scores, meta)


def cohort_for(cohort_file: Path | None, space: str) -> Cohort | None:
    """The configured cohort file, else the one shipped for `space` (None where there is none).
    A file made in another embedding space is refused: its scores mean nothing for these."""
    if cohort_file is None:
        return shipped_cohort(space)
    try:
        cohort = _cohort_file(str(cohort_file), Path(cohort_file).stat().st_mtime_ns)
    except OSError as exc:
        raise ConfigError(f"cannot read cohort file {cohort_file}: {exc}") from exc
    if cohort.space != space:
        raise ConfigError(
            f"cohort file {cohort_file} was made for the embedding space {cohort.space}, but the embedder "
            f"now makes {space}: run `facegate eval cohort` again (or unset match.cohort_file)"
        )
    return cohort


@lru_cache(maxsize=4)
def _cohort_file(path: str, mtime_ns: int) -> Cohort:
    """An operator's cohort file, read once per version (searches ask for it on every call)."""
    data = Path(path).read_bytes()
    return load_cohort(data, hashlib.sha256(data).hexdigest(), path)


@lru_cache(maxsize=4)
def shipped_cohort(space: str) -> Cohort | None:
    """The cohort shipped for `space`, or None where none is (thresholds fall back to the FMR table)."""
    entry = COHORTS.get(space)
    if entry is None:
        return None
    name, sha = entry
    return load_cohort(resources.files("facegate.data").joinpath(name).read_bytes(), sha, name)
