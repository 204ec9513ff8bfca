"""Independent work on many items done in two halves at once, this process and a forked one,
on a machine with two CPUs or more: the board of a thousand services reads its rows so (most
of a row is system calls on /proc, the run directory and cgroups, which a second CPU serves
alongside).

The forked half only reads and computes: it writes its answers, marshalled, to a pipe and
exits without running anything of the parent's (``os._exit``; its stdout and stderr are
/dev/null, so that no buffered output of the parent is written twice). Whatever goes wrong
there (an answer marshal cannot carry, the child killed, garbage on the pipe) costs time,
never an answer: the parent then computes that half itself. Used only in a process with one
thread (a fork copies the thread that forks alone).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

MIN_ITEMS = 48  # below this a fork (1-2 ms) costs more than half the work saves


def worth_splitting(count: int) -> bool:
    """Whether ``count`` items are worth two processes here: enough of them, two CPUs this
    process may run on, one thread."""
    if count < MIN_ITEMS:
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    threading = sys.modules.get("threading")
    one_thread = threading is None or threading.active_count() == 1  # type: ignore[attr-defined]
    return cpus >= 2 and one_thread


def in_two(
    items: Sequence[Any],
    compute: Callable[[Any], Any],
    encode: Callable[[Any], Any],
    decode: Callable[[Any], Any],
) -> list[Any]:
    """``[compute(i) for i in items]``, the second half computed by a forked child meanwhile.
    ``encode`` makes an answer data marshal carries (tuples, lists, dicts, str, numbers, None),
    ``decode`` makes it an answer again."""
    half = len(items) // 2
    first, second = items[:half], items[half:]
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(second, compute, encode, reader, writer)
    os.close(writer)
    collected = False
    try:
        answers = [compute(i) for i in first]
        blob = _read_all(reader)
        os.waitpid(pid, 0)
        collected = True
        theirs = _decoded(blob, decode, len(second))
    finally:
        os.close(reader)
        if not collected:  # interrupted: the child is not left behind
            _end(pid)
    if theirs is None:
        theirs = [compute(i) for i in second]
    return answers + theirs


def _child(
    items: Sequence[Any],
    compute: Callable[[Any], Any],
    encode: Callable[[Any], Any],
    reader: int,
    writer: int,
) -> None:
    try:
        os.close(reader)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        import marshal

        data = memoryview(marshal.dumps([encode(compute(i)) for i in items]))
        while data:
            data = data[os.write(writer, data) :]
    except BaseException:  # the parent computes this half itself
        pass
    os._exit(0)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _decoded(blob: bytes, decode: Callable[[Any], Any], count: int) -> list[Any] | None:
    """The child's answers, or None when they are missing or not what was asked."""
    import marshal

    try:
        data = marshal.loads(blob)
        if not isinstance(data, list) or len(data) != count:
            return None
        return [decode(item) for item in data]
    except Exception:
        return None


def _end(pid: int) -> None:
    from _signal import SIGKILL  # not signal: its enums import enum

    try:
        os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
