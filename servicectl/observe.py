"""Observing one service without changing anything: which process is it (the identity rules),
is it running, what is left of it, and the status row.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from servicectl import drift, proc, supervision
from servicectl.config import Service
from servicectl.errors import Exit, ServicectlError, StatusCode
from servicectl.lock import is_locked
from servicectl.outcome import Observation
from servicectl.paths import Dirs, run_dir_problem
from servicectl.pidfile import (
    PidFileRead,
    Record,
    read_pidfile,
    read_record,
    remove_file,
    remove_stale_temps,
    state_path,
)
from servicectl.proc import ProcInfo
from servicectl.spawn import (
    SERVICE_PATH,
    expected_executables,
    resolve_account,
    resolve_program,
)
from servicectl.states import (
    DEAD,
    LAUNCHING,
    PHASE_STARTING,
    RUNNING,
    STARTING,
    STATE_CODES,
    STOPPED,
    UNKNOWN,
    UNRECORDED,
)

# ---------------------------------------------------------------------------------------------
# Identity: is this process the service?


def forged_reason(pid: int, info: ProcInfo | None) -> str | None:
    """Why ``pid`` can never be a service (init, servicectl or its caller, gone, a zombie, a
    thread), or None."""
    if pid == 1:
        return "PID 1 (init) is never a service"
    if pid in proc.ancestors_of_self():
        return f"PID {pid} is servicectl itself or its caller"
    if info is None:
        return f"no process has PID {pid}"
    if info.zombie:
        return f"PID {pid} has exited (zombie)"
    tgid = proc.thread_group_of(pid)
    if tgid is not None and tgid != pid:
        return f"{pid} is a thread of process {tgid}, not a process"
    return None


_INTERPRETER = re.compile(
    r"(python|pypy|perl|ruby|node|nodejs|php|lua|luajit|java|tclsh|Rscript|bash|sh|dash|zsh|"
    r"ksh|mksh|busybox)[0-9.]*(-[0-9.]+)?$"
)


def unrecorded_match(
    svc: Service,
    info: ProcInfo,
    exes: set[str],
    uid: int,
    command: tuple[str, ...] | list[str] | None = None,
) -> str | None:
    """Why a process servicectl has no record of is not the service, or None if it matches:
    the same user and the same executable (FIELD-NOTES 5). When that executable is an
    interpreter (python, sh, busybox...), which tells nothing of the program, the arguments
    must be the service's too."""
    if info.uid != uid:
        return f"PID {info.pid} belongs to uid {info.uid}, not to the service's uid {uid}"
    exe = proc.exe_of(info.pid)
    if exe is None or os.path.realpath(exe) not in exes and exe not in exes:
        return f"PID {info.pid} runs {exe or info.comm}, not {svc.program}"
    if _INTERPRETER.match(os.path.basename(exe)):
        argv = list(command if command is not None else svc.command)
        if not _same_invocation(proc.cmdline_of(info.pid), argv):
            shown = " ".join(proc.cmdline_of(info.pid))[:120]
            return f"PID {info.pid} runs {exe} but not the service's program ({shown})"
    return None


def _same_invocation(cmdline: list[str], argv: list[str]) -> bool:
    """Whether a process's command line is ``argv`` run directly (``python x.py -v``) or as a
    #! script (the kernel makes it ``python [opts] /path/x.py -v``)."""
    args = argv[1:]
    if cmdline[1:] == args:
        return True
    n = len(args)
    if len(cmdline) < n + 2 or (n and cmdline[-n:] != args):
        return False
    script = cmdline[len(cmdline) - n - 1]
    return os.path.basename(script) == os.path.basename(argv[0])


def _service_uid(svc: Service) -> int:
    try:
        return resolve_account(svc).uid
    except ServicectlError:
        return -1


def _expected_exes(svc: Service) -> set[str]:
    try:
        return expected_executables(resolve_program(svc, _program_env(svc)))
    except ServicectlError:
        # Removed since (its process shows "PATH (deleted)"): the configured path still names it.
        return {os.path.realpath(svc.program)} if os.path.isabs(svc.program) else set()


def _program_env(svc: Service) -> dict[str, str]:
    """Enough of the service's environment to find its program (its PATH)."""
    path = dict(svc.environment).get("PATH", SERVICE_PATH)
    return {"PATH": path}


# ---------------------------------------------------------------------------------------------
# Inspection: is the service running, and which process is it?


def inspect(svc: Service, dirs: Dirs) -> Observation:
    """Decide whether ``svc`` runs, and as which process, without changing anything.

    A recorded (PID, start time, boot id) is trusted; a PID file alone is trusted only if its
    process has the service's user and executable and the file itself is trustworthy.
    """
    record, record_note = read_record(dirs.run, svc.name)
    notes = [record_note] if record_note else []
    if record is not None and record.boot_id != proc.boot_id():
        notes.append("the state record is from before the last reboot; ignored")
        record = None
        leftovers = True
    else:
        leftovers = record is not None
    pf = read_pidfile(Path(record.pid_file) if record else svc.pid_file)
    if pf.problem:
        notes.append(pf.problem)
    leftovers = leftovers or pf.exists

    if record is not None and record.phase == LAUNCHING:
        launching = _inspect_launching(svc, dirs, record, pf, notes)
        if launching is not None:
            return launching
        record = None
    if record is not None:
        return _inspect_recorded(svc, dirs, record, pf, notes, leftovers)
    return _inspect_unrecorded(svc, pf, notes, leftovers)


def _inspect_launching(
    svc: Service, dirs: Dirs, record: Record, pf: PidFileRead, notes: list[str]
) -> Observation | None:
    """A forking launch was under way. If its launcher still runs, it is "starting" (its
    servicectl holds the lock, or died: start waits for the launcher). If it is over (None),
    its daemon can only be known by the PID file, as if there were no record."""
    info = proc.read_proc(record.pid)
    if info is None or info.zombie or info.starttime != record.starttime:
        return None
    if not is_locked(dirs.run, svc.name):
        notes.append(
            f"the start that ran its launcher (pid {record.pid}) was interrupted; "
            f"the launcher still runs"
        )
    return Observation(STARTING, record.pid, info, record, pf, notes, True)


def _inspect_recorded(
    svc: Service, dirs: Dirs, record: Record, pf: PidFileRead, notes: list[str], leftovers: bool
) -> Observation:
    """The service has a record of this boot: it runs as the recorded process, or as the one
    that replaced it, or it is dead (with what is left of its process group)."""
    info = proc.read_proc(record.pid)
    if info is not None and not info.zombie and info.starttime == record.starttime:
        if pf.pid is not None and pf.pid != record.pid:
            notes.append(f"the PID file names {pf.pid}, but the service runs as {record.pid}")
        elif not pf.exists:
            notes.append(f"the PID file {pf.path} is missing; servicectl's record is used")
        state = RUNNING
        if record.phase == PHASE_STARTING:
            if is_locked(dirs.run, svc.name):
                state = STARTING
            else:
                notes.append(
                    "the start that launched it was interrupted before it was confirmed "
                    "(start_grace or readiness); it has been running since"
                )
        return Observation(state, record.pid, info, record, pf, notes, leftovers)
    if info is None or info.zombie:
        if not record.last_exit:
            notes.append(f"process {record.pid} has exited")
    else:
        notes.append(f"PID {record.pid} now belongs to another process ({info.comm}); left alone")
    if record.type == "forking" and record.sid > 1 and pf.pid not in (None, record.pid):
        replaced = _adopt_reexec(svc, record, pf, notes)
        if replaced is not None:
            return replaced
    remnants = group_remnants(record)
    if remnants:
        pids = ", ".join(str(r.pid) for r in remnants)
        notes.append(
            f"{len(remnants)} process{'es' if len(remnants) > 1 else ''} of its process "
            f"group {record.pgid} still running (PID {pids}); stop or start ends them"
        )
    notes += supervision.exit_notes(record, pf)
    state = supervision.exit_state(record)
    return Observation(state, None, None, record, pf, notes, True, remnants)


def _adopt_reexec(
    svc: Service, record: Record, pf: PidFileRead, notes: list[str]
) -> Observation | None:
    """A forking daemon may have replaced itself (re-exec) and rewritten its PID file: the new
    process must be in the recorded daemon's session (so it came from it), started after it,
    with its user and executable. None (and a note) if the PID file names something else."""
    assert pf.pid is not None
    cand = proc.read_proc(pf.pid)
    why = forged_reason(pf.pid, cand)
    if why is None and cand is not None and cand.sid != record.sid:
        why = f"it is not in the daemon's session {record.sid} (it did not come from it)"
    if why is None and cand is not None and cand.starttime < record.starttime:
        why = "it is older than the daemon it would replace"
    if why is None and cand is not None:
        exes = {record.exe} if record.exe else _expected_exes(svc)
        why = unrecorded_match(svc, cand, exes, record.uid, record.command)
        if why is None:
            adopted = record._replace(
                pid=cand.pid,
                starttime=cand.starttime,
                pgid=cand.pgid if cand.pgid == cand.pid else record.pgid,
            )
            notes.append(f"the daemon now runs as PID {cand.pid} (from its PID file)")
            return Observation(RUNNING, cand.pid, cand, adopted, pf, notes, True)
    notes.append(
        f"the PID file {pf.path} names {pf.pid}, which is not the service: {why}; left alone"
    )
    return None


def _inspect_unrecorded(
    svc: Service, pf: PidFileRead, notes: list[str], leftovers: bool
) -> Observation:
    """No record: the service runs only if its PID file is trustworthy and names a process with
    the service's user and executable."""
    if pf.pid is None:
        return Observation(DEAD if pf.exists else STOPPED, None, None, None, pf, notes, leftovers)
    info = proc.read_proc(pf.pid)
    reason = forged_reason(pf.pid, info)
    uid = _service_uid(svc)
    if reason is None:
        reason = pf.trusted_by(os.geteuid(), {uid})
    if reason is None and info is not None:
        reason = unrecorded_match(svc, info, _expected_exes(svc), uid)
    if reason is not None or info is None:
        notes.append(
            f"the PID file {pf.path} names {pf.pid}, which is not the service: {reason}; left alone"
        )
        return Observation(DEAD, None, None, None, pf, notes, True)
    notes.append(f"PID {info.pid} has no servicectl record; identified by user and executable")
    return Observation(RUNNING, info.pid, info, _unrecorded(svc, info, pf), pf, notes, True)


def _unrecorded(svc: Service, info: ProcInfo, pf: PidFileRead) -> Record:
    """A record of a process found by its PID file alone (start writes it: the process
    servicectl "first saw")."""
    return Record(
        pid=info.pid,
        starttime=info.starttime,
        boot_id=proc.boot_id(),
        uid=info.uid,
        pgid=info.pgid if info.pgid == info.pid else 0,
        sid=info.sid,
        exe=proc.exe_of(info.pid),
        pid_file=str(pf.path),
        type=svc.type,
        phase=UNRECORDED,
        started_at=time.time() - proc.age_seconds(info),
        user=svc.user,
        command=tuple(svc.command),
        stop_signal=svc.stop_signal,
        stop_timeout=svc.stop_timeout,
        kill_mode=svc.kill_mode,
    )


def group_remnants(record: Record) -> list[ProcInfo]:
    """Live members of the service's own process group although its main process has exited
    (a stop interrupted between the main process's exit and its children's, or children that
    outlived a crash), with the service's user and started after it. ``kill_mode: process``
    leaves children alone by design: none are reported."""
    if record.kill_mode != "group" or record.pgid <= 1 or record.pgid == os.getpgrp():
        return []
    leader = proc.read_proc(record.pgid)
    if (
        leader is not None
        and not leader.zombie
        and record.pgid == record.pid
        and leader.starttime != record.starttime
    ):
        return []  # the number leads another group now
    mine = proc.ancestors_of_self()
    out = []
    for member in proc.group_members(record.pgid):
        info = proc.read_proc(member.pid)
        if (
            info is not None
            and not info.zombie
            and info.pgid == record.pgid
            and info.uid == record.uid
            and info.starttime >= record.starttime
            and (record.sid <= 1 or info.sid == record.sid)
            and info.pid not in mine
        ):
            out.append(info)
    return out


def clean_leftovers(svc: Service, dirs: Dirs, obs: Observation) -> list[str]:
    """Remove a stale PID file and state record of a service that is not running.

    A file that cannot be removed (read-only or immutable run directory) raises an error that
    says which, and that status will call the service dead until it is removed.
    """
    assert not obs.running
    removed = []
    pid_path = obs.pid_read.path if obs.pid_read else svc.pid_file
    files = [(pid_path, "PID file")]
    if svc.pid_file != pid_path:
        files.append((svc.pid_file, "PID file"))
    files.append((state_path(dirs.run, svc.name), "state record"))
    for path, what in files:
        remove_stale_temps(path)
        try:
            if remove_file(path):
                removed.append(what)
        except OSError as exc:
            raise ServicectlError(
                f"{svc.name}: cannot remove its {what} {path}: {exc.strerror} (is "
                f"{path.parent} read-only or immutable? see lsattr -d {path.parent}); "
                f"status reports the service dead until it is removed",
                exit_code=Exit.PRIVILEGE if isinstance(exc, PermissionError) else Exit.FAILURE,
            ) from None
    return removed


# ---------------------------------------------------------------------------------------------
# Status


class Status:
    """One row of ``status``, and what the ``status NAME`` block shows beyond it.

    ``since``: when the running process started (wall clock, for people); ``pgid``/``sid``: the
    service's own process group and session (0: none), whose members the block lists;
    ``definition_changed``: its files differ from those it was started with.

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
        "restarts",
        "last_exit",
        "supervisor",
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
        self.restarts: int | None = None
        self.last_exit: dict[str, object] | None = None
        self.supervisor: str | None = None

    def to_dict(self) -> dict[str, object]:
        supervision = {
            key: value
            for key, value in (
                ("restarts", self.restarts),
                ("last_exit", self.last_exit),
                ("supervisor", self.supervisor),
            )
            if value is not None
        }
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
            **supervision,
        }


def status(svc: Service, dirs: Dirs, resources: bool = True) -> Status:
    """Observe ``svc`` without locking or changing anything (``unknown``, 4, when the run
    directory cannot be trusted or used)."""
    problem = run_dir_problem(dirs.run)
    if problem is not None:
        return Status(
            svc.name, UNKNOWN, int(StatusCode.UNKNOWN), svc.description, error=problem.message
        )
    obs = inspect(svc, dirs)
    row = Status(
        svc.name,
        obs.state,
        int(STATE_CODES[obs.state]),
        svc.description,
        obs.pid,
        notes=[n for n in obs.notes if n],
    )
    row.file = str(svc.file)
    row.dropins = tuple(str(p) for p in getattr(svc, "dropins", ()))
    if obs.running and obs.info is not None:
        row.uptime_seconds = proc.age_seconds(obs.info)
        row.since = time.time() - row.uptime_seconds
        if obs.record is not None:
            row.status_text = obs.record.status_text
            _own_group(row, obs.info, obs.record)
            if drift.changed(svc, obs.record.definition):
                row.definition_changed = True
                row.notes.append(drift.NOTE)
        if resources:
            row.memory_bytes, row.cpu_percent = _resources(obs.info)
    supervision.describe(row, obs.record, svc)
    return row


def _own_group(row: Status, info: ProcInfo, record: Record) -> None:
    """The service's own process group and session, while its main process is still in them."""
    if record.pgid > 1 and info.pgid == record.pgid and record.pgid != os.getpgrp():
        row.pgid = record.pgid
        row.sid = info.sid


def _resources(info: ProcInfo) -> tuple[int | None, float | None]:
    """Resident memory and average CPU use since start, from /proc (no sampling delay)."""
    got = proc.memory_and_cpu(info.pid)
    if got is None:
        return None, None
    rss, ticks = got
    age = proc.age_seconds(info)
    cpu = round(100.0 * ticks / proc.CLK_TCK / age, 1) if age > 0 else 0.0
    return rss, cpu
