"""Observing one service without changing anything: is it running, as which process (by the
identity rules of identity.py), what is left of it, and the status row.
"""

from __future__ import annotations

import os
import time

from servicectl.errors import Exit, ServicectlError
from servicectl.service import tracked
from servicectl.service.observation import Observation
from servicectl.states import (
    DEAD,
    LAUNCHING,
    PHASE_STARTING,
    RUNNING,
    STARTING,
    STOPPED,
    UNKNOWN,
    UNRECORDED,
)
from servicectl.system import proc
from servicectl.system.pidfile import (
    NotAPidFile,
    PidFileRead,
    read_pidfile,
    remove_file,
    remove_pidfile,
)
from servicectl.system.record import Record, new_record, read_record, state_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from _typeshed import StrPath

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.system.proc import ProcInfo

# ---------------------------------------------------------------------------------------------
# Inspection helpers


def _lock_held(dirs: Dirs, name: str) -> bool | None:
    """Whether a servicectl holds the service's lock now; None if this reader cannot tell."""
    from servicectl.system.lock import is_locked, lock_path

    path = lock_path(dirs.run, name)
    if os.path.exists(path) and not os.access(path, os.R_OK):
        return None
    return is_locked(dirs.run, name)


def _cannot_tell(why: str, record: Record | None, pf: PidFileRead, notes: list[str]) -> Observation:
    notes.append(f"servicectl runs as uid {os.geteuid()} and cannot tell whether it runs: {why}")
    return Observation(UNKNOWN, None, None, record, pf, notes, False)


# ---------------------------------------------------------------------------------------------
# Inspection: is the service running, and which process is it?


def inspect(svc: Service, dirs: Dirs) -> Observation:
    """Decide whether ``svc`` runs, and as which process, without changing anything.

    A recorded (PID, start time, boot id) is trusted; a PID file alone is trusted only if its
    process has the service's user and executable and the file itself is trustworthy.
    """
    if svc.type == "oneshot":  # no process: its last run (oneshot_state.py)
        from servicectl.service import oneshot_state

        return oneshot_state.observe(svc, dirs)[0]
    record, record_note = read_record(dirs.run, svc.name)
    notes = [record_note] if record_note else []
    if record is not None and record.boot_id != proc.boot_id():
        notes.append("the state record is from before the last reboot; ignored")
        record = None
        leftovers = True
    else:
        leftovers = record is not None
    if record is not None and not same_definition(record, svc):
        return _inspect_other_definition(svc, dirs, record, notes)
    pf = read_pidfile(record.pid_file if record else svc.pid_file)
    if pf.problem:
        notes.append(pf.problem)
    leftovers = leftovers or pf.exists

    carried: dict[str, Any] = {}
    if record is not None and record.phase == LAUNCHING:
        launching = _inspect_launching(svc, dirs, record, pf, notes)
        if launching is not None:
            return launching
        carried = {f: getattr(record, f) for f in SUPERVISION_FIELDS}
        record = None
    if record is not None:
        return _inspect_recorded(svc, dirs, record, pf, notes, leftovers)
    return _inspect_unrecorded(svc, dirs, pf, notes, leftovers, carried)


# What a forking launch's record says of the service's supervision (the restarts and the last
# exit of a respawn): its daemon, found by the PID file once the launcher is gone, keeps it.
SUPERVISION_FIELDS: tuple[str, ...] = ("supervision", "supervisor_pid", "supervisor_starttime")
SUPERVISION_FIELDS += ("restarts", "last_exit", "adopted")


def same_definition(record: Record, svc: Service) -> bool:
    """Whether ``record`` was written for this definition file (several services directories
    may share one run directory; a record that names no file is taken as this one's)."""
    if not record.definition or record.definition == str(svc.file):
        return True
    if os.path.realpath(record.definition) == os.path.realpath(svc.file):
        return True
    try:
        return os.path.samefile(record.definition, svc.file)
    except OSError:
        return False


def _inspect_other_definition(
    svc: Service, dirs: Dirs, record: Record, notes: list[str]
) -> Observation:
    """The name is recorded in this run directory by another definition file: that is another
    service of the same name. This one is stopped; the other is left alone, running or not."""
    from servicectl.service.identity import look

    info, hidden = look(record.pid, with_user=False)
    runs = hidden or (info is not None and not info.zombie and info.starttime == record.starttime)
    if runs:
        notes.append(
            f"{record.definition} runs a service of this name from {dirs.run} (PID "
            f"{record.pid}); this one ({svc.file}) is not running"
        )
        return Observation(STOPPED, None, None, None, None, notes, taken_by=record.definition)
    notes.append(
        f"the state record in {dirs.run} is of {record.definition}, whose process has exited; "
        f"left to it"
    )
    return Observation(STOPPED, None, None, None, None, notes)


def _inspect_launching(
    svc: Service, dirs: Dirs, record: Record, pf: PidFileRead, notes: list[str]
) -> Observation | None:
    """A forking launch was under way. If its launcher still runs, it is "starting" (its
    servicectl holds the lock, or died: start waits for the launcher). If it is over (None),
    its daemon can only be known by the PID file, as if there were no record."""
    from servicectl.system.lock import is_locked

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
    from servicectl.service.identity import group_remnants, look
    from servicectl.service.supervised import exit_notes, exit_state

    info, hidden = look(record.pid, with_user=False)  # identity: PID and start time (R-PROC-1)
    if hidden:
        why = f"/proc does not show process {record.pid} to it (mounted with hidepid?)"
        return _cannot_tell(why, record, pf, notes)
    if info is not None and not info.zombie and info.starttime == record.starttime:
        return _recorded_running(svc, dirs, record, info, pf, notes, leftovers)
    if info is None or info.zombie:
        if not record.last_exit:
            notes.append(f"process {record.pid} has exited")
    else:
        notes.append(f"PID {record.pid} now belongs to another process ({info.comm}); left alone")
    if record.type == "forking" and record.sid > 1 and pf.pid not in (None, record.pid):
        replaced = _adopt_reexec(svc, dirs, record, pf, notes)
        if replaced is not None:
            return replaced
    in_cgroup = tracked.after_exit(svc, dirs, record)
    if in_cgroup is not None:
        remnants, said, remain = in_cgroup
        if remain:  # the note says the main process exited, and what remains
            notes[:] = [n for n in notes if n != f"process {record.pid} has exited"]
        notes += said
    else:
        remnants, unproven = group_remnants(record)
        remain = bool(remnants)
        for found, then in ((remnants, "stop or start ends them"), (unproven, _UNPROVEN)):
            if found:
                pids = ", ".join(str(r.pid) for r in found)
                notes.append(
                    f"{len(found)} process{'es' if len(found) > 1 else ''} of its process "
                    f"group {record.pgid} still running (PID {pids}); {then}"
                )
    notes += exit_notes(record, pf)
    state = exit_state(record)
    if remain and state == STOPPED:
        state = DEAD  # its processes still run: never "stopped"
    return Observation(state, None, None, record, pf, notes, True, remnants)


_UNPROVEN = (
    "servicectl cannot prove they are the service's (they may have taken its old process group "
    "number since), so it leaves them alone"
)


def _recorded_running(
    svc: Service,
    dirs: Dirs,
    record: Record,
    info: ProcInfo,
    pf: PidFileRead,
    notes: list[str],
    leftovers: bool,
) -> Observation:
    """The recorded process runs: "running", or "starting" while its start is under way."""
    if pf.pid is not None and pf.pid != record.pid:
        notes.append(f"the PID file names {pf.pid}, but the service runs as {record.pid}")
    elif not pf.exists:
        notes.append(f"the PID file {pf.path} is missing; servicectl's record is used")
    state = RUNNING
    if record.phase == PHASE_STARTING:
        locked = _lock_held(dirs, svc.name)
        if locked:
            state = STARTING
        elif locked is None:
            notes.append("its start is under way or was interrupted (the lock is not readable)")
        else:
            notes.append(
                "the start that launched it was interrupted before it was confirmed "
                "(start_grace or readiness); it has been running since"
            )
    return Observation(state, record.pid, info, record, pf, notes, leftovers)


def _adopt_reexec(
    svc: Service, dirs: Dirs, record: Record, pf: PidFileRead, notes: list[str]
) -> Observation | None:
    """A forking daemon may have replaced itself (re-exec) and rewritten its PID file: the new
    process must be in the recorded daemon's session (so it came from it), started after it,
    with its user and executable. None (and a note) if the PID file names something else."""
    from servicectl.service.identity import (
        expected_exes,
        forged_reason,
        hidden_exe,
        recorded_by_other,
        unrecorded_match,
    )

    assert pf.pid is not None
    cand = proc.read_proc(pf.pid)
    why = forged_reason(pf.pid, cand)
    if why is None and cand is not None and cand.sid != record.sid:
        why = f"it is not in the daemon's session {record.sid} (it did not come from it)"
    if why is None and cand is not None and cand.starttime < record.starttime:
        why = "it is older than the daemon it would replace"
    if why is None and cand is not None:
        other = recorded_by_other(dirs.run, svc.name, cand)
        if other is not None:
            why = f"it is service {other}'s process (its state record)"
    if why is None and cand is not None:
        if hidden_exe(cand):
            return _cannot_tell(
                f"the executable of PID {cand.pid} is not readable", record, pf, notes
            )
        exes = {record.exe} if record.exe else expected_exes(svc)
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
    svc: Service,
    dirs: Dirs,
    pf: PidFileRead,
    notes: list[str],
    leftovers: bool,
    carried: dict[str, Any] | None = None,
) -> Observation:
    """No record: the service runs only if its PID file is trustworthy and names a process with
    the service's user and executable."""
    if pf.pid is None:
        state = DEAD if pf.exists else STOPPED
        left = tracked.unrecorded(svc, dirs, notes)  # in its cgroup, with no record
        if left is not None:
            state = DEAD if left else state
            return Observation(state, None, None, None, pf, notes, leftovers, left)
        return Observation(state, None, None, None, pf, notes, leftovers)
    # (imported here: the status of a stopped service does not load the identity rules)
    from servicectl.service.identity import (
        expected_exes,
        forged_reason,
        hidden_exe,
        look,
        recorded_by_other,
        service_uid,
        unrecorded_match,
    )

    info, hidden = look(pf.pid)
    if hidden:
        why = f"/proc does not show process {pf.pid} to it (mounted with hidepid?)"
        return _cannot_tell(why, None, pf, notes)
    reason = forged_reason(pf.pid, info)
    uid = service_uid(svc, dirs)
    if reason is None:
        reason = pf.trusted_by(os.geteuid(), {uid})
    if reason is None and info is not None:
        other = recorded_by_other(dirs.run, svc.name, info)
        if other is not None:
            reason = f"it is service {other}'s process (its state record)"
    if reason is None and info is not None:
        if info.uid == uid and hidden_exe(info):
            return _cannot_tell(
                f"the executable of PID {info.pid} is not readable", None, pf, notes
            )
        reason = unrecorded_match(svc, info, expected_exes(svc), uid)
    if reason is not None or info is None:
        notes.append(
            f"the PID file {pf.path} names {pf.pid}, which is not the service: {reason}; left alone"
        )
        return Observation(DEAD, None, None, None, pf, notes, True)
    notes.append(f"PID {info.pid} has no servicectl record; identified by user and executable")
    record = _unrecorded(svc, info, pf, carried or {})
    return Observation(RUNNING, info.pid, info, record, pf, notes, True)


def _unrecorded(svc: Service, info: ProcInfo, pf: PidFileRead, carried: dict[str, Any]) -> Record:
    """A record of a process found by its PID file alone (start writes it: the process
    servicectl "first saw"), with what a launch's record said of its supervision."""
    return new_record(
        svc,
        info,
        pgid=info.pgid if info.pgid == info.pid else 0,
        exe=proc.exe_of(info.pid),
        pid_file=str(pf.path),
        phase=UNRECORDED,
        started_at=time.time() - proc.age_seconds(info),
        **carried,
    )


def clean_leftovers(
    svc: Service,
    dirs: Dirs,
    obs: Observation,
    kept: list[str] | None = None,
    keep_record: bool = False,
) -> list[str]:
    """Remove a stale PID file and state record of a service that is not running; what was
    removed ("PID file", "state record"). ``keep_record``: the PID file alone (a supervisor's
    respawn: the record says what is under way until the new one replaces it).

    A PID file path is cleaned under docs/security.md R-PID-2 (``pidfile.remove_pidfile``): a
    file there that is not a PID file (a configuration file named by mistake), or one reached
    through a symlink another user could have planted, is left alone. With ``kept``, why is
    appended to it; without, the first such refusal is raised (exit 6 or 4) once the rest is
    cleaned. A file that cannot be removed (read-only or immutable run directory) raises an
    error that says which, and that status will call the service dead until it is removed.
    """
    from servicectl.files.atomic import remove_stale_temps

    assert not obs.running
    removed: list[str] = []
    refused: list[ServicectlError] = []
    pid_path = obs.pid_read.path if obs.pid_read else svc.pid_file
    for path in dict.fromkeys([pid_path, svc.pid_file]):
        try:
            if remove_pidfile(path, dirs.run):
                removed.append("PID file")
            remove_stale_temps(path)
        except ServicectlError as exc:
            if isinstance(exc, NotAPidFile):
                exc = exc.naming(svc.file)
            refused.append(ServicectlError(f"{svc.name}: {exc.message}", exit_code=exc.exit_code))
        except OSError as exc:
            raise _cannot_remove(svc, path, "PID file", exc) from None
    state = state_path(dirs.run, svc.name)
    remove_stale_temps(state)
    try:
        if not keep_record and remove_file(state):
            removed.append("state record")
    except OSError as exc:
        raise _cannot_remove(svc, state, "state record", exc) from None
    if kept is not None:
        kept += [e.message.removeprefix(f"{svc.name}: ") for e in refused]
    elif refused:
        raise refused[0]
    return removed


def _cannot_remove(svc: Service, path: StrPath, what: str, exc: OSError) -> ServicectlError:
    return ServicectlError(
        f"{svc.name}: cannot remove its {what} {path}: {exc.strerror} (is "
        f"{os.path.dirname(path)} read-only or immutable? see lsattr -d {os.path.dirname(path)}); "
        f"status reports the service dead until it is removed",
        exit_code=Exit.PRIVILEGE if isinstance(exc, PermissionError) else Exit.FAILURE,
    )


# ---------------------------------------------------------------------------------------------
# Status
