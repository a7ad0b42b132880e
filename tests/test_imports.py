"""The house's floors: no import cycle, nothing below serving imports serving or the package root, and
base imports neither io nor the algorithms (io not the algorithms).

Every import statement counts, also those inside functions (a lazy import hides a cycle, it does not
remove it). Edges go from a module to the module it names (``from pkg import sub`` names ``pkg.sub``
when that is a module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sagelocal"
LOWER_FLOORS = ("sagelocal.base", "sagelocal.io", "sagelocal.algorithms")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([name] if name else []))


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node.level, node.module)
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        out.update(t for t in targets if t.split(".")[0] == "sagelocal" and t != module)
    return {t for t in out if t in MODULES}


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports():
    # the walker must find real edges, else the tests below would pass on nothing
    assert "sagelocal.base.errors" in GRAPH["sagelocal.io.channel"]
    assert "sagelocal.io.channel" in GRAPH["sagelocal.io"]


def test_no_import_cycle():
    assert _cycles() == []


#: floor -> the floors above it, which it must not import (data flows base -> io -> algorithms -> serving)
ABOVE = {"sagelocal.base": ("sagelocal.io", "sagelocal.algorithms"), "sagelocal.io": ("sagelocal.algorithms",)}


@pytest.mark.parametrize("floor", sorted(ABOVE))
def test_a_floor_imports_nothing_above_it(floor):
    bad = sorted(f"{m} -> {t}" for m in GRAPH if m.startswith(floor) for t in GRAPH[m] if t.startswith(ABOVE[floor]))
    assert bad == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(LOWER_FLOORS)))
def test_lower_floors_import_neither_serving_nor_the_package_root(module):
    bad = sorted(t for t in GRAPH[module] if t == "sagelocal" or t.startswith("sagelocal.serving"))
    assert bad == [], f"{module} imports {bad}"
