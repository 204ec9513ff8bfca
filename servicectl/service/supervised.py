"""What a service's record says of its supervision: whether its actions are the run
directory's supervisor's to carry out, whether that supervisor still runs, whether a respawn
is pending, and what status says of a supervised service's exits, adoption and health.

The supervisor itself (servicectl/supervisor/daemon.py) is one process per run directory, the
parent of every supervised service and the only actor on it; commands ask it through
supervisor/client.py. Nothing heavy is imported here: status reads the record alone.
"""

from __future__ import annotations

import os
import time

from servicectl.states import (
    DEAD,
    EXITED,
    FAILED,
    GAVE_UP,
    LAUNCHING,
    RESPAWNING,
    STOPPED,
)
from servicectl.system import proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.system.pidfile import PidFileRead
    from servicectl.system.record import Record

OURS = "servicectl"  # Record.supervision of a service supervised by servicectl's supervisor
OUTER = "SERVICECTL_SUPERVISED_BY"  # set by a generated systemd unit: systemd supervises


def outer() -> str:
    """The supervisor the environment names (a systemd unit's ``Environment=``), or ""."""
    return os.environ.get(OUTER, "").strip()[:40]


def delegated(svc: Service) -> bool:
    """Whether ``svc`` is for servicectl's supervisor to run (its parent, and the only actor
    on it): a restart policy, and no outer supervisor."""
    return svc.restart != "no" and not outer()


def routed(svc: Service, record: Record | None) -> bool:
    """Whether an action on ``svc`` is its supervisor's to carry out: its definition asks for
    supervision, or its record says servicectl's supervisor has it (a definition changed to
    ``restart: "no"`` under a supervised service: the supervisor stops it, and lets it go)."""
    if delegated(svc):
        return True
    return record is not None and record.supervision == OURS and not outer()


def start_fields(svc: Service) -> dict[str, Any]:
    """Record fields of a start servicectl's supervisor is not part of: who else supervises."""
    if svc.restart != "no" and outer():
        return {"supervision": outer()}
    return {}


def supervisor_alive(record: Record) -> bool:
    """Whether the supervisor this record names still runs (same PID and start time)."""
    if record.supervisor_pid <= 0:
        return False
    info = proc.read_proc(record.supervisor_pid)
    return info is not None and not info.zombie and info.starttime == record.supervisor_starttime


def pending(record: Record | None) -> bool:
    """Whether servicectl's supervisor may still bring this service back (stopall stops it)."""
    return (
        record is not None and record.supervision == OURS and record.phase not in (GAVE_UP, EXITED)
    )


# ---------------------------------------------------------------------------------------------
# What status and inspect say


def describe_exit(last: dict[str, Any] | None) -> str:
    """``exited with status 1``, ``was killed by signal KILL``, or why it is unknown."""
    if not last:
        return "exit status unknown"
    if last.get("oom"):
        return f"was killed by the kernel: out of memory at memory_max {last['oom']}"
    if "code" in last:
        return f"exited with status {last['code']}"
    if "signal" in last:
        return f"was killed by signal {last['signal']}"
    return f"exit status unknown: {last.get('unknown', 'not observed')}"


def exit_state(record: Record) -> str:
    """The state of a service whose recorded process is gone: ``failed`` once its supervisor
    gave up, ``stopped`` when its exit called for no respawn, else ``dead``."""
    if record.phase == GAVE_UP:
        return FAILED
    if record.phase == EXITED:
        return STOPPED
    return DEAD


def exit_notes(record: Record, pf: PidFileRead) -> list[str]:
    """What is known of the exit of a recorded process that is gone."""
    when = _when(record.last_exit.get("at")) if record.last_exit else ""
    what = describe_exit(record.last_exit) + (f" at {when}" if when else "")
    if record.phase in (GAVE_UP, EXITED):
        return [record.supervision_note or f"{what}; not respawned"]
    if record.phase == RESPAWNING:
        if not supervisor_alive(record):
            return [
                f"{what}; its supervisor (pid {record.supervisor_pid}) is gone: the next "
                f"servicectl command that acts starts one, which respawns it"
            ]
        due = max(0.0, record.respawn_at - time.time())
        return [f"{what}; a respawn is pending (in {due:.1f} s)"]
    if record.supervision == OURS:
        if supervisor_alive(record):
            return ["it exited just now; its supervisor is handling the exit"]
        return [
            f"exit status unknown: its supervisor (pid {record.supervisor_pid}) is gone; the "
            f"next servicectl command that acts starts one, which respawns it"
        ]
    if record.supervision:
        return [f"exit status unknown here: {record.supervision} supervises it"]
    return ["exit status unknown: not supervised" + _pid_file_written(pf)]


def _pid_file_written(pf: PidFileRead) -> str:
    try:
        return f"; its PID file was last written at {_when(os.lstat(pf.path).st_mtime)}"
    except OSError:
        return ""


def _when(epoch: object) -> str:
    if not isinstance(epoch, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def respawn_pending(record: Record | None) -> str:
    """``; a respawn is pending`` for a service its supervisor will bring back, else ""."""
    if record is not None and record.phase == RESPAWNING and supervisor_alive(record):
        return "; a respawn is pending"
    return ""


def describe(row: Any, record: Record | None, svc: Service) -> None:
    """Fill the supervision fields of a status row (status_row.Status) from the record (a
    respawn's "launching" record carries them too, from its first write)."""
    if record is None or (record.phase == LAUNCHING and not record.supervision):
        return
    if record.supervision == OURS:
        row.restarts = record.restarts
        if supervisor_alive(record):
            row.supervisor = f"pid {record.supervisor_pid} (restart: {svc.restart})"
            if record.adopted:
                row.adopted = dict(record.adopted)
        else:
            gone = f"its supervisor (pid {record.supervisor_pid}) is gone"
            row.supervisor = f"unsupervised: {gone}"
            if row.pid is not None:
                row.notes.append(
                    f"unsupervised: {gone}; the next servicectl command that acts (start, "
                    f"stop...; not status) starts a new one, which adopts it"
                )
        if record.health:
            row.health = dict(record.health)
        elif svc.health is not None and row.pid is not None:  # no probe has answered yet
            row.health = {"state": "starting", "probe": svc.health.describe(), "failures": 0}
    elif record.supervision:
        row.supervisor = record.supervision
    if record.last_exit:
        row.last_exit = dict(record.last_exit)
