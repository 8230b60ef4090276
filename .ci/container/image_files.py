"""On the host: what is (not) in the image's file system, mounted at MOUNT.

Usage: image_files.py MOUNT CHECKOUT
No compiler, pip cache, wheels, source tree or apt lists; the package's models and their licence
notices; and no file of the checkout's tests/ or bench/, nor of ../shared, anywhere in the image
(compared by content: a renamed copy counts too).
"""

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

mnt, root = Path(sys.argv[1]), Path(sys.argv[2])
problems = []

tools = ("cc", "gcc", "c++", "g++", "clang", "ld", "as", "make", "x86_64-linux-gnu-gcc-12")
for d in ("usr/bin", "usr/local/bin", "usr/sbin", "bin"):
    problems += [f"compiler or build tool /{d}/{t}" for t in tools if (mnt / d / t).exists()]
for gone in ("wheels", "src", "opt/build", "root/.cache/pip", "home/facegate/.cache/pip"):
    if (mnt / gone).exists():
        problems.append(f"/{gone} is in the image")
if lists := list((mnt / "var/lib/apt/lists").glob("*_Packages*")):
    problems.append(f"apt lists left: {len(lists)}")
problems += [f"pip cache /{p.relative_to(mnt)}" for p in mnt.glob("**/.cache/pip") if p.is_dir()]

site = next((mnt / "opt/facegate/lib").glob("python3*/site-packages"))
record = next(site.glob("facegate-*.dist-info")) / "RECORD"
names = [line.split(",", 1)[0] for line in record.read_text().splitlines()]
stray = [n for n in names if n.startswith(("tests/", "bench/", "shared/")) or "east_asian" in n]
stray += [n for n in names if "/pad/" in n]
problems += [f"facegate ships {n}" for n in stray]
for model in ("sface", "yunet", "minifasnet", "reid0095"):
    for f in ("LICENSE", "SOURCE.txt"):
        if f"facegate/data/{model}/{f}" not in names:
            problems.append(f"facegate/data/{model}/{f} missing")


def digest(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files(top: Path) -> Iterator[Path]:
    """Regular files of 64 bytes or more (smaller ones, e.g. an empty __init__.py, say nothing)."""
    for dirpath, _, filenames in os.walk(top):
        for n in filenames:
            p = Path(dirpath, n)
            if p.is_file() and not p.is_symlink() and p.stat().st_size >= 64:
                yield p


shipped = {digest(p) for p in files(root / "src")}  # a test may hold a copy of a shipped file
private: dict[str, Path] = {}
for top in (root / "tests", root / "bench", root.parent / "shared"):
    if top.is_dir():
        private.update({digest(p): p for p in files(top)})
private = {h: p for h, p in private.items() if h not in shipped}
count = 0
for p in files(mnt):
    count += 1
    if (h := digest(p)) in private:
        problems.append(f"/{p.relative_to(mnt)} is {private[h]}")

assert not problems, "\n".join(problems)
print(
    f"{count} files compared with {len(private)} of tests/, bench/ and ../shared: none inside;"
    " no compiler, pip cache, wheels, source or apt lists; models and licences present"
)
