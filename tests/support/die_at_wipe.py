"""`facegate` whose erasures die at their wipe step, as if killed there: `SqlStore.reclaim` (the
wiping of freed pages, first thing after the deletion committed) becomes `os._exit(137)`.

`python die_at_wipe.py serve --port N` is `facegate serve --port N` with that one change.
"""

import os

from facegate.cli import main
from facegate.gallery.store import SqlStore


def _die(_store: SqlStore) -> str:
    os._exit(137)


if __name__ == "__main__":  # not in the vision workers, which spawn by importing this file
    SqlStore.reclaim = _die  # type: ignore[method-assign]
    main()
