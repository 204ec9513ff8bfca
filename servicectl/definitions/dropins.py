"""Drop-ins: ``NAME.d/*.yaml`` merged over ``NAME.yaml`` (for an instance of a template, the
template's ``NAME@.d/`` then the instance's ``NAME@INSTANCE.d/``), in name order, a later file
winning key by key; ``environment`` merges by variable. Also the safe reading of one
definition document, shared by definitions and drop-ins.

Imported on the hot path (config.definition_files): only the standard library and the base
layers at the top; yaml and the field parsers only when a document is read.
"""

from __future__ import annotations

import os
import stat

from servicectl.definitions.names import is_template
from servicectl.errors import ConfigError, UntrustedError
from servicectl.paths import untrusted_problem, untrusted_tree_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

IGNORED_SUFFIXES = ("~", ".bak", ".swp", ".tmp", ".orig", ".rej")
SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1024 * 1024
ENABLED_FILE = "50-enabled.yaml"  # what enable and disable write
OVERRIDE_FILE = "override.yaml"  # what edit works on


def skipped(fname: str) -> bool:
    """Hidden files, editors' and package managers' leftovers: never definitions or drop-ins."""
    return fname.startswith(".") or fname.endswith(IGNORED_SUFFIXES) or ".dpkg-" in fname


def definition_stem(file: str) -> str:
    """``memcached@`` for ``.../memcached@.yaml``."""
    base = os.path.basename(file)
    return base.rpartition(".")[0] or base


def dropin_dirs(name: str, file: str) -> list[str]:
    """The drop-in directories of the service ``name`` defined by ``file``, in the order they
    apply: for an instance of a template, ``NAME@.d`` then ``NAME@INSTANCE.d`` (as systemd
    does); otherwise ``NAME.d``. The last one is the service's own (enable and edit write
    there)."""
    stem, where = definition_stem(file), os.path.dirname(file)
    if stem != name and is_template(stem):
        return [os.path.join(where, f"{stem}.d"), os.path.join(where, f"{name}.d")]
    return [os.path.join(where, f"{name}.d")]


def listing(directory: str) -> list[str]:
    """The names of the drop-in files in ``directory``, in name order (OSError if it cannot
    be listed)."""
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.endswith(SUFFIXES) and not skipped(e.name)]
    return sorted(names)


def _dir_problem(directory: str) -> ConfigError | None:
    """Why a drop-in directory that exists cannot be used (not a directory, or, as root, one
    another user could have written: the definition files' rule), or None."""
    label = str(directory)
    try:
        st = os.stat(directory)
    except OSError as exc:
        return ConfigError(label, None, f"cannot be read: {exc.strerror}")
    if not stat.S_ISDIR(st.st_mode):
        return ConfigError(label, None, "not a directory; NAME.d must be a directory of drop-ins")
    problem = untrusted_problem(directory, "drop-in directory", st)
    if problem is None and os.path.islink(directory):
        tree = untrusted_tree_problem(directory, "drop-in directory")
        problem = tree.message if tree is not None else None
    return UntrustedError(label, None, problem) if problem is not None else None


def dropin_files(
    name: str, file: str, extra: Iterable[str] = ()
) -> tuple[list[str], list[ConfigError]]:
    """The drop-in files of a service, in the order they apply, and why a drop-in directory
    cannot be used. ``extra``: files to count in although they do not exist yet (the override
    being edited)."""
    files: list[str] = []
    errors: list[ConfigError] = []
    extra = list(extra)
    for directory in dropin_dirs(name, file):
        names = {os.path.basename(p) for p in extra if os.path.dirname(p) == directory}
        if os.path.lexists(directory):
            problem = _dir_problem(directory)
            if problem is not None:
                errors.append(problem)
                continue
            try:
                names.update(listing(directory))
            except OSError as exc:
                errors.append(ConfigError(str(directory), None, f"cannot be read: {exc.strerror}"))
                continue
        files += [os.path.join(directory, n) for n in sorted(names)]
    return files, errors


def read_document(path: str, what: str) -> Any:
    """Read and parse one YAML document (a definition or a drop-in) safely: a regular file
    (opened non-blocking: a FIFO never hangs a command), as root one that only root can write,
    at most 1 MiB of UTF-8. Any failure is a ConfigError naming ``path``."""
    label = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(label, None, f"not a regular file; a {what} must be one")
            untrusted = untrusted_problem(path, what, st)
            if untrusted is not None:  # as root: another user could have written it
                raise UntrustedError(label, None, untrusted)
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(label, None, f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(label, None, "larger than 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(label, None, f"not UTF-8 text (byte {exc.start})") from None
    from servicectl.definitions.yamlload import parse_yaml

    return parse_yaml(text, label)


def merge(
    base: Any, layers: list[tuple[str, Any]]
) -> tuple[Any, dict[str, str], list[ConfigError]]:
    """``base`` (a parsed definition) with each (label, parsed drop-in) of ``layers`` merged
    over it in turn: a key replaces the whole value, but ``environment`` merges by variable
    (a variable set to null in a drop-in is removed). Returns the merged document, which
    file gave each key (and each ``environment.VAR``) where a drop-in did, and the errors of
    drop-ins that are not mappings. A base that is not a mapping is returned as it is (build
    says what is wrong with it)."""
    origin: dict[str, str] = {}
    errors: list[ConfigError] = []
    if not isinstance(base, dict):
        return base, origin, errors
    data = dict(base)
    for label, layer in layers:
        if layer is None:  # an empty drop-in changes nothing
            continue
        if not isinstance(layer, dict):
            from servicectl.definitions.reader import show

            found = f"found {show(layer)}, expected a mapping of keys"
            errors.append(ConfigError(label, None, found))
            continue
        for key, value in layer.items():
            origin[str(key)] = label
            old = data.get(key) or {}
            if key == "environment" and isinstance(value, dict) and isinstance(old, dict):
                env = dict(old)
                for var, val in value.items():
                    origin[f"environment.{var}"] = label
                    if val is None:
                        env.pop(var, None)
                    else:
                        env[var] = val
                data[key] = env
            else:
                data[key] = value
    return data, origin, errors


def attribute(errors: list[ConfigError], main: str, origin: dict[str, str]) -> list[ConfigError]:
    """Errors found in a merged document, each naming the file that gave its key (a drop-in)
    instead of the definition, where a drop-in did."""
    out = []
    for err in errors:
        label = None
        if err.file == main and err.key:
            parts = err.key.split(".")
            if parts[0] == "environment" and len(parts) > 1:
                label = origin.get(".".join(parts[:2]))
            else:
                label = origin.get(parts[0])
        out.append(type(err)(label, err.key, err.problem) if label and label != main else err)
    return out
