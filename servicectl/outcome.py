"""What the parts of one service's lifecycle share: the Outcome of an action, the Observation
of a service, the lock around an action, and the tail of its log.

The bottom of the lifecycle modules: it imports none of them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from servicectl.errors import ServicectlError
from servicectl.lock import service_lock
from servicectl.paths import Dirs, ensure_run_dir
from servicectl.states import RUNNING, STARTING

if TYPE_CHECKING:
    from collections.abc import Iterator

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
    stopped, dead or unknown; ``leftovers``: files to clean when not running; ``remnants``: its
    group, after its main process exited; ``taken_by``: the definition file that runs a
    service of this name from the same run directory."""

    __slots__ = (
        "state",
        "pid",
        "info",
        "record",
        "pid_read",
        "notes",
        "leftovers",
        "remnants",
        "taken_by",
    )

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
        taken_by: str | None = None,
    ) -> None:
        self.state = state
        self.pid = pid
        self.info = info
        self.record = record
        self.pid_read = pid_read
        self.notes = notes if notes is not None else []
        self.leftovers = leftovers
        self.remnants = remnants if remnants is not None else []
        # Another definition file runs a service of this name from the same run directory.
        self.taken_by = taken_by

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
            self.taken_by,
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
    """The last lines of the service's output log, indented, or a note why there are none.

    Read under docs/security.md R-LOG-1 (``safefile.tail_lines``): a bounded window from the
    end, never through a symlink another user planted, never blocking on a FIFO.
    """
    from servicectl.safefile import describe_refusal, tail_lines

    paths = [p for p in dict.fromkeys([svc.stdout, svc.stderr]) if p is not None]
    if not paths:
        return "  (output is discarded: stdout is null)"
    chunks = []
    for path in paths:
        try:
            text = tail_lines(path, lines)
        except (ServicectlError, OSError) as exc:
            chunks.append(f"  ({path}: {describe_refusal(exc)})")
            continue
        if text:
            chunks.append(f"  last lines of {path}:\n" + "\n".join("    " + t for t in text))
    return "\n".join(chunks) if chunks else f"  ({paths[0]} is empty)"


def new_record(svc: Service, info: ProcInfo, **fields: Any) -> Record:
    """A state record of ``info`` as ``svc``'s process: its identity (PID, start time, boot,
    user, session) and what a later stop needs from the definition as it is now; ``fields``
    set or override the rest (phase, pgid, exe...)."""
    from servicectl import proc
    from servicectl.pidfile import Record

    base: dict[str, Any] = {
        "pid": info.pid,
        "starttime": info.starttime,
        "boot_id": proc.boot_id(),
        "uid": info.uid,
        "sid": info.sid,
        "pid_file": str(svc.pid_file),
        "type": svc.type,
        "started_at": time.time(),
        "command": tuple(svc.command),
        "user": svc.user,
        "stop_signal": svc.stop_signal,
        "stop_timeout": svc.stop_timeout,
        "kill_mode": svc.kill_mode,
        "definition": str(svc.file),
    }
    base.update(fields)
    return Record(**base)
