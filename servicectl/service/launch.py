"""Getting one service's process running and recorded: spawn a simple service behind its gate,
or run a forking launcher and find its daemon; record it before it runs; undo a failed start.

Nothing here waits for readiness: lifecycle.start composes these steps.
"""

from __future__ import annotations

import _thread
import os
import time

from servicectl.definitions import fingerprint
from servicectl.errors import EnvironmentProblem, Exit, NotInstalledError, ServicectlError
from servicectl.service import tracked
from servicectl.service.identity import forged_reason, seen_alive
from servicectl.service.logtail import log_tail
from servicectl.service.outcome import StartFailed
from servicectl.service.terminate import group_handles, kill_tree
from servicectl.service.waits import Progress, silent
from servicectl.states import LAUNCHING, PHASE_STARTING
from servicectl.system import proc
from servicectl.system.cancel import check_cancel
from servicectl.system.pidfile import (
    NotAPidFile,
    read_pidfile,
    remove_file,
    remove_pidfile,
    write_pidfile,
)
from servicectl.system.proc import Handle, ProcInfo
from servicectl.system.record import Record, new_record, state_path, write_record
from servicectl.system.spawn import CHDIR_EXIT, GATE_EXIT, Account, Gate, spawn
from servicectl.system.turns import paused

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.system.cgroup_limits import Plan

_FORKING_LAUNCH = _thread.allocate_lock()  # threading's Lock; a start of one needs no threading
_SPAWNED: set[int] = set()  # PIDs this servicectl process spawned or claimed (not orphans)

EXEC_WAIT = 2.0  # how long to watch a gated child become the program before moving on
BLANK_WAIT = 0.1  # how long a gated child without a command line is watched for its exit
LAUNCH_SETTLE = 2.0  # how long other forking launches wait on one whose PID file is late

# ---------------------------------------------------------------------------------------------
# A simple service: spawned behind a gate, recorded, then let through


def spawn_simple(
    svc: Service,
    account: Account,
    env: dict[str, str],
    program: str,
    gate: Gate,
    cgroups: Plan | None = None,
) -> subprocess.Popen[bytes]:
    """Spawn a service's process (a simple service's program, a forking one's launcher), held
    at ``gate`` until it is recorded, born in its cgroup v2 where it can be (child.py) and
    moved into the rest of its cgroups meanwhile (while a gate forked here goes on to its
    exec): the program runs in them from its first instruction. If the join fails, the child
    is let go without running anything and the start fails."""
    joined: list[StartFailed | None] = []  # what the join said, once it was made

    def join(pid: int, born_in: str = "") -> None:
        try:
            if cgroups is not None and cgroups.all:
                tracked.join(svc, cgroups, pid, born_in)
            joined.append(None)
        except StartFailed as exc:
            joined.append(exc)

    into = cgroups.v2 if cgroups is not None else ""
    child = spawn(svc, account, env, program, (), gate=gate, meanwhile=join, into=into)
    _SPAWNED.add(child.pid)
    if not joined:  # Popen: joined after it returned
        join(child.pid)
    if joined[0] is not None:  # let go without running anything (its gate closed: exit 125)
        gate.close()
        child.wait()
        _SPAWNED.discard(child.pid)
        raise joined[0]
    return child


def forget(pid: int) -> None:
    """``pid`` (spawned or claimed here) has exited and was reaped: it is nobody's now."""
    _SPAWNED.discard(pid)


def identify(svc: Service, child: subprocess.Popen[bytes]) -> tuple[Handle, ProcInfo]:
    """A handle on our spawned child and what /proc says of it."""
    seen = proc.read_proc(child.pid)
    if seen is None:  # cannot happen: it is our unreaped child
        raise StartFailed(f"{svc.name}: the process vanished at once")
    return Handle(child.pid, seen.starttime), seen


def record_start(
    svc: Service,
    dirs: Dirs,
    info: ProcInfo,
    program: str,
    child: subprocess.Popen[bytes],
    gate: Gate | None,
    notify_socket: str | None,
    extra: dict[str, Any] | None = None,
    written: Service | None = None,
) -> Record:
    """Record the started process ("starting": not confirmed yet), and for a gated one its PID
    file too, then let it run the program. ``extra``: more fields of the record (who
    supervises it); ``written``: the definition before its $VARIABLES were expanded (``svc``
    is expanded), kept parsed for status (drift.py)."""
    record = new_record(
        svc,
        info,
        pgid=own_group(svc, info),
        exe=None if gate else proc.exe_of(info.pid),
        phase=PHASE_STARTING,
        notify_socket=notify_socket,
        seen=seen_alive(info.pid, info.starttime),
        fingerprint=fingerprint.fingerprint(svc),
        parsed=fingerprint.snapshot(written or svc),
        **(extra or {}),
    )
    # Record first, before the program runs: if this fails, the child is killed, so that no
    # daemon ever runs on untracked.
    write_state(svc, dirs, record, info.pid if gate is not None else None)
    if gate is not None:
        open_gate(svc, program, gate, child)
    return record


def chdir_failure(svc: Service) -> EnvironmentProblem:
    """The start's failure when the service's user could not enter its working directory
    (entered after the user switch: docs/security.md R-EXEC-2)."""
    return EnvironmentProblem(
        f"{svc.name}: failed to start: "
        + (f"user {svc.user}" if svc.user else "the service")
        + f" cannot enter its working directory {svc.working_directory} (make it reachable "
        f"for that user, or fix working_directory: in {svc.file})",
        detail=log_tail(svc),
    )


def open_gate(svc: Service, program: str, gate: Gate, child: subprocess.Popen[bytes]) -> None:
    """Let the recorded child run the program, and watch it do so (about a millisecond): an
    exec that fails (permission denied for the service's user, say) is exit 5, as it is when
    Popen itself cannot execute the program."""
    gate.open()
    deadline = time.monotonic() + EXEC_WAIT
    backoff = 0.0002
    blank = 0.0  # since when /proc shows no command line: the gate exiting (an exec failed)
    while child.poll() is None and time.monotonic() < deadline:
        argv = proc.cmdline_of(child.pid)
        if argv and not gate.gated_argv(argv):
            break  # the program runs
        if not argv:  # on its way out (exit 126...), or a program that shows no command line
            blank = blank or time.monotonic()
            if time.monotonic() - blank > BLANK_WAIT:
                break
        with paused():  # a fleet's worker lets another act meanwhile (turns.py)
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
    if code == CHDIR_EXIT:
        raise chdir_failure(svc)
    if code == GATE_EXIT:
        raise StartFailed(f"{svc.name}: failed to start: the process exited before running")


def write_state(
    svc: Service, dirs: Dirs, record: Record | None = None, pid: int | None = None
) -> None:
    """Write the state record and/or the PID file; a failure is a StartFailed that says where
    (the caller kills what it started)."""
    try:
        if record is not None:
            write_record(dirs.run, svc.name, record)
        if pid is not None:
            write_pidfile(svc.pid_file, pid, dirs.run)
    except ServicectlError as exc:  # not a PID file there (R-PID-2), or a planted symlink
        if isinstance(exc, NotAPidFile):
            exc = exc.naming(svc.file)
        raise StartFailed(
            f"{svc.name}: failed to start: {exc.message}; the process was stopped",
            exit_code=exc.exit_code,
        ) from None
    except OSError as exc:
        where = os.path.dirname(exc.filename) if exc.filename else dirs.run
        raise StartFailed(
            f"{svc.name}: failed to start: cannot write its PID file or state record in "
            f"{where}: {exc.strerror} (is {where} read-only or immutable? see lsattr -d "
            f"{where}); the process was stopped",
            exit_code=Exit.PRIVILEGE if isinstance(exc, PermissionError) else Exit.FAILURE,
        ) from None


def own_group(svc: Service, info: ProcInfo) -> int:
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


# ---------------------------------------------------------------------------------------------
# A forking service: its launcher runs under servicectl as subreaper; its daemon is found by
# its PID file


Launched = tuple["subprocess.Popen[bytes]", tuple[Handle, ProcInfo], list[ProcInfo]]


def launch_forking(
    svc: Service,
    dirs: Dirs,
    account: Account,
    env: dict[str, str],
    program: str,
    progress: Progress = silent,
    cgroups: Plan | None = None,
    fields: dict[str, Any] | None = None,
    keep_record: bool = False,
) -> Launched:
    """Run a forking launcher and find its daemon: (launcher, (handle, daemon), strays), where
    the strays are the launch's other orphans, for abort_start to kill if the start fails
    later. If the launch fails, remove what it left (its PID file and "launching" record).
    The launcher runs in the service's cgroups (``cgroups``): so does all it forks.
    ``fields``: more fields of the "launching" record (who supervises it); ``keep_record``:
    a failed launch leaves the record (a supervisor's respawn rewrites it at once)."""
    try:
        return _launch_forking(svc, dirs, account, env, program, progress, cgroups, fields or {})
    except BaseException:
        # What the PID file names was never trusted, and its writer has been killed.
        remove_start_files(svc, dirs, keep_record)  # the PID file, and the "launching" record
        raise


def _launch_forking(
    svc: Service,
    dirs: Dirs,
    account: Account,
    env: dict[str, str],
    program: str,
    progress: Progress = silent,
    cgroups: Plan | None = None,
    fields: dict[str, Any] | None = None,
) -> Launched:
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
    progress(svc.name, "waiting for other forking launches", None)
    with _FORKING_LAUNCH:
        proc.become_subreaper()
        since = proc.uptime_ticks()
        gate = Gate()
        try:
            child = spawn_simple(svc, account, env, program, gate, cgroups)
        except BaseException:
            gate.close()
            raise
        try:
            try:
                seen = proc.read_proc(child.pid)
                if seen is not None:
                    write_state(svc, dirs, _launch_record(svc, seen, cgroups, fields or {}))
                open_gate(svc, program, gate, child)
            finally:
                gate.close()
            progress(svc.name, f"launcher {svc.program} (pid {child.pid})", svc.start_timeout)
            _await_launcher(svc, child, deadline)
            progress(svc.name, f"pid file {svc.pid_file}", deadline - time.monotonic())
            settle = min(deadline, time.monotonic() + LAUNCH_SETTLE)
            found = _find_daemon(svc, account, settle, final=settle >= deadline)
        except BaseException:
            _kill_orphans(_orphans(since))
            raise
        suspects = _orphans(since)
    if found is None:
        try:
            found = _find_daemon(svc, account, deadline, final=True)
        except BaseException:
            _kill_orphans(suspects)
            raise
    assert found is not None
    _SPAWNED.add(found[1].pid)
    return child, found, [o for o in suspects if o.pid != found[1].pid]


def _launch_record(
    svc: Service, launcher: ProcInfo, cgroups: Plan | None, fields: dict[str, Any]
) -> Record:
    """The record of a forking launch under way: the launcher, in its own session (and its
    cgroups); ``fields``: who supervises it (with the last exit of a respawn, from this first
    write on)."""
    return new_record(
        svc,
        launcher,
        pgid=launcher.pgid if launcher.pgid == launcher.pid else 0,
        exe=None,
        type="forking",
        phase=LAUNCHING,
        **{**(tracked.fields(cgroups) if cgroups is not None else {}), **fields},
    )


def _orphans(since: int) -> list[ProcInfo]:
    """Live processes re-parented to servicectl since ``since`` (ticks) that it did not spawn;
    zombie ones are reaped on the way."""
    out = []
    for info in proc.children_since(os.getpid(), since):
        if info.pid in _SPAWNED:
            continue
        if info.zombie:
            proc.reap_if_child(info.pid)
        else:
            out.append(info)
    return out


def _kill_orphans(orphans: list[ProcInfo]) -> None:
    """SIGKILL these orphans and all their descendants (docs/security.md R-PROC-5: by ancestry,
    children that called setsid included), wait, and reap them."""
    kill_tree([(o.pid, o.starttime) for o in orphans])


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
        check_cancel()
        time.sleep(backoff)
        backoff = min(backoff * 2, 0.05)


# ---------------------------------------------------------------------------------------------
# Confirming, and undoing a failed start


def adopt_mainpid(
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


def kill_quietly(handle: Handle, pgid: int) -> None:
    """SIGKILL the process, its own group and all its descendants (R-PROC-5), and wait
    briefly: a start that failed."""
    members = group_handles(pgid, handle.pid, held_by=[handle])
    roots = [(h.pid, h.starttime) for h in [handle, *members]]
    for h in members:
        h.close()
    kill_tree(roots)


def abort_start(
    svc: Service,
    dirs: Dirs,
    child: subprocess.Popen[bytes],
    strays: list[ProcInfo],
    keep_record: bool = False,
) -> None:
    """Undo a failed or interrupted start: kill what was started (and what a forking launch
    left beside its daemon: ``strays``), remove PID file and state (``keep_record``: the PID
    file only)."""
    import subprocess

    # The child's own process group (start_new_session), with anything it forked, looked at
    # before the child is reaped: until then its PID, and so its group, cannot be reused.
    roots = [m for m in proc.group_members(child.pid) if m.pid != child.pid]
    if child.poll() is None:
        info = proc.read_proc(child.pid)
        if info is not None:
            roots.append(info)
    if svc.type == "forking":
        pf = read_pidfile(svc.pid_file)
        if pf.pid is not None and proc.is_descendant(pf.pid, os.getpid()):
            info = proc.read_proc(pf.pid)
            if info is not None:
                roots.append(info)
                roots += [
                    m
                    for m in proc.group_members(info.pgid)
                    if m.pid != info.pid and proc.is_descendant(m.pid, os.getpid())
                ]
    # And every descendant of those, by ancestry (R-PROC-5): setsid children too; then all
    # that is in its cgroups, wherever it went.
    kill_tree([(r.pid, r.starttime) for r in roots + strays])
    tracked.end_service(svc, dirs)
    if child.poll() is None:
        try:
            child.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    remove_start_files(svc, dirs, keep_record)


def remove_start_files(svc: Service, dirs: Dirs, keep_record: bool = False) -> None:
    """Remove the PID file and state record of a start that failed, quietly: a read-only
    directory had nothing written to it. The PID file goes only if it is one (docs/security.md
    R-PID-2): a file that is not is left as it was. With ``keep_record`` (a supervisor's
    respawn) the record stays: it is rewritten at once with the exit."""
    try:
        remove_pidfile(svc.pid_file, dirs.run)
    except (OSError, ServicectlError):
        pass
    if keep_record:
        return
    try:
        remove_file(state_path(dirs.run, svc.name))
    except OSError:
        pass
