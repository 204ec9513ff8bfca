"""Opening files a definition names, as root, without being steered by other users.

The rules are in docs/security.md:

- R-PATH-1: a path is walked one component at a time with directory descriptors; a symlink is
  followed only where the directory holding it is writable by root alone.
- R-OUT-1..4: output files (``open_output``): never a final symlink, chown only what was just
  created, existing files in others' directories only if theirs to use, character devices as
  they are, anything else refused, nothing ever blocks.
- R-LOG-1: bounded log tails (``tail_lines``, ``read_tail``).
- R-ENV-2: small regular files to read (``read_regular``), non-blocking.
"""

from __future__ import annotations

import errno
import os
import stat

from servicectl.errors import Exit, ServicectlError
from servicectl.paths import writable_by_root_alone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath

O_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
MAX_LINKS = 40
TAIL_BYTES = 64 * 1024  # a log tail reads at most this much from the end
LINE_BYTES = 4096  # and cuts longer lines


class Refused(ServicectlError):
    """servicectl will not use this path: a symlink it must not follow, a file that is not
    its to use (exit 4). The message names the path but no service."""

    exit_code = Exit.PRIVILEGE


class NotUsable(Refused):
    """The path names something of the wrong kind: a FIFO, a socket, a directory (exit 1)."""

    exit_code = Exit.FAILURE


def _join(where: str, name: str) -> str:
    return where.rstrip("/") + "/" + name


def describe_kind(st: os.stat_result) -> str:
    mode = st.st_mode
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def open_dir(path: StrPath, create: int | None = None) -> int:
    """An O_PATH descriptor of the directory ``path``, walked from / under R-PATH-1.

    Missing directories are made with mode ``create`` (if given), never through a symlink.
    Raises Refused for a symlink in a directory other users can write, OSError otherwise
    (ENOENT, ENOTDIR, EACCES...), with the full path of the component at fault as filename.
    """
    walk = _Walk(os.path.abspath(os.fspath(path)), create)
    try:
        while walk.todo:
            walk.step(walk.todo.pop())
        return walk.fd
    except BaseException:
        os.close(walk.fd)
        raise


def _components(path: str) -> list[str]:
    """The components of ``path`` to walk, last first (so that ``pop`` takes the next)."""
    return [p for p in reversed(path.split("/")) if p not in ("", ".")]


class _Walk:
    """One walk of open_dir: ``fd`` is the directory reached (at ``where``), ``todo`` the
    components still to walk (last first); symlinks followed and directories made are
    counted, so that a loop ends."""

    def __init__(self, text: str, create: int | None) -> None:
        self.text = text
        self.create = create
        self.todo = _components(text)
        self.fd = os.open("/", O_DIR)
        self.where = "/"
        self.links = 0
        self.made = 0

    def _move(self, fd: int, where: str) -> None:
        os.close(self.fd)
        self.fd, self.where = fd, where

    def step(self, name: str) -> None:
        """Walk down into ``name`` (or up, for ``..``): open it without following a symlink;
        make it when missing, follow it when it is a symlink (both under the rules above)."""
        if name == "..":
            nfd = os.open("..", O_DIR, dir_fd=self.fd)
            self._move(nfd, os.path.dirname(self.where.rstrip("/")) or "/")
            return
        try:
            nfd = os.open(name, O_DIR | os.O_NOFOLLOW, dir_fd=self.fd)
        except FileNotFoundError:
            self._make(name)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise OSError(exc.errno, exc.strerror, _join(self.where, name)) from None
            self._follow(name)
            return
        self._move(nfd, _join(self.where, name))

    def _make(self, name: str) -> None:
        """Make the missing directory ``name`` (mode ``create``) and walk it next; without
        ``create`` (or after 100 made, a loop) it stays missing: FileNotFoundError."""
        if self.create is None or self.made > 100:
            raise FileNotFoundError(
                errno.ENOENT, os.strerror(errno.ENOENT), _join(self.where, name)
            ) from None
        try:
            os.mkdir(name, self.create, dir_fd=self.fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, _join(self.where, name)) from None
        self.made += 1
        self.todo.append(name)

    def _follow(self, name: str) -> None:
        """``name`` is not a directory: if a symlink in a directory only root can write, walk
        its target next (from / when absolute); otherwise NotADirectoryError or Refused."""
        where = self.where
        st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            raise NotADirectoryError(
                errno.ENOTDIR, os.strerror(errno.ENOTDIR), _join(where, name)
            ) from None
        target = os.readlink(name, dir_fd=self.fd)
        if not writable_by_root_alone(os.fstat(self.fd)):
            raise Refused(
                f"{_join(where, name)} is a symlink (to {target}) in {where}, a "
                f"directory other users can write; servicectl does not follow it"
            ) from None
        self.links += 1
        if self.links > MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), self.text) from None
        if target.startswith("/"):
            self._move(os.open("/", O_DIR), "/")
        self.todo.extend(_components(target))


def _lstat_at(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _symlink_refusal(path: StrPath, what: str, dfd: int) -> Refused:
    try:
        target = f" (to {os.readlink(os.path.basename(path), dir_fd=dfd)})"
    except OSError:
        target = ""
    where = "" if writable_by_root_alone(os.fstat(dfd)) else " in a directory other users can write"
    return Refused(f"the {what} {path} is a symlink{target}{where}; servicectl does not follow it")


def _check_output_kind(path: StrPath, st: os.stat_result, what: str, dfd: int) -> None:
    if stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        raise _symlink_refusal(path, what, dfd)
    raise NotUsable(
        f"the {what} {path} is {describe_kind(st)}, not a regular file or a character device; "
        f"servicectl does not write into it"
    )


def open_output(
    path: StrPath, give_to: tuple[int, int] | None, service_uid: int, what: str = "log file"
) -> int:
    """A write descriptor (O_APPEND, blocking) for an output file, under R-OUT-1..4.

    ``give_to`` (uid, gid): the service's user and group, when servicectl switches to them; a
    file servicectl creates now is given to them, nothing else is. ``service_uid`` is the user
    the service runs as (an existing file of that user may be used anywhere).
    """
    dfd = open_dir(os.path.dirname(path), create=0o750)
    try:
        dir_safe = writable_by_root_alone(os.fstat(dfd))
        name = os.path.basename(path)
        before = _lstat_at(dfd, name)
        if before is not None:
            _check_output_kind(path, before, what, dfd)
        flags = (
            os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        )
        created = False
        fd = -1
        if before is None:
            try:
                fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o640, dir_fd=dfd)
                created = True
            except FileExistsError:
                pass
        if fd < 0:
            try:
                fd = os.open(name, flags, dir_fd=dfd)
            except OSError as exc:
                now = _lstat_at(dfd, name)
                if now is not None and exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                    _check_output_kind(path, now, what, dfd)
                raise OSError(exc.errno, exc.strerror, str(path)) from None
        try:
            _hand_over(fd, path, what, dfd, created, dir_safe, give_to, service_uid)
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(dfd)


def _hand_over(
    fd: int,
    path: StrPath,
    what: str,
    dfd: int,
    created: bool,
    dir_safe: bool,
    give_to: tuple[int, int] | None,
    service_uid: int,
) -> None:
    st = os.fstat(fd)
    _check_output_kind(path, st, what, dfd)  # again: the entry may have been swapped
    if stat.S_ISREG(st.st_mode) and not created and not dir_safe:
        if st.st_uid not in (0, os.geteuid(), service_uid):
            raise Refused(
                f"the {what} {path} belongs to uid {st.st_uid}, in a directory other users can "
                f"write; servicectl does not write a service's output into another user's file "
                f"(remove it: it is recreated)"
            )
        if st.st_nlink != 1:
            raise Refused(
                f"the {what} {path} has {st.st_nlink} hard links, in a directory other users "
                f"can write; servicectl does not write through hard links there (remove it: it "
                f"is recreated)"
            )
    if created and give_to is not None:
        try:
            os.fchown(fd, give_to[0], give_to[1])
        except OSError:
            pass  # a file system without owners: the service writes through this descriptor
    os.set_blocking(fd, True)


def open_regular(
    path: StrPath, what: str, follow_final: bool = True, _depth: int = 0
) -> tuple[int, os.stat_result]:
    """A read descriptor of the regular file ``path`` and its stat, under R-PATH-1.

    The final component is followed only if ``follow_final`` and its directory is writable by
    root alone; it is checked (fstatat) before it is opened, so no device or FIFO is ever
    opened, and it is opened non-blocking anyway. Raises Refused, NotUsable or OSError.
    """
    dfd = open_dir(os.path.dirname(path))
    try:
        before = _lstat_at(dfd, os.path.basename(path))
        if before is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        if stat.S_ISLNK(before.st_mode):
            if not follow_final or not writable_by_root_alone(os.fstat(dfd)):
                raise _symlink_refusal(path, what, dfd)
            if _depth >= MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
            target = os.path.join(
                os.path.dirname(path), os.readlink(os.path.basename(path), dir_fd=dfd)
            )
            return open_regular(target, what, follow_final, _depth + 1)
        if not stat.S_ISREG(before.st_mode):
            raise NotUsable(f"the {what} {path} is {describe_kind(before)}, not a regular file")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(os.path.basename(path), flags, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _symlink_refusal(path, what, dfd) from None
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotUsable(f"the {what} {path} is {describe_kind(st)}, not a regular file")
        return fd, st
    finally:
        os.close(dfd)


def read_regular(path: StrPath, limit: int, what: str) -> tuple[bytes, os.stat_result]:
    """The content of a regular file of at most ``limit`` bytes (longer: NotUsable), and the
    stat of what was read; symlinks followed only where root alone could have made them."""
    fd, st = open_regular(path, what)
    try:
        chunks = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise NotUsable(f"the {what} {path} is larger than {limit // 1024} KiB")
    return b"".join(chunks), st


def tail_lines(path: StrPath, n: int, end: int | None = None) -> list[str]:
    """The last ``n`` lines of a log (up to byte ``end``; default: its end), under R-LOG-1:
    at most TAIL_BYTES are read, lines longer than LINE_BYTES are cut, the file is opened under
    R-PATH-1 and never through a final symlink, non-blocking, and must be a regular file.

    [] if the file does not exist. Raises Refused (symlink; exit 4), NotUsable (FIFO, device,
    directory...; exit 1) or OSError (unreadable) otherwise.
    """
    if n <= 0:
        return []
    data, start = read_tail(path, end)
    return window_lines(data, start > 0, n)


def read_tail(path: StrPath, end: int | None = None) -> tuple[bytes, int]:
    """The last TAIL_BYTES of a log (up to byte ``end``) and the offset they start at, read
    under the rules of tail_lines; (b"", 0) if the file does not exist."""
    try:
        fd, st = open_regular(path, "log file", follow_final=False)
    except FileNotFoundError:
        return b"", 0
    try:
        size = st.st_size if end is None else max(0, min(end, st.st_size))
        start = max(0, size - TAIL_BYTES)
        data = b""
        while len(data) < size - start:
            chunk = os.pread(fd, size - start - len(data), start + len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data, start


def window_lines(data: bytes, cut: bool, n: int) -> list[str]:
    """The last ``n`` whole lines of ``data``, decoded, each cut at LINE_BYTES. ``cut``: data
    begins in the middle of a line (a window that does not start at the file's start), whose
    start is dropped, unless it is the only line (then its end is shown)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    cut_head = False
    if cut and lines:
        if len(lines) > 1:
            lines.pop(0)  # the window began in the middle of this line
        else:
            cut_head = True  # one line longer than the whole window: show its end
    out = []
    for raw in lines[-n:] if n > 0 else []:
        raw = raw.removesuffix(b"\r")
        if cut_head:
            out.append("[...] " + raw[-LINE_BYTES:].decode("utf-8", "replace"))
        elif len(raw) > LINE_BYTES:
            more = len(raw) - LINE_BYTES
            out.append(raw[:LINE_BYTES].decode("utf-8", "replace") + f" [... {more} bytes cut]")
        else:
            out.append(raw.decode("utf-8", "replace"))
    return out


def describe_refusal(exc: BaseException) -> str:
    """A short reason for a tail that cannot be shown (for a failed start's message)."""
    if isinstance(exc, ServicectlError):
        return exc.message
    if isinstance(exc, OSError):
        return f"cannot be read: {exc.strerror}"
    return str(exc)


def read_if_regular(
    path: StrPath, limit: int, whole: bool = True
) -> tuple[bytes, os.stat_result] | None:
    """The bytes of ``path`` and its stat, if it is a regular file (None otherwise, or if it
    cannot be read): a FIFO or a device is never read (opened non-blocking, judged by fstat
    after the open, so a swap in between is seen). ``whole``: None for a file over ``limit``
    bytes; else its first ``limit`` bytes. (read_regular, above, is the strict form: it refuses
    with a reason, and follows only symlinks root alone could have made.)"""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (whole and st.st_size > limit):
            return None
        data = os.read(fd, limit + 1 if whole else limit)
    except OSError:
        return None
    finally:
        os.close(fd)
    if whole and len(data) > limit:
        return None
    return data, st
