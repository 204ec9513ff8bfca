"""A cache of validated service definitions, keyed by each file's identity and the directories,
so that commands skip YAML parsing (and importing yaml) when no definition changed.

It lives in the run directory, which servicectl already requires to be writable only by it;
a cache file that is not servicectl's own, or is unreadable, is ignored and rebuilt.
"""

from __future__ import annotations

import os
import pickle
import stat

from servicectl import __version__
from servicectl.files.atomic import atomic_write
from servicectl.paths import run_dir_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

FileKey = tuple[int, int, int, int, int]  # dev, inode, size, mtime_ns, ctime_ns


RACY_NS = 2_000_000_000  # file times are coarse (a kernel tick): recent files are not cached


def file_key(path: Path) -> FileKey | None:
    """The identity of a definition file, or None if it cannot be cached (missing, or changed
    so recently that a same-size edit within the same clock tick would go unseen)."""
    import time

    try:
        st = os.stat(path)
    except OSError:
        return None
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


DefinitionKey = tuple[object, ...]  # the definition's FileKey, then per drop-in directory


def definition_key(name: str, file: Path) -> DefinitionKey | None:
    """The identity of everything a definition is made of: its file, and each drop-in
    directory (missing, or its own identity and the identity of each drop-in file in it: an
    added, removed, renamed or edited drop-in changes the key). None if it cannot be cached."""
    main = file_key(file)
    if main is None:
        return None
    from servicectl.definitions.dropins import dropin_dirs

    parts: list[Any] = [main]
    for directory in dropin_dirs(name, file):
        try:
            os.stat(directory)
        except FileNotFoundError:
            parts.append(None)
            continue
        except OSError:
            return None
        parts.append(_dir_key(directory))
        if parts[-1] is None:
            return None
    return tuple(parts)


def _dir_key(directory: Path) -> tuple[Any, ...] | None:
    from servicectl.definitions.dropins import listing

    own = file_key(directory)
    if own is None:
        return None
    try:
        names = listing(directory)
    except OSError:
        return (own,)  # not a directory, or unreadable: its identity says when that changes
    keys = [(n, file_key(directory / n)) for n in names]
    if any(k is None for _, k in keys):
        return None
    return (own, tuple(keys))


def _cache_path(run_dir: Path, services_dir: Path) -> Path:
    import zlib

    tag = f"{zlib.crc32(str(services_dir).encode()):08x}"  # the context check guards
    return run_dir / f".definitions-{tag}.cache"


def _context(dirs: Any) -> tuple[str, str, str, str, str, int]:
    """What the cached results depend on besides each file: servicectl's version, the schema
    (its fields, defaults and parsing code: any change makes a new hash, nothing to bump), the
    directories that placeholders and relative paths stand for, and the user."""
    from servicectl.definitions.digest import schema_hash

    return (
        __version__,
        schema_hash(),
        str(dirs.services),
        str(dirs.run),
        str(dirs.log),
        os.geteuid(),
    )


def load(dirs: Any) -> dict[str, tuple[FileKey, Any]]:
    """The cached results by service name, or {} when there is no usable cache."""
    path = _cache_path(dirs.run, dirs.services)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return {}
        if run_dir_problem(dirs.run) is not None:
            return {}
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = pickle.load(fh)  # noqa: S301 - a file only servicectl's user can write
    except Exception:  # any damage: ignore the cache, it is rebuilt
        return {}
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("context") != _context(dirs):
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def save(dirs: Any, entries: dict[str, tuple[FileKey, Any]]) -> None:
    """Write the cache atomically if the run directory exists and is safe (not a symlink, not
    writable by others); failures are ignored."""
    if not dirs.run.is_dir() or run_dir_problem(dirs.run) is not None:
        return
    try:
        payload = pickle.dumps({"context": _context(dirs), "entries": entries}, protocol=4)
        atomic_write(_cache_path(dirs.run, dirs.services), payload, 0o600)
    except Exception:
        return
