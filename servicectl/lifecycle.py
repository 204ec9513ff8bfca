"""The lifecycle of one service: inspect, start, stop, reload and status, built on the mechanisms.

Each action holds the service's lock and returns an Outcome; failures raise ServicectlError.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicectl import proc
from servicectl.config import Service, signal_name
from servicectl.errors import Exit, Interrupted, NotInstalledError, ServicectlError
from servicectl.observe import clean_leftovers, forged_reason, inspect
from servicectl.outcome import (
    KILL_CONFIRM_TIMEOUT,
    LOG_TAIL_LINES,
    Observation,
    Outcome,
    StartFailed,
    locked,
    log_tail,
)
from servicectl.paths import Dirs
from servicectl.pidfile import (
    Record,
    read_pidfile,
    remove_file,
    state_path,
    write_pidfile,
    write_record,
)
from servicectl.proc import Handle, ProcInfo
from servicectl.spawn import (
    GATE_EXIT,
    Account,
    Gate,
    build_environment,
    resolve_account,
    resolve_program,
    spawn,
)
from servicectl.states import (
    DEAD,
    LAUNCHING,
    PHASE_RUNNING,
    PHASE_STARTING,
    STOPPED,
    UNRECORDED,
)
from servicectl.terminate import group_handles, kill_and_reap, terminate

if TYPE_CHECKING:
    import subprocess

    from servicectl.ready import NotifySocket


# ---------------------------------------------------------------------------------------------
# Inspection: is the service running, and which process is it?


# ---------------------------------------------------------------------------------------------
# Start


def start(svc: Service, dirs: Dirs) -> Outcome:
    """Start ``svc`` (success if it already runs). The lock is held throughout."""
    t0 = time.monotonic()
    with locked(svc, dirs):
        obs = inspect(svc, dirs)
        if obs.record is not None and obs.record.phase == LAUNCHING:
            obs = _await_orphaned_launch(svc, dirs, obs.record)
        if obs.running:
            note = ""
            if obs.record is not None and obs.record.phase == UNRECORDED:
                # Identified by its PID file, user and executable: from now on by its record,
                # so that a later loss of the PID file cannot lose it.
                try:
                    write_record(dirs.run, svc.name, obs.record._replace(phase=PHASE_RUNNING))
                    note = "; servicectl had no record of it and has recorded it now"
                except OSError as exc:
                    note = f"; servicectl has no record of it and cannot write one: {exc.strerror}"
            return Outcome(svc.name, Exit.OK, f"already running (pid {obs.pid}){note}", obs.pid)
        ended = _stop_remnants(svc, dirs, obs).message if obs.remnants else ""
        cleaned = clean_leftovers(svc, dirs, obs) if obs.leftovers and not ended else []
        pid = _start_locked(svc, dirs)
    note = f"; removed a stale {' and '.join(cleaned)}" if cleaned else ""
    if ended:
        note = f"; first {ended}"
    return Outcome(svc.name, Exit.OK, f"started (pid {pid}){note}", pid, time.monotonic() - t0)


def _await_orphaned_launch(svc: Service, dirs: Dirs, record: Record) -> Observation:
    """A launch whose servicectl died: wait (up to start_timeout) for its launcher to exit,
    then look again; its daemon, if it wrote its PID file, is found and recorded by start."""
    with Handle(record.pid, record.starttime) as launcher:
        proc.wait_all_exit([launcher], time.monotonic() + svc.start_timeout)
        if not launcher.exited():
            launcher.send(signal.SIGKILL)
            proc.wait_all_exit([launcher], time.monotonic() + KILL_CONFIRM_TIMEOUT, False)
    return inspect(svc, dirs)


def _start_locked(svc: Service, dirs: Dirs) -> int:
    from servicectl.ready import NotifySocket, Probe, notify_address, wait_ready

    account = resolve_account(svc)
    env = build_environment(svc, account)
    program = resolve_program(svc, env)
    notify = None
    pass_fds: tuple[int, ...] = ()
    if svc.ready is not None and svc.ready.kind == "notify":
        address = notify_address(dirs.run, svc.name)
        try:
            notify = NotifySocket(address)
        except OSError as exc:
            raise StartFailed(
                f"{svc.name}: cannot create the notify socket {address}: {exc.strerror}"
            ) from None
        env["NOTIFY_SOCKET"] = address
    else:
        env.pop("NOTIFY_SOCKET", None)
    gate = Gate() if svc.type == "simple" else None
    try:
        if svc.type == "forking":
            try:
                child, handle, info = _launch_forking(svc, dirs, account, env, program, pass_fds)
            except BaseException:
                # What the PID file names was never trusted, and its writer has been killed.
                _remove_quietly(svc.pid_file)
                _remove_quietly(state_path(dirs.run, svc.name))  # the "launching" record
                raise
        else:
            child = spawn(svc, account, env, program, pass_fds, gate=gate)
            _SPAWNED.add(child.pid)
        try:
            if svc.type == "simple":
                seen = proc.read_proc(child.pid)
                if seen is None:  # cannot happen: it is our unreaped child
                    raise StartFailed(f"{svc.name}: the process vanished at once")
                info = seen
                handle = Handle(child.pid, info.starttime)
            pgid = _own_group(svc, info)
            record = Record(
                pid=info.pid,
                starttime=info.starttime,
                boot_id=proc.boot_id(),
                uid=info.uid,
                pgid=pgid,
                sid=info.sid,
                exe=None if gate else proc.exe_of(info.pid),
                pid_file=str(svc.pid_file),
                type=svc.type,
                phase=PHASE_STARTING,
                started_at=time.time(),
                command=tuple(svc.command),
                user=svc.user,
                stop_signal=svc.stop_signal,
                stop_timeout=svc.stop_timeout,
                kill_mode=svc.kill_mode,
                notify_socket=notify.address if notify else None,
            )
            # Record first: if this fails, the child is killed below (FIELD-NOTES 8).
            _write_state(svc, dirs, record, info.pid if gate is not None else None)
            if gate is not None:
                _open_gate(svc, program, gate, child)
            probe = None
            if svc.ready is not None and svc.ready.kind != "notify":
                probe = Probe(
                    svc.ready,
                    env,
                    (account.uid, account.gid) if account.switch else None,
                    str(svc.working_directory),
                )
            budget = svc.start_timeout if svc.ready is not None else svc.start_grace
            result = wait_ready(handle, time.monotonic() + budget, probe, notify, pgid)
            if result.outcome == "died":
                code = proc.reap_if_child(info.pid)
                if code is None and child.poll() is not None and child.pid == info.pid:
                    code = child.returncode
                raise StartFailed(
                    f"{svc.name}: failed to start: the program {proc.describe_exit(code)} "
                    f"{_since(record)} after starting" + _status_note(result.notes),
                    detail=log_tail(svc),
                )
            if result.outcome in ("timeout", "error"):
                what = (
                    f"was not ready after {budget:g} s (ready: {svc.ready.describe()}"
                    + (f"; last probe: {result.detail}" if result.detail else "")
                    + ")"
                    if result.outcome == "timeout" and svc.ready
                    else result.detail
                )
                _kill_quietly(handle, pgid)
                raise StartFailed(
                    f"{svc.name}: failed to start: it {what}; it was stopped"
                    + _status_note(result.notes),
                    detail=log_tail(svc),
                )
            if result.notes.mainpid and result.notes.mainpid != info.pid:
                handle, info, record = _adopt_mainpid(svc, record, handle, result.notes.mainpid)
                _write_state(svc, dirs, pid=info.pid)
            record = record._replace(
                phase=PHASE_RUNNING,
                exe=proc.exe_of(info.pid) or record.exe,
                status_text=result.notes.status,
            )
            _write_state(svc, dirs, record)
            handle.close()
            return info.pid
        except BaseException as exc:
            _abort_start(svc, dirs, child)
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                raise Interrupted(
                    f"{svc.name}: start interrupted; what it had started was stopped, and no "
                    f"PID file or state of it is left"
                ) from None
            raise
    finally:
        if notify is not None:
            notify.close()
        if gate is not None:
            gate.close()


EXEC_WAIT = 2.0  # how long to watch a gated child become the program before moving on


def _open_gate(svc: Service, program: str, gate: Gate, child: subprocess.Popen[bytes]) -> None:
    """Let the recorded child run the program, and watch it do so (about a millisecond): an
    exec that fails (permission denied for the service's user, say) is exit 5, as it is when
    Popen itself cannot execute the program."""
    gate.open()
    deadline = time.monotonic() + EXEC_WAIT
    backoff = 0.0002
    while gate.gated_argv(proc.cmdline_of(child.pid)) and time.monotonic() < deadline:
        if child.poll() is not None:
            break
        time.sleep(backoff)
        backoff = min(backoff * 2, 0.01)
    code = child.poll()
    if code in (126, 127):
        raise NotInstalledError(
            f"{svc.name}: cannot execute {program}"
            + (f" as user {svc.user}" if svc.user else "")
            + f" (exit {code}); see the log below",
            detail=log_tail(svc),
        )
    if code == GATE_EXIT:
        raise StartFailed(f"{svc.name}: failed to start: the process exited before running")


def _write_state(
    svc: Service, dirs: Dirs, record: Record | None = None, pid: int | None = None
) -> None:
    """Write the state record and/or the PID file; a failure is a StartFailed that says where
    (the caller kills what it started)."""
    try:
        if record is not None:
            write_record(dirs.run, svc.name, record)
        if pid is not None:
            write_pidfile(svc.pid_file, pid)
    except OSError as exc:
        where = Path(exc.filename).parent if exc.filename else dirs.run
        raise StartFailed(
            f"{svc.name}: failed to start: cannot write its PID file or state record in "
            f"{where}: {exc.strerror} (is {where} read-only or immutable? see lsattr -d "
            f"{where}); the process was stopped",
            exit_code=Exit.PRIVILEGE if isinstance(exc, PermissionError) else Exit.FAILURE,
        ) from None


def _since(record: Record) -> str:
    return f"{max(0.0, time.time() - record.started_at):.2f} s"


def _status_note(notes: object) -> str:
    status = getattr(notes, "status", None)
    return f" (its last status: {status})" if status else ""


def _own_group(svc: Service, info: ProcInfo) -> int:
    """The service's own process group, or 0 if it has none that is safe to signal.

    A group is the service's only if its leader is the service itself, or if every member of
    it descends from servicectl (the group a forking daemon's intermediate process created).
    """
    if info.pgid == info.pid:
        return info.pgid
    if info.pgid in (0, 1, os.getpgrp()):
        return 0
    me = os.getpid()
    members = proc.group_members(info.pgid)
    if members and all(proc.is_descendant(m.pid, me) for m in members):
        return info.pgid
    return 0


_FORKING_LAUNCH = threading.Lock()
_SPAWNED: set[int] = set()  # PIDs this servicectl process spawned or claimed (not orphans)


LAUNCH_SETTLE = 2.0  # how long other forking launches wait on one whose PID file is late


def _launch_forking(
    svc: Service,
    dirs: Dirs,
    account: Account,
    env: dict[str, str],
    program: str,
    pass_fds: tuple[int, ...],
) -> tuple[subprocess.Popen[bytes], Handle, ProcInfo]:
    """Run a forking launcher and find its daemon.

    servicectl is a child subreaper meanwhile, so the daemon and any process it orphaned
    re-parent to it. Launches are serialized until the launcher has exited and the PID file was
    found (or LAUNCH_SETTLE passed): the orphans that appear in that window can only be this
    launch's, and if the start fails they are killed, so nothing is left behind even when no
    PID file is ever written. A slow PID file thus delays other forking starts by at most
    LAUNCH_SETTLE, never by a whole start_timeout.

    The launcher is spawned behind a gate and recorded ("launching") before it runs: if
    servicectl dies during the launch, the next command knows a launch was under way (see
    inspect and start) instead of launching a second daemon.
    """
    deadline = time.monotonic() + svc.start_timeout
    with _FORKING_LAUNCH:
        _become_subreaper()
        since = proc.uptime_ticks()
        gate = Gate()
        try:
            child = spawn(svc, account, env, program, pass_fds, gate=gate)
        except BaseException:
            gate.close()
            raise
        _SPAWNED.add(child.pid)
        try:
            try:
                seen = proc.read_proc(child.pid)
                if seen is not None:
                    _write_state(svc, dirs, _launch_record(svc, seen))
                _open_gate(svc, program, gate, child)
            finally:
                gate.close()
            _await_launcher(svc, child, deadline)
            settle = min(deadline, time.monotonic() + LAUNCH_SETTLE)
            found = _find_daemon(svc, account, settle, final=settle >= deadline)
        except BaseException:
            _kill_orphans(_orphans(since))
            raise
        if found is None:
            suspects = _orphans(since)
    if found is None:
        try:
            found = _find_daemon(svc, account, deadline, final=True)
        except BaseException:
            _kill_orphans(suspects)
            raise
    assert found is not None
    _SPAWNED.add(found[1].pid)
    return child, found[0], found[1]


def _launch_record(svc: Service, launcher: ProcInfo) -> Record:
    """The record of a forking launch under way: the launcher, in its own session."""
    return Record(
        pid=launcher.pid,
        starttime=launcher.starttime,
        boot_id=proc.boot_id(),
        uid=launcher.uid,
        pgid=launcher.pgid if launcher.pgid == launcher.pid else 0,
        sid=launcher.sid,
        exe=None,
        pid_file=str(svc.pid_file),
        type="forking",
        phase=LAUNCHING,
        started_at=time.time(),
        command=tuple(svc.command),
        user=svc.user,
        stop_signal=svc.stop_signal,
        stop_timeout=svc.stop_timeout,
        kill_mode=svc.kill_mode,
    )


def _orphans(since: int) -> list[ProcInfo]:
    """Live processes re-parented to servicectl since ``since`` (ticks) that it did not spawn;
    zombie ones are reaped on the way."""
    me = os.getpid()
    out = []
    for pid in proc.all_pids():
        info = proc.read_proc(pid)
        if info is None or info.ppid != me or pid in _SPAWNED or info.starttime < since:
            continue
        if info.zombie:
            proc.reap_if_child(pid)
        else:
            out.append(info)
    return out


def _kill_orphans(orphans: list[ProcInfo]) -> None:
    """SIGKILL these orphans and their descendants in their groups, wait, and reap them."""
    targets = []
    for info in orphans:
        targets.append(Handle(info.pid, info.starttime))
        targets += [
            Handle(m.pid, m.starttime)
            for m in proc.group_members(info.pgid)
            if m.pid != info.pid and proc.is_descendant(m.pid, info.pid)
        ]
    kill_and_reap(targets)


def _await_launcher(svc: Service, launcher: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait for a forking launcher to exit; it must exit 0 before ``deadline``."""
    info = proc.read_proc(launcher.pid)
    lh = Handle(launcher.pid, info.starttime if info else 0)
    try:
        if proc.wait_all_exit([lh], deadline):
            raise StartFailed(
                f"{svc.name}: failed to start: the launcher {svc.program} (pid {launcher.pid}) "
                f"did not exit within start_timeout {svc.start_timeout:g} s (is it really a "
                f"forking daemon? use type: simple for programs that stay in the foreground); "
                f"it was stopped",
                detail=log_tail(svc),
            )
    finally:
        lh.close()
    code = launcher.wait()
    if code != 0:
        raise StartFailed(
            f"{svc.name}: failed to start: the launcher {svc.program} {proc.describe_exit(code)}",
            detail=log_tail(svc),
        )


def _find_daemon(
    svc: Service, account: Account, until: float, final: bool
) -> tuple[Handle, ProcInfo] | None:
    """Wait until ``pid_file`` names the daemon: a live descendant of servicectl, running as
    the service's user, that is not a process of another service started by this servicectl
    (a daemon cannot make servicectl adopt a root or a sibling process by writing its PID).

    At ``until``: None, or (``final``) a StartFailed saying what the PID file held.
    """
    backoff = 0.001
    last = "it was never written; can the daemon's user write to that directory?"
    me = os.getpid()
    while True:
        pf = read_pidfile(svc.pid_file)
        if pf.pid is not None:
            info = proc.read_proc(pf.pid)
            reason = forged_reason(pf.pid, info)
            if reason is None and info is not None and not proc.is_descendant(pf.pid, me):
                reason = f"PID {pf.pid} was not started by this service"
            if reason is None and pf.pid in _SPAWNED:
                reason = f"PID {pf.pid} belongs to another service"
            if reason is None and info is not None and account.switch and info.uid != account.uid:
                reason = f"PID {pf.pid} runs as uid {info.uid}, not as {account.user}"
            if reason is None and info is not None:
                handle = Handle(info.pid, info.starttime)
                if handle.valid:
                    return handle, info
                handle.close()
                reason = f"process {pf.pid} exited"
            last = f"it names {pf.pid}, which was not trusted: {reason}"
        elif pf.problem:
            last = pf.problem
        if time.monotonic() >= until:
            if not final:
                return None
            raise StartFailed(
                f"{svc.name}: failed to start: no live daemon in the PID file {svc.pid_file} "
                f"within start_timeout {svc.start_timeout:g} s ({last})",
                detail=log_tail(svc),
            )
        proc.check_cancel()
        time.sleep(backoff)
        backoff = min(backoff * 2, 0.05)


def _become_subreaper() -> None:
    """Make orphans of our descendants (a forking daemon) re-parent to servicectl while it runs,
    so the PID a daemon writes can be checked to be our descendant."""
    import ctypes

    pr_set_child_subreaper = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except OSError:
        pass


def _adopt_mainpid(
    svc: Service, record: Record, handle: Handle, mainpid: int
) -> tuple[Handle, ProcInfo, Record]:
    """Take MAINPID= from a notify service if it passes the identity rules (same user; same
    process group or a descendant)."""
    info = proc.read_proc(mainpid)
    reason = forged_reason(mainpid, info)
    if reason is None and info is not None and info.uid != record.uid:
        reason = f"it belongs to uid {info.uid}"
    if (
        reason is None
        and info is not None
        and not (info.pgid == record.pgid or proc.is_descendant(mainpid, record.pid))
    ):
        reason = "it is neither in the service's process group nor its descendant"
    if reason is not None or info is None:
        raise StartFailed(
            f"{svc.name}: failed to start: it reported MAINPID={mainpid}, which "
            f"cannot be the service: {reason}"
        )
    new = Handle(info.pid, info.starttime)
    handle.close()
    rec = record._replace(pid=info.pid, starttime=info.starttime, exe=proc.exe_of(info.pid))
    return new, info, rec


def _kill_quietly(handle: Handle, pgid: int) -> None:
    """SIGKILL the process (and its own group) and wait briefly: a start that failed."""
    kill_and_reap([handle] + group_handles(pgid, exclude=handle.pid))


def _abort_start(svc: Service, dirs: Dirs, child: subprocess.Popen[bytes]) -> None:
    """
        import subprocess
    Undo a failed or interrupted start: kill what was started, remove PID file and state."""
    targets = []
    if child.poll() is None:
        info = proc.read_proc(child.pid)
        if info is not None:
            targets.append(Handle(child.pid, info.starttime))
    # The child's own process group (start_new_session), with anything it forked.
    for member in proc.group_members(child.pid):
        if member.pid != child.pid:
            targets.append(Handle(member.pid, member.starttime))
    if svc.type == "forking":
        pf = read_pidfile(svc.pid_file)
        if pf.pid is not None and proc.is_descendant(pf.pid, os.getpid()):
            info = proc.read_proc(pf.pid)
            if info is not None:
                targets.append(Handle(info.pid, info.starttime))
                targets += [
                    Handle(m.pid, m.starttime)
                    for m in proc.group_members(info.pgid)
                    if m.pid != info.pid and proc.is_descendant(m.pid, os.getpid())
                ]
    kill_and_reap(targets)
    if child.poll() is None:
        try:
            child.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    _remove_quietly(svc.pid_file)
    _remove_quietly(state_path(dirs.run, svc.name))


def _remove_quietly(path: Path) -> None:
    """Remove a file of a start that failed; a read-only directory had nothing written to it."""
    try:
        remove_file(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Stop


def stop(svc: Service, dirs: Dirs) -> Outcome:
    """Stop ``svc``: stop signal (then CONT), wait up to stop_timeout, KILL, confirm, clean up.

    Success if it was not running; a PID file that names another process is reported and the
    process is left alone.
    """
    with locked(svc, dirs):
        return _stop_locked(svc, dirs)


def _stop_locked(svc: Service, dirs: Dirs) -> Outcome:
    obs = inspect(svc, dirs)
    if obs.record is not None and obs.record.phase == LAUNCHING:
        obs = _await_orphaned_launch(svc, dirs, obs.record)  # then stop the daemon it made
    if not obs.running:
        if obs.remnants:
            return _stop_remnants(svc, dirs, obs)
        cleaned = clean_leftovers(svc, dirs, obs) if obs.leftovers else []
        message = "not running"
        found = "; ".join(n for n in obs.notes if n)
        if found:
            message += f" ({found})"
        if cleaned:
            message += f"; removed the stale {' and '.join(cleaned)}"
        return Outcome(svc.name, Exit.OK, message)
    assert obs.record is not None and obs.pid is not None
    record = obs.record
    t0 = time.monotonic()
    main = Handle(record.pid, record.starttime)
    if not main.valid:
        main.close()
        cleaned = clean_leftovers(svc, dirs, obs.now(DEAD))
        return Outcome(
            svc.name,
            Exit.OK,
            f"not running (process {record.pid} exited just now)"
            + ("; removed the stale " + " and ".join(cleaned) if cleaned else ""),
        )
    group = record.pgid if svc.kill_mode == "group" else 0
    if group and obs.info is not None and obs.info.pgid != group:
        group = 0  # it left the group it started in: signal only the main process
    handles = [main] + group_handles(group, exclude=main.pid)
    how, elapsed = terminate(svc, handles, group, main.pid, t0)
    _clean_after_stop(svc, dirs, obs, how)
    if how.startswith("killed"):
        return Outcome(svc.name, Exit.OK, how, record.pid, elapsed)
    return Outcome(svc.name, Exit.OK, f"stopped {how} ({elapsed:.2f} s)", record.pid, elapsed)


def _stop_remnants(svc: Service, dirs: Dirs, obs: Observation) -> Outcome:
    """Stop what is left of the service's process group after its main process exited."""
    assert obs.record is not None
    t0 = time.monotonic()
    handles = []
    for info in obs.remnants:
        h = Handle(info.pid, info.starttime)
        if h.valid:
            handles.append(h)
        else:
            h.close()
    how, elapsed = terminate(svc, handles, obs.record.pgid, obs.record.pid, t0)
    _clean_after_stop(svc, dirs, obs.now(STOPPED), how)
    n = len(obs.remnants)
    what = f"{n} leftover process{'es' if n > 1 else ''} of its process group"
    main = f"its main process {obs.record.pid} had already exited"
    if how.startswith("killed"):
        message = f"{what} {how} ({main})"
    else:
        message = f"stopped {what} {how} ({elapsed:.2f} s; {main})"
    return Outcome(svc.name, Exit.OK, message, obs.record.pid, elapsed)


def _clean_after_stop(svc: Service, dirs: Dirs, obs: Observation, how: str) -> None:
    try:
        clean_leftovers(svc, dirs, obs.now(STOPPED))
    except ServicectlError as exc:
        done = how if how.startswith("killed") else f"stopped {how}"
        raise ServicectlError(
            exc.message.replace(f"{svc.name}: ", f"{svc.name}: {done}, but ", 1),
            exit_code=exc.exit_code,
        ) from None


# ---------------------------------------------------------------------------------------------
# Restart, reload


def restart(svc: Service, dirs: Dirs) -> Outcome:
    """Stop if running, then start, all under one lock."""
    t0 = time.monotonic()
    with locked(svc, dirs):
        try:
            _preflight(svc)
        except ServicectlError as exc:
            obs = inspect(svc, dirs)
            if obs.running:
                exc.message += f"; not restarted: it is still running (pid {obs.pid})"
            raise
        stopped = _stop_locked(svc, dirs)
        obs = inspect(svc, dirs)
        if obs.leftovers:
            clean_leftovers(svc, dirs, obs)
        pid = _start_locked(svc, dirs)
    was = f"was pid {stopped.pid}, " if stopped.pid else ""
    return Outcome(svc.name, Exit.OK, f"restarted ({was}now pid {pid})", pid, time.monotonic() - t0)


def _preflight(svc: Service) -> None:
    """What start checks before spawning (user, environment file, program, working directory),
    so that a restart that could not start again does not stop the running instance first."""
    account = resolve_account(svc)
    resolve_program(svc, build_environment(svc, account))
    if not svc.working_directory.is_dir():
        raise ServicectlError(
            f"{svc.name}: working directory {svc.working_directory} does not exist "
            f"(create it, or fix working_directory: in {svc.file})"
        )


def try_restart(svc: Service, dirs: Dirs) -> Outcome:
    """Restart only if running."""
    with locked(svc, dirs):
        running = inspect(svc, dirs).running
    if not running:
        return Outcome(svc.name, Exit.OK, "not running; not started (try-restart)")
    return restart(svc, dirs)


def reload(svc: Service, dirs: Dirs) -> Outcome:
    """Send reload_signal or run reload_command. 3 if reload is false, 7 if not running."""
    if not svc.reload:
        return Outcome(
            svc.name,
            Exit.UNIMPLEMENTED,
            f"cannot be reloaded (reload: false in {svc.file}); use restart",
            ok_line=False,
        )
    with locked(svc, dirs):
        obs = inspect(svc, dirs)
        if not obs.running or obs.record is None or obs.record.phase == LAUNCHING:
            return Outcome(
                svc.name, Exit.NOT_RUNNING, "not running; nothing to reload", ok_line=False
            )
        pid = obs.record.pid
        if svc.reload_command:
            return _reload_command(svc, pid)
        sig = svc.reload_signal
        harmless = (signal.SIGCONT, signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH)
        if proc.signal_disposition(pid, sig) == "default" and sig not in harmless:
            return Outcome(
                svc.name,
                Exit.FAILURE,
                f"not reloaded: process {pid} does not handle SIG{signal_name(sig)}, which "
                f"would kill it; use restart (or set reload_signal/reload_command in "
                f"{svc.file})",
                pid,
                ok_line=False,
            )
        notify = _open_notify(obs.record)
        try:
            with Handle(pid, obs.record.starttime) as h:
                if not h.send(sig):
                    return Outcome(
                        svc.name, Exit.NOT_RUNNING, "not running; nothing to reload", ok_line=False
                    )
                if notify is not None:
                    failure = _await_reload(svc, dirs, obs.record, h, notify)
                    if failure is not None:
                        return failure
        finally:
            if notify is not None:
                notify.close()
    return Outcome(svc.name, Exit.OK, f"reloaded (SIG{signal_name(sig)} sent to pid {pid})", pid)


RELOADING_WINDOW = 1.0  # how long a notify service has to say RELOADING=1 after the signal


def _open_notify(record: Record) -> NotifySocket | None:
    """Listen again on a notify service's socket (None if it is not one, or it is busy)."""
    from servicectl.ready import NotifySocket

    if not record.notify_socket:
        return None
    try:
        return NotifySocket(record.notify_socket)
    except OSError:
        return None


def _await_reload(
    svc: Service, dirs: Dirs, record: Record, handle: Handle, notify: NotifySocket
) -> Outcome | None:
    """After a reload signal: if the service says RELOADING=1 (within a second), wait for its
    READY=1 up to start_timeout. None when it is done; an Outcome when the reload failed."""
    from servicectl.ready import Notes

    notes = Notes()
    deadline = time.monotonic() + RELOADING_WINDOW
    saw_reloading = False
    while time.monotonic() < deadline and not handle.exited():
        ready = select.select([notify.fileno()], [], [], deadline - time.monotonic())[0]
        if ready:
            notify.drain(notes, record.pid, record.pgid)
            if notes.reloading and not saw_reloading:
                saw_reloading = True
                deadline = time.monotonic() + svc.start_timeout
            if saw_reloading and notes.ready:
                break
    if handle.exited():
        return Outcome(
            svc.name,
            Exit.FAILURE,
            "died while reloading",
            record.pid,
            detail=log_tail(svc),
            ok_line=False,
        )
    if saw_reloading and not notes.ready:
        return Outcome(
            svc.name,
            Exit.FAILURE,
            f"said RELOADING=1 but not READY=1 within {svc.start_timeout:g} s",
            record.pid,
            ok_line=False,
        )
    if notes.status is not None:
        write_record(dirs.run, svc.name, record._replace(status_text=notes.status))
    return None


def _reload_command(svc: Service, pid: int) -> Outcome:
    import subprocess

    assert svc.reload_command is not None
    account = resolve_account(svc)
    env = build_environment(svc, account)
    env["MAINPID"] = str(pid)
    program = resolve_program(svc, env, svc.reload_command)
    kwargs: dict[str, Any] = {}
    if account.switch:
        kwargs.update(user=account.uid, group=account.gid)
    try:
        result = subprocess.run(
            [program, *svc.reload_command[1:]],
            env=env,
            cwd=str(svc.working_directory),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=svc.start_timeout,
            start_new_session=True,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        return Outcome(
            svc.name,
            Exit.FAILURE,
            f"reload_command did not finish within {svc.start_timeout:g} s",
            pid,
            ok_line=False,
        )
    if result.returncode != 0:
        out = (result.stderr or result.stdout).decode("utf-8", "replace").strip().splitlines()
        detail = "\n".join("    " + line for line in out[-LOG_TAIL_LINES:])
        return Outcome(
            svc.name,
            Exit.FAILURE,
            f"reload failed: {' '.join(svc.reload_command)} "
            f"{proc.describe_exit(result.returncode)}",
            pid,
            detail=detail,
            ok_line=False,
        )
    return Outcome(svc.name, Exit.OK, f"reloaded ({' '.join(svc.reload_command)})", pid)


def force_reload(svc: Service, dirs: Dirs) -> Outcome:
    """Reload if the service supports it, else restart it (only if it runs)."""
    if svc.reload:
        return reload(svc, dirs)
    return try_restart(svc, dirs)


# ---------------------------------------------------------------------------------------------
# Status
