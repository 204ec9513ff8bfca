"""Atomic file writes: a temp file in the same directory (O_EXCL, never through a symlink),
fsync, rename over the name; and the removal of temp files a killed writer left behind.
"""

from __future__ import annotations

import os
import stat

from servicectl.errors import ServicectlError
from servicectl.files.safe import open_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath


def atomic_write(path: StrPath, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename.

    Never follows a symlink planted at ``path`` (rename replaces the link itself) or at the
    temp name (O_EXCL|O_NOFOLLOW), and a reader never sees a torn (half-written) file.
    There is no fsync: what is written here only means something during this boot (records
    carry the boot id, and the run directory is normally a tmpfs), and after a power loss a
    torn or empty file is read as garbage and ignored, never trusted.
    """
    try:
        dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        atomic_write_at(dfd, path, data, mode)
    finally:
        os.close(dfd)


def atomic_write_at(
    dfd: int, path: StrPath, data: bytes, mode: int = 0o644, durable: bool = False
) -> None:
    """``atomic_write`` of the file named ``path`` in the directory open as ``dfd``. An
    OSError names the file at fault by its full path. ``durable``: fsync the file before the
    rename and the directory after it (for what must survive a power loss: an administrator's
    edits)."""
    name = os.path.basename(path)
    tmp = f".{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(tmp, flags, mode, dir_fd=dfd)
        except FileExistsError:  # left by a killed writer that had this PID: removed, again
            os.unlink(tmp, dir_fd=dfd)
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
        raise OSError(
            exc.errno, exc.strerror, str(os.path.join(os.path.dirname(path), tmp))
        ) from None


def _unlink_temp(tmp: str, dfd: int) -> None:
    try:
        os.unlink(tmp, dir_fd=dfd)
    except FileNotFoundError:
        pass


TEMPS_FOR = 5.0  # seconds a listing serves
_TEMPS: dict[str, tuple[float, list[str]]] = {}


def remove_stale_temps(path: StrPath) -> None:
    """Remove temp files that atomic_write left for ``path`` when its writer was killed between
    creating and renaming them. Only under the service's lock: no writer can be at work then.
    The directory is reached under R-PATH-1; nothing is reported (this is tidying). It is
    listed at most once every TEMPS_FOR seconds: a temp file left by a writer killed since is
    removed by a later command."""
    prefix = f".{os.path.basename(path)}."
    stale = [
        n
        for n in _temp_names(os.path.dirname(path))
        if n.startswith(prefix) and n[len(prefix) : -len(".tmp")].isdigit()
    ]
    if not stale:
        return
    try:
        dfd = open_dir(os.path.dirname(path))
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


def _temp_names(directory: StrPath) -> list[str]:
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
