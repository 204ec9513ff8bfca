"""What the parts of one service's lifecycle share: the Outcome of an action, the Observation
of a service, the lock around an action, and the tail of its log.

The bottom of the lifecycle modules: it imports none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from servicectl.errors import ServicectlError
from servicectl.lock import service_lock
from servicectl.paths import Dirs, ensure_run_dir
from servicectl.states import RUNNING, STARTING

if TYPE_CHECKING:
    from servicectl.config import Service
    from servicectl.pidfile import PidFileRead, Record
    from servicectl.proc import ProcInfo

KILL_CONFIRM_TIMEOUT = (
    5.0  # after SIGKILL, how long a process may linger (D state) before we give up
)
LOG_TAIL_LINES = 10


class Outcome:
    """What an action did to one service, for one output line (``ok_line`` False: print it on
    stderr as an error)."""

    __slots__ = ("name", "code", "message", "pid", "elapsed", "detail", "ok_line")

    def __init__(
        self,
        name: str,
        code: int,
        message: str,
        pid: int | None = None,
        elapsed: float = 0.0,
        detail: str = "",
        ok_line: bool = True,
    ) -> None:
        self.name = name
        self.code = code
        self.message = message
        self.pid = pid
        self.elapsed = elapsed
        self.detail = detail
        self.ok_line = ok_line

    def __repr__(self) -> str:
        return f"Outcome({self.name!r}, {self.code}, {self.message!r}, pid={self.pid})"


class Observation:
    """What is true of a service right now, and the evidence: ``state`` is running, starting,
    stopped or dead; ``leftovers``: files to clean when not running; ``remnants``: its group,
    after its main process exited."""

    __slots__ = ("state", "pid", "info", "record", "pid_read", "notes", "leftovers", "remnants")

    def __init__(
        self,
        state: str,
        pid: int | None = None,
        info: ProcInfo | None = None,
        record: Record | None = None,
        pid_read: PidFileRead | None = None,
        notes: list[str] | None = None,
        leftovers: bool = False,
        remnants: list[ProcInfo] | None = None,
    ) -> None:
        self.state = state
        self.pid = pid
        self.info = info
        self.record = record
        self.pid_read = pid_read
        self.notes = notes if notes is not None else []
        self.leftovers = leftovers
        self.remnants = remnants if remnants is not None else []

    @property
    def running(self) -> bool:
        return self.state in (RUNNING, STARTING)

    def now(self, state: str) -> Observation:
        """The same evidence, with the service now in ``state``."""
        return Observation(
            state,
            self.pid,
            self.info,
            self.record,
            self.pid_read,
            self.notes,
            self.leftovers,
            self.remnants,
        )


class StartFailed(ServicectlError):
    """The service did not start; nothing of it was left behind. ``exit_status``: how its
    process exited, when it died during the start and that is known."""

    exit_status: int | None = None


@contextmanager
def locked(svc: Service, dirs: Dirs) -> Iterator[None]:
    ensure_run_dir(dirs.run)
    with service_lock(dirs.run, svc.name):
        yield


def log_tail(svc: Service, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the service's output log, indented, or a note why there are none."""
    paths = [p for p in dict.fromkeys([svc.stdout, svc.stderr]) if p is not None]
    if not paths:
        return "  (output is discarded: stdout is null)"
    chunks = []
    for path in paths:
        text = tail_file(path, lines)
        if text:
            chunks.append(f"  last lines of {path}:\n" + "\n".join("    " + t for t in text))
    return "\n".join(chunks) if chunks else f"  ({paths[0]} is empty)"


def tail_file(path: Path, lines: int, end: int | None = None) -> list[str]:
    """The last ``lines`` lines of a file (up to byte ``end``; default: its end), read from
    the end backwards, never through a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell() if end is None else min(end, fh.tell())
            block = 8192
            data = b""
            while size > 0 and data.count(b"\n") <= lines:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
                block *= 2
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]
