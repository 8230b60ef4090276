"""Helpers shared by the benchmarks: where the data is, how to skip, how to report."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
