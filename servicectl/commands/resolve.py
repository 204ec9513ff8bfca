"""From the command line's NAME arguments to valid Services: the directories of the command
being run, the catalog, the names asked for (``web.yaml`` taken as ``web``), unknown names
explained with the nearest one, invalid definitions reported, and the note an interrupted
action leaves. Every command body that takes names goes through here.
"""

from __future__ import annotations

import os

from servicectl.errors import Exit
from servicectl.output.face import face

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.catalog import Catalog
    from servicectl.paths import Dirs
    from servicectl.service.outcome import Outcome


class _Context:
    dirs: Dirs | None = None


_CTX = _Context()
DIR_HINT = " (give the right one with -d, or set SERVICECTL_SERVICES_DIR)"
YAML_SUFFIXES = (".yaml", ".yml")


def dirs() -> Dirs:
    """The directories of the command being run (set by dispatch.execute)."""
    assert _CTX.dirs is not None
    return _CTX.dirs


def catalog_for(
    names: list[str] | None = None,
    use_cache: bool = True,
    also: list[str] | None = None,
    dependents: list[str] | None = None,
) -> Catalog:
    """The definitions: all, or ``names`` and their dependencies; ``also``: instances of
    templates to load besides all (named by the user, neither listed nor recorded);
    ``dependents``: instead of all, those names, what depends on them, and their
    dependencies."""
    from servicectl.definitions.catalog import load_catalog

    return load_catalog(dirs(), names, use_cache, None, also or (), dependents)


def requested_names(names: tuple[str, ...] | list[str]) -> list[str]:
    """The names asked for, once each, with ``NAME.yaml``/``NAME.yml`` taken as NAME when
    that file is in the services directory (as systemctl takes ``web.service``)."""
    out = list(dict.fromkeys(names))
    if not any(n.endswith(YAML_SUFFIXES) for n in out):
        return out
    from servicectl.definitions.catalog import definition_files

    files = definition_files(dirs().services)
    for i, name in enumerate(out):
        stem, _, _ = name.rpartition(".")
        if name not in files and stem in files and os.path.basename(files[stem]) == name:
            out[i] = stem
    return list(dict.fromkeys(out))


def unknown_reason(catalog: Catalog, name: str) -> str:
    """Why ``name`` has no definition: what was looked for, and the nearest existing name."""
    if catalog.problems:
        return f"{catalog.problems[0]}{DIR_HINT}"
    import difflib

    from servicectl.definitions.catalog import definition_files, template_problem

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


def known_names(catalog: Catalog, names: list[str], unknown_code: int) -> tuple[list[str], int]:
    """Names that have a definition; report the others (a template named without an
    instance, or an instance name that cannot be one, is a usage error)."""
    from servicectl.definitions.catalog import template_problem

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
            face.error(f"{name}: no such service: {unknown_reason(catalog, name)}")
            code = max(code, unknown_code)
    return known, code


def no_services_dir(catalog: Catalog) -> bool:
    """For commands on every service: a services directory that cannot be listed is an
    error, not an empty list. True when it was reported."""
    if catalog.problems:
        face.error(catalog.problems[0] + DIR_HINT)
        return True
    return False


def valid_names(catalog: Catalog, names: list[str]) -> tuple[list[str], int]:
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


class ExplainedInterrupt:
    """``with explained_interrupt():`` says in which state an interrupted action left its
    service, then lets the interruption end servicectl (exit 130). (A class, not contextlib's
    decorator: every command imports this module.)"""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, KeyboardInterrupt):
            message = getattr(exc, "message", None)
            for line in message.splitlines() if message else []:
                face.error(line)


def explained_interrupt() -> ExplainedInterrupt:
    return ExplainedInterrupt()


def highest_code(outcomes: list[Outcome]) -> int:
    return max((o.code for o in outcomes), default=0)
