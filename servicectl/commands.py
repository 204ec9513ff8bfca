"""The bodies of servicectl's commands: each takes the keyword arguments of its entry in the
command table (grammar.py), prints through the Face and returns its exit code.

Heavy modules (the lifecycle, the fleet, json, difflib) are imported inside the bodies that
need them, so that one command pays only for itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from servicectl.errors import Exit, ServicectlError, StatusCode
from servicectl.face import face, plural, shown
from servicectl.states import INVALID, UNKNOWN

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from servicectl.config import Catalog
    from servicectl.grammar import Call
    from servicectl.observe import Status
    from servicectl.outcome import Outcome
    from servicectl.paths import Dirs


class _Context:
    dirs: Dirs | None = None


_CTX = _Context()
DIR_HINT = " (give the right one with -d, or set SERVICECTL_SERVICES_DIR)"
YAML_SUFFIXES = (".yaml", ".yml")


def execute(call: Call) -> int:
    """Run a decided command line; returns its exit code."""
    from servicectl.grammar import COMMANDS
    from servicectl.paths import resolve_dirs

    _CTX.dirs = resolve_dirs(*call.dirs)
    body = _body(COMMANDS[call.command].body)
    try:
        return int(body(**call.arguments()))
    except ServicectlError as exc:
        face.error(exc.message, exc.detail)
        return int(exc.exit_code)


def _body(name: str) -> Any:
    """The function a table entry names: ``name`` in this module, or ``module:function`` for a
    command that lives in its own module (imported only when that command runs)."""
    if ":" not in name:
        return globals()[name]
    import importlib

    module, _, function = name.partition(":")
    return getattr(importlib.import_module(f"servicectl.{module}"), function)


def dirs() -> Dirs:
    """The directories of the command being run (for bodies living in other modules)."""
    return _dirs()


def _dirs() -> Dirs:
    assert _CTX.dirs is not None
    return _CTX.dirs


def _catalog(
    names: list[str] | None = None, use_cache: bool = True, also: list[str] | None = None
) -> Catalog:
    """The definitions: all, or ``names`` and their dependencies; ``also``: instances of
    templates to load besides all (named by the user, neither listed nor recorded)."""
    from servicectl.config import load_catalog

    return load_catalog(_dirs(), names, use_cache, None, also or ())


def _names(names: tuple[str, ...] | list[str]) -> list[str]:
    """The names asked for, once each, with ``NAME.yaml``/``NAME.yml`` taken as NAME when
    that file is in the services directory (as systemctl takes ``web.service``)."""
    out = list(dict.fromkeys(names))
    if not any(n.endswith(YAML_SUFFIXES) for n in out):
        return out
    from servicectl.config import definition_files

    files = definition_files(_dirs().services)
    for i, name in enumerate(out):
        stem, _, _ = name.rpartition(".")
        if name not in files and stem in files and files[stem].name == name:
            out[i] = stem
    return list(dict.fromkeys(out))


def _unknown(catalog: Catalog, name: str) -> str:
    """Why ``name`` has no definition: what was looked for, and the nearest existing name."""
    if catalog.problems:
        return f"{catalog.problems[0]}{DIR_HINT}"
    import difflib

    from servicectl.config import definition_files, template_problem

    why = template_problem(catalog, name)
    if why is not None:
        return why

    where = catalog.dirs.services
    every = sorted(definition_files(where))
    near = difflib.get_close_matches(name, every, n=1)
    if not near and name.endswith(YAML_SUFFIXES):
        near = difflib.get_close_matches(name.rpartition(".")[0], every, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    if name.endswith(YAML_SUFFIXES):
        return f"neither {name} nor {name}.yaml is in {where}{hint}"
    if "@" in name and name.partition("@")[0]:
        return f"no {name}.yaml, nor a template {name.partition('@')[0]}@.yaml, in {where}{hint}"
    return f"no {name}.yaml in {where}{hint}"


def _known(catalog: Catalog, names: list[str], unknown_code: int) -> tuple[list[str], int]:
    """Names that have a definition; report the others (a template named without an
    instance, or an instance name that cannot be one, is a usage error)."""
    from servicectl.config import template_problem

    code = 0
    known = []
    for name in dict.fromkeys(names):
        why = template_problem(catalog, name)
        if why is not None:
            face.error(f"{name}: {why}")
            code = max(code, Exit.USAGE)
        elif name in catalog.services or name in catalog.invalid:
            known.append(name)
        else:
            face.error(f"{name}: no such service: {_unknown(catalog, name)}")
            code = max(code, unknown_code)
    return known, code


def _no_services_dir(catalog: Catalog) -> bool:
    """For commands on every service: a services directory that cannot be listed is an
    error, not an empty list. True when it was reported."""
    if catalog.problems:
        face.error(catalog.problems[0] + DIR_HINT)
        return True
    return False


def _invalid(catalog: Catalog, names: list[str]) -> tuple[list[str], int]:
    code = 0
    valid = []
    for name in names:
        if name in catalog.invalid:
            err = catalog.invalid[name].first_error
            face.error(f"{name}: invalid definition: {err.message}")
            code = max(code, err.exit_code)
        else:
            valid.append(name)
    return valid, code


@contextmanager
def _explained_interrupt() -> Iterator[None]:
    """Say in which state an interrupted action left its service, then let the interruption
    end servicectl (exit 130)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        message = getattr(exc, "message", None)
        for line in message.splitlines() if message else []:
            face.error(line)
        raise


def _highest(outcomes: list[Outcome]) -> int:
    return max((o.code for o in outcomes), default=0)


# ---------------------------------------------------------------------------------------------
# Actions on named services


def _each(names: tuple[str, ...], action_name: str, watched: bool = False) -> int:
    """Run a single-service action on each name; the highest code. ``watched``: the action
    reports progress (restarts), shown live on a terminal when there are several."""
    from servicectl import lifecycle, liveview

    wanted = _names(names)
    catalog = _catalog(wanted)
    known, code = _known(catalog, wanted, Exit.NOT_INSTALLED)
    valid, bad = _invalid(catalog, known)
    code = max(code, bad)
    action = getattr(lifecycle, action_name)
    with liveview.watching(watched and len(valid) > 1) as watch:
        report = watch.report(face.outcome)
        for name in valid:
            svc = catalog.services[name]
            args = (svc, catalog.dirs, watch.progress) if watched else (svc, catalog.dirs)
            try:
                with _explained_interrupt():
                    outcome = action(*args)
            except ServicectlError as exc:
                message = exc.message
                if not message.startswith(f"{name}: "):
                    message = f"{name}: {message}"  # directory-level errors name no service
                watch.done(name)
                face.error(message, exc.detail)
                code = max(code, exc.exit_code)
                continue
            report(outcome)
            code = max(code, outcome.code)
    return code


def start(names: tuple[str, ...], jobs: int) -> int:
    from servicectl import fleet, liveview

    wanted = _names(names)
    catalog = _catalog(wanted)
    known, code = _known(catalog, wanted, Exit.NOT_INSTALLED)
    several = len(fleet.dependency_closure(catalog, known)) > 1
    with liveview.watching(several) as watch, _explained_interrupt():
        report = watch.report(face.outcome)
        outcomes = fleet.start_ordered(catalog, known, jobs, report, watch.progress)
    return max(code, _highest(outcomes))


def stop(names: tuple[str, ...], jobs: int) -> int:
    from servicectl import fleet, liveview

    wanted = _names(names)
    catalog = _catalog(also=wanted)
    known, code = _known(catalog, wanted, Exit.NOT_INSTALLED)
    valid, bad = _invalid(catalog, known)
    several = len(fleet.dependents_closure(catalog, valid)) > 1
    with liveview.watching(several) as watch, _explained_interrupt():
        report = watch.report(face.outcome)
        outcomes = fleet.stop_with_dependents(catalog, valid, jobs, report, watch.progress)
    return max(code, bad, _highest(outcomes))


def restart(names: tuple[str, ...]) -> int:
    return _with_dependents(names, if_running=False)


def try_restart(names: tuple[str, ...]) -> int:
    return _with_dependents(names, if_running=True)


def _with_dependents(names: tuple[str, ...], if_running: bool) -> int:
    """restart/try-restart: the running services that depend on them are restarted too."""
    from servicectl import fleet, liveview

    wanted = _names(names)
    catalog = _catalog()
    known, code = _known(catalog, wanted, Exit.NOT_INSTALLED)
    valid, bad = _invalid(catalog, known)
    several = len(fleet.dependents_closure(catalog, valid)) > 1
    with liveview.watching(several) as watch, _explained_interrupt():
        outcomes = fleet.restart_with_dependents(
            catalog,
            valid,
            report=watch.report(face.outcome),
            if_running=if_running,
            progress=watch.progress,
        )
    return max(code, bad, _highest(outcomes))


def reload(names: tuple[str, ...]) -> int:
    return _each(names, "reload")


def force_reload(names: tuple[str, ...]) -> int:
    return _each(names, "force_reload", watched=True)


# ---------------------------------------------------------------------------------------------
# The fleet


def startall(jobs: int) -> int:
    return _all("startall", "started", jobs)


def stopall(jobs: int) -> int:
    return _all("stopall", "stopped", jobs)


def _all(action: str, verb: str, jobs: int) -> int:
    import time

    from servicectl import fleet, liveview

    t0 = time.monotonic()
    catalog = _catalog()
    if _no_services_dir(catalog):
        return Exit.NOT_CONFIGURED
    with liveview.watching(True) as watch, _explained_interrupt():
        outcomes = getattr(fleet, action)(catalog, jobs, watch.report(_timed), watch.progress)
    ok = sum(1 for o in outcomes if o.code == Exit.OK)
    failed = len(outcomes) - ok
    text = (
        f"{plural(len(outcomes), 'service')}: {ok} {verb}/ok, {failed} failed or skipped "
        f"in {time.monotonic() - t0:.2f} s"
    )
    if failed:
        face.error(text)
        return Exit.FAILURE
    face.line(text)
    return Exit.OK


def _timed(o: Outcome) -> None:
    if o.elapsed and "(" not in o.message.rsplit(" ", 1)[-1]:
        o.message += f" [{o.elapsed:.2f} s]"
    face.outcome(o)


# ---------------------------------------------------------------------------------------------
# Looking


def status(names: tuple[str, ...], as_json: bool, lines: int = 10) -> int:
    from servicectl import observe
    from servicectl.config import template_problem
    from servicectl.observe import Status
    from servicectl.paths import run_dir_problem

    asked = _names(names)
    catalog = _catalog(asked or None)
    if not asked and catalog.problems:
        if as_json:
            face.line("[]")
        _no_services_dir(catalog)
        return StatusCode.UNKNOWN
    problem = run_dir_problem(catalog.dirs.run)
    if problem is not None:
        face.error(f"{problem.message}; the status of services is unknown")
    rows: list[Status] = []
    for name in asked or catalog.names():
        if name in catalog.invalid:
            err = catalog.invalid[name].first_error
            row = Status(name, INVALID, StatusCode.UNKNOWN, error=err.message)
            row.file = str(catalog.invalid[name].file)
            rows.append(row)
        elif name in catalog.services:
            rows.append(observe.status(catalog.services[name], catalog.dirs))
        else:
            why = template_problem(catalog, name) or f"no such service: {_unknown(catalog, name)}"
            rows.append(Status(name, UNKNOWN, StatusCode.UNKNOWN, error=why))
    if as_json:
        import json

        face.line(json.dumps([r.to_dict() for r in rows], indent=2))
    elif not rows:
        face.line(f"no services defined in {shown(str(catalog.dirs.services))}")
    else:
        from servicectl import statusview

        if asked:
            statusview.blocks(rows, catalog.services, lines)
        else:
            statusview.board(rows)
    return max((r.code for r in rows), default=0)


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
        "template": svc.file.name.rpartition(".")[0] if svc.instance or is_template else None,
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
    catalog = _catalog()
    if catalog.problems:
        if as_json:
            face.line("[]")
        _no_services_dir(catalog)
        return Exit.NOT_CONFIGURED
    items = [_list_item(catalog, n) for n in sorted({*catalog.names(), *catalog.templates})]
    if as_json:
        import json

        face.line(json.dumps(items, indent=2))
    elif not items:
        face.line(f"no services defined in {shown(str(catalog.dirs.services))}")
    else:
        header = ("NAME", "TYPE", "ENABLED", "DEPENDS", "DESCRIPTION")
        face.table(header, [_list_row(i) for i in items])
    return Exit.OK


def check(names: tuple[str, ...], run_checks: bool = False) -> int:
    asked = _names(names)
    catalog = _catalog(use_cache=False, also=asked)
    code = 0
    templates = {
        n for n in asked if n in catalog.templates or (n.endswith("@") and n in catalog.invalid)
    }
    if asked:  # a template is checked on its own here (elsewhere it is not a service)
        known, code = _known(catalog, [n for n in asked if n not in templates], Exit.NOT_INSTALLED)
        wanted = [n for n in asked if n in known or n in templates]
    else:
        if _no_services_dir(catalog):
            return Exit.NOT_CONFIGURED
        wanted = sorted({*catalog.names(), *catalog.templates})
        if not wanted:
            face.error(f"no service definitions in {catalog.dirs.services}")
            return Exit.NOT_CONFIGURED
    from servicectl.preflight import check_more
    from servicectl.spawn import env_file_problems

    for name in wanted:
        errors: list[ServicectlError] = (
            list(catalog.invalid[name].errors) if name in catalog.invalid else []
        )
        svc = catalog.templates.get(name) or catalog.services.get(name)
        done = ""
        if not errors and name not in catalog.templates:
            errors += env_file_problems(catalog.services[name])
            if not errors:  # unset $VARIABLES (warnings), --run-checks
                done = check_more(catalog.services[name], run_checks, errors)
        for err in errors:
            face.error(err.message, err.detail)
            code = max(code, err.exit_code)
        if not errors and svc is not None:
            files = ", ".join(map(str, (svc.file, *svc.dropins)))
            face.line(shown(f"{name}: ok ({files}{done})"))
    return code


# ---------------------------------------------------------------------------------------------
# Generated files


def initd(
    names: tuple[str, ...], all_: bool, boot: bool, directory: Path, stdout: bool, force: bool
) -> int:
    return _generate("initd", _names(names), all_, boot, directory, stdout, force)


def unit(
    names: tuple[str, ...], all_: bool, boot: bool, directory: Path, stdout: bool, force: bool
) -> int:
    return _generate("unit", _names(names), all_, boot, directory, stdout, force)


def _generate(
    kind: str,
    names: list[str],
    all_: bool,
    boot: bool,
    directory: Path,
    stdout: bool,
    force: bool,
) -> int:
    from servicectl import shims

    chosen = sum((bool(names), all_, boot))
    if chosen != 1:
        more = "" if chosen == 0 else " (only one of them)"
        face.error(f"{kind}: name services, or give --all or --boot{more}")
        return Exit.USAGE
    if not stdout and not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        face.error(f"{kind}: the directory {directory} {what}; nothing was written")
        return Exit.FAILURE
    exe = shims.servicectl_executable()
    if boot:
        from servicectl import boot as boot_files

        make_boot = boot_files.initd_file if kind == "initd" else boot_files.unit_file
        try:
            files = [make_boot(_dirs(), exe)]
        except ServicectlError as exc:
            face.error(f"{kind} --boot: {exc.message}")
            return int(exc.exit_code)
        return _write(kind, files, directory, stdout, force, 0)
    catalog = _catalog(also=names)
    if all_ and _no_services_dir(catalog):
        return Exit.NOT_CONFIGURED
    # --all covers every definition: invalid ones are reported (exit 6), not skipped silently.
    known, code = (catalog.names(), 0) if all_ else _known(catalog, names, Exit.NOT_INSTALLED)
    wanted, bad = _invalid(catalog, known)
    code = max(code, bad)
    make = shims.initd_file if kind == "initd" else shims.unit_file
    files = []
    for name in wanted:
        try:
            files.append(make(catalog.services[name], catalog.dirs, exe))
        except ServicectlError as exc:
            face.error(f"{name}: {exc.message}")
            code = max(code, exc.exit_code)
    return _write(kind, files, directory, stdout, force, code)


def _write(
    kind: str, files: list[Any], directory: Path, stdout: bool, force: bool, code: int
) -> int:
    from servicectl import shims

    if stdout:
        for f in files:
            face.out(f.content)
        return code
    for f, result in zip(files, shims.write_files(files, directory, force)):
        label = f.name.removesuffix(".service") if kind == "unit" else f.name
        if result.ok:
            face.line(shown(f"{label}: {result.message}"))
        else:
            face.error(f"{f.name}: {result.message}")
            code = max(code, Exit.FAILURE)
    return code
