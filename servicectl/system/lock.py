"""One exclusive flock per service, held for a whole action, so that concurrent starts (or a
start racing a stop) cannot launch a second instance or split the PID file.

The kernel drops the lock when its holder dies, so a killed servicectl never leaves it stale.
"""

from __future__ import annotations

import errno
import os
import stat

from servicectl.errors import EnvironmentProblem, PrivilegeError, ServicectlError
from servicectl.paths import Dirs, ensure_run_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath

    from servicectl.definitions.schema import Service


def lock_path(run_dir: StrPath, name: str) -> str:
    return os.path.join(run_dir, f"{name}.lock")


def _open(path: str) -> int:
    """Open (or create) the lock file, never through a symlink; a clear error otherwise.

    A lock file that exists but cannot be opened for writing (a read-only or immutable run
    directory, a read-only file) is opened read-only: flock works on any descriptor, so a
    running service can still be stopped (docs/security.md R-LOCK-1).
    """
    flags = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise _lock_error(path, exc) from None
        try:
            fd = os.open(path, os.O_RDONLY | flags)
        except OSError:
            raise _lock_error(path, exc) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PrivilegeError(
            f"the lock file {path} is not a regular file; servicectl will not use it "
            f"(remove it: it is recreated)"
        )
    return fd


def _lock_error(path: str, exc: OSError) -> ServicectlError:
    if exc.errno == errno.ELOOP:
        try:
            target = f" (to {os.readlink(path)})"
        except OSError:
            target = ""
        return PrivilegeError(
            f"the lock file {path} is a symlink{target}; servicectl does not follow symlinks "
            f"in the run directory (remove the link: the lock file is recreated)"
        )
    if exc.errno == errno.EISDIR:
        return PrivilegeError(f"the lock file {path} is a directory; remove it")
    if isinstance(exc, PermissionError):
        where = os.path.dirname(path)
        owned = _other_owner(path)
        if owned is not None:
            owner, what = owned
            return PrivilegeError(
                f"needs {owner}: the service is {owner}'s ({what} belongs to {owner}) and "
                f"servicectl runs as uid {os.geteuid()}; run the command as {owner} (sudo "
                f"servicectl ...)"
            )
        return PrivilegeError(
            f"cannot create the lock file {path}: {exc.strerror} (is the run directory "
            f"{where} read-only or immutable? see lsattr -d {where})"
        )
    return EnvironmentProblem(f"cannot create the lock file {path}: {exc.strerror}")


def _other_owner(path: str) -> tuple[str, str] | None:
    """Who owns the lock file (or, if it does not exist yet, the run directory), when that is
    not servicectl's user: ("root", "its lock file PATH"); None when it is servicectl's own."""
    for where, what in ((path, "its lock file"), (os.path.dirname(path), "the run directory")):
        try:
            uid = os.stat(where).st_uid
        except OSError:
            continue
        if uid == os.geteuid():
            return None
        if uid == 0:
            return "root", f"{what} {where}"
        import pwd

        try:
            return f"user {pwd.getpwuid(uid).pw_name}", f"{what} {where}"
        except KeyError:
            return f"uid {uid}", f"{what} {where}"
    return None


class ServiceLock:
    """``with ServiceLock(run_dir, name):`` holds the service's lock; entering blocks while
    another servicectl acts on the same service. ``ensure``: make the run directory first.
    (A class, not contextlib's decorator: ``status`` imports this module, not contextlib.)

    The lock file is never removed: removing it would let two holders lock different files.
    """

    __slots__ = ("run_dir", "name", "ensure", "fd")

    def __init__(self, run_dir: StrPath, name: str, ensure: bool = False) -> None:
        self.run_dir, self.name, self.ensure, self.fd = run_dir, name, ensure, -1

    def __enter__(self) -> None:
        import fcntl

        from servicectl.system.turns import paused

        if self.ensure:
            ensure_run_dir(self.run_dir)
        fd = _open(lock_path(self.run_dir, self.name))
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                with paused():  # a fleet's worker lets another act meanwhile (turns.py)
                    fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def service_lock(run_dir: StrPath, name: str) -> ServiceLock:
    """Hold the service's lock (``with service_lock(run_dir, name):``)."""
    return ServiceLock(run_dir, name)


def is_locked(run_dir: StrPath, name: str) -> bool:
    """Whether another process holds the service's lock right now (mid-start or mid-stop)."""
    try:
        fd = os.open(lock_path(run_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    import fcntl  # here: a shared library the status of a stopped service does not load

    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def locked(svc: Service, dirs: Dirs) -> ServiceLock:
    """Hold ``svc``'s lock, making the run directory first (``with locked(svc, dirs):``)."""
    return ServiceLock(dirs.run, svc.name, ensure=True)
