"""The commands that show: ``status`` (the board, the block of ``status NAME``, ``--json``)
and ``list``.
"""

from __future__ import annotations

from servicectl.commands.resolve import (
    catalog_for,
    no_services_dir,
    requested_names,
    unknown_reason,
)
from servicectl.errors import Exit, StatusCode
from servicectl.output.face import face
from servicectl.states import INVALID, UNKNOWN
from servicectl.text import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from servicectl.definitions.catalog import Catalog
    from servicectl.service.status_row import Status


# ---------------------------------------------------------------------------------------------
# Looking


def status(names: tuple[str, ...], as_json: bool, lines: int = 10) -> int:
    from servicectl.definitions.catalog import template_problem
    from servicectl.paths import run_dir_problem
    from servicectl.service import status_row
    from servicectl.service.status_row import Status

    asked = requested_names(names)
    catalog = catalog_for(asked or None)
    if not asked and catalog.problems:
        if as_json:
            face.line("[]")
        no_services_dir(catalog)
        return StatusCode.UNKNOWN
    problem = run_dir_problem(catalog.dirs.run)
    if problem is not None:
        face.error(f"{problem.message}; the status of services is unknown")

    def row_of(name: str) -> Status:
        if name in catalog.invalid:
            err = catalog.invalid[name].first_error
            row = Status(name, INVALID, StatusCode.UNKNOWN, error=err.message)
            row.file = str(catalog.invalid[name].file)
            return row
        if name in catalog.services:
            try:
                svc = catalog.services[name]
                return status_row.status(svc, catalog.dirs, True, True, problem)
            except Exception as exc:  # R-VIEW-4: this row is unknown, the others stand
                from servicectl.lastresort import in_action

                return Status(name, UNKNOWN, StatusCode.UNKNOWN, error=in_action(exc))
        why = template_problem(catalog, name) or f"no such service: {unknown_reason(catalog, name)}"
        return Status(name, UNKNOWN, StatusCode.UNKNOWN, error=why)

    from servicectl.system import halves

    shown = list(asked or catalog.names())
    split = not asked and halves.worth_splitting(len(shown))  # the board: rows in two halves
    if as_json:
        return _json_rows(shown, row_of, split)
    if split:
        rows = halves.in_two(shown, row_of, status_row.encoded, status_row.decoded)
    else:
        rows = [row_of(name) for name in shown]
    if not rows:
        face.line(f"no services defined in {escape(str(catalog.dirs.services))}")
    else:
        from servicectl.output import statusview

        if asked:
            statusview.blocks(rows, catalog.services, lines)
        else:
            statusview.board(rows)
    return max((r.code for r in rows), default=0)


def _json_rows(shown: list[str], row_of: Callable[[str], Status], split: bool) -> int:
    """The rows of ``shown`` as ``json.dumps(rows, indent=2)`` writes them, without importing
    json (its encoder imports re); ``split``: in two halves, each writing its own items."""
    from servicectl.jsontext import dumps
    from servicectl.system import halves

    def item(name: str) -> tuple[int, str]:
        row = row_of(name)
        return row.code, dumps(row.to_dict(), indent=2).replace("\n", "\n  ")

    items = halves.in_two(shown, item, _same, _json_item) if split else map(item, shown)
    codes, texts = zip(*items) if shown else ((), ())
    face.line("[\n  " + ",\n  ".join(texts) + "\n]" if texts else "[]")
    return max(codes, default=0)


def _same(value: Any) -> Any:
    return value


def _json_item(data: Any) -> tuple[int, str]:
    """A board row in JSON from the other half (system/halves.py): (its code, its text at
    the list's depth, as ``json.dumps(rows, indent=2)`` writes an item); ValueError if not."""
    if type(data) is tuple and len(data) == 2 and type(data[0]) is int and type(data[1]) is str:
        return data
    raise ValueError("not a board row in JSON")


def _list_item(catalog: Catalog, name: str) -> dict[str, Any]:
    """One definition as list shows it. ``template``: the template an instance comes from (or
    a template's own name); ``instances``: a template's listed ones; ``startall``: whether
    startall starts it (enabled, and for an instance, listed)."""
    svc = catalog.services.get(name) or catalog.templates.get(name)
    if svc is None:
        err = catalog.invalid[name].first_error.message
        return {
            **{"name": name, "type": None, "enabled": None, "depends": [], "description": ""},
            **{"valid": False, "error": err, "template": None, "instances": [], "startall": False},
        }
    is_template = name in catalog.templates
    return {
        "name": name,
        "type": svc.type,
        "enabled": svc.enabled,
        "depends": [] if is_template else list(svc.depends),
        "description": svc.description,
        "valid": True,
        "error": None,
        "template": svc.file.rpartition("/")[2].rpartition(".")[0]
        if svc.instance or is_template
        else None,
        "instances": list(svc.instances) if is_template else [],
        "startall": not is_template and svc.in_startall,
    }


def _list_row(i: dict[str, Any]) -> tuple[str, ...]:
    if not i["valid"]:
        return (i["name"], INVALID, "-", "-", i["error"])
    if i["name"] == i["template"]:
        enabled = "template"  # its description would show a sample instance
        description = f"template; instances: {', '.join(i['instances']) or 'none listed'}"
    else:
        enabled = "yes" if i["startall"] else "no" if not i["enabled"] else "unlisted"
        description = i["description"]
    return (i["name"], i["type"], enabled, ",".join(i["depends"]) or "-", description)


def list_(as_json: bool) -> int:
    catalog = catalog_for()
    if catalog.problems:
        if as_json:
            face.line("[]")
        no_services_dir(catalog)
        return Exit.NOT_CONFIGURED
    items = [_list_item(catalog, n) for n in sorted({*catalog.names(), *catalog.templates})]
    if as_json:
        from servicectl.jsontext import dumps

        face.line(dumps(items, indent=2))
    elif not items:
        face.line(f"no services defined in {escape(str(catalog.dirs.services))}")
    else:
        header = ("NAME", "TYPE", "ENABLED", "DEPENDS", "DESCRIPTION")
        face.table(header, [_list_row(i) for i in items])
    return Exit.OK
