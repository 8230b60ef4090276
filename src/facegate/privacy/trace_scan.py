"""Look for byte strings in files, run in a child process by `traces.file_traces`.

Why a child process: a process that opens and closes a SQLite database file with plain
`open()`/`close()` drops every POSIX lock it holds on that file (a documented SQLite pitfall),
so a trace check inside `facegate serve` would let the next CLI command delete the live
write-ahead log. Locks belong to processes, so a child may read the raw files safely.

Standard library only: the child runs this file by path, without importing facegate.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def scan(roots: list[str], skip_dirs: list[str], needles: list[bytes], plain: list[bytes]) -> int:
    """Files under `roots` (and the roots themselves, if files) holding a needle; `plain`
    needles (names) count only in files that are not encrypted (`.enc`)."""
    hits = 0
    for root in map(Path, roots):
        if root.is_file():
            paths = [root]
        elif root.is_dir():
            paths = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if d not in skip_dirs]
                paths.extend(Path(dirpath) / f for f in filenames)
        else:
            continue
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in needles) or (
                not path.name.endswith(".enc") and any(n in data for n in plain)
            ):
                hits += 1
    return hits


def main() -> None:
    job = json.load(sys.stdin)
    hits = scan(
        job["roots"],
        job["skip_dirs"],
        [bytes.fromhex(n) for n in job["needles"]],
        [bytes.fromhex(n) for n in job["plain"]],
    )
    json.dump({"hits": hits}, sys.stdout)


if __name__ == "__main__":
    main()
