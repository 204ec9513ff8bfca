"""Tracking a service by its cgroup: made fresh before each spawn (what a previous run left in
it ended first), named by the record, read by status, ended and removed by stop.

Everything in a service's cgroup is the service's: only root can move a process into it or
make a cgroup beneath it (docs/security.md R-CG-1), and every process the service forks is born
in it. So, unlike what is left of a process group (identity.group_remnants, R-PROC-3), what is
left in its cgroup needs no proof: it is ended, whatever session it made. Where no cgroup v2
hierarchy can be written, the record names none and the process group and session are used.
"""

from __future__ import annotations

import os

from servicectl.definitions.schema import KILL_WAIT
from servicectl.system import cgroup, proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.service.observation import Observation
    from servicectl.service.outcome import Outcome
    from servicectl.system.cgroup_limits import Plan
    from servicectl.system.proc import ProcInfo
    from servicectl.system.record import Record


def plan(svc: Service, dirs: Dirs) -> Plan:
    """The service's cgroups and limits on this machine (ConfigError, exit 6, when a limit
    cannot be applied)."""
    from servicectl.system import cgroup_limits

    return cgroup_limits.plan(svc, str(dirs.run))


def fields(p: Plan) -> dict[str, Any]:
    """The record's fields for a service spawned under ``p``."""
    v1 = tuple(path for _, path in p.v1)
    by = "systemd" if p.why == cgroup.SYSTEMD_UNIT else ""
    return {"cgroup": p.v2, "cgroups_v1": v1, "memory_max": p.memory_max, "tracked_by": by}


def pids_text(pids: list[int]) -> str:
    return ", ".join(str(p) for p in pids)


def _processes(n: int) -> str:
    return f"{n} process{'es' if n != 1 else ''}"


def open_cgroups(svc: Service, p: Plan) -> str:
    """Before a spawn: make the service's cgroups, fresh (the kernel's counters at zero), with
    its limits. What an earlier run left in them is ended first (kill_mode: process keeps it,
    as systemd's KillMode=process does). Returns what to say of it ("" if nothing)."""
    from servicectl.service.outcome import StartFailed
    from servicectl.system import cgroup_limits

    try:
        # Usually none is there (stop removed them): made now, they are fresh.
        fresh = all(cgroup.make(path, _top_of(path)) for path in p.all)
        said = "" if fresh else _leftovers(svc, p)
        cgroup_limits.make(p)
    except OSError as exc:
        raise StartFailed(
            f"{svc.name}: failed to start: cannot make its cgroup {exc.filename or p.v2}: "
            f"{exc.strerror}"
        ) from None
    return said


def _top_of(path: str) -> str:
    """TOP/servicectl/<run id>/NAME.service: TOP."""
    return os.path.dirname(os.path.dirname(os.path.dirname(path)))


def _leftovers(svc: Service, p: Plan) -> str:
    """The service's cgroups were there already: end what is in them (or keep it, with
    kill_mode: process), and remove the empty ones, to be made again; what to say."""
    said, kept = "", False
    if p.v2 and cgroup.populated(p.v2):
        if svc.kill_mode == "process":
            kept = True
            left = cgroup.members(p.v2)
            said = (
                f"{_processes(len(left))} its previous run left stay in its cgroup (kill_mode: "
                f"process): PID {pids_text(left)}"
            )
        else:
            ended = end(p.all)
            said = f"ended {_processes(len(ended))} left in its cgroup (PID {pids_text(ended)})"
    elif not p.v2 and any(cgroup.members(path) for _, path in p.v1):
        ended = end(p.all)
        said = f"ended {_processes(len(ended))} left in its cgroups (PID {pids_text(ended)})"
    if not kept:
        for path in p.all:
            if os.path.isdir(path) and not cgroup.populated(path):
                cgroup.remove(path)
    return said


def join(svc: Service, p: Plan, pid: int, born_in: str = "") -> None:
    """Move the gated child ``pid`` into the service's cgroups, before it runs anything; but
    ``born_in``, the cgroup it was born in (child.py)."""
    from servicectl.service.outcome import StartFailed

    for path in p.all:
        if path == born_in:
            continue
        try:
            cgroup.join(path, pid)
        except OSError as exc:
            raise StartFailed(
                f"{svc.name}: failed to start: cannot move it into its cgroup {path}: "
                f"{exc.strerror}"
            ) from None


def end(paths: tuple[str, ...], timeout: float = KILL_WAIT) -> list[int]:
    """SIGKILL everything in these cgroups, wait until they are empty (cgroup.events, never a
    sleep), and remove them; the PIDs that were in them. A cgroup that does not empty (a
    process stuck in the kernel) is left."""
    killed: set[int] = set()
    for path in paths:
        if cgroup.populated(path):
            killed.update(cgroup.kill(path))
    for path in paths:
        if not killed or cgroup.wait_empty(path, timeout):
            cgroup.remove(path, os.path.dirname(os.path.dirname(path)))
    return sorted(killed)


def recorded(svc: Service, dirs: Dirs, record: Record | None) -> tuple[str, ...]:
    """The cgroups a record names, if they can be the service's (R-CG-2); v2 first."""
    if record is None:
        return ()
    run = str(dirs.run)
    paths = ((record.cgroup,) if record.cgroup else ()) + tuple(record.cgroups_v1)
    return tuple(p for p in paths if cgroup.trusted(p, run, svc.name))


def v2_of(svc: Service, dirs: Dirs, record: Record | None) -> str:
    """The service's v2 cgroup as its record names it ("" if none)."""
    if record is None or not record.cgroup:
        return ""
    return record.cgroup if cgroup.trusted(record.cgroup, str(dirs.run), svc.name) else ""


def remnants(svc: Service, dirs: Dirs, record: Record) -> list[ProcInfo]:
    """The live processes in the service's cgroup but its recorded main process."""
    path = v2_of(svc, dirs, record)
    out = []
    for pid in cgroup.members(path) if path else []:
        info = proc.read_proc(pid)
        if info is not None and not info.zombie and pid != record.pid:
            out.append(info)
    return out


def finish(svc: Service, dirs: Dirs, record: Record | None) -> str:
    """After a stop: end what is left in the service's cgroups (kill_mode: group) and remove
    them; what to say ("" if nothing was left)."""
    paths = recorded(svc, dirs, record)
    if not paths:
        return ""
    if svc.kill_mode == "process" and any(cgroup.members(p) for p in paths):
        return ""  # its other processes stay, as configured
    killed = end(paths)
    if not killed:
        return ""
    return f"; then killed {_processes(len(killed))} left in its cgroup (PID {pids_text(killed)})"


def left_cgroup(
    svc: Service, dirs: Dirs, record: Record, pid: int, path: str | None = None
) -> str | None:
    """A note when the main process is no longer in its cgroup (a root service can move
    itself): where it went. None while it is in it. ``path``: its v2 cgroup, if known."""
    path = v2_of(svc, dirs, record) if path is None else path
    if not path:
        return None
    now = cgroup.where(pid)  # /proc/PID/cgroup: cheaper than reading cgroup.procs
    if now is None:
        return None
    tail = path[path.rindex("/" + cgroup.TOP + "/") :]
    if now.endswith(tail) or tail + "/" in now:  # in it, or in a cgroup a root service made
        return None
    return (
        f"process {pid} has left its cgroup {path}"
        + (f" (it is in {now} now)" if now else "")
        + "; servicectl still stops it by its PID and process group"
    )


def tracking(svc: Service, dirs: Dirs, record: Record | None) -> str:
    """How the service is tracked: its cgroup, or the process group and session."""
    if record is None:
        return ""
    path = v2_of(svc, dirs, record)
    if path:
        return f"cgroup {path}"
    return cgroup.SYSTEMD_UNIT if record.tracked_by == "systemd" else cgroup.NO_CGROUP


def oom_limit(svc: Service, dirs: Dirs, record: Record) -> str | None:
    """memory_max as written (``64M``) when the kernel killed some of the service for memory,
    else None: how the supervisor records an exit's cause."""
    from servicectl.system import cgroup_limits

    if not cgroup_limits.oom_kills(recorded(svc, dirs, record)):
        return None
    return cgroup_limits.show_bytes(record.memory_max) if record.memory_max else "its limit"


def oom_note(svc: Service, dirs: Dirs, record: Record, running: bool) -> str | None:
    """What the kernel's OOM killer did in the service's cgroup, if anything."""
    from servicectl.system import cgroup_limits

    return _oom_said(record, cgroup_limits.oom_kills(recorded(svc, dirs, record)), running)


def _oom_said(record: Record, n: int, running: bool) -> str | None:
    if not n:
        return None
    from servicectl.system.cgroup_limits import show_bytes

    limit = show_bytes(record.memory_max) if record.memory_max else "its limit"
    if running:
        return f"the kernel killed {_processes(n)} of it: out of memory at memory_max {limit}"
    return f"killed by the kernel: out of memory at memory_max {limit}"


def end_service(svc: Service, dirs: Dirs) -> list[int]:
    """End and remove whatever cgroups service ``svc`` of this run directory has on this
    machine (a failed start's clean-up); the PIDs killed."""
    from servicectl.system import cgroup_limits

    run = str(dirs.run)
    paths = (cgroup.service_path(run, svc.name),) + cgroup_limits.v1_leaves(run, svc.name)
    return end(tuple(p for p in paths if p and os.path.isdir(p)))


def after_exit(
    svc: Service, dirs: Dirs, record: Record
) -> tuple[list[ProcInfo], list[str], bool] | None:
    """What is left in the cgroup of a service whose main process exited: (the remnants stop
    and start end, notes for people, whether any process remains); None when the service has
    no cgroup (its process group is looked at instead)."""
    if not v2_of(svc, dirs, record):
        return None
    notes = []
    oom = oom_note(svc, dirs, record, running=False)
    if oom:
        notes.append(oom)
    left = remnants(svc, dirs, record)
    if not left:
        return [], notes, False
    pids = pids_text([i.pid for i in left])
    said = f"main process {record.pid} exited; {_processes(len(left))} remain: {pids}"
    if record.kill_mode == "process":
        notes.append(f"{said} (kill_mode: process: stop leaves them)")
        return [], notes, True
    notes.append(f"{said}; stop or start ends them")
    return left, notes, True


def describe(row: Any, svc: Service, dirs: Dirs, obs: Observation) -> None:
    """Fill a status row (status_row.Status) with how the service is tracked: its cgroup, the
    memory all its processes use (from the cgroup) and its limit, what is left of it, and
    notes when its main process left its cgroup or the kernel killed some of it. (The board
    calls it a thousand times: each recorded cgroup is checked once, R-CG-2, and only the
    files that can be there are opened.)"""
    record = obs.record
    if record is None or (not obs.running and not obs.remnants and not record.cgroup):
        return
    from servicectl.system.cgroup_limits import memory_seen

    paths = recorded(svc, dirs, record)
    v2 = record.cgroup if record.cgroup and record.cgroup in paths else ""
    if v2:
        row.tracking = f"cgroup {v2}"
    else:
        row.tracking = cgroup.SYSTEMD_UNIT if record.tracked_by == "systemd" else cgroup.NO_CGROUP
    row.cgroup = v2
    row.memory_max = record.memory_max
    row.remaining = [i.pid for i in obs.remnants]
    if not obs.running or obs.pid is None:
        return
    used, kills = memory_seen(v2, paths[1:] if v2 else paths)
    if used is not None:
        row.memory_bytes = row.cgroup_memory = used
    for note in (left_cgroup(svc, dirs, record, obs.pid, v2), _oom_said(record, kills, True)):
        if note:
            row.notes.append(note)


def unrecorded(svc: Service, dirs: Dirs, notes: list[str]) -> list[ProcInfo] | None:
    """Processes in the service's cgroup although it has no record (nor PID): None if there
    are none. With kill_mode: process they are what its last stop left on purpose (noted,
    []); otherwise they are remnants that stop and start end (noted, returned)."""
    path = cgroup.service_path(str(dirs.run), svc.name)
    if not path or not os.path.isdir(path):
        return None
    left = [i for i in map(proc.read_proc, cgroup.members(path)) if i and not i.zombie]
    if not left:
        return None
    pids = pids_text([i.pid for i in left])
    if svc.kill_mode == "process":
        notes.append(
            f"its last run left {_processes(len(left))} running in its cgroup {path} (kill_mode: "
            f"process): {pids}"
        )
        return []
    notes.append(
        f"no main process, but {_processes(len(left))} remain in its cgroup {path}: {pids}; "
        f"stop or start ends them"
    )
    return left


def stop_unrecorded(svc: Service, dirs: Dirs, left: list[ProcInfo], progress: Any) -> Outcome:
    """Stop what is in the service's cgroup when there is no record of it: the stop schedule
    on each, then whatever is left gets cgroup.kill, and the cgroups go."""
    import time

    from servicectl.errors import Exit
    from servicectl.service.outcome import Outcome
    from servicectl.service.terminate import cgroup_handles, terminate

    path = cgroup.service_path(str(dirs.run), svc.name)
    t0 = time.monotonic()
    handles = cgroup_handles(path)
    how, elapsed = terminate(svc, handles, 0, 0, t0, progress=progress, cgroup=path)
    end_service(svc, dirs)
    what = f"{_processes(len(left))} left in its cgroup with no main process"
    if how.startswith("killed"):
        return Outcome(svc.name, Exit.OK, f"{what} {how}", None, elapsed)
    return Outcome(svc.name, Exit.OK, f"stopped {what} {how} ({elapsed:.2f} s)", None, elapsed)
