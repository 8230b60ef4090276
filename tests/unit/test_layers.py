"""The layering of docs/architecture.md, checked on the import graph of src/facegate.

Every import counts: at module level, inside functions, and under `if TYPE_CHECKING:`. A module
may import its own layer or an inner one, never an outer one, and no chain of imports may come
back to where it started. When this fails, move the code to the layer that owns it (or pass
what it needs in as an argument or a `typing.Protocol`) rather than adding an exception here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "facegate"

# Inner to outer. A module belongs to the layer of its longest matching prefix; `facegate` alone
# is the package's `__init__` (the library's front door: FaceEngine, Gallery, verify, identify).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "errors/settings",
        (
            "facegate.errors",
            "facegate.settings",
            "facegate.data",
            "facegate.credentials",
            "facegate.private_files",
        ),
    ),
    ("vision", ("facegate.vision",)),
    ("gallery + match", ("facegate.gallery", "facegate.match")),
    ("events", ("facegate.events",)),
    ("access", ("facegate.access",)),
    ("video", ("facegate.video",)),
    ("privacy", ("facegate.privacy",)),
    ("eval", ("facegate.eval",)),
    ("edges", ("facegate", "facegate.api", "facegate.web", "facegate.cli")),
]

# "Nothing in vision/ knows about SQL or HTTP."
FORBIDDEN = {
    "facegate.vision": (
        "sqlalchemy",
        "alembic",
        "psycopg",
        "fastapi",
        "starlette",
        "httpx",
        "uvicorn",
    ),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a facegate module) or top-level package (third party)
    line: int

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}) imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in the file, wherever it is; facegate targets resolved to a known module."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"

    def resolve(name: str) -> str:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                yield Import(module, resolve(name) if _ours(name) else name.split(".")[0], node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            if not _ours(base):
                yield Import(module, base.split(".")[0], node.lineno)
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(module, sub if sub in known else resolve(base), node.lineno)


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            matches = module == p if p == PACKAGE else module == p or module.startswith(p + ".")
            if matches and len(p) > best:
                best, rank = len(p), i
    if rank < 0:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS in {__file__}")
    return rank


def graph() -> list[Import]:
    found = modules()
    known = set(found)
    return [imp for name, path in found.items() for imp in imports(name, path, known)]


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    succ: dict[str, set[str]] = {}
    for e in edges:
        if _ours(e.target):
            succ.setdefault(e.source, set()).add(e.target)
            succ.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is a few hundred edges, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in succ[v]:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    edges = graph()
    assert len(modules()) > 50 and len(edges) > 100
    pairs = {(e.source, e.target) for e in edges}
    # A function-level import and a TYPE_CHECKING import are both seen.
    assert ("facegate.privacy.retention", "facegate.privacy.erasure") in pairs
    assert ("facegate.privacy.export", "facegate.gallery.gallery") in pairs
    for name in modules():
        layer_of(name)


def test_no_import_from_an_inner_layer_to_an_outer_one() -> None:
    upward = sorted(
        {
            f"{e}: {LAYERS[layer_of(e.source)][0]} may not import {LAYERS[layer_of(e.target)][0]}"
            for e in graph()
            if _ours(e.target) and layer_of(e.target) > layer_of(e.source)
        }
    )
    order = " < ".join(name for name, _ in LAYERS)
    assert not upward, f"imports against the layering ({order}):\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "modules that import each other, directly or in a circle:\n" + "\n".join(
        ", ".join(c) for c in found
    )


def test_vision_knows_nothing_of_sql_or_http() -> None:
    bad = sorted(
        {
            str(e)
            for e in graph()
            for prefix, banned in FORBIDDEN.items()
            if (e.source == prefix or e.source.startswith(prefix + ".")) and e.target in banned
        }
    )
    assert not bad, "\n".join(bad)
