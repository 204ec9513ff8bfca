"""PID files and servicectl's own state records beside them: written atomically, read warily.

A PID file holds "PID\\n" only; the state record (JSON) keeps what identifies the process.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

MAX_PIDFILE_BYTES = 64


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename.

    Never follows a symlink planted at ``path`` (rename replaces the link itself) or at the
    temp name (O_EXCL|O_NOFOLLOW), and a reader never sees a torn file (FIELD-NOTES 7).
    There is no fsync: what is written here only means something during this boot (records
    carry the boot id, and the run directory is normally a tmpfs), and after a power loss a
    torn or empty file is read as garbage and ignored, never trusted.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        _unlink_temp(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        # Also reached when a signal (Ctrl-C, SIGTERM) is handled right after the rename: the
        # temp file is gone then, and the caller must see the interruption, not ENOENT.
        _unlink_temp(tmp)
        raise


def _unlink_temp(tmp: Path) -> None:
    try:
        os.unlink(tmp)
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
        by others, names nothing (FIELD-NOTES 6).
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
        target = os.readlink(path)
        return PidFileRead(path, True, problem=f"the PID file {path} is a symlink (to {target})")
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


def write_pidfile(path: Path, pid: int) -> None:
    """Write "PID\\n" atomically (parent directory created 0755 if missing)."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    atomic_write(path, f"{pid}\n".encode())


def remove_stale_temps(path: Path) -> None:
    """Remove temp files that atomic_write left for ``path`` when its writer was killed between
    creating and renaming them. Only under the service's lock: no writer can be at work then."""
    prefix = f".{path.name}."
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        middle = name[len(prefix) : -len(".tmp")]
        if middle.isdigit():
            try:
                remove_file(path.parent / name)
            except OSError:
                pass


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
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
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
