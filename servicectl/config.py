"""Service definitions: the files of a services directory in, valid Services (or Invalid
definitions, with every error) out, and the catalog of them all (SPEC §3).

The keys themselves are declared in schema.py and parsed by fields.py; YAML is read by
yamlload.py. Both are imported only when a file must be parsed (see cache.py).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from servicectl.errors import ConfigError, UntrustedError
from servicectl.paths import Dirs, untrusted_problem, untrusted_tree_problem
from servicectl.schema import (  # noqa: F401 - the definition model, for the layers above
    KNOWN_KEYS,
    LIMIT_NAMES,
    NAME_RE,
    READY_KINDS,
    UNLIMITED,
    Ready,
    Service,
    expand,
    parse_signal,
    signal_name,
)

MAX_NAME = 80  # "@servicectl/<8 hex>/NAME" must fit a 107-byte socket address; files 255 bytes
IGNORED_SUFFIXES = ("~", ".bak", ".swp", ".tmp", ".orig", ".rej")
MAX_FILE_BYTES = 1024 * 1024


class Invalid(NamedTuple):
    """A definition that could not be used, with all its errors (the first one is shown)."""

    name: str
    file: Path
    errors: tuple[ConfigError, ...]

    @property
    def first_error(self) -> ConfigError:
        return self.errors[0]


class Catalog(NamedTuple):
    """Everything in a services directory: valid services and invalid definitions by name."""

    dirs: Dirs
    services: Mapping[str, Service]
    invalid: Mapping[str, Invalid]
    problems: tuple[str, ...] = ()  # directory-level notes

    def names(self) -> list[str]:
        return sorted(set(self.services) | set(self.invalid))


def collect_errors_and_build(
    name: str, file: Path, data: Any, dirs: Dirs
) -> Service | list[ConfigError]:
    """Validate one parsed document: the Service, or every error found in it."""
    from servicectl.fields import build

    return build(name, file, data, dirs)


def build_service(name: str, file: Path, data: Any, dirs: Dirs) -> Service:
    """Validate one parsed document into a Service; raise the first ConfigError if invalid.

    All errors found are attached to the raised error as ``.all_errors``.
    """
    from servicectl.fields import build

    result = build(name, file, data, dirs)
    if isinstance(result, Service):
        return result
    first = result[0]
    first.all_errors = result  # type: ignore[attr-defined,union-attr]
    raise first


# ---------------------------------------------------------------------------------------------
# Directory


def definition_files(services_dir: Path) -> dict[str, Path]:
    """Map service name to its file, ignoring hidden, backup and package-manager leftovers.

    When both NAME.yaml and NAME.yml exist, NAME.yaml wins.
    """
    found: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(services_dir), key=lambda e: e.name)
    except (
        OSError
    ):  # missing, not a directory, a symlink loop, unreadable: see services_dir_problem
        return {}
    for entry in entries:
        fname = entry.name
        if fname.startswith(".") or fname.endswith(IGNORED_SUFFIXES) or ".dpkg-" in fname:
            continue
        stem, dot, ext = fname.rpartition(".")
        if not dot or ext not in ("yaml", "yml") or not stem:
            continue
        if stem in found and ext == "yml":
            continue
        found[stem] = Path(entry.path)
    return found


def services_dir_problem(services_dir: Path) -> str | None:
    """Why the services directory cannot be listed, or None if it can."""
    try:
        os.close(os.open(services_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    except FileNotFoundError:
        return f"the services directory {services_dir} does not exist"
    except NotADirectoryError:
        return f"the services directory {services_dir} is not a directory"
    except OSError as exc:
        return f"the services directory {services_dir} cannot be read: {exc.strerror}"
    return None


def load_file(name: str, file: Path, dirs: Dirs) -> Service | Invalid:
    """Read, parse and validate one definition file."""
    label = str(file)
    if not NAME_RE.match(name):
        err = ConfigError(
            label, None, f"{name!r} is not a valid service name (letters, digits, -, _, ., @)"
        )
        return Invalid(name, file, (err,))
    if len(name) > MAX_NAME:
        err = ConfigError(
            label,
            None,
            f"the service name is {len(name)} characters long, at most {MAX_NAME} "
            f"(its PID, state and socket names must fit); rename the file",
        )
        return Invalid(name, file, (err,))
    try:
        # Non-blocking: a FIFO planted as NAME.yaml must not hang every command.
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                err = ConfigError(label, None, "not a regular file; a definition must be one")
                return Invalid(name, file, (err,))
            untrusted = untrusted_problem(file, "definition", st)
            if untrusted is not None:  # as root: another user could have written it
                return Invalid(name, file, (UntrustedError(label, None, untrusted),))
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return Invalid(name, file, (ConfigError(label, None, f"cannot be read: {exc.strerror}"),))
    if len(raw) > MAX_FILE_BYTES:
        return Invalid(name, file, (ConfigError(label, None, "larger than 1 MiB"),))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        err = ConfigError(label, None, f"not UTF-8 text (byte {exc.start})")
        return Invalid(name, file, (err,))
    from servicectl.yamlload import parse_yaml

    try:
        data = parse_yaml(text, label)
    except ConfigError as err:
        return Invalid(name, file, (err,))
    from servicectl.fields import build

    result = build(name, file, data, dirs)
    if isinstance(result, Service):
        return result
    return Invalid(name, file, tuple(result))


def load_catalog(dirs: Dirs, only: Iterable[str] | None = None, use_cache: bool = True) -> Catalog:
    """Load every definition in the services directory.

    ``only`` limits parsing to those names and their dependencies (for speed); cross-file
    checks (unknown dependencies, cycles) are done over what was loaded. With ``use_cache``,
    a file whose identity (inode, size, mtime, ctime) is unchanged since it was last validated
    is not parsed again (see cache.py).
    """
    from servicectl import cache

    files = definition_files(dirs.services)
    problems: list[str] = []
    problem = services_dir_problem(dirs.services)
    if problem:
        problems.append(problem)
    else:
        untrusted = untrusted_tree_problem(dirs.services, "services directory")
        if untrusted is not None:  # as root: whoever can write it decides what root runs
            raise untrusted
    services: dict[str, Service] = {}
    invalid: dict[str, Invalid] = {}
    cached = cache.load(dirs) if use_cache else {}
    fresh: dict[str, tuple[cache.FileKey, Service | Invalid]] = {}

    def parse(name: str) -> Service | Invalid:
        key = cache.file_key(files[name])
        hit = cached.get(name)
        if key is not None and hit is not None and hit[0] == key:
            return hit[1]  # type: ignore[no-any-return]
        result = load_file(name, files[name], dirs)
        if key is not None and cache.file_key(files[name]) == key:
            fresh[name] = (key, result)
        return result

    def load(name: str) -> None:
        if name in services or name in invalid or name not in files:
            return
        result = parse(name)
        if isinstance(result, Service):
            services[name] = result
            if only is not None:
                for dep in result.depends:
                    load(dep)
        else:
            invalid[name] = result

    for name in files if only is None else only:
        load(name)
    if use_cache and fresh:
        kept = {n: e for n, e in cached.items() if n in files}
        kept.update(fresh)
        cache.save(dirs, kept)

    # Dependencies that name no service.
    for name, svc in list(services.items()):
        missing = [d for d in svc.depends if d not in files]
        if missing:
            err = ConfigError(
                str(svc.file),
                "depends",
                f"{', '.join(missing)}: no such service in {dirs.services}",
            )
            invalid[name] = Invalid(name, svc.file, (err,))
            del services[name]

    for cycle in find_cycles(services):
        text = " -> ".join([*cycle, cycle[0]])
        for name in cycle:
            svc = services[name]
            err = ConfigError(str(svc.file), "depends", f"dependency cycle: {text}")
            invalid[name] = Invalid(name, svc.file, (err,))
        for name in cycle:
            del services[name]
    return Catalog(dirs, services, invalid, tuple(problems))


def find_cycles(services: Mapping[str, Service]) -> list[list[str]]:
    """Every dependency cycle among valid services (each reported once, in order)."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []
    in_cycle: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for dep in services[name].depends:
            if dep not in services:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :]
                if not in_cycle.intersection(cycle):
                    cycles.append(cycle)
                    in_cycle.update(cycle)
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[name] = 2

    for name in sorted(services):
        if name not in state:
            visit(name, [])
    return cycles
