"""Service definitions: the files of a services directory in, valid Services (or Invalid
definitions, with every error) out, and the catalog of them all.

The keys themselves are declared in schema.py and parsed by reader.py and the
parsers of each kind of key (build.py); YAML is read by
yamlload.py. Both are imported only when a file must be parsed (see cache.py).
"""

from __future__ import annotations

import os

from servicectl.definitions.dropins import skipped
from servicectl.definitions.names import (
    INSTANCE_CHARS,
    SAMPLE_INSTANCE,
    is_template,
    split_instance,
    valid_name,
)
from servicectl.definitions.schema import Service
from servicectl.errors import ConfigError
from servicectl.paths import Dirs, untrusted_tree_problem
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any

MAX_NAME = 80  # "@servicectl/<8 hex>/NAME" must fit a 107-byte socket address; files 255 bytes


class Invalid(NamedTuple):
    """A definition that could not be used, with all its errors (the first one is shown)."""

    name: str
    file: str
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
    templates: Mapping[str, Service] = {}  # valid templates (NAME@), checked with a sample

    def names(self) -> list[str]:
        """Every service and invalid definition (a valid template is not a service: its
        instances are)."""
        return sorted(set(self.services) | set(self.invalid))


def collect_errors_and_build(
    name: str, file: str, data: Any, dirs: Dirs
) -> Service | list[ConfigError]:
    """Validate one parsed document: the Service, or every error found in it."""
    from servicectl.definitions.build import build

    return build(name, file, data, dirs)


def build_service(name: str, file: str, data: Any, dirs: Dirs) -> Service:
    """Validate one parsed document into a Service; raise the first ConfigError if invalid.

    All errors found are attached to the raised error as ``.all_errors``.
    """
    from servicectl.definitions.build import build

    result = build(name, file, data, dirs)
    if isinstance(result, Service):
        return result
    first = result[0]
    first.all_errors = result  # type: ignore[attr-defined,union-attr]
    raise first


# ---------------------------------------------------------------------------------------------
# Directory


def definition_files(services_dir: str) -> dict[str, str]:
    """Map service name to its file, ignoring hidden, backup and package-manager leftovers.

    When both NAME.yaml and NAME.yml exist, NAME.yaml wins. A template is there as NAME@.
    """
    return definition_listing(services_dir)[0]


def definition_listing(services_dir: str) -> tuple[dict[str, str], frozenset[str]]:
    """``definition_files``, and every name in the directory (drop-in directories among them)."""
    found: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(services_dir), key=lambda e: e.name)
    except (
        OSError
    ):  # missing, not a directory, a symlink loop, unreadable: see services_dir_problem
        return {}, frozenset()
    for entry in entries:
        fname = entry.name
        if skipped(fname):
            continue
        stem, dot, ext = fname.rpartition(".")
        if not dot or ext not in ("yaml", "yml") or not stem:
            continue
        if stem in found and ext == "yml":
            continue
        found[stem] = entry.path
    return found, frozenset(e.name for e in entries)


class NamedFiles:
    """``definition_files`` of a services directory for a load of a few names: each name is
    looked up by its own ``lstat`` (NAME.yaml, else NAME.yml: what the listing would give),
    and the directory is listed only if the whole mapping is walked. ``status NAME`` or
    ``start NAME`` among a thousand definitions lists no thousand names."""

    def __init__(self, services_dir: str) -> None:
        self.where = services_dir
        self.found: dict[str, str | None] = {}
        self.every: dict[str, str] | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        if name not in self.found:
            self.found[name] = self._look(name)
        return self.found[name] or default

    def _look(self, name: str) -> str | None:
        if not name or "/" in name or "\0" in name or skipped(f"{name}.yaml"):
            return None  # (a name with a slash would be a path: no listed stem has one)
        for ext in ("yaml", "yml"):
            path = os.path.join(self.where, f"{name}.{ext}")
            try:
                os.lstat(path)
            except OSError:
                continue
            return path
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> str:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def _all(self) -> dict[str, str]:
        if self.every is None:
            self.every = definition_listing(self.where)[0]
        return self.every

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def items(self) -> Iterable[tuple[str, str]]:
        return self._all().items()


def services_dir_problem(services_dir: str) -> str | None:
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


def _name_problem(name: str, instance: bool) -> str | None:
    if not valid_name(name):
        return f"{name!r} is not a valid service name (letters, digits, -, _, ., @)"
    if len(name) > MAX_NAME:
        fix = "use a shorter instance name" if instance else "rename the file"
        return (
            f"the service name is {len(name)} characters long, at most {MAX_NAME} "
            f"(its PID, state and socket names must fit); {fix}"
        )
    return None


def instance_for(name: str, file: str) -> str | None:
    """What {instance} stands for in the service ``name`` defined by ``file``: its INSTANCE
    (an instance of a template, or a file named NAME@INSTANCE.yaml), a sample for a template
    checked on its own, or None for a plain service."""
    from servicectl.definitions.dropins import definition_stem

    if is_template(definition_stem(file)) and name == definition_stem(file):
        return SAMPLE_INSTANCE
    split = split_instance(name)
    return split[1] if split else None


def load_file(
    name: str, file: str, dirs: Dirs, replace: Mapping[str, str] | None = None
) -> Service | Invalid:
    """Read, parse and validate one definition (for an instance NAME@INSTANCE, ``file`` is the
    template NAME@.yaml) with its drop-ins merged over it. ``replace`` maps a drop-in's path to
    the file to read instead (edit validates an edited copy that way), existing or not."""
    from servicectl.definitions import dropins

    problem = _name_problem(name, name != dropins.definition_stem(file))
    if problem is not None:
        return Invalid(name, file, (ConfigError(str(file), None, problem),))
    try:
        data = dropins.read_document(file, "definition")
    except ConfigError as err:
        return Invalid(name, file, (err,))
    replace = replace or {}
    paths, errors = dropins.dropin_files(name, file, replace)
    layers: list[tuple[str, Any]] = []
    for path in paths:
        source = replace.get(path, path)
        try:
            layers.append((str(source), dropins.read_document(source, "drop-in")))
        except ConfigError as err:
            errors.append(err)
    data, origin, merge_errors = dropins.merge(data, layers)
    errors += merge_errors
    if errors:
        return Invalid(name, file, tuple(errors))
    from servicectl.definitions.build import build

    stem = dropins.definition_stem(file)
    instance = instance_for(name, file)
    used = tuple(label for label, _ in layers)
    result = build(name, file, data, dirs, instance, is_template(stem), used)
    if isinstance(result, Service):
        return result
    return Invalid(name, file, tuple(dropins.attribute(result, str(file), origin)))


def definition_of(files: Mapping[str, str], name: str) -> str | None:
    """The file that defines ``name``: its own, or for NAME@INSTANCE the template NAME@.yaml."""
    if name in files:
        return files[name]
    split = split_instance(name)
    return files.get(split[0]) if split else None


def recorded_instances(run_dir: str, templates: Iterable[str]) -> list[str]:
    """Instances of these templates (stems NAME@) that have a state record in the run
    directory: they run, or ran and were not stopped."""
    stems = set(templates)
    if not stems:
        return []
    try:
        with os.scandir(run_dir) as entries:
            names = [e.name[: -len(".state")] for e in entries if e.name.endswith(".state")]
    except OSError:
        return []
    out = []
    for name in names:
        split = split_instance(name)
        if split is not None and split[0] in stems and not name.startswith("."):
            out.append(name)
    return sorted(out)


def load_catalog(
    dirs: Dirs,
    only: Iterable[str] | None = None,
    use_cache: bool = True,
    replace: Mapping[str, str] | None = None,
    also: Iterable[str] = (),
    dependents: Iterable[str] | None = None,
) -> Catalog:
    """Load every definition in the services directory.

    ``only`` limits parsing to those names and their dependencies (for speed); cross-file
    checks (unknown dependencies, cycles) are done over what was loaded. Without ``only``,
    a template's instances are those it lists and those with a state record in the run
    directory. With ``use_cache``, a definition whose files (the definition, its drop-in
    directories and drop-ins) are unchanged since it was last validated is not parsed again
    (see cache.py). ``replace``: see load_file (the cache is not used then). ``also``: names
    to load besides (an instance that is neither listed nor recorded, named by the user).
    ``dependents``: instead of every definition, those names, the services that depend on
    them and their dependencies (a stop, a restart: see _Loader.load_dependents).
    """
    files: Mapping[str, str]
    if only is not None and dependents is None:  # a few names: no listing (NamedFiles)
        files = NamedFiles(dirs.services)  # type: ignore[assignment]
        listed = None
    else:
        files, listed = definition_listing(dirs.services)
    problems = _directory_problems(dirs)
    loader = _Loader(dirs, files, use_cache and not replace, replace)
    if listed is not None:
        loader.listing = (dirs.services.rstrip("/") or "/", listed)
    if dependents is not None:
        loader.load_dependents([*dependents, *also])
    else:
        for name in [*(files if only is None else only), *also]:
            loader.load(name)
        if only is None:
            loader.load_instances()
    loader.save_cache()
    _cross_checks(files, loader.services, loader.invalid, dirs)
    return Catalog(dirs, loader.services, loader.invalid, tuple(problems), loader.templates)


def _directory_problems(dirs: Dirs) -> list[str]:
    """Notes on the services directory itself (for the catalog). As root, a directory
    others can write raises instead: whoever can write it decides what root runs."""
    problem = services_dir_problem(dirs.services)
    if problem:
        return [problem]
    untrusted = untrusted_tree_problem(dirs.services, "services directory")
    if untrusted is not None:
        raise untrusted
    return []


def record_types() -> dict[str, Any]:
    """The types a cached definition is made of (cache.decode makes only these)."""
    from servicectl.definitions import schema, values
    from servicectl.errors import UntrustedError

    found: list[Any] = [schema.Service, schema.Action, Invalid, ConfigError, UntrustedError]
    found += [values.Ready, values.Directory, values.StartLimit, values.Health]
    return {t.__name__: t for t in found}


class _Loader:
    """One load of a catalog: each definition parsed at most once (from the cache when its
    files are unchanged), sorted into services, templates and invalid definitions."""

    def __init__(
        self,
        dirs: Dirs,
        files: Mapping[str, str],
        use_cache: bool,
        replace: Mapping[str, str] | None,
    ) -> None:
        from servicectl.definitions import cache

        self.cache = cache
        self.dirs = dirs
        self.files = files
        self.use_cache = use_cache
        self.replace = replace
        self.cached, self.index = cache.load_index(dirs) if use_cache else ({}, {})
        self.keys: dict[str, Any] = {}  # definition keys taken already (load_dependents)
        self.types: dict[str, Any] = {}
        self.fresh: dict[str, tuple[Any, Service | Invalid]] = {}
        self.services: dict[str, Service] = {}
        self.invalid: dict[str, Invalid] = {}
        self.templates: dict[str, Service] = {}
        self.listing: tuple[str, frozenset[str]] | None = None  # the services directory's

    def parse(self, name: str, file: str) -> Service | Invalid:
        """The definition of ``name`` from ``file``: the cached one while its key holds, else
        parsed (and kept for the cache if its files did not change meanwhile)."""
        if name in self.keys:
            key = self.keys.pop(name)
        else:
            key = self.cache.definition_key(name, file, self.listing) if self.use_cache else None
        hit = self.cached.get(name)
        if key is not None and hit is not None and hit[0] == key:
            self.types = self.types or record_types()
            found = self.cache.made(hit[1], self.types)
            if isinstance(found, (Service, Invalid)):
                return found
        result = load_file(name, file, self.dirs, self.replace)
        if key is not None and self.cache.definition_key(name, file) == key:
            self.fresh[name] = (key, result)
        return result

    def load(self, name: str) -> None:
        """Load ``name`` (if it has a definition and is not loaded yet) and its dependencies."""
        if name in self.services or name in self.invalid or name in self.templates:
            return
        file = definition_of(self.files, name)
        if file is None:
            return
        result = self.parse(name, file)
        if not isinstance(result, Service):
            self.invalid[name] = result
        elif is_template(name) and name in self.files:
            self.templates[name] = result
        else:
            self.services[name] = result
            for dep in result.depends:
                self.load(dep)

    def load_dependents(self, names: Iterable[str]) -> None:
        """Load ``names``, every service that depends on them (transitively) and the
        dependencies of all of these; no other definition is made. Which service depends on
        which is read from the cache's index for every definition whose files are unchanged
        (each one's key is still taken), from the definition itself for the others; templates
        and their instances are loaded whole."""
        reverse: dict[str, list[str]] = {}
        for name, file in self.files.items():
            if is_template(name):
                self.load(name)
                continue
            for dep in self.depends_of(name, file):
                reverse.setdefault(dep, []).append(name)
        self.load_instances()
        for svc in self.services.values():  # (instances, and what was parsed on the way)
            for dep in svc.depends:
                reverse.setdefault(dep, []).append(svc.name)
        todo, seen = list(names), set()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                self.load(name)
                todo.extend(reverse.get(name, ()))

    def depends_of(self, name: str, file: str) -> tuple[str, ...]:
        """What the definition of ``name`` depends on: the cache index's word while its key
        holds (the key is kept for ``parse``), else its definition's, loaded."""
        listed = self.cache.depends_in(self.index, name) if self.use_cache else None
        if listed is not None:
            key = self.cache.definition_key(name, file, self.listing)
            hit = self.cached.get(name)
            if key is not None and hit is not None and hit[0] == key:
                self.keys[name] = key
                return listed
        self.load(name)
        found = self.services.get(name)
        return found.depends if found is not None else ()

    def load_instances(self) -> None:
        """Load the instances each template lists, and those with a state record."""
        for stem, template in list(self.templates.items()):
            for instance in template.instances:
                self.load(stem + instance)
        stems = [n for n in self.files if is_template(n)]
        for name in recorded_instances(self.dirs.run, stems):
            self.load(name)

    def save_cache(self) -> None:
        """Save what was parsed afresh, with the cached entries whose definitions remain."""
        if not (self.use_cache and self.fresh):
            return
        kept = {
            n: e
            for n, e in self.cached.items()
            if n not in self.fresh and definition_of(self.files, n) is not None
        }
        self.cache.save(self.dirs, kept, self.fresh, self.index)


def _cross_checks(
    files: Mapping[str, str], services: dict[str, Service], invalid: dict[str, Invalid], dirs: Dirs
) -> None:
    """Move to ``invalid`` the services whose dependencies name no service, and those in a
    dependency cycle."""
    for name, svc in list(services.items()):
        missing = [d for d in svc.depends if definition_of(files, d) is None or is_template(d)]
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


def template_problem(catalog: Catalog, name: str) -> str | None:
    """Why ``name`` is not a service although it names a template: the template itself (it
    runs only as an instance), or an instance name with characters an instance cannot have."""
    stem, at, instance = name.partition("@")
    if not at or not stem:
        return None
    template = stem + "@"
    known = template in catalog.templates or template in catalog.invalid
    if not known and template not in definition_files(catalog.dirs.services):
        return None
    if not instance:
        return (
            f"{name} is a template: name one of its instances ({name}INSTANCE, INSTANCE made "
            f"of {INSTANCE_CHARS})"
        )
    if split_instance(name) is None:
        return (
            f"{instance!r} is not a valid instance name of the template {template} "
            f"({INSTANCE_CHARS})"
        )
    return None


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
