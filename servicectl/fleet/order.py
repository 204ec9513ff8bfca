"""The dependency order of services: the closure of what a set depends on, of what depends on
it, and the levels in which a fleet starts (each level after the one it depends on).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from servicectl.definitions.catalog import Catalog


def dependency_closure(catalog: Catalog, names: Iterable[str]) -> set[str]:
    """``names`` and everything they depend on, transitively."""
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        svc = catalog.services.get(name)
        if svc is not None:
            todo.extend(svc.depends)
    return out


def dependents_closure(catalog: Catalog, names: Iterable[str]) -> set[str]:
    """``names`` and every service that depends on them, transitively."""
    reverse: dict[str, set[str]] = {}
    for svc in catalog.services.values():
        for dep in svc.depends:
            reverse.setdefault(dep, set()).add(svc.name)
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        todo.extend(reverse.get(name, ()))
    return out


def levels(catalog: Catalog, names: Iterable[str]) -> list[list[str]]:
    """``names`` grouped so that each service comes in a later level than everything it
    depends on, directly or through services outside ``names`` (a stop of ``base`` with
    ``top -> mid -> base`` where ``mid`` is not running stops ``top`` first all the same).
    Empty levels are left out. The catalog has no cycles."""
    chosen = set(names)
    depth: dict[str, int] = {}

    def level_of(name: str) -> int:
        if name not in depth:
            svc = catalog.services.get(name)
            depth[name] = 1 + max((level_of(d) for d in (svc.depends if svc else ())), default=-1)
        return depth[name]

    by_depth: dict[int, list[str]] = {}
    for name in sorted(chosen):
        by_depth.setdefault(level_of(name), []).append(name)
    return [by_depth[d] for d in sorted(by_depth)]
