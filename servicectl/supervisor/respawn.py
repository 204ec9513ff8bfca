"""What the supervisor does to one supervised service, off its poll loop: spawn it for a start,
undo that start, and handle an exit (record it, wait restart_delay, respawn it, or give up).

Each job runs in a worker thread and takes the service's lock for whatever it changes, so it
is serialized with every servicectl command on the service; after taking the lock it checks
that the service is still its to act on (``Unit.gen``: a command holding the service bumps
it), so a stop that came first always wins.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from servicectl.definitions.expansion import expanded
from servicectl.errors import ServicectlError
from servicectl.service import audit, launch, lifecycle, supervised, tracked
from servicectl.service.observe import inspect
from servicectl.service.outcome import StartFailed
from servicectl.service.terminate import schedule, terminate
from servicectl.states import EXITED, GAVE_UP, RESPAWNING
from servicectl.system import proc
from servicectl.system.lock import locked
from servicectl.system.pidfile import read_pidfile, remove_pidfile
from servicectl.system.proc import Handle, ProcInfo
from servicectl.system.record import Record, read_record, write_record
from servicectl.system.spawn import Gate, build_environment, resolve_account, resolve_program

if TYPE_CHECKING:
    import subprocess

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs


class Unit:
    """One supervised service, as the supervisor knows it. Changed by the poll loop only; a
    worker reads it, and hands what it did back as an event."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.svc: Service | None = None
        self.dirs: Dirs | None = None
        self.holder: object | None = None  # the connection holding it, if any
        self.gen = 0  # bumped by each hold: a worker of an older generation gives up
        self.cancel = threading.Event()  # set by a hold: a worker waiting restart_delay leaves
        self.pid = 0  # the watched main process (0: none)
        self.starttime = 0
        self.handle: Handle | None = None  # its pidfd, polled by the loop
        self.child: subprocess.Popen[bytes] | None = None  # its Popen, if spawned here
        self.launched: subprocess.Popen[bytes] | None = None  # what a start spawned (abort)
        self.strays: list[ProcInfo] = []  # what a forking launch left beside its daemon
        self.record: Record | None = None  # its last record seen (for an exit's record)
        self.last_exit: dict[str, Any] | None = None  # of the last process watched
        self.history: list[float] = []  # monotonic times of respawns, for start_limit
        self.restarts = 0  # respawns since the last start
        self.busy = False  # a worker is at it

    def fields(self) -> dict[str, Any]:
        """The supervision fields of the records this supervisor writes."""
        me = proc.read_proc(os.getpid())
        return {
            "supervision": supervised.OURS,
            "supervisor_pid": os.getpid(),
            "supervisor_starttime": me.starttime if me else 0,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


# ---------------------------------------------------------------------------------------------
# Exits


def exit_of(code: int | None, why: str = "its supervisor was not its parent") -> dict[str, Any]:
    """The record's form of an exit (a waitstatus_to_exitcode value; None: unknown)."""
    at = round(time.time(), 3)
    if code is None:
        return {"unknown": why, "at": at}
    if code < 0:
        try:
            name = signal.Signals(-code).name.removeprefix("SIG")
        except ValueError:
            name = str(-code)
        return {"signal": name, "at": at}
    return {"code": code, "at": at}


def clean_exit(svc: Service, last: dict[str, Any]) -> bool:
    """Whether an exit is a success for ``restart: on-failure``: status 0, or a signal of the
    stop schedule but KILL (someone stopped it); an unknown status is a failure."""
    if "code" in last:
        return bool(last["code"] == 0)
    if "signal" in last:
        stops = {sig for sig, _ in schedule(svc) if sig != signal.SIGKILL}
        return any(signal.Signals(s).name == f"SIG{last['signal']}" for s in stops)
    return False


def decide(unit: Unit) -> tuple[bool, str]:
    """After an exit: respawn it (True), or not (False); and what to say."""
    svc = unit.svc
    assert svc is not None and unit.last_exit is not None
    what = supervised.describe_exit(unit.last_exit)
    if svc.restart == "on-failure" and clean_exit(svc, unit.last_exit):
        return False, f"{what}; not respawned (restart: on-failure)"
    burst, interval = svc.start_limit
    now = time.monotonic()
    recent = [t for t in unit.history if interval > 0 and now - t < interval]
    unit.history[:] = recent  # older respawns no longer count (none do without a limit)
    if interval > 0 and len(recent) >= burst:
        return False, (
            f"{what}; {len(recent)} respawns within {interval:g} s (start_limit): gave up; "
            f"it is failed until the next start or restart"
        )
    n = f" ({len(recent) + 1} of {burst})" if interval > 0 else ""
    return True, f"{what}; respawn in {svc.restart_delay:g} s{n}"


# ---------------------------------------------------------------------------------------------
# Jobs


def handle_exit(
    unit: Unit, gen: int, cancel: threading.Event
) -> tuple[int, int, subprocess.Popen[bytes] | None] | None:
    """An exit the supervisor saw: record it, then respawn after restart_delay (again after a
    respawn that failed), or give up; unless a command took the service meanwhile (``gen``
    changed, ``cancel`` set). The respawned process (generation, PID, Popen), or None.

    The record always says what is under way (never removed in between), so that status and
    stopall always see a service its supervisor may still bring back."""
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    respawn, said = decide(unit)
    with locked(svc, dirs):
        if unit.gen != gen:
            return None
        _record_exit(unit, said, respawn)
    tell(unit, said)
    while respawn:
        if cancel.wait(svc.restart_delay):
            return None  # taken by a command
        with locked(svc, dirs):
            if unit.gen != gen:
                return None
            unit.history.append(time.monotonic())
            unit.restarts += 1
            try:
                pid, child = _respawn_guarded(unit)
            except ServicectlError as exc:
                unit.last_exit = _failed_respawn(exc, svc.name)
                respawn, said = decide(unit)
                _record_exit(unit, said, respawn)
                failed = exc.message.removeprefix(svc.name + ": ")
            else:
                tell(unit, f"respawned (pid {pid})")
                return gen, pid, child
        tell(unit, f"respawn failed: {failed}")
        tell(unit, said)
    return None


def record_abandoned(unit: Unit) -> None:
    """A command that held the service died, and the process exited under it: if the record
    still names that process, it says how it exited (the service stays stopped)."""
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    with locked(svc, dirs):
        record, _ = read_record(dirs.run, svc.name)
        if record is not None and record.pid == unit.pid:
            what = supervised.describe_exit(unit.last_exit)
            said = f"{what}; not respawned (its stop was interrupted)"
            _record_exit(unit, said, False, EXITED)


def _failed_respawn(exc: ServicectlError, name: str) -> dict[str, Any]:
    status = getattr(exc, "exit_status", None)
    if isinstance(exc, StartFailed) and status is not None:
        return exit_of(status)
    return exit_of(None, f"the respawn failed: {exc.message.removeprefix(name + ': ')}")


def _record_exit(unit: Unit, said: str, respawn: bool, phase: str = "") -> None:
    """Under the lock: the record says how the process exited and what comes next (RESPAWNING,
    GAVE_UP, or ``phase``); the PID file, which names a process that is gone, is removed."""
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    record, _ = read_record(dirs.run, svc.name)
    if record is None or record.pid != unit.pid:
        record = unit.record
    if record is None:
        return
    due = 0.0
    if respawn:
        phase, due = RESPAWNING, time.time() + svc.restart_delay
    elif not phase:
        phase = GAVE_UP if "gave up" in said else EXITED
    record = record._replace(phase=phase, respawn_at=due, supervision_note=said, **unit.fields())
    unit.record = record
    write_record(dirs.run, svc.name, record)
    pf = read_pidfile(svc.pid_file)
    if pf.pid == record.pid:
        try:  # R-SUP-2: as start and stop remove it (R-PID-2, never through a planted symlink)
            remove_pidfile(svc.pid_file, dirs.run)
        except (OSError, ServicectlError):
            pass


def _respawn_guarded(unit: Unit) -> tuple[int, subprocess.Popen[bytes] | None]:
    """``_respawn_locked``, an unexpected exception made a failed respawn (R-VIEW-4): its
    traceback goes to the supervisor's log (its stderr), the service's record says what
    failed, and the supervisor decides again as after any failed respawn."""
    try:
        return _respawn_locked(unit)
    except ServicectlError:
        raise
    except Exception as exc:
        from servicectl import lastresort

        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            sys.stderr.write(f"{stamp} {unit.name}: respawn: {lastresort.traceback_text(exc)}\n")
        except OSError:
            pass
        raise ServicectlError(f"{unit.name}: {lastresort.describe(exc)}") from None


def _respawn_locked(unit: Unit) -> tuple[int, subprocess.Popen[bytes] | None]:
    """Under the lock: start the service again as start does (end what is left of its group,
    clean stale files, spawn, record, await readiness, confirm); the PID and its Popen."""
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    obs = inspect(svc, dirs)
    if obs.running and obs.pid is not None and obs.record is not None:
        unit.record = obs.record  # cannot happen while the supervisor has it: watched all the same
        return obs.pid, None
    if obs.remnants and obs.record is not None:  # what is left of its group: ended first
        handles = [Handle(i.pid, i.starttime) for i in obs.remnants]
        terminate(svc, handles, obs.record.pgid, obs.record.pid, time.monotonic())
    launch.KEEP_RECORD.on = True  # the record is replaced, never removed (see handle_exit)
    try:
        pid = lifecycle._start_locked(svc, dirs, extra=unit.fields())
    finally:
        launch.KEEP_RECORD.on = False
    assert launch.KEPT is not None
    record, _ = read_record(dirs.run, svc.name)
    unit.record = record
    return pid, launch.KEPT.pop(pid, None)


def spawn_for(unit: Unit, notify: str | None) -> tuple[int, int]:
    """Spawn the service for a start that holds it: as start does it (gate, record before the
    program runs), with this supervisor as its parent. The start awaits readiness itself."""
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    unit.history.clear()
    unit.restarts = 0
    unit.last_exit = None
    account = resolve_account(svc)
    env = build_environment(svc, account)
    svc = expanded(svc, env)  # once: the definition is kept as written (R-EXP-1)
    program = resolve_program(svc, env)
    if notify:
        env["NOTIFY_SOCKET"] = notify
    else:
        env.pop("NOTIFY_SOCKET", None)
    cgroups = tracked.plan(svc, dirs)
    tracked.open_cgroups(svc, cgroups)  # what its previous run left in them is ended first
    gate = Gate() if svc.type == "simple" else None
    try:
        if gate is None:
            child, found, strays = launch.launch_forking(
                svc, dirs, account, env, program, cgroups=cgroups
            )
        else:
            child = launch.spawn_simple(svc, account, env, program, gate, cgroups)
            found, strays = None, []
        unit.launched, unit.strays = child, strays
        try:
            handle, info = found or launch.identify(svc, child)
            fields = {**unit.fields(), **tracked.fields(cgroups)}
            record = launch.record_start(
                svc, dirs, info, program, child, gate, notify, fields, unit.svc
            )
        except BaseException:
            launch.abort_start(svc, dirs, child, strays)
            raise
    finally:
        if gate is not None:
            gate.close()
    unit.record = record
    handle.close()
    return record.pid, record.starttime


def abort_for(unit: Unit) -> None:
    """Undo the start of a command that holds the service (it failed, or was interrupted)."""
    svc, dirs = unit.svc, unit.dirs
    if svc is None or dirs is None or unit.launched is None:
        return
    launch.abort_start(svc, dirs, unit.launched, unit.strays)
    unit.launched, unit.strays = None, []


def tell(unit: Unit, message: str) -> None:
    """Say what the supervisor decided: a line with the time in the service's log, and the
    system log."""
    svc = unit.svc
    assert svc is not None
    audit.note(f"{svc.name}: {message}")
    if svc.stdout is None:
        return
    from servicectl.files import safe

    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    line = f"{stamp} servicectl: {message}\n".encode("utf-8", "backslashreplace")
    try:
        uid = resolve_account(svc).uid
        fd = safe.open_output(svc.stdout, None, uid)
    except (ServicectlError, OSError):
        return
    try:
        os.write(fd, line)
    except OSError:
        pass
    finally:
        os.close(fd)


def refresh_record(unit: Unit) -> None:
    """The record of the service as it is now (after a start confirmed it, or an attach)."""
    if unit.dirs is not None:
        record, _ = read_record(unit.dirs.run, unit.name)
        if record is not None:
            unit.record = record


def record_exit_now(unit: Unit, code: int | None, reaped: bool) -> None:
    """What the poll loop learnt of the watched process's exit."""
    unit.last_exit = exit_of(code) if reaped else exit_of(None)
    if unit.svc is not None and unit.dirs is not None and unit.record is not None:
        oom = tracked.oom_limit(unit.svc, unit.dirs, unit.record)
        if oom:
            unit.last_exit["oom"] = oom  # killed by the kernel at memory_max
    launch._SPAWNED.discard(unit.pid)
