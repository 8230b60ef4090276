"""Owner-only files: everything facegate writes is biometric data or leads to it.

The data directory is made 0700 and the SQLite files 0600; SQLite gives its `-wal` and `-shm`
files the mode of the database file, so creating that one private is enough.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) 0700; tighten it if it is open to others."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if absent; tighten it if it is open to others."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        _tighten(path, 0o600)
    return path


def _tighten(path: Path, mode: int) -> None:
    try:
        current = path.stat().st_mode & 0o777
        if current & 0o077:
            os.chmod(path, mode)
            log.warning("%s was readable by other users (mode %o): now %o", path, current, mode)
    except OSError as exc:  # not ours to change (e.g. a shared mount): say so, carry on
        log.warning("cannot make %s private: %s", path, exc)
