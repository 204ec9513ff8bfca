"""``servicectl logs``: the end of a service's output log, and ``-f`` to follow it.

Every open of the log, the first and each one after a rotation, goes through safefile's rules:
never through a symlink a non-root user could have planted, regular files only, non-blocking,
and at most a bounded window read from the end.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import stat
import sys

from servicectl.errors import Exit, ServicectlError
from servicectl.output.face import face, stdout_gone
from servicectl.text import escape, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections import deque

    from _typeshed import StrPath

FOLLOW_WAKE = 1.0  # without inotify events (a file system without them), look again this often


def logs(name: str, lines: int | None, since: str | None, follow: bool) -> int:
    from servicectl.commands import resolve
    from servicectl.commands.grammar import LOG_LINES
    from servicectl.files.safe import tail_lines

    when = None
    if since is not None:
        from servicectl.commands.logtimes import parse_since

        try:
            when = parse_since(since)
        except ValueError as exc:
            face.error(f"logs: --since {shown(repr(since))}: {exc}")
            return Exit.USAGE
    [name] = resolve.requested_names([name])
    catalog = resolve.catalog_for([name])
    known, code = resolve.known_names(catalog, [name], Exit.NOT_INSTALLED)
    valid, bad = resolve.valid_names(catalog, known)
    if not valid:
        return max(code, bad)
    svc = catalog.services[name]
    if svc.stdout is None:
        face.error(f"{name}: output is discarded (stdout: null in {svc.file}); no log to show")
        return Exit.FAILURE
    path = svc.stdout
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    end = st.st_size if st is not None and stat.S_ISREG(st.st_mode) else 0
    try:
        # The tail ends at ``end`` and the follow starts there: no line is lost or shown twice.
        if when is None:
            for text in tail_lines(path, LOG_LINES if lines is None else lines, end):
                face.line(escape(text))  # R-LOG-3: the service's user wrote it
        else:
            _print_since(name, path, when, lines, end)
    except (ServicectlError, OSError) as exc:
        from servicectl.files.safe import describe_refusal

        face.error(f"{name}: the log file {path}: {describe_refusal(exc)}")
        return int(getattr(exc, "exit_code", Exit.FAILURE))
    if st is None:
        face.error(f"{name}: no log yet at {path} (has it ever started?)")
        if not follow:
            return Exit.FAILURE
    if follow:
        sys.stdout.flush()
        _follow(path, end)
    return Exit.OK


def _print_since(name: str, path: StrPath, when: float, lines: int | None, end: int) -> None:
    """Print the lines of the log written at ``when`` or later (up to byte ``end``; the last
    ``lines`` of them if given), read under R-LOG-1's open, escaped (R-LOG-3)."""
    from collections import deque

    from servicectl.commands.logtimes import SCAN_LIMIT, offset_since
    from servicectl.files.safe import LINE_BYTES, open_regular

    try:
        fd, st = open_regular(path, "log file", follow_final=False)
    except FileNotFoundError:
        return
    try:
        end = min(end, st.st_size)
        pos, cut = offset_since(fd, end, when, st.st_mtime)
        if cut:
            face.error(
                f"{name}: no line older than that in the last {SCAN_LIMIT >> 20} MiB of "
                f"{path}: showing those"
            )
        kept: deque[str] = deque(maxlen=lines)
        rest, skipped = b"", 0
        while pos < end:
            chunk = os.pread(fd, min(1 << 16, end - pos), pos)
            if not chunk:
                break
            pos += len(chunk)
            *whole, rest = (rest + chunk).split(b"\n")
            for raw in whole:
                _keep(kept, raw, skipped, lines)
                skipped = 0
            if len(rest) > LINE_BYTES:  # R-LOG-3: a line without end costs LINE_BYTES
                skipped += len(rest) - LINE_BYTES
                rest = rest[:LINE_BYTES]
        if rest:
            _keep(kept, rest, skipped, lines)
        for text in kept:
            face.line(shown(text))
    finally:
        os.close(fd)


def _keep(kept: deque[str], raw: bytes, skipped: int, lines: int | None) -> None:
    """Print a line at once when every line is wanted, else keep it among the last ones;
    a line longer than LINE_BYTES is cut, as tails cut it."""
    from servicectl.files.safe import LINE_BYTES

    raw = raw.removesuffix(b"\r")
    more = skipped + max(0, len(raw) - LINE_BYTES)
    text = raw[:LINE_BYTES].decode("utf-8", "replace") + (
        f" [... {more} bytes cut]" if more else ""
    )
    if lines is None:
        face.line(shown(text))
    else:
        kept.append(text)


def _follow(path: StrPath, pos: int) -> None:
    """Print what is appended to ``path`` until interrupted or nobody reads any more; survives
    copytruncate and rotation. Woken by inotify on the log's directory (or every second)."""
    # Nothing is under way that would need undoing: Ctrl-C or TERM just end the follow.
    gc.enable()  # main() turned the collector off for short commands; this one runs unbounded
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    watch = _Watch(os.path.dirname(path))
    fd = -1
    ino = None
    try:
        while not stdout_gone():
            fd, ino, pos = _read_new(path, fd, ino, pos)
            watch.wait(FOLLOW_WAKE)
    except KeyboardInterrupt:
        pass
    finally:
        watch.close()
        if fd >= 0:
            os.close(fd)


def _read_new(path: StrPath, fd: int, ino: int | None, pos: int) -> tuple[int, int | None, int]:
    """Print what was appended since ``pos``; reopen (under the same rules as the first open)
    when the path names another file now. Returns the descriptor, its inode and position."""
    from servicectl.files.safe import TAIL_BYTES, open_regular

    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and (fd < 0 or st.st_ino != ino):
        if fd >= 0:
            os.close(fd)
            fd, pos = -1, 0
        try:
            fd, fst = open_regular(path, "log file", follow_final=False)
        except (ServicectlError, OSError):
            return -1, None, 0  # a symlink or FIFO planted in its place: never read through it
        ino = fst.st_ino
    if fd < 0:
        return fd, ino, pos
    size = os.fstat(fd).st_size
    if size < pos:
        pos = 0  # truncated (copytruncate)
    if size - pos > TAIL_BYTES:  # R-LOG-3: a gigabyte (or a sparse terabyte) costs 64 KiB
        face.out(f"[... {size - pos - TAIL_BYTES} bytes skipped]\n")
        pos = size - TAIL_BYTES
    while pos < size:
        chunk = os.pread(fd, min(1 << 16, size - pos), pos)
        if not chunk:
            break
        pos += len(chunk)
        face.out(shown(chunk.decode("utf-8", "replace")))
    sys.stdout.flush()
    return fd, ino, pos


class _Watch:
    """inotify on a directory through libc (no dependency); without it, a plain timeout."""

    MASK = 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200  # MODIFY ATTRIB MOVED_* CREATE DELETE

    def __init__(self, directory: StrPath) -> None:
        self.fd = -1
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd >= 0 and libc.inotify_add_watch(fd, os.fsencode(directory), self.MASK) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except (OSError, AttributeError):
            self.fd = -1

    def wait(self, timeout: float) -> None:
        if self.fd < 0:
            select.select([], [], [], timeout)
            return
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if poller.poll(int(timeout * 1000)):
            try:
                os.read(self.fd, 1 << 16)
            except BlockingIOError:
                pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
