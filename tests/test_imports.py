"""The package's import structure (read with ast, nothing imported): trained models live in gcml.models,
so nothing but the CLI reaches the trainer; no import cycles between packages or between files.

Every ``import``/``from ... import`` in a module counts, at top level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gcml"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """module -> gcml modules it imports (``from gcml.x import y`` counts as gcml.x.y when that is a module)."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps: set[str] = set()
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parent = parent[:len(parent) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for n in names:
                if n == "gcml" or n.startswith("gcml."):
                    while n not in files and "." in n:
                        n = n.rsplit(".", 1)[0]
                    if n != mod:
                        deps.add(n)
        out[mod] = deps
    return out


def _package(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else mod


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("package", ["gcml.models", "gcml.evaluation", "gcml.prediction", "gcml.io", "gcml.physics"])
def test_no_training_import_outside_cli(package):
    bad = sorted(f"{m} imports {d}" for m, deps in _imports().items() if _package(m) == package
                 for d in deps if _package(d) == "gcml.training")
    assert not bad, "; ".join(bad)


def test_no_cycles_between_files():
    # a package's __init__ re-exporting its own modules is not a cycle between files
    graph = {m: {d for d in deps if not (d == _package(m) and m.startswith(d + "."))}
             for m, deps in _imports().items()}
    assert _cycles(graph) == []


def test_no_cycles_between_packages():
    graph: dict[str, set[str]] = {}
    for m, deps in _imports().items():
        pm = _package(m)
        graph.setdefault(pm, set()).update(_package(d) for d in deps if _package(d) != pm)
    assert _cycles(graph) == []


def test_the_walk_sees_imports():
    """The walker finds imports at top level and inside functions (so the tests above can fail)."""
    g = _imports()
    assert "gcml.models.trained" in g["gcml.prediction.catalogue"]   # imported inside a function
    assert "gcml.models.tasks" in g["gcml.training.loop"]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
