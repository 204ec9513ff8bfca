"""A cache of validated service definitions, keyed by each file's identity and the directories,
so that commands skip YAML parsing (and importing yaml) when no definition changed.

It lives in the run directory, which servicectl already requires to be writable only by it;
a cache file that is not servicectl's own, or is unreadable, is ignored and rebuilt.

The file is marshal data (the interpreter's own format, already loaded: pickle and what it
imports cost a command 2-8 ms): an index, then each definition on its own (see ``parse``), a
record type written as a list, its type's name first, and made again only from the types the
caller names, only when it is used. A file of another context (version, schema, directories,
user) or that cannot be parsed is ignored whole; an entry that cannot be made is read again
from its definition (docs/security.md R-RUN-4).
"""

from __future__ import annotations

import marshal
import os
import stat

from servicectl import __version__
from servicectl.files.atomic import atomic_write
from servicectl.paths import run_dir_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Container
    from typing import Any

    Index = dict[str, Any]  # name -> (key, start, end, depends): the header's, as read

FileKey = tuple[int, int, int, int, int]  # dev, inode, size, mtime_ns, ctime_ns


RACY_NS = 2_000_000_000  # file times are coarse (a kernel tick): recent files are not cached


def file_key(path: str) -> FileKey | None:
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


def definition_key(
    name: str, file: str, listing: tuple[str, Container[str]] | None = None
) -> DefinitionKey | None:
    """The identity of everything a definition is made of: its file, and each drop-in
    directory (missing, or its own identity and the identity of each drop-in file in it: an
    added, removed, renamed or edited drop-in changes the key). None if it cannot be cached.
    ``listing``: (a directory, the names in it a moment ago): a drop-in directory there that
    was not among them is missing without a look (a thousand definitions, a thousand stats
    fewer; one made since is seen by the next command, as one made just after this one)."""
    main = file_key(file)
    if main is None:
        return None
    if listing is not None and _plain_unlisted(name, file, listing):
        return (main, None)  # (what the loop below makes of it, without its path work)
    from servicectl.definitions.dropins import dropin_dirs

    parts: list[Any] = [main]
    for directory in dropin_dirs(name, file):
        if listing is not None and _not_listed(directory, listing):
            parts.append(None)
            continue
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


def _plain_unlisted(name: str, file: str, listing: tuple[str, Container[str]]) -> bool:
    """Whether ``file`` is the listed directory's NAME.yaml or NAME.yml of ``name`` (no
    template's instance) and no NAME.d was listed beside it: its one drop-in directory is
    missing (the common case, a thousand times in a stop among a thousand)."""
    where, names = listing
    return (
        file == f"{where}/{name}.yaml" or file == f"{where}/{name}.yml"
    ) and f"{name}.d" not in names


def _not_listed(path: str, listing: tuple[str, Container[str]]) -> bool:
    """Whether ``path`` is in the listed directory and was not listed there."""
    where, name = os.path.split(path)
    return where == listing[0] and name not in listing[1]


def _dir_key(directory: str) -> tuple[Any, ...] | None:
    from servicectl.definitions.dropins import listing

    own = file_key(directory)
    if own is None:
        return None
    try:
        names = listing(directory)
    except OSError:
        return (own,)  # not a directory, or unreadable: its identity says when that changes
    keys = [(n, file_key(os.path.join(directory, n))) for n in names]
    if any(k is None for _, k in keys):
        return None
    return (own, tuple(keys))


def _cache_path(run_dir: str, services_dir: str) -> str:
    """The cache of ``services_dir`` by this installation of servicectl: a tag of both (the
    context check inside tells them apart). Two installations sharing a run directory (two
    venvs; an old supervisor beside a new command during an upgrade) each keep their own:
    one file for both was thrown away by each in turn, every command of the other parsing
    YAML again."""
    tag = _fnv1a(os.fsencode(services_dir) + b"\0" + os.fsencode(_INSTALLED))
    return os.path.join(run_dir, f".definitions-{tag}.cache")


_INSTALLED = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # servicectl/


def _fnv1a(data: bytes) -> str:
    """8 hex digits of ``data``'s 32-bit FNV-1a hash (no hash module to load for a file name)."""
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def _context(dirs: Any) -> tuple[str, str, str, str, str, int]:
    """What the cached results depend on besides each file: servicectl's version, the schema
    (its fields, defaults and parsing code: any change makes a new hash, nothing to bump), the
    directories that placeholders and relative paths stand for, and the user."""
    from servicectl.definitions.digest import schema_key

    return (
        __version__,
        schema_key(),
        str(dirs.services),
        str(dirs.run),
        str(dirs.log),
        os.geteuid(),
    )


def encode(value: Any) -> Any:
    """``value`` (a definition, made of record types, tuples and plain values) as marshal
    data: a record as a list (its type's name, then its fields), a tuple as a tuple."""
    if isinstance(value, tuple):
        items = tuple(encode(v) for v in value)
        return [type(value).__name__, *items] if hasattr(value, "_fields") else items
    if isinstance(value, Exception) and hasattr(value, "problem"):  # a ConfigError
        return [type(value).__name__, value.file, value.key, value.problem]  # type: ignore[attr-defined]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not a definition's value")


_PLAIN = frozenset({str, int, float, bool, type(None)})


def decode(data: Any, types: dict[str, Any]) -> Any:
    """The value ``encode`` gave, made from ``types`` (name -> type) only; KeyError or
    TypeError when the data names another type or does not fit it."""
    kind = type(data)
    if kind in _PLAIN:
        return data
    plain = _PLAIN.issuperset  # (plain values are most of a definition: no call for each)
    if kind is tuple:
        if plain(map(type, data)):
            return data
        return tuple(v if type(v) in _PLAIN else decode(v, types) for v in data)
    if kind is list:
        fields = data[1:]
        if not plain(map(type, fields)):
            fields = [v if type(v) in _PLAIN else decode(v, types) for v in fields]
        return types[data[0]](*fields)
    raise TypeError(f"{kind.__name__} in the definition cache")


def made(blob: Any, types: dict[str, Any]) -> Any:
    """The definition a cache entry holds (its marshal bytes), made from ``types`` only, or
    None when it cannot be made (another type, a field too many or too few: damage)."""
    try:
        return decode(marshal.loads(blob), types)
    except Exception:
        return None


# The file: 8 bytes (the header's length, little-endian), the header (marshal: the format, the
# context and each entry's key, place and dependencies), then each entry's marshal bytes. A
# command reads the file whole (one read) and unmarshals the header, then only the entries it
# uses; a stop finds the services that depend on its own in the header alone.
HEAD = 8
FORMAT = 2  # 2: each entry's ``depends`` in the index (1, unmarked: no such field)


def parse(raw: bytes) -> tuple[Any, dict[str, tuple[FileKey, Any]], Index]:
    """(context, {name: (key, the entry's bytes)}, the index) of a cache file's bytes;
    ValueError (or another exception) when they are not such a file, of this format. An
    entry's dependencies are read from the index only when asked for (``depends_in``)."""
    size = int.from_bytes(raw[:HEAD], "little")
    header = marshal.loads(raw[HEAD : HEAD + size])
    if header["format"] != FORMAT:
        raise ValueError("another format")
    body = memoryview(raw)[HEAD + size :]
    index = header["index"]
    entries = {name: (key, body[start:end]) for name, (key, start, end, _) in index.items()}
    return header["context"], entries, index


def depends_in(index: Index, name: str) -> tuple[str, ...] | None:
    """The dependencies the index gives the entry ``name``, or None (no such entry, or not a
    tuple of names: damage; the entry's own definition says then)."""
    try:
        deps = index[name][3]
    except (KeyError, IndexError, TypeError):
        return None
    if type(deps) is tuple and all(type(d) is str for d in deps):
        return deps
    return None


def load(dirs: Any) -> dict[str, tuple[FileKey, Any]]:
    """The cached entries by service name, each (its key, its bytes: see ``made``), or {}
    when there is no usable cache. An entry is unmarshalled and made into a definition only
    when it is used (a ``status NAME`` of one service among a thousand makes one)."""
    return load_index(dirs)[0]


def load_index(dirs: Any) -> tuple[dict[str, tuple[FileKey, Any]], Index]:
    """``load``'s entries, and the index (``depends_in``: an entry's dependencies, valid while
    the entry's key is: a definition's ``depends`` without making the definition)."""
    path = _cache_path(dirs.run, dirs.services)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return {}, {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return {}, {}
        if run_dir_problem(dirs.run) is not None:
            return {}, {}
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read()  # whole: marshal.load(fh) reads a file piecemeal (10x slower)
        context, entries, index = parse(raw)  # a file only servicectl's user can write
        return (entries, index) if context == _context(dirs) else ({}, {})
    except Exception:  # any damage: ignore the cache, it is rebuilt
        return {}, {}
    finally:
        os.close(fd)


def save(
    dirs: Any,
    kept: dict[str, tuple[FileKey, Any]],
    fresh: dict[str, tuple[FileKey, Any]],
    index: Index,
) -> None:
    """Write the cache atomically if the run directory exists and is safe (not a symlink, not
    writable by others): the entries ``kept`` as loaded (their dependencies from the
    ``index`` they were loaded with), and the definitions parsed afresh; failures are
    ignored."""
    if not os.path.isdir(dirs.run) or run_dir_problem(dirs.run) is not None:
        return
    try:
        blobs = {n: (key, bytes(blob), depends_in(index, n)) for n, (key, blob) in kept.items()}
        for n, (key, v) in fresh.items():
            blobs[n] = (key, marshal.dumps(encode(v)), tuple(getattr(v, "depends", ())))
        index, at = {}, 0
        for name, (key, blob, deps) in blobs.items():
            index[name] = (key, at, at + len(blob), deps)
            at += len(blob)
        header = marshal.dumps({"format": FORMAT, "context": _context(dirs), "index": index})
        payload = b"".join([len(header).to_bytes(HEAD, "little"), header])
        payload += b"".join(blob for _, blob, _ in blobs.values())
        atomic_write(_cache_path(dirs.run, dirs.services), payload, 0o600)
    except Exception:
        return
    _remove_legacy(dirs)


def _remove_legacy(dirs: Any) -> None:
    """The cache file of servicectl 0.2.0 and before (tagged by the services directory alone):
    an upgrade leaves none behind. (A 0.2.0 still at work beside this one makes it again.)"""
    path = os.path.join(dirs.run, f".definitions-{_fnv1a(os.fsencode(dirs.services))}.cache")
    if path == _cache_path(dirs.run, dirs.services):
        return  # (the two tags met: the file is this one's)
    try:
        os.unlink(path)
    except OSError:
        pass
