"""What the supervisor does to one supervised service, off its poll loop, in a worker thread:
the lifecycle's own actions (start, stop, restart, reload, action: servicectl/service/) run
with the supervisor's Actor (``Hands``), and the supervisor's own jobs: record an exit, respawn,
restart an unhealthy service, adopt a service whose supervisor is gone.

A job owns its service while it runs (machine.py: one job at a time); it takes the service's
lock for whatever it changes, as any servicectl command does, and hands its Result back to the
loop, which moves the state.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from servicectl.errors import Interrupted, ServicectlError
from servicectl.service import audit, lifecycle, supervised
from servicectl.service.actor import Actor
from servicectl.service.observe import inspect
from servicectl.service.outcome import Outcome, StartFailed
from servicectl.service.terminate import schedule
from servicectl.states import EXITED, GAVE_UP, RESPAWNING
from servicectl.system.lock import locked
from servicectl.system.pidfile import read_pidfile, remove_pidfile
from servicectl.system.record import read_record, write_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.supervisor.machine import Unit
    from servicectl.system.cancel import Cancel
    from servicectl.system.record import Record

Progress = Callable[[str, str, "float | None"], None]


class Hands(Actor):
    """The supervisor acting on one service in one job: the records it writes say that it
    supervises the service (its PID and start time, the restarts, the last exit: from the
    first write of a start on), it keeps what it spawns (it is their parent and reaps them),
    and a start that finds the service running supervises it from then on."""

    reaped: dict[int, int]

    def __init__(
        self, me: tuple[int, int], unit: Unit, cancel: Cancel | None, respawn: bool = False
    ) -> None:
        self.me = me
        self.unit = unit
        self.cancel = cancel
        self.keep_record = respawn
        self.reaped = {}
        self.children: list[subprocess.Popen[bytes]] = []
        self.lines: list[str] = []  # the service's transitions, for its log

    def fields(self, svc: Service) -> dict[str, Any]:
        unit = self.unit
        return {
            "supervision": supervised.OURS,
            "supervisor_pid": self.me[0],
            "supervisor_starttime": self.me[1],
            "restarts": unit.restarts,
            "last_exit": unit.last_exit,
            "respawn_at": 0.0,
            "supervision_note": None,
            "adopted": {k: v for k, v in unit.adopted.items() if k != "said"}
            if unit.adopted
            else None,
            "health": None,
        }

    def spawned(self, child: subprocess.Popen[bytes]) -> None:
        self.children.append(child)

    def attach(self, svc: Service, dirs: Dirs, record: Record) -> str:
        """A start found the service running: from now on this supervisor watches it (the
        loop does, with the PID the job hands back) and its record says so."""
        mine = record.supervision == supervised.OURS and record.supervisor_pid == self.me[0]
        adopted = self.unit.adopted
        if mine and adopted and not adopted.get("said") and adopted.get("from") != self.me[0]:
            adopted["said"] = True  # the first start since the adoption says so
            old = adopted["from"]
            return f"; its supervisor (pid {old}) had gone: supervised again by pid {self.me[0]}"
        if mine:
            return ""
        was = record.supervision == supervised.OURS
        unit = self.unit
        unit.restarts, unit.history = 0, []
        try:
            write_record(dirs.run, svc.name, record._replace(**self.fields(svc)))
        except OSError as exc:
            return f"; not supervised: its record cannot be written: {exc.strerror}"
        if was:
            gone = f"its supervisor (pid {record.supervisor_pid}) had gone"
            return f"; {gone}: supervised again (by pid {self.me[0]})"
        return f"; now supervised (restart: {svc.restart}, by pid {self.me[0]})"


class Result:
    """How a job ended: the action's Outcome or its error; the service's process that runs
    after it (PID, start time; None: nothing runs); an exit status it collected; and, for the
    supervisor's own jobs, the state it decided (respawning with ``due``, or stopped)."""

    __slots__ = ("outcome", "error", "alive", "code", "respawn", "children", "said")

    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.alive: tuple[int, int] | None = None
        self.code: int | None = None
        self.respawn: bool | None = None  # the supervisor's decision, when it made one
        self.children: list[subprocess.Popen[bytes]] = []
        self.said = ""


COMMANDS = ("start", "stop", "restart", "tell", "adopt")  # after these, what runs is looked at
STARTS = ("start", "respawn", "restart")  # the jobs that start a process


def run(kind: str, job: Callable[..., Any], hands: Hands, *args: Any) -> Result:
    """Run ``job(hands, result, *args)`` in this worker thread with the job's cancellation;
    after a command's job, what runs of the service (the supervisor's own jobs say it)."""
    from servicectl.system.cancel import cancel_scope

    result = Result()
    unit = hands.unit
    try:
        with cancel_scope(hands.cancel):
            job(hands, result, *args)
    except (ServicectlError, KeyboardInterrupt) as exc:
        result.error = exc
    except Exception as exc:  # noqa: BLE001 - the loop answers it, and carries on
        result.error = exc
    result.children = hands.children
    if hands.lines:
        write_lines(unit.svc, hands.lines)
    looks = kind in COMMANDS or (kind == "respawn" and result.outcome is not None)
    if looks and unit.svc is not None and unit.dirs is not None:
        result.alive = alive(unit.svc, unit.dirs) or started(unit.svc, unit.dirs, kind, result)
    return result


def started(svc: Service, dirs: Dirs, kind: str, result: Result) -> tuple[int, int] | None:
    """The process a start (or a respawn, or a restart) started and recorded, gone before the
    job could look (a crash at start, after its start_grace): watched all the same, so that
    its exit is one like any other, decided by its restart policy (without this, the exit was
    lost and the service left stopped, never respawned, never failed). None otherwise."""
    outcome = result.outcome
    if kind not in STARTS or outcome is None or not outcome.pid or svc.type == "oneshot":
        return None
    record, _ = read_record(dirs.run, svc.name)
    if record is None or record.pid != outcome.pid:
        return None
    return record.pid, record.starttime


def alive(svc: Service, dirs: Dirs) -> tuple[int, int] | None:
    """The recorded process of ``svc`` if it runs (PID, start time)."""
    try:
        obs = inspect(svc, dirs)
    except (ServicectlError, OSError):
        return None
    if obs.running and obs.record is not None and obs.pid == obs.record.pid:
        return obs.record.pid, obs.record.starttime
    return None


# ---------------------------------------------------------------------------------------------
# The commands' requests, carried out with the lifecycle's code


def start(hands: Hands, result: Result, progress: Progress) -> None:
    svc, dirs = hands.unit.svc, hands.unit.dirs
    assert svc is not None and dirs is not None
    result.outcome = lifecycle.start(svc, dirs, progress, hands)


def stop(hands: Hands, result: Result, progress: Progress) -> None:
    svc, dirs = hands.unit.svc, hands.unit.dirs
    assert svc is not None and dirs is not None
    record, _ = read_record(dirs.run, svc.name)
    try:
        result.outcome = lifecycle.stop(svc, dirs, progress, hands)
    finally:
        if record is not None:
            result.code = hands.reaped.get(record.pid)


def restart(hands: Hands, result: Result, progress: Progress, op: str) -> None:
    """restart, try-restart, force-reload (which restarts when it cannot reload)."""
    svc, dirs = hands.unit.svc, hands.unit.dirs
    assert svc is not None and dirs is not None
    action = {"restart": lifecycle.restart, "try-restart": lifecycle.try_restart}.get(
        op, lifecycle.force_reload
    )
    result.outcome = action(svc, dirs, progress, hands)


def tell(hands: Hands, result: Result, progress: Progress, op: str, verb: str) -> None:
    """reload, or one of the service's actions."""
    svc, dirs = hands.unit.svc, hands.unit.dirs
    assert svc is not None and dirs is not None
    if op == "reload":
        from servicectl.service.reload import reload

        result.outcome = reload(svc, dirs)
    else:
        from servicectl.service import action

        result.outcome = action.run(svc, dirs, verb)


# ---------------------------------------------------------------------------------------------
# Exits and respawns


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


def oom_cause(unit: Unit) -> str | None:
    """memory_max as written when the kernel killed some of the service for memory (the cause
    of its exit, recorded as ``last_exit.oom``), else None."""
    svc, dirs = unit.svc, unit.dirs
    if svc is None or dirs is None or not svc.memory_max:
        return None
    from servicectl.service import tracked
    from servicectl.system.record import read_record

    record, _ = read_record(dirs.run, unit.name)
    return tracked.oom_limit(svc, dirs, record) if record is not None else None


def clean_exit(svc: Service, last: dict[str, Any]) -> bool:
    """Whether an exit is a success for ``restart: on-failure``: status 0, or a signal of the
    stop schedule but KILL (someone stopped it); an unknown status is a failure."""
    if "code" in last:
        return bool(last["code"] == 0)
    if "signal" in last:
        stops = {sig for sig, _ in schedule(svc) if sig != signal.SIGKILL}
        return any(signal.Signals(s).name == f"SIG{last['signal']}" for s in stops)
    return False


def decide(unit: Unit, cause: str = "") -> tuple[bool, str]:
    """After an exit (or a health verdict: ``cause``): respawn it (True), or not (False); and
    what to say. A health restart is one whatever the policy (a restart policy is required)."""
    svc = unit.svc
    assert svc is not None and unit.last_exit is not None
    what = cause or supervised.describe_exit(unit.last_exit)
    if not cause and svc.restart == "on-failure" and clean_exit(svc, unit.last_exit):
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


def exited(hands: Hands, result: Result, said: str, respawn: bool) -> None:
    """Record how the watched process exited and what comes next (the loop decided)."""
    svc, dirs = hands.unit.svc, hands.unit.dirs
    assert svc is not None and dirs is not None
    with locked(svc, dirs):
        record_exit(hands, said, respawn)
    log(hands.unit, said)
    result.alive = None


def respawn(hands: Hands, result: Result, said: str = "") -> None:
    """Start the service again as start does (the common start path: what the previous run
    left is ended first, the gate, the record before the program runs, readiness awaited),
    with the record kept throughout. A failed respawn is an exit: decided again. ``said``:
    the exit it follows at once (restart_delay 0): the new process's records say it from their
    first write, and the logs once it runs (nothing is written before the spawn)."""
    unit = hands.unit
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    unit.history.append(time.monotonic())
    unit.restarts += 1
    try:
        try:
            outcome = lifecycle.start(svc, dirs, supervised_progress, hands)
        finally:
            if said:
                log(unit, said)
    except StartFailed as exc:
        failed = exc.message.removeprefix(svc.name + ": ")
        status = exc.exit_status
        why = f"the respawn failed: {failed}"
        unit.last_exit = exit_of(status) if status is not None else exit_of(None, why)
    except ServicectlError as exc:  # the program is gone, a directory is wrong...
        failed = exc.message.removeprefix(svc.name + ": ")
        unit.last_exit = exit_of(None, f"the respawn failed: {failed}")
    else:
        log(unit, f"respawned (pid {outcome.pid})")
        result.outcome = outcome
        return
    again, said = decide(unit)
    with locked(svc, dirs):
        record_exit(hands, said, again)
    log(unit, f"respawn failed: {failed}")
    log(unit, said)
    result.respawn, result.said, result.alive = again, said, None


def supervised_progress(name: str, what: str, budget: float | None = None) -> None:
    """Nobody watches a respawn."""


def heal(hands: Hands, result: Result, cause: str) -> None:
    """Restart an unhealthy service: stop it with its schedule, then decide as after an exit
    (restart_delay, start_limit) with the health verdict as the cause."""
    unit = hands.unit
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    log(unit, f"{cause}; stopping it to restart it")
    with locked(svc, dirs):
        record, _ = read_record(dirs.run, svc.name)
        outcome = lifecycle.stop_locked(svc, dirs, hands)
        code = hands.reaped.get(record.pid) if record is not None else None
        unit.last_exit = exit_of(code, "it was stopped as unhealthy") | {"cause": cause}
        again, said = decide(unit, cause)
        if record is not None:
            write_record(dirs.run, svc.name, record)  # the stop removed it: it says what is due
        record_exit(hands, said, again)
    log(unit, f"stopped {outcome.message.removeprefix('stopped ')}; {said}")
    result.respawn, result.said, result.alive = again, said, None


def record_exit(hands: Hands, said: str, respawn: bool, phase: str = "") -> None:
    """Under the lock: the record says how the process exited and what comes next
    (RESPAWNING, GAVE_UP, or ``phase``); the PID file, which names a process that is gone, is
    removed."""
    unit = hands.unit
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    record, _ = read_record(dirs.run, svc.name)
    if record is None:
        return
    due = 0.0
    if respawn:
        phase, due = RESPAWNING, time.time() + svc.restart_delay
    elif not phase:
        phase = GAVE_UP if "gave up" in said else EXITED
    fields = hands.fields(svc)
    fields.update(respawn_at=due, supervision_note=said, health=unit.health or record.health)
    write_record(dirs.run, svc.name, record._replace(phase=phase, **fields))
    pf = read_pidfile(svc.pid_file)
    if pf.pid == record.pid:
        try:  # R-SUP-2: as start and stop remove it (R-PID-2, never through a planted symlink)
            remove_pidfile(svc.pid_file, dirs.run)
        except (OSError, ServicectlError):
            pass


def lost_stop(hands: Hands, result: Result) -> None:
    """A stop ended the service, but the command that asked for it died before it heard so (or
    was interrupted after the service exited): the record says how the service exited, and it
    stays stopped."""
    unit = hands.unit
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    what = supervised.describe_exit(unit.last_exit)
    said = f"{what}; not respawned (its stop's servicectl left before it heard the end)"
    with locked(svc, dirs):
        record, _ = read_record(dirs.run, svc.name)
        if record is None and unit.pid:
            from servicectl.system.proc import boot_id
            from servicectl.system.record import Record

            record = Record(
                unit.pid, unit.starttime, boot_id(), os.geteuid(), 0, None, "", svc.type
            )
            record = record._replace(pid_file=str(svc.pid_file), definition=str(svc.file))
            write_record(dirs.run, svc.name, record)
        record_exit(hands, said, False, EXITED)
    result.alive = None


def interrupted(exc: BaseException | None) -> bool:
    return isinstance(exc, (Interrupted, KeyboardInterrupt))


# ---------------------------------------------------------------------------------------------
# Adoption, health


def adopt(hands: Hands, result: Result, why: str) -> None:
    """This supervisor has the service now (its supervisor died, or handed over): its record
    says so, and how (status shows it); syslog and the service's log too."""
    unit = hands.unit
    svc, dirs = unit.svc, unit.dirs
    assert svc is not None and dirs is not None
    with locked(svc, dirs):
        record, _ = read_record(dirs.run, svc.name)
        if record is None or record.supervision != supervised.OURS:
            return
        old = record.supervisor_pid
        record = record._replace(
            supervisor_pid=hands.me[0],
            supervisor_starttime=hands.me[1],
            adopted=unit.adopted,
            restarts=unit.restarts,
        )
        write_record(dirs.run, svc.name, record)
    how = why or f"its supervisor (pid {old}) was gone"
    log(unit, f"adopted by the supervisor (pid {hands.me[0]}): {how}")


def write_health(unit: Unit, health: dict[str, Any]) -> None:
    """The health verdict into the record of the process it is about (a thread of its own)."""
    svc, dirs, pid = unit.svc, unit.dirs, unit.pid
    if svc is None or dirs is None:
        return
    try:
        with locked(svc, dirs):
            record, _ = read_record(dirs.run, svc.name)
            if record is not None and record.pid == pid:
                write_record(dirs.run, svc.name, record._replace(health=health))
    except (ServicectlError, OSError):
        pass


# ---------------------------------------------------------------------------------------------
# Saying what the supervisor did


def log(unit: Unit, message: str, syslog: bool = True) -> None:
    """Say what the supervisor decided: a line with the time in the service's log, and the
    system log."""
    svc = unit.svc
    if svc is None:
        return
    if syslog:
        audit.note(f"{svc.name}: {message}")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    write_lines(svc, [f"{stamp} servicectl: {message}\n"])


def write_lines(svc: Service | None, lines: list[str]) -> None:
    """Append ``lines`` to the service's log (opened as any output file: R-OUT)."""
    if svc is None or svc.stdout is None or not lines:
        return
    from servicectl.files import safe

    data = "".join(lines).encode("utf-8", "backslashreplace")
    try:
        fd = safe.open_output(svc.stdout, None, _uid(svc.user))
    except Exception:  # noqa: BLE001 - what the supervisor does goes on without its log
        return
    try:
        os.write(fd, data)
    except OSError:
        pass
    finally:
        os.close(fd)


def _uid(user: str | None) -> int:
    """The service's user's uid (for its log), without its groups."""
    if user is None:
        return os.geteuid()
    import pwd

    try:
        return pwd.getpwuid(int(user)).pw_uid if user.isdigit() else pwd.getpwnam(user).pw_uid
    except (KeyError, OverflowError):
        return os.geteuid()
