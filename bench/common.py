"""Helpers shared by the benchmarks: where the data is, how to skip, how to report."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the benchmarks share the tests' loopback camera (tests/support)
    sys.path.append(str(ROOT))
SHARED = Path(os.environ.get("FACEGATE_SHARED", ROOT.parent / "shared"))
LFW = SHARED / "faces" / "lfw"
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / ".cache"


def require_lfw() -> Path:
    if not (LFW / "pairs.csv").is_file():
        print(f"SKIP: LFW not found at {LFW} (set FACEGATE_SHARED)", file=sys.stderr)
        sys.exit(0)
    return LFW


def machine() -> str:
    """The cores, the CPU and Python. A VM's model name may say only "AMD EPYC": its family and
    model and whether it has AVX-512 tell one generation from another (they differ by half)."""
    cpu = platform.processor() or platform.machine()
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" in info:
        cpu = info["model name"]
        if "cpu family" in info:
            cpu += f" (family {info['cpu family']}, model {info.get('model', '?')})"
        flags = info.get("flags", "").split()
        cpu += ", AVX-512" if "avx512f" in flags else ", no AVX-512"
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


PG = os.environ.get("FACEGATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_missing() -> str | None:
    """Why the PostgreSQL the benchmarks use cannot be reached, or None."""
    import psycopg

    try:
        psycopg.connect(PG.replace("postgresql+psycopg", "postgresql"), connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL at {PG} is not reachable ({exc})"
    return None


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh schema in that database, as a URL whose search path is it; dropped afterwards."""
    import psycopg

    raw = PG.replace("postgresql+psycopg", "postgresql")
    schema = f"fg_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(raw, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG}{'&' if '?' in PG else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(raw, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
