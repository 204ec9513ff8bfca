"""PID files and servicectl's own state records beside them: written atomically, read warily.

A PID file holds "PID\\n" only; the state record (JSON) keeps what identifies the process.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from servicectl.errors import Exit, ServicectlError
from servicectl.safefile import describe_kind, open_dir

if TYPE_CHECKING:
    from pathlib import Path

MAX_PIDFILE_BYTES = 64


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename.

    Never follows a symlink planted at ``path`` (rename replaces the link itself) or at the
    temp name (O_EXCL|O_NOFOLLOW), and a reader never sees a torn (half-written) file.
    There is no fsync: what is written here only means something during this boot (records
    carry the boot id, and the run directory is normally a tmpfs), and after a power loss a
    torn or empty file is read as garbage and ignored, never trusted.
    """
    try:
        dfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        atomic_write_at(dfd, path, data, mode)
    finally:
        os.close(dfd)


def atomic_write_at(
    dfd: int, path: Path, data: bytes, mode: int = 0o644, durable: bool = False
) -> None:
    """``atomic_write`` of ``path.name`` in the directory open as ``dfd``. An OSError names
    the file at fault by its full path. ``durable``: fsync the file before the rename and the
    directory after it (for what must survive a power loss: an administrator's edits)."""
    name = path.name
    tmp = f".{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, flags, mode, dir_fd=dfd)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp, dir_fd=dfd)
            raise
        os.close(fd)
        try:
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            # Also reached when a signal (Ctrl-C, SIGTERM) is handled right after the rename: the
            # temp file is gone then, and the caller must see the interruption, not ENOENT.
            _unlink_temp(tmp, dfd)
            raise
        if durable:
            os.fsync(dfd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path.parent / tmp)) from None


def _unlink_temp(tmp: str, dfd: int) -> None:
    try:
        os.unlink(tmp, dir_fd=dfd)
    except FileNotFoundError:
        pass


class PidFileRead(NamedTuple):
    """What a PID file says. ``pid`` is None when it is missing, unsafe, empty or garbage;
    ``problem`` then says which (None for simply missing)."""

    path: Path
    exists: bool
    pid: int | None = None
    problem: str | None = None
    owner: int | None = None
    mode: int | None = None

    def trusted_by(self, euid: int, allowed_uids: set[int]) -> str | None:
        """Why this file cannot be trusted as the only evidence of a PID, or None if it can.

        As root, a PID file owned by someone other than root or the service's user, or writable
        by others, names nothing: whoever could write it could name any process.
        """
        if self.owner is None or self.mode is None:
            return None
        if self.mode & 0o002:
            return f"the PID file {self.path} is writable by every user"
        if euid == 0 and self.owner not in allowed_uids | {0}:
            return f"the PID file {self.path} belongs to uid {self.owner}, not to the service"
        return None


def read_pidfile(path: Path) -> PidFileRead:
    """Read a PID file without following symlinks and without trusting its content."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return PidFileRead(path, exists=False)
    except NotADirectoryError:
        return PidFileRead(path, exists=False)
    except PermissionError:
        return PidFileRead(path, True, problem=f"the PID file {path} cannot be read")
    if stat.S_ISLNK(st.st_mode):
        try:
            target = f" (to {os.readlink(path)})"
        except OSError:  # replaced since the lstat: a symlink swapped in and out
            target = ""
        return PidFileRead(path, True, problem=f"the PID file {path} is a symlink{target}")
    if not stat.S_ISREG(st.st_mode):
        return PidFileRead(path, True, problem=f"the PID file {path} is not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return PidFileRead(
            path, True, problem=f"the PID file {path} cannot be read: {exc.strerror}"
        )
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):
            return PidFileRead(path, True, problem=f"the PID file {path} is not a regular file")
        raw = os.read(fd, MAX_PIDFILE_BYTES + 1)
    finally:
        os.close(fd)
    owner, mode = fst.st_uid, stat.S_IMODE(fst.st_mode)
    text = raw.decode("ascii", "replace").strip()
    if not text:
        return PidFileRead(
            path, True, problem=f"the PID file {path} is empty", owner=owner, mode=mode
        )
    if len(raw) > MAX_PIDFILE_BYTES or not text.isdigit() or not text.isascii():
        shown = text[:20] + ("..." if len(text) > 20 else "")
        return PidFileRead(
            path,
            True,
            problem=f"the PID file {path} holds garbage ({shown!r})",
            owner=owner,
            mode=mode,
        )
    pid = int(text)
    if pid <= 0 or pid > 2**22:
        return PidFileRead(
            path,
            True,
            problem=f"the PID file {path} holds an impossible PID {pid}",
            owner=owner,
            mode=mode,
        )
    return PidFileRead(path, True, pid=pid, owner=owner, mode=mode)


class NotAPidFile(ServicectlError):
    """A PID file path names a file that is not a PID file: it is neither removed nor replaced
    (docs/security.md R-PID-2). A configuration error: exit 6."""

    exit_code = Exit.NOT_CONFIGURED

    def __init__(self, path: Path, what: str, definition: str = "the definition") -> None:
        super().__init__(
            f"{path} is not a PID file ({what}); servicectl neither removes nor replaces it "
            f"(check pid_file: in {definition}; if the file is garbage, remove it yourself)"
        )
        self.path = path
        self.what = what

    def naming(self, definition: Path) -> NotAPidFile:
        """The same refusal, naming the definition file to check."""
        return NotAPidFile(self.path, self.what, str(definition))


def _pid_text(data: bytes) -> bool:
    """Whether ``data`` is what a PID file holds (or a torn or damaged one): digits, signs and
    white space, at most MAX_PIDFILE_BYTES."""
    return len(data) <= MAX_PIDFILE_BYTES and all(c in b"0123456789+- \t\r\n" for c in data)


def _in_dir(dfd: int, directory: Path | None) -> bool:
    if directory is None:
        return False
    try:
        st = os.stat(directory)
    except OSError:
        return False
    here = os.fstat(dfd)
    return (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino)


def _check_replaceable(dfd: int, path: Path, run_dir: Path | None) -> os.stat_result | None:
    """R-PID-2: raise NotAPidFile unless what is at ``path`` may be removed or replaced: nothing,
    a symlink (the link itself), an empty file or PID-file text, or any regular file directly
    in the run directory (where only servicectl writes). Returns its lstat (None: nothing)."""
    try:
        st = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return st
    if stat.S_ISREG(st.st_mode):
        if _in_dir(dfd, run_dir):
            return st
        if st.st_size <= MAX_PIDFILE_BYTES:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
            try:
                fd = os.open(path.name, flags, dir_fd=dfd)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    same = os.fstat(fd).st_ino == st.st_ino
                    data = os.read(fd, MAX_PIDFILE_BYTES + 1)
                finally:
                    os.close(fd)
                if same and _pid_text(data):
                    return st
        what = f"a file of {st.st_size} bytes that does not hold a PID"
    else:
        what = describe_kind(st)
    raise NotAPidFile(path, what)


def write_pidfile(path: Path, pid: int, run_dir: Path | None = None) -> None:
    """Write "PID\\n" atomically (parent directories created 0755 if missing).

    The directory is reached under docs/security.md R-PATH-1 (no symlink another user could
    have planted is followed), and an existing file there is replaced only if R-PID-2 allows
    it (``run_dir``: the run directory, where any regular file may be replaced): otherwise
    NotAPidFile, and nothing is written.
    """
    dfd = open_dir(path.parent, create=0o755)
    try:
        _check_replaceable(dfd, path, run_dir)
        atomic_write_at(dfd, path, f"{pid}\n".encode())
    finally:
        os.close(dfd)


def remove_pidfile(path: Path, run_dir: Path | None = None) -> bool:
    """Remove a stale PID file under the same rules as ``write_pidfile`` (R-PID-2): a symlink
    itself, an empty file, PID-file text, or any regular file directly in ``run_dir``.
    Otherwise NotAPidFile (nothing removed). False if there was nothing to remove (or a
    directory, which is left alone). Raises OSError when removal fails, and safefile.Refused
    for a directory reached through a symlink another user could have planted."""
    try:
        dfd = open_dir(path.parent)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        try:
            st = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return False
        _check_replaceable(dfd, path, run_dir)
        try:
            os.unlink(path.name, dir_fd=dfd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        return True
    finally:
        os.close(dfd)


# A run directory's temp files, listed once a few seconds (a stopall of 100 services would
# otherwise list a directory of 400 entries 200 times): directory -> (when, names).
_TEMPS: dict[str, tuple[float, list[str]]] = {}
TEMPS_FOR = 5.0  # seconds a listing serves


def remove_stale_temps(path: Path) -> None:
    """Remove temp files that atomic_write left for ``path`` when its writer was killed between
    creating and renaming them. Only under the service's lock: no writer can be at work then.
    The directory is reached under R-PATH-1; nothing is reported (this is tidying). It is
    listed at most once every TEMPS_FOR seconds: a temp file left by a writer killed since is
    removed by a later command."""
    prefix = f".{path.name}."
    stale = [
        n
        for n in _temp_names(path.parent)
        if n.startswith(prefix) and n[len(prefix) : -len(".tmp")].isdigit()
    ]
    if not stale:
        return
    try:
        dfd = open_dir(path.parent)
    except (OSError, ServicectlError):
        return
    try:
        for name in stale:
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    os.unlink(name, dir_fd=dfd)
            except OSError:
                pass
    finally:
        os.close(dfd)


def _temp_names(directory: Path) -> list[str]:
    """The names ending in .tmp in ``directory`` (reached under R-PATH-1), from a listing at
    most TEMPS_FOR seconds old; none if it cannot be listed."""
    import time

    key = str(directory)
    now = time.monotonic()
    cached = _TEMPS.get(key)
    if cached is not None and now - cached[0] < TEMPS_FOR:
        return cached[1]
    names: list[str] = []
    try:
        dfd = open_dir(directory)
    except (OSError, ServicectlError):
        return names
    try:
        rfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dfd)
        try:
            names = [n for n in os.listdir(rfd) if n.endswith(".tmp")]
        finally:
            os.close(rfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
    _TEMPS[key] = (now, names)
    return names


def remove_file(path: Path) -> bool:
    """Unlink ``path`` (a symlink itself, never its target); False if it was not there."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(st.st_mode):
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


class Record(NamedTuple):
    """What servicectl knows about a service it started (the state file beside the PID file)."""

    pid: int
    starttime: int  # kernel clock ticks since boot (/proc/PID/stat field 22)
    boot_id: str
    uid: int
    pgid: int  # the service's own process group, verified at start (0: none)
    exe: str | None
    pid_file: str
    type: str
    phase: str = "running"  # "starting" until start has confirmed it
    started_at: float = 0.0  # wall clock, for people only
    command: tuple[str, ...] = ()
    user: str | None = None
    stop_signal: int = 15
    stop_timeout: float = 30.0
    kill_mode: str = "group"
    status_text: str | None = None
    notify_socket: str | None = None
    sid: int = 0  # the session of the recorded process (0: unknown)
    seen: int = 0  # clock ticks since boot at which servicectl saw it alive in that session
    definition: str | None = None  # the definition file it was started from (None: unknown)
    # The definition's files at start, (path, mtime_ns, size, sha256) each (see drift.py).
    fingerprint: tuple[tuple[str, int, int, str], ...] = ()
    # Supervision: who supervises it ("servicectl", "systemd"...; empty: nobody) and, for
    # servicectl's supervisor, that process (pid, start time); respawns since the last start,
    # the last exit seen ({"code": N} or {"signal": "KILL"} or {"unknown": why}, with "at"),
    # when a pending respawn is due (wall clock), and the supervisor's last word on it.
    supervision: str = ""
    supervisor_pid: int = 0
    supervisor_starttime: int = 0
    restarts: int = 0
    last_exit: Optional[dict[str, Any]] = None
    respawn_at: float = 0.0
    supervision_note: Optional[str] = None

    def to_json(self) -> bytes:
        import json

        return json.dumps(self._asdict(), sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Record:
        import json

        data: dict[str, Any] = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = set(cls._fields)
        values = {k: v for k, v in data.items() if k in known}
        if "command" in values:
            values["command"] = tuple(values["command"])
        if "fingerprint" in values:
            values["fingerprint"] = tuple(tuple(entry) for entry in values["fingerprint"])
        if not isinstance(values.get("last_exit"), (dict, type(None))):
            values["last_exit"] = None
        return cls(**values)


def state_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.state"


def read_record(run_dir: Path, name: str) -> tuple[Record | None, str | None]:
    """The service's state record, or (None, why it was ignored) if missing or unusable."""
    path = state_path(run_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, f"the state file {path} is a symlink; not followed, ignored"
        return None, f"the state file {path} cannot be read ({exc.strerror}); ignored"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"the state file {path} is not a regular file; ignored"
        # Written by servicectl as root, or as the user reading it (docs/security.md R-RUN-2):
        # a non-root reader trusts root's records, or it would call every service dead.
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            return None, f"the state file {path} was not written by servicectl; ignored"
        raw = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    try:
        return Record.from_json(raw), None
    except (ValueError, TypeError):
        return None, f"the state file {path} is corrupt; ignored"


def write_record(run_dir: Path, name: str, record: Record) -> None:
    atomic_write(state_path(run_dir, name), record.to_json(), 0o644)
