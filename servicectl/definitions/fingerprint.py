"""Has a service's definition changed on disk since it was started?

At start, the state record keeps a fingerprint of every file the definition was read from (the
definition and its drop-ins): path, mtime_ns, size and sha256. ``status`` compares: the same
mtime and size mean unchanged (no read); otherwise the content is hashed again, so a ``touch``
alone is no change. A file added, removed or edited is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servicectl.definitions.schema import Service

Fingerprint = tuple[tuple[str, int, int, str], ...]  # (path, mtime_ns, size, sha256) per file
NOTE = "definition changed on disk since start; restart to apply"
MAX_BYTES = 1 << 20  # definitions are at most 1 MiB


def definition_files(svc: Service) -> list[Path]:
    """The files ``svc`` was read from: its definition, then its drop-ins (when it has any)."""
    return [svc.file, *getattr(svc, "dropins", ())]


def _digest(path: Path) -> tuple[int, int, str] | None:
    """(mtime_ns, size, sha256) of a regular file, or None if it cannot be read."""
    try:  # the bare SHA-256 module: hashlib's OpenSSL set-up costs a start some milliseconds
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        data = os.read(fd, MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
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
        got = _digest(Path(path))
        if got is None or got[2] != sha:
            return True
    return False
