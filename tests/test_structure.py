"""The shape of the code: imports run downward (no cycle among servicectl's modules, counting
imports inside functions but not those under TYPE_CHECKING), the core never imports typer or
rich (not even for types), and modules and functions stay a readable size.

Static: parses servicectl/*.py with ast, imports nothing of it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

PACKAGE = Path(__file__).resolve().parent.parent / "servicectl"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
FACE = {"cli", "cli_typer", "face", "statusview", "liveview"}  # may import typer or rich

# No exemptions remain: a cycle, a module over 600 lines or a function over 80 lines fails.
KNOWN_CYCLES: set[frozenset[str]] = set()
OVERSIZE_MODULES: set[str] = set()
OVERSIZE_FUNCTIONS: set[tuple[str, str]] = set()


def _modules() -> dict[str, ast.Module]:
    out = {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.glob("*.py"))}
    for p in sorted(PACKAGE.glob("*/*.py")):  # subpackages (the importer), by their dotted name
        out[f"{p.parent.name}.{p.stem}"] = ast.parse(p.read_text(), str(p))
    return out


def _type_checking_block(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST, runtime_only: bool) -> Iterator[ast.AST]:
    """Every node of ``tree``; with ``runtime_only``, not those in the body of an ``if
    TYPE_CHECKING:`` block (its ``else`` still runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if runtime_only and _type_checking_block(node):
            assert isinstance(node, ast.If)
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _imports(tree: ast.Module, names: set[str], runtime_only: bool = False) -> set[str]:
    """Every module imported anywhere in ``tree`` (top level, functions, and TYPE_CHECKING
    unless ``runtime_only``): servicectl's by their short name, others by their top-level
    package."""
    out: set[str] = set()
    for node in _nodes(tree, runtime_only):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                out.add(parts[1] if parts[0] == "servicectl" and len(parts) > 1 else parts[0])
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if node.level or parts[0] == "servicectl":
                inner = parts[1:] if parts[0] == "servicectl" else parts
                if inner and inner[0]:
                    out.add(inner[0])
                else:  # from servicectl import x, y: each may be a module
                    out |= {a.name for a in node.names if a.name in names}
            else:
                out.add(parts[0])
    return out


def _graph() -> dict[str, set[str]]:
    """Which servicectl modules each one imports at run time. An import under TYPE_CHECKING
    never runs, so it cannot take part in an import cycle; it is how a module names, in its
    annotations only, a type from a module that imports it."""
    modules = _modules()
    names = set(modules)
    return {
        m: (_imports(tree, names, runtime_only=True) & names) - {m} for m, tree in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    graph = _graph()
    for pair in KNOWN_CYCLES:
        a, b = sorted(pair)
        graph[a].discard(b)
        graph[b].discard(a)
    assert _cycles(graph) == [], "servicectl modules import each other (a cycle)"


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_imports_count_type_checking_ones_only_when_asked() -> None:
    tree = ast.parse(
        "import typing\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from servicectl.b import X\nelse:\n    import servicectl.e\n"
        "if typing.TYPE_CHECKING:\n    import servicectl.f\n"
        "def f():\n    from servicectl import c\n    import servicectl.d\n"
    )
    names = {"b", "c", "d", "e", "f"}
    assert _imports(tree, names) & names == {"b", "c", "d", "e", "f"}
    assert _imports(tree, names, runtime_only=True) & names == {"c", "d", "e"}


def test_core_never_imports_typer_or_rich() -> None:
    modules = _modules()
    names = set(modules)
    bad = {
        m: sorted(_imports(tree, names) & {"typer", "rich", "click"})
        for m, tree in modules.items()
        if m not in FACE
    }
    assert {m: b for m, b in bad.items() if b} == {}


def test_modules_are_under_600_lines() -> None:
    sizes = {p.stem: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    over = {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES and m not in OVERSIZE_MODULES}
    assert over == {}


def test_functions_are_under_80_lines() -> None:
    over = {}
    for m, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and (m, node.name) not in OVERSIZE_FUNCTIONS:
                    over[f"{m}.{node.name}"] = lines
    assert over == {}
