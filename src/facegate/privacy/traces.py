"""The checks after an erasure: rows, files and index entries that still refer to the person.

Each returns how many traces it found; the receipt (`erasure.py`) lists them, and is clean when
all are 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import String, Text, func, or_, select

from facegate.errors import FacegateError
from facegate.gallery.schema import Base, ConsentRow, EventRow, PersonRow, TemplateRow
from facegate.privacy import trace_scan

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery

# Files too large to hold a person's data and too costly to scan on every erasure.
SKIP_DIRS = {"models"}


def _text_columns(table: Any) -> list[Any]:
    return [c for c in table.columns if isinstance(c.type, (String, Text))]


def database_traces(gallery: Gallery, person_id: str, names: list[str], template_ids: list[int]) -> int:
    """Rows that still refer to the person: their id anywhere in any text column, their name
    where names are kept, surviving template rows."""
    found = 0
    with gallery.store.session() as s:
        for table in Base.metadata.sorted_tables:
            cols = _text_columns(table)
            if not cols:
                continue
            cond = or_(*[c.contains(person_id, autoescape=True) for c in cols])
            found += int(s.execute(select(func.count()).select_from(table).where(cond)).scalar_one())
        for name in names:
            # Exact matches only: erasing "Ann" must not trip over "Anna".
            in_details = json.dumps({"name": name})[1:-1]  # how events.details spells it
            for query in (
                select(func.count()).select_from(PersonRow).where(PersonRow.name == name),
                select(func.count()).select_from(ConsentRow).where(ConsentRow.subject_name == name),
                select(func.count())
                .select_from(EventRow)
                .where(EventRow.details.contains(in_details, autoescape=True)),
            ):
                found += int(s.execute(query).scalar_one())
        if template_ids:
            found += int(s.execute(select(func.count()).where(TemplateRow.id.in_(template_ids))).scalar_one())
    return found


def file_traces(roots: list[Path], needles: Sequence[bytes], plain_needles: Sequence[bytes] = ()) -> int:
    """Files under `roots` (and the roots themselves, if files) that contain a needle;
    `plain_needles` (names) are looked for only in files that are not encrypted.

    The files are read by a child process (see `trace_scan`): reading the live SQLite files
    from this one would drop its database locks.
    """
    job = {
        "roots": [str(r) for r in roots],
        "skip_dirs": sorted(SKIP_DIRS),
        "needles": [n.hex() for n in needles if n],
        "plain": [n.hex() for n in plain_needles if n],
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(Path(trace_scan.__file__))],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise FacegateError(f"the file trace check failed: {done.stderr.strip()[-500:]}")
    return int(json.loads(done.stdout)["hits"])


def index_traces(gallery: Gallery, vectors: list[np.ndarray], template_ids: list[int]) -> int:
    """Template ids still in the index: found by searching with the erased vectors themselves
    (when this process still has them), or held under their ids."""
    held = sum(1 for t in template_ids if gallery.search_index.holds(t))
    if not vectors or len(gallery.index) == 0:
        return held
    _, ids = gallery.index.search(np.stack(vectors), min(len(gallery.index), 10))
    gone = set(template_ids)
    return sum(1 for i in ids.ravel().tolist() if i in gone) + held
