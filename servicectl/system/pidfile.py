"""PID files: "PID\n" only, so that other tools can read them; written atomically into a
directory servicectl trusts, read warily (never through a symlink, bounded, garbage is "no
PID"), removed only where R-PID-2 allows. What identifies the process is in the state record
beside it (record.py).
"""

from __future__ import annotations

import os
import stat

from servicectl.errors import Exit, ServicectlError
from servicectl.files.atomic import atomic_write_at
from servicectl.files.safe import describe_kind, open_dir
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath

MAX_PIDFILE_BYTES = 64


class PidFileRead(NamedTuple):
    """What a PID file says. ``pid`` is None when it is missing, unsafe, empty or garbage;
    ``problem`` then says which (None for simply missing)."""

    path: str
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


def read_pidfile(path: StrPath) -> PidFileRead:
    """Read a PID file without following symlinks and without trusting its content."""
    path = os.fspath(path)
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

    def __init__(self, path: StrPath, what: str, definition: str = "the definition") -> None:
        super().__init__(
            f"{path} is not a PID file ({what}); servicectl neither removes nor replaces it "
            f"(check pid_file: in {definition}; if the file is garbage, remove it yourself)"
        )
        self.path = path
        self.what = what

    def naming(self, definition: StrPath) -> NotAPidFile:
        """The same refusal, naming the definition file to check."""
        return NotAPidFile(self.path, self.what, str(definition))


def _pid_text(data: bytes) -> bool:
    """Whether ``data`` is what a PID file holds (or a torn or damaged one): digits, signs and
    white space, at most MAX_PIDFILE_BYTES."""
    return len(data) <= MAX_PIDFILE_BYTES and all(c in b"0123456789+- \t\r\n" for c in data)


def _in_dir(dfd: int, directory: StrPath | None) -> bool:
    if directory is None:
        return False
    try:
        st = os.stat(directory)
    except OSError:
        return False
    here = os.fstat(dfd)
    return (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino)


def _check_replaceable(dfd: int, path: StrPath, run_dir: StrPath | None) -> os.stat_result | None:
    """R-PID-2: raise NotAPidFile unless what is at ``path`` may be removed or replaced: nothing,
    a symlink (the link itself), an empty file or PID-file text, or any regular file directly
    in the run directory (where only servicectl writes). Returns its lstat (None: nothing)."""
    try:
        st = os.stat(os.path.basename(path), dir_fd=dfd, follow_symlinks=False)
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
                fd = os.open(os.path.basename(path), flags, dir_fd=dfd)
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


def write_pidfile(path: StrPath, pid: int, run_dir: StrPath | None = None) -> None:
    """Write "PID\\n" atomically (parent directories created 0755 if missing).

    The directory is reached under docs/security.md R-PATH-1 (no symlink another user could
    have planted is followed), and an existing file there is replaced only if R-PID-2 allows
    it (``run_dir``: the run directory, where any regular file may be replaced): otherwise
    NotAPidFile, and nothing is written.
    """
    dfd = open_dir(os.path.dirname(path), create=0o755)
    try:
        _check_replaceable(dfd, path, run_dir)
        atomic_write_at(dfd, path, f"{pid}\n".encode())
    finally:
        os.close(dfd)


def remove_pidfile(path: StrPath, run_dir: StrPath | None = None) -> bool:
    """Remove a stale PID file under the same rules as ``write_pidfile`` (R-PID-2): a symlink
    itself, an empty file, PID-file text, or any regular file directly in ``run_dir``.
    Otherwise NotAPidFile (nothing removed). False if there was nothing to remove (or a
    directory, which is left alone). Raises OSError when removal fails, and safefile.Refused
    for a directory reached through a symlink another user could have planted."""
    try:
        dfd = open_dir(os.path.dirname(path))
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        try:
            st = os.stat(os.path.basename(path), dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return False
        _check_replaceable(dfd, path, run_dir)
        try:
            os.unlink(os.path.basename(path), dir_fd=dfd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        return True
    finally:
        os.close(dfd)


# A run directory's temp files, listed once a few seconds (a stopall of 100 services would
# otherwise list a directory of 400 entries 200 times): directory -> (when, names).


def remove_file(path: StrPath) -> bool:
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
