"""The status row of one service (what ``status`` shows on the board, in the block of
``status NAME`` and in ``--json``), built from what observe.inspect found, the record, and
what the service's cgroup, supervisor and health say.
"""

from __future__ import annotations

import os
import time

from servicectl.errors import StatusCode
from servicectl.paths import Dirs, run_dir_problem
from servicectl.service import tracked
from servicectl.service.observe import inspect
from servicectl.states import (
    STATE_CODES,
    STOPPED,
    UNKNOWN,
)
from servicectl.system import proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service
    from servicectl.errors import ServicectlError
    from servicectl.system.proc import ProcInfo
    from servicectl.system.record import Record

# ---------------------------------------------------------------------------------------------
# Inspection helpers


class Status:
    """One row of ``status``, and what the ``status NAME`` block shows beyond it.

    ``since``: when the running process started (wall clock, for people); ``pgid``/``sid``: the
    service's own process group and session (0: none), whose members the block lists;
    ``definition_changed``: its definition on disk differs from the one it was started with
    (parsed, ``enabled`` aside), ``definition_changes`` says which keys (None: unknown, a record
    of an older servicectl); the ``description`` is then the running one's.

    Supervision (filled in by the supervisor's record when there is one; None: not known):
    ``restarts`` since the last start, ``last_exit`` (``{"code": N}`` or ``{"signal": "KILL"}``,
    with ``at``), ``supervisor`` (what supervises it, or why nothing does).
    """

    __slots__ = (
        "name",
        "state",
        "code",
        "description",
        "pid",
        "uptime_seconds",
        "memory_bytes",
        "cpu_percent",
        "status_text",
        "notes",
        "error",
        "file",
        "dropins",
        "since",
        "pgid",
        "sid",
        "definition_changed",
        "definition_changes",
        "restarts",
        "last_exit",
        "supervisor",
        "tracking",
        "cgroup",
        "memory_max",
        "remaining",
        "cgroup_memory",
        "adopted",
        "health",
    )

    def __init__(
        self,
        name: str,
        state: str,
        code: int,
        description: str = "",
        pid: int | None = None,
        uptime_seconds: float | None = None,
        memory_bytes: int | None = None,
        cpu_percent: float | None = None,
        status_text: str | None = None,
        notes: list[str] | None = None,
        error: str | None = None,
    ) -> None:
        self.name = name
        self.state = state
        self.code = code
        self.description = description
        self.pid = pid
        self.uptime_seconds = uptime_seconds
        self.memory_bytes = memory_bytes
        self.cpu_percent = cpu_percent
        self.status_text = status_text
        self.notes = notes if notes is not None else []
        self.error = error
        self.file: str | None = None
        self.dropins: tuple[str, ...] = ()
        self.since: float | None = None
        self.pgid = 0
        self.sid = 0
        self.definition_changed = False
        self.definition_changes: list[str] | None = []
        self.restarts: int | None = None
        self.last_exit: dict[str, object] | None = None
        self.supervisor: str | None = None
        # How it is tracked (its cgroup, or its process group and session), its cgroup, its
        # memory_max (bytes, 0: none), what is left running of it after its main process.
        self.tracking: str | None = None
        self.cgroup = ""
        self.memory_max = 0
        self.remaining: list[int] = []
        self.cgroup_memory: int | None = None  # bytes, all its processes (from its cgroup)
        self.adopted: dict[str, object] | None = None
        self.health: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        supervision: dict[str, object] = {
            key: value
            for key, value in (
                ("restarts", self.restarts),
                ("last_exit", self.last_exit),
                ("supervisor", self.supervisor),
                ("adopted", self.adopted),
                ("health", self.health),
            )
            if value is not None
        }
        if self.tracking:
            supervision.update(tracking=self.tracking, cgroup=self.cgroup or None)
        if self.memory_max:
            supervision["memory_max"] = self.memory_max
        if self.remaining:
            supervision["remaining"] = self.remaining
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "uptime_seconds": None
            if self.uptime_seconds is None
            else round(self.uptime_seconds, 3),
            "exit_code": self.code,
            "memory_bytes": self.memory_bytes,
            "cpu_percent": self.cpu_percent,
            "description": self.description,
            "status_text": self.status_text,
            "notes": self.notes,
            "error": self.error,
            "definition_changed": self.definition_changed,
            "definition_changes": self.definition_changes,
            **supervision,
        }


def encoded(row: Status) -> tuple[object, ...]:
    """``row`` as plain data (marshal carries it: system/halves.py)."""
    return tuple(getattr(row, slot) for slot in Status.__slots__)


def decoded(data: tuple[object, ...]) -> Status:
    """A Status from ``encoded`` data; ValueError if it is not."""
    if not isinstance(data, tuple) or len(data) != len(Status.__slots__):
        raise ValueError("not a status row")
    row = Status.__new__(Status)
    for slot, value in zip(Status.__slots__, data):
        setattr(row, slot, value)
    return row


def status(
    svc: Service,
    dirs: Dirs,
    resources: bool = True,
    checked: bool = False,
    run_problem: ServicectlError | None = None,
) -> Status:
    """Observe ``svc`` without locking or changing anything (``unknown``, 4, when the run
    directory cannot be trusted or used). ``checked``: the caller has just asked
    ``run_dir_problem`` of the run directory, which said ``run_problem`` (the board asks once,
    not once per row)."""
    problem = run_problem if checked else run_dir_problem(dirs.run)
    if problem is not None:
        return Status(
            svc.name, UNKNOWN, int(StatusCode.UNKNOWN), svc.description, error=problem.message
        )
    run = None
    if svc.type == "oneshot":
        from servicectl.service import oneshot_state

        obs, run = oneshot_state.observe(svc, dirs)
    else:
        obs = inspect(svc, dirs)
    row = Status(
        svc.name,
        obs.state,
        int(STATE_CODES[obs.state]),
        svc.description,
        obs.pid,
        notes=[n for n in obs.notes if n],
    )
    if run is not None:
        oneshot_state.describe(row, run)
    row.file = str(svc.file)
    row.dropins = tuple(str(p) for p in getattr(svc, "dropins", ()))
    if obs.running and obs.info is not None:
        row.uptime_seconds = proc.age_seconds(obs.info)
        row.since = time.time() - row.uptime_seconds
        if obs.record is not None:
            row.status_text = obs.record.status_text
            if obs.record.ready_note:
                row.notes.append(f"readiness: {obs.record.ready_note}")
            _own_group(row, obs.info, obs.record)
            # (a module of a package imported by name: no importlib call for each row)
            from servicectl.definitions.fingerprint import NOTE, compare

            row.definition_changed, row.definition_changes = compare(
                svc, obs.record.parsed, obs.record.fingerprint
            )
            if row.definition_changed:
                row.notes.append(NOTE)
                if isinstance(obs.record.parsed, dict):  # what runs, not what is on disk
                    row.description = str(obs.record.parsed.get("description", ""))
        if resources:
            row.memory_bytes, row.cpu_percent = _resources(obs.info)
    tracked.describe(row, svc, dirs, obs)
    if svc.type != "oneshot" and obs.record is not None:
        from servicectl.service.supervised import describe

        describe(row, obs.record, svc)
    if obs.state == STOPPED and obs.record is None:
        _failed_start(row, svc, dirs)
    return row


def _failed_start(row: Status, svc: Service, dirs: Dirs) -> None:
    """A stopped service whose last start failed is "failed" until the next start or stop."""
    from servicectl.system.failure import failure_path

    if os.path.lexists(failure_path(dirs.run, svc.name)):
        from servicectl.service import failed

        failed.describe(row, svc, dirs)


def _own_group(row: Status, info: ProcInfo, record: Record) -> None:
    """The service's own process group and session, while its main process is still in them."""
    if record.pgid > 1 and info.pgid == record.pgid and record.pgid != os.getpgrp():
        row.pgid = record.pgid
        row.sid = info.sid


def _resources(info: ProcInfo) -> tuple[int | None, float | None]:
    """Resident memory and average CPU use since start, from the /proc/PID/stat that ``info``
    was read from (no sampling delay, no second read)."""
    age = proc.age_seconds(info)
    cpu = round(100.0 * info.cpu_ticks / proc.CLK_TCK / age, 1) if age > 0 else 0.0
    return info.rss_pages * proc.PAGE_SIZE, cpu
