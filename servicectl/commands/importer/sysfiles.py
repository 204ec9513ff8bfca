"""The machine's files an import reads beside the script or unit: the files a script sources
(``/etc/default/NAME``, apache2's ``envvars``) and the tmpfiles.d entries that make a
service's directories. They are read, never run: a file that is not a regular file, or larger
than MAX_BYTES, is not read (the reader then says what it could not know).

``System`` gathers how they are reached, so that tests can give other files than the
machine's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_BYTES = 256 * 1024
TMPFILES_DIRS = ("/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/lib/tmpfiles.d", "/lib/tmpfiles.d")
_SPECIFIERS = {"%t": "/run", "%S": "/var/lib", "%C": "/var/cache", "%L": "/var/log", "%%": "%"}
_DIR_TYPES = {"d", "D", "v", "q", "Q"}


def read_text(path: str) -> str | None:
    """The text of a regular file (at most MAX_BYTES), or None when it is missing, is no
    regular file, cannot be read or is larger. A FIFO or device is never opened for reading
    (O_NONBLOCK, then fstat)."""
    from servicectl.files.safe import read_if_regular

    got = read_if_regular(path, MAX_BYTES)
    if got is None or b"\0" in got[0]:
        return None
    raw = got[0]
    return raw.decode("utf-8", errors="replace")


def _list(directory: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(".conf"))
    except OSError:
        return []


@dataclass
class System:
    """Where an import looks on the machine: ``exists`` (is a file there), ``read`` (its text,
    or None) and the tmpfiles.d directories, earlier ones overriding later ones by name."""

    exists: Callable[[str], bool] = os.path.lexists
    read: Callable[[str], str | None] = read_text
    tmpfiles_dirs: tuple[str, ...] = TMPFILES_DIRS
    listdir: Callable[[str], list[str]] = _list


class TmpDir(NamedTuple):
    """A tmpfiles.d line that makes a directory: ``d /run/mysqld 0755 mysql root -``."""

    path: str
    mode: str | None
    owner: str | None
    group: str | None
    where: str  # "/usr/lib/tmpfiles.d/mariadb.conf line 15"
    text: str


def tmpfiles(system: System) -> list[TmpDir]:
    """Every directory line of the machine's tmpfiles.d files (a file of the same name in an
    earlier directory replaces a later one, as systemd-tmpfiles does)."""
    seen: set[str] = set()
    out: list[TmpDir] = []
    for directory in system.tmpfiles_dirs:
        for name in system.listdir(directory):
            if name in seen:
                continue
            seen.add(name)
            path = os.path.join(directory, name)
            text = system.read(path)
            if text is not None:
                out += _entries(text, path)
    return out


def _entries(text: str, path: str) -> list[TmpDir]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 2:
            continue
        kind = fields[0].rstrip("!-=~^+")
        if kind not in _DIR_TYPES:
            continue
        target = re.sub(r"%.", lambda m: _SPECIFIERS.get(m.group(0), m.group(0)), fields[1])
        if "%" in target or not target.startswith("/"):
            continue
        values = [None if f == "-" else f.lstrip(":~") for f in fields[2:5]] + [None] * 3
        mode, owner, group = values[:3]
        if mode is not None and not re.fullmatch(r"[0-7]{3,4}", mode):
            mode = None  # "~0755" and the like: systemd's own rules, kept as servicectl's
        out.append(TmpDir(target.rstrip("/"), mode, owner, group, f"{path} line {number}", line))
    return out


# Directories every service shares: a tmpfiles.d line for one of them is the system's.
SHARED = {
    *("/", "/tmp", "/var/tmp", "/home", "/root", "/run", "/run/user", "/run/lock", "/srv"),
    *("/var", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/lock", "/var/run"),
    *("/etc", "/opt", "/usr", "/dev", "/dev/shm", "/mnt", "/media", "/proc", "/sys"),
}


def tmpfiles_for(system: System, name: str, text: str) -> list[TmpDir]:
    """The tmpfiles.d directories that belong to a service: those in a file named after it
    (``mariadb.conf`` for mariadb), and any whose path its script or unit names outside its
    comments (but the directories every service shares: /tmp, /run...)."""
    stem = name.partition("@")[0]
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", ";")))
    out = []
    for entry in tmpfiles(system):
        own = os.path.basename(entry.where.split(" line ")[0]) == f"{stem}.conf"
        named = entry.path not in SHARED and re.search(
            re.escape(entry.path) + r"(?![A-Za-z0-9_.-])", code
        )
        if own or named:
            out.append(entry)
    return out
