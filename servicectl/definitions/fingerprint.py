"""Has a service's definition changed on disk since it was started, and what changed?

At start, the state record keeps the parsed definition (``snapshot``: every key of the
Service as JSON data, drop-ins merged, defaults applied, ``$VARIABLES`` not yet expanded) and a
fingerprint of every file it was read from (path, mtime_ns, size, sha256). ``status`` compares
the parsed definitions, never their text: the same keys and values written in another YAML
style, a comment, a ``touch``, or a drop-in that says what the file said, are no change.
``enabled`` and a template's ``instances`` only decide what startall starts, so ``enable`` and
``disable`` never count as one. What changed is named by key (``command``), and for the keys
that are mappings of named entries by entry (``environment.FOO``, ``limits.nofile``,
``actions.rotate``).

A record written by a servicectl that kept no parsed definition falls back to the
fingerprint: the same mtime and size mean unchanged (no read); otherwise the content is hashed
again. Then it is known that, not what, changed.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.definitions.schema import Service

Fingerprint = tuple[tuple[str, int, int, str], ...]  # (path, mtime_ns, size, sha256) per file
NOTE = "definition changed on disk since start; restart to apply"
MAX_BYTES = 1 << 20  # definitions are at most 1 MiB
# Fields of a Service that are not its definition's keys (name, file, the derived ones), and the
# keys that decide only what startall starts: never a change to the running service.
IGNORED = frozenset(
    ("name", "file", "dropins", "stderr_same", "pid_file_given", "enabled", "instances")
)
NAMED_ENTRIES = ("environment", "limits", "actions")  # (name, ...) tuples: compared by entry


def definition_files(svc: Service) -> list[str]:
    """The files ``svc`` was read from: its definition, then its drop-ins (when it has any)."""
    return [svc.file, *getattr(svc, "dropins", ())]


def _digest(path: str) -> tuple[int, int, str] | None:
    """(mtime_ns, size, sha256) of a regular file, or None if it cannot be read."""
    from servicectl.digests import sha256
    from servicectl.files.safe import read_if_regular

    got = read_if_regular(path, MAX_BYTES)
    if got is None:
        return None
    data, st = got
    return st.st_mtime_ns, st.st_size, sha256(data).hexdigest()


def fingerprint(svc: Service) -> Fingerprint:
    """The fingerprint of ``svc``'s files now (a file that cannot be read is left out)."""
    out = []
    for path in definition_files(svc):
        got = _digest(path)
        if got is not None:
            out.append((str(path), *got))
    return tuple(out)


def changed(svc: Service, recorded: Fingerprint) -> bool:
    """Whether ``svc``'s files differ from ``recorded`` (False when nothing was recorded: a
    service started by an older servicectl, or found by its PID file)."""
    if not recorded:
        return False
    paths = [str(p) for p in definition_files(svc)]
    if paths != [entry[0] for entry in recorded]:
        return True
    for path, mtime_ns, size, sha in recorded:
        try:
            st = os.stat(path)
        except OSError:
            return True
        if (st.st_mtime_ns, st.st_size) == (mtime_ns, size):
            continue
        got = _digest(path)
        if got is None or got[2] != sha:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# The parsed definition


def snapshot(svc: Service) -> dict[str, Any]:
    """``svc``'s definition as JSON data (what start records): every key but IGNORED, in the
    Service's order. Give the definition as parsed, before its $VARIABLES are expanded."""
    return {key: _plain(key, getattr(svc, key)) for key in svc._fields if key not in IGNORED}


def _plain(key: str, value: Any) -> Any:
    """``value`` as JSON data, equal to itself after a JSON round trip (lists, string keys)."""
    if key in NAMED_ENTRIES and isinstance(value, tuple):
        entries = [e for e in value if isinstance(e, tuple) and e]
        return {str(e[0]): _json(e[1] if len(e) == 2 else e[1:]) for e in entries}
    return _json(value)


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "_asdict"):  # a NamedTuple (Ready, Action, Directory, StartLimit...)
        return {str(k): _json(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_json(v) for v in value), key=repr)
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    return repr(value)


_MISSING = object()
_SCALARS = frozenset((str, int, float, bool, type(None)))
_KEYS: dict[type, tuple[tuple[str, ...], frozenset[str], Any]] = {}


def _keys(kind: Any) -> tuple[tuple[str, ...], frozenset[str], Any]:
    """A Service class's compared keys, as a set, and a C function giving their values."""
    found = _KEYS.get(kind)
    if found is None:
        from _operator import itemgetter

        places = [(i, k) for i, k in enumerate(kind._fields) if k not in IGNORED]
        keys = tuple(k for _, k in places)
        found = _KEYS[kind] = (keys, frozenset(keys), itemgetter(*(i for i, _ in places)))
    return found


def _unchanged(svc: Service, recorded: dict[str, Any]) -> bool:
    """Whether ``changes`` would find no key changed, quickly, for the usual case (the board
    asks it of every running service): every key recorded, and each equal to ``snapshot``'s
    value. The plain values are compared all at once (in C); the rest one by one. False: ask
    ``changes``."""
    from _operator import ne
    from itertools import compress

    keys, keyset, values_of = _keys(type(svc))
    if not recorded.keys() >= keyset:
        return False
    olds = list(map(recorded.__getitem__, keys))
    values = values_of(svc)
    for key, old, value in compress(zip(keys, olds, values), map(ne, olds, values)):
        if type(value) in _SCALARS or old != _plain(key, value):
            return False
    return True


def changes(recorded: dict[str, Any], now: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The keys (``environment.FOO`` for an entry of a NAMED_ENTRIES key) whose values differ
    between two snapshots, in ``now``'s order. A key the recorded snapshot lacks (a key newer
    than the servicectl that started the service) counts as changed only if ``now`` gives it a
    value other than its default; a key ``now`` lacks is not compared."""
    out: list[str] = []
    for key, value in now.items():
        if key in recorded:
            old = recorded[key]
        elif key in defaults:
            old = _plain(key, defaults[key])
        else:
            continue
        if old == value:
            continue
        if key in NAMED_ENTRIES and isinstance(old, dict) and isinstance(value, dict):
            names = [*value, *(n for n in old if n not in value)]
            out += [f"{key}.{n}" for n in names if old.get(n, _MISSING) != value.get(n, _MISSING)]
        else:
            out.append(key)
    return out


def compare(
    svc: Service, parsed: dict[str, Any] | None, recorded: Fingerprint
) -> tuple[bool, list[str] | None]:
    """Whether a service started from the definition a record describes (its ``parsed``
    snapshot, or only the ``recorded`` fingerprint of its files) runs a definition other than
    ``svc`` (the one on disk now), and the keys that differ; None for the keys when the record
    kept only the fingerprint (then only whether the files changed is known)."""
    if isinstance(parsed, dict):
        if _unchanged(svc, parsed):
            return False, []
        keys = changes(parsed, snapshot(svc), svc._field_defaults)
        return bool(keys), keys
    if changed(svc, recorded):
        return True, None
    return False, []
