"""The shape of the code: the layers, as data, and imports that only run downward through them;
no import cycle among modules; the core never imports typer or rich (not even for types);
package ``__init__`` files import nothing; modules and functions stay a readable size.

Static: parses servicectl/**/*.py with ast, imports nothing of it. docs/design.md draws the
same layers; servicectl/__init__.py lists them for a reader of the code.
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

# The layers, bottom first. A module may import modules of its own layer and of the layers
# below it, never above: at the top level, inside functions and under TYPE_CHECKING alike.
# Each entry is a package of servicectl (every module in it) or a single module.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "servicectl",
            "servicectl.paths",
            "servicectl.errors",
            "servicectl.states",
            "servicectl.text",
            "servicectl.lastresort",
            "servicectl.tuples",
            "servicectl.digests",
            "servicectl.jsontext",
        ),
    ),
    ("files", ("servicectl.files",)),
    ("definitions", ("servicectl.definitions",)),
    ("system", ("servicectl.system",)),
    ("service", ("servicectl.service",)),
    ("supervisor", ("servicectl.supervisor",)),
    ("fleet", ("servicectl.fleet",)),
    ("output", ("servicectl.output",)),
    ("commands", ("servicectl.commands",)),
    ("cli", ("servicectl.cli", "servicectl.__main__")),
]
# Edges being removed by work in progress (each names where it goes); empty when done.
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CYCLES: list[list[str]] = []
# Where typer and rich may be imported: the entry and the output layer.
FACE = ("servicectl.cli", "servicectl.output")


def _dotted(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    """Every module of the package by its dotted name (``servicectl.system.proc``)."""
    return {
        _dotted(p): ast.parse(p.read_text(), str(p))
        for p in sorted(PACKAGE.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


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


def _resolve(module: str, level: int, here: str, is_package: bool) -> str:
    """The absolute name of an import's module (relative imports resolved against ``here``)."""
    if not level:
        return module
    base = here.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imports(
    tree: ast.Module,
    names: set[str],
    here: str = "",
    is_package: bool = False,
    runtime_only: bool = False,
) -> set[str]:
    """Every module imported anywhere in ``tree`` (top level, functions, and TYPE_CHECKING
    unless ``runtime_only``): servicectl's by their dotted name (``from servicectl.x import
    y`` names ``servicectl.x.y`` when that is a module), others by their top-level package."""
    out: set[str] = set()
    for node in _nodes(tree, runtime_only):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.add(
                    alias.name if alias.name.startswith("servicectl") else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node.module or "", node.level, here, is_package)
            if module == "servicectl" or module.startswith("servicectl."):
                subs = {f"{module}.{a.name}" for a in node.names} & names
                out |= subs or {module}
                if subs and module in names and len(subs) < len(node.names):
                    out.add(module)
            else:
                out.add(module.split(".")[0])
    return out


def _graph(runtime_only: bool = False) -> dict[str, set[str]]:
    """Which servicectl modules each one imports. An import under TYPE_CHECKING never runs,
    so it takes no part in an import cycle (``runtime_only``); it still counts for layers."""
    modules = _modules()
    names = set(modules)
    graph = {}
    for m, tree in modules.items():
        is_package = (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()
        found = _imports(tree, names, m, is_package, runtime_only)
        graph[m] = {n for n in found if n in names and n != m}
    return graph


def layer_of(module: str) -> int:
    """The index in LAYERS of the most specific entry that holds ``module``."""
    best, best_len = -1, -1
    for i, (_, members) in enumerate(LAYERS):
        for member in members:
            inside = module == member or (
                module.startswith(member + ".") and member != "servicectl"
            )
            if inside and len(member) > best_len:
                best, best_len = i, len(member)
    return best


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


def test_every_module_has_a_layer() -> None:
    assert [m for m in _modules() if layer_of(m) < 0] == []


def test_every_layer_package_says_what_it_owns() -> None:
    """Each layer package's docstring says what it owns and what it may import."""
    for _, members in LAYERS[1:]:
        for member in members:
            init = PACKAGE.parent / member.replace(".", "/") / "__init__.py"
            if init.exists():
                doc = ast.get_docstring(ast.parse(init.read_text())) or ""
                assert "May import" in doc, f"{init}: say what it owns and may import"


def test_imports_run_downward() -> None:
    """No module imports from a layer above its own (functions and TYPE_CHECKING included)."""
    up = {
        f"{m} ({LAYERS[layer_of(m)][0]}) -> {n} ({LAYERS[layer_of(n)][0]})"
        for m, targets in _graph().items()
        for n in targets
        if layer_of(n) > layer_of(m) and (m, n) not in KNOWN_UPWARD
    }
    assert sorted(up) == []


def test_the_layer_check_sees_an_upward_import() -> None:
    tree = ast.parse("def f():\n    from servicectl.commands import dispatch\n")
    names = {"servicectl.commands.dispatch", "servicectl.system.proc"}
    found = _imports(tree, names, "servicectl.system.proc")
    assert found == {"servicectl.commands.dispatch"}
    assert layer_of("servicectl.commands.dispatch") > layer_of("servicectl.system.proc")
    assert layer_of("servicectl.errors") == 0 and layer_of("servicectl") == 0


def test_package_inits_import_nothing() -> None:
    """A package's ``__init__`` only documents it: importing a layer costs nothing."""
    for init in PACKAGE.rglob("__init__.py"):
        if init.parent == PACKAGE or "__pycache__" in init.parts:
            continue
        body = ast.parse(init.read_text()).body
        code = [
            n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        ]
        assert code == [], f"{init} runs code"


def test_no_import_cycle() -> None:
    found = [c for c in _cycles(_graph(runtime_only=True)) if c not in KNOWN_CYCLES]
    assert found == [], "servicectl modules import each other"


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
    names = {f"servicectl.{n}" for n in "bcdef"}
    assert _imports(tree, names) & names == names
    assert _imports(tree, names, runtime_only=True) & names == {
        "servicectl.c",
        "servicectl.d",
        "servicectl.e",
    }


def test_core_never_imports_typer_or_rich() -> None:
    modules = _modules()
    names = set(modules)
    bad = {
        m: sorted(_imports(tree, names) & {"typer", "rich", "click"})
        for m, tree in modules.items()
        if not m.startswith(FACE)
    }
    assert {m: b for m, b in bad.items() if b} == {}


def test_modules_are_under_600_lines() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")
    }
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_functions_are_under_80_lines() -> None:
    over = {}
    for m, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    over[f"{m}.{node.name}"] = lines
    assert over == {}
