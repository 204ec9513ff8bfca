"""The actions on one service: start, stop, restart, try-restart and force-reload, composed from
the parts (observe: which process is it; launch: get it running and recorded; terminate: the
stop schedule; reloading: reload).

Each action holds the service's lock and returns an Outcome; failures raise ServicectlError.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any, cast

from servicectl.definitions.expansion import expanded
from servicectl.definitions.schema import KILL_WAIT, Service, signal_name
from servicectl.errors import Exit, Interrupted, ServicectlError
from servicectl.service import audit, failed, launch, oneshot, supervised, tracked
from servicectl.service.identity import seen_alive
from servicectl.service.logtail import log_tail
from servicectl.service.observe import clean_leftovers, inspect
from servicectl.service.outcome import Outcome, StartFailed
from servicectl.service.preflight import prepare
from servicectl.service.reload import SignalNotHandled
from servicectl.service.reload import reload as _reload
from servicectl.service.terminate import cgroup_handles as terminate_cgroup_handles
from servicectl.service.terminate import group_handles, terminate
from servicectl.service.waits import Progress, silent
from servicectl.states import DEAD, LAUNCHING, PHASE_RUNNING, STOPPED, UNRECORDED
from servicectl.supervisor import client
from servicectl.system import proc
from servicectl.system.lock import locked
from servicectl.system.proc import Handle
from servicectl.system.record import Record, read_record, write_record
from servicectl.system.spawn import (
    CHDIR_EXIT,
    Account,
    Gate,
    build_environment,
    resolve_account,
    resolve_program,
)

if TYPE_CHECKING:
    import subprocess

    from servicectl.paths import Dirs
    from servicectl.service.observation import Observation
    from servicectl.system.ready import Notes, NotifySocket, Probe, WaitResult

# ---------------------------------------------------------------------------------------------
# Start


def start(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    """Start ``svc`` (success if it already runs). The lock is held throughout."""
    if svc.type == "oneshot":
        return oneshot.start(svc, dirs, progress)
    t0 = time.monotonic()
    progress(svc.name, "waiting for its lock", None)
    with locked(svc, dirs):
        obs = inspect(svc, dirs)
        if obs.record is not None and obs.record.phase == LAUNCHING:
            obs = _await_orphaned_launch(svc, dirs, obs.record, progress)
        if obs.running:
            return _already_running(svc, dirs, obs)
        _refuse_if_taken(svc, dirs, obs)
        prepare(svc, "not started")  # directories, config test
        ended = _stop_remnants(svc, dirs, obs).message if obs.remnants else ""
        cleaned = clean_leftovers(svc, dirs, obs) if obs.leftovers and not ended else []
        said: list[str] = []
        try:
            with failed.noted(svc, dirs):  # a failure is kept until the next start or stop
                pid = _start_locked(svc, dirs, progress, said=said)
        except ServicectlError as exc:
            audit.failed(svc.name, exc.message)
            raise
    note = f"; removed a stale {' and '.join(cleaned)}" if cleaned else ""
    if ended:
        note = f"; first {ended}"
    note += "".join(f"; first {s}" if s.startswith("ended") else f"; {s}" for s in said)
    if svc.ready is not None and svc.ready.kind in ("tcp", "unix", "http"):
        record, _ = read_record(dirs.run, svc.name)
        if record is not None and record.ready_note:  # R-READY-1: what it could not tell
            note += f"; readiness: {record.ready_note}"
    outcome = Outcome(svc.name, Exit.OK, f"started (pid {pid}){note}", pid, time.monotonic() - t0)
    audit.told(outcome)
    return outcome


def _refuse_if_taken(svc: Service, dirs: Dirs, obs: Observation) -> None:
    """The name is taken in this run directory by a service of another definition file."""
    if obs.taken_by is not None:
        raise ServicectlError(
            f"{svc.name}: not started: {dirs.run} already has a service of this name, "
            f"started from {obs.taken_by}; stop it there, or give this services directory "
            f"a run directory of its own (--run-dir)"
        )


def _already_running(svc: Service, dirs: Dirs, obs: Observation) -> Outcome:
    note = ""
    if obs.record is not None and obs.record.phase not in (UNRECORDED, LAUNCHING):
        _note_seen(svc, dirs, obs.record)  # seen alive now: its children so far are its own
    if obs.record is not None and obs.record.phase == UNRECORDED:
        # Identified by its PID file, user and executable: from now on by its record, so that
        # a later loss of the PID file cannot lose it.
        try:
            write_record(dirs.run, svc.name, obs.record._replace(phase=PHASE_RUNNING))
            note = "; servicectl had no record of it and has recorded it now"
        except OSError as exc:
            note = f"; servicectl has no record of it and cannot write one: {exc.strerror}"
    try:
        note += client.attach(svc, dirs)
    except ServicectlError as exc:
        note += f"; not supervised: {exc.message.removeprefix(svc.name + ': ')}"
    return Outcome(svc.name, Exit.OK, f"already running (pid {obs.pid}){note}", obs.pid)


def _await_orphaned_launch(
    svc: Service, dirs: Dirs, record: Record, progress: Progress = silent
) -> Observation:
    """A launch whose servicectl died: wait (up to start_timeout) for its launcher to exit,
    then look again; its daemon, if it wrote its PID file, is found and recorded by start."""
    what = f"an interrupted start's launcher (pid {record.pid})"
    progress(svc.name, what, svc.start_timeout)
    with Handle(record.pid, record.starttime) as launcher:
        proc.wait_all_exit([launcher], time.monotonic() + svc.start_timeout)
        if not launcher.exited():
            launcher.send(signal.SIGKILL)
            proc.wait_all_exit([launcher], time.monotonic() + KILL_WAIT, False)
    return inspect(svc, dirs)


def _start_locked(
    svc: Service,
    dirs: Dirs,
    progress: Progress = silent,
    extra: dict[str, Any] | None = None,
    said: list[str] | None = None,
) -> int:
    """Spawn (or launch) and record, wait until ready, confirm; the PID. On a failure or an
    interruption, what was started is killed and no PID file or record of it is left.

    The service's cgroups are made fresh first: what an earlier run left in them is ended, and
    said in ``said`` (a respawn goes through here too). A supervised service is spawned by its
    supervisor (see _start_supervised); ``extra``: the supervisor's own start, with these
    fields in the record."""
    cgroups = tracked.plan(svc, dirs)  # a limit that cannot be applied: exit 6, before all
    if extra is None and supervised.delegated(svc):
        return _start_supervised(svc, dirs, progress)
    account = resolve_account(svc)
    env = build_environment(svc, account)
    written, svc = svc, expanded(svc, env)  # $VAR in its commands
    program = resolve_program(svc, env)
    ended = tracked.open_cgroups(svc, cgroups)
    if ended and said is not None:
        said.append(ended)
    notify = _notify_socket(svc, dirs, env, account)
    gate = Gate() if svc.type == "simple" else None
    since = _start_clock()  # before the spawn: a ready file must be newer (R-READY-2)
    try:
        if gate is None:
            child, found, strays = launch.launch_forking(
                svc, dirs, account, env, program, progress, cgroups
            )
        else:
            progress(svc.name, "spawning", None)
            child = launch.spawn_simple(svc, account, env, program, gate, cgroups)
            found, strays = None, []
        try:
            handle, info = found or launch.identify(svc, child)
            address = notify.address if notify else None
            fields = supervised.start_fields(svc) if extra is None else dict(extra)
            fields.update(tracked.fields(cgroups))
            record = launch.record_start(
                svc, dirs, info, program, child, gate, address, fields, written
            )
            result = _await_ready(svc, account, env, child, handle, record, notify, progress, since)
            return _confirm(svc, dirs, record, handle, result)
        except BaseException as exc:
            launch.abort_start(svc, dirs, child, strays)
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


def _start_supervised(svc: Service, dirs: Dirs, progress: Progress = silent) -> int:
    """Start a supervised service: the run directory's supervisor spawns it (so that it is its
    parent and sees its exits) with the same code, and records it; this start then waits for
    it to be ready and confirms it, as any start. On a failure or an interruption the
    supervisor kills what it spawned and removes its PID file and record."""
    account = resolve_account(svc)
    env = build_environment(svc, account)
    resolve_program(svc, env)  # a missing program is said here, as for any start
    written = svc  # the supervisor keeps it as written: each spawn of it expands it once
    svc = expanded(svc, env)  # $VAR in its commands, as the supervisor will run them
    notify = _notify_socket(svc, dirs, env, account)
    try:
        progress(svc.name, "its supervisor", None)
        link = client.link(written, dirs)
        try:
            try:
                progress(svc.name, "spawning", None)
                since = _start_clock()
                child, handle = link.spawn(svc, notify.address if notify else None)
                record, _ = read_record(dirs.run, svc.name)
                if record is None or record.pid != handle.pid:
                    raise StartFailed(f"{svc.name}: failed to start: its record was not written")
                popen = cast("subprocess.Popen[bytes]", child)
                result = _await_ready(
                    svc, account, env, popen, handle, record, notify, progress, since
                )
                pid = _confirm(svc, dirs, record, handle, result)
            except BaseException as exc:
                _abort_supervised(svc, dirs, link)
                if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                    raise Interrupted(
                        f"{svc.name}: start interrupted; what it had started was stopped, and "
                        f"no PID file or state of it is left"
                    ) from None
                raise
            link.release_started(dirs, pid)
            return pid
        finally:
            link.close()
    finally:
        if notify is not None:
            notify.close()


def _abort_supervised(svc: Service, dirs: Dirs, link: client.Link) -> None:
    """Have the supervisor undo the start; if it cannot (it died), kill what the record names
    (a verified handle, its own group) and remove its PID file and record here."""
    try:
        link.abort()
        return
    except ServicectlError:
        pass
    record, _ = read_record(dirs.run, svc.name)
    if record is not None:
        launch.kill_quietly(Handle(record.pid, record.starttime), record.pgid)
        launch.remove_start_files(svc, dirs)


def _notify_socket(
    svc: Service, dirs: Dirs, env: dict[str, str], account: Account
) -> NotifySocket | None:
    """For ``ready: notify``, the socket the service reports on, named in its NOTIFY_SOCKET
    (a path socket only its user can write, where that user can reach it: docs/security.md
    R-NOTIFY-1, R-NOTIFY-2); otherwise no NOTIFY_SOCKET at all (not even one from servicectl's
    own environment)."""
    if svc.ready is None or svc.ready.kind != "notify":
        env.pop("NOTIFY_SOCKET", None)
        return None
    from servicectl.system.ready import NotifySocket, notify_address

    # R-NOTIFY-1: a service that runs as root may drop privileges before it says READY=1
    # (mosquitto does): its socket is open to every user, and the sender is checked instead.
    uid = account.uid if account.uid != 0 else None
    address = notify_address(dirs.run, svc.name, uid)
    try:
        notify = NotifySocket(address, uid=uid)
    except OSError as exc:
        raise StartFailed(
            f"{svc.name}: cannot create the notify socket {address}: {exc.strerror}"
        ) from None
    env["NOTIFY_SOCKET"] = address
    return notify


def _await_ready(
    svc: Service,
    account: Account,
    env: dict[str, str],
    child: subprocess.Popen[bytes],
    handle: Handle,
    record: Record,
    notify: NotifySocket | None,
    progress: Progress = silent,
    since: int = 0,
) -> WaitResult:
    """Watch the started process through start_grace, or until its readiness check passes
    (up to start_timeout); a StartFailed if it died or was not ready (it is then killed).
    ``since``: ready.start_clock() before the spawn (a ready file must be newer)."""
    from servicectl.system.ready import Probe, wait_ready

    probe = None
    if svc.ready is not None and svc.ready.kind != "notify":
        probe = Probe(svc, account, env, since)
        probe.service = (record.pid, record.pgid, record.sid)
    budget = svc.start_timeout if svc.ready is not None else svc.start_grace
    progress(svc.name, f"ready: {svc.ready.describe()}" if svc.ready else "start_grace", budget)
    result = wait_ready(handle, time.monotonic() + budget, probe, notify, record.pgid)
    if result.outcome == "died":
        code = proc.reap_if_child(record.pid)
        if code is None and child.poll() is not None and child.pid == record.pid:
            code = child.returncode
        if code == CHDIR_EXIT:
            raise launch.chdir_failure(svc)
        died = StartFailed(
            f"{svc.name}: failed to start: the program {proc.describe_exit(code)} "
            f"{_since(record)} after starting" + _wait_notes(result.notes, probe),
            detail=log_tail(svc),
        )
        died.exit_status = code
        raise died
    if result.outcome in ("timeout", "error"):
        what = (
            f"was not ready after {budget:g} s (ready: {svc.ready.describe()}"
            + (f"; last probe: {result.detail}" if result.detail else "")
            + ")"
            if result.outcome == "timeout" and svc.ready
            else result.detail
        )
        launch.kill_quietly(handle, record.pgid)
        raise StartFailed(
            f"{svc.name}: failed to start: it {what}; it was stopped"
            + _wait_notes(result.notes, None),
            detail=log_tail(svc),
        )
    return result


def _confirm(svc: Service, dirs: Dirs, record: Record, handle: Handle, result: WaitResult) -> int:
    """The service is up: take the MAINPID it reported, if any, and record it as running
    (with what its readiness check could not tell, if anything)."""
    notes = result.notes
    pid = record.pid
    if notes.mainpid and notes.mainpid != pid:
        handle, info, record = launch.adopt_mainpid(svc, record, handle, notes.mainpid)
        pid = info.pid
        launch.write_state(svc, dirs, pid=pid)
    now = proc.read_proc(pid) if svc.type == "forking" else None
    if now is not None and now.starttime == record.starttime and now.sid != record.sid:
        # A daemon whose parent wrote its PID file (Debian's nginx) may call setsid() after
        # servicectl read it: its session and group are what they are now.
        record = record._replace(sid=now.sid, pgid=launch.own_group(svc, now))
    record = record._replace(
        phase=PHASE_RUNNING,
        exe=proc.exe_of(pid) or record.exe,
        status_text=notes.status,
        ready_note=result.detail or None,
        seen=seen_alive(pid, record.starttime, record.sid) or record.seen,
    )
    launch.write_state(svc, dirs, record)
    handle.close()
    return pid


def _start_clock() -> int:
    from servicectl.system.ready import start_clock

    return start_clock()


def _since(record: Record) -> str:
    return f"{max(0.0, time.time() - record.started_at):.2f} s"


def _status_note(notes: object) -> str:
    status = getattr(notes, "status", None)
    return f" (its last status: {status})" if status else ""


def _wait_notes(notes: Notes, probe: Probe | None) -> str:
    """What the wait learnt that explains a failed start: the service's last STATUS=, the
    notify messages refused and why (R-NOTIFY-3), the last probe of a service that died."""
    out = _status_note(notes)
    if notes.ignored:
        more = f" (and {len(notes.ignored) - 1} more)" if len(notes.ignored) > 1 else ""
        out += f"; refused: {notes.ignored[0]}{more}"
    if probe is not None and probe.last_error:
        out += f"; last probe: {probe.last_error}"
    return out


# ---------------------------------------------------------------------------------------------
# Stop


def stop(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    """Stop ``svc``: stop signal (then CONT), wait up to stop_timeout, KILL, confirm, clean up.

    Success if it was not running; a PID file that names another process is reported and the
    process is left alone.
    """
    if svc.type == "oneshot":
        return oneshot.stop(svc, dirs, progress)
    progress(svc.name, "waiting for its lock", None)
    with locked(svc, dirs), client.holding(svc, dirs) as held:
        outcome = _stop_locked(svc, dirs, progress=progress)
        if failed.forget(svc, dirs) and outcome.pid is None:
            outcome.message += "; its failed state is cleared"
    if held.get("cancelled"):
        outcome.message += f"; {held['cancelled']}"
    if outcome.pid is not None:
        audit.told(outcome)
    return outcome


def _stop_locked(
    svc: Service, dirs: Dirs, obs: Observation | None = None, progress: Progress = silent
) -> Outcome:
    obs = obs or inspect(svc, dirs)
    if obs.record is not None and obs.record.phase == LAUNCHING:
        obs = _await_orphaned_launch(svc, dirs, obs.record, progress)  # then stop its daemon
    if not obs.running:
        if obs.remnants:
            return _stop_remnants(svc, dirs, obs, progress)
        kept: list[str] = []
        ended = tracked.finish(svc, dirs, obs.record)  # its empty cgroups, or what appeared
        cleaned = clean_leftovers(svc, dirs, obs, kept) if obs.leftovers else []
        message = "not running"
        found = "; ".join(n for n in obs.notes if n)
        if found:
            message += f" ({found})"
        message += ended
        if cleaned:
            message += f"; removed the stale {' and '.join(cleaned)}"
        return Outcome(svc.name, Exit.OK, message + "".join(f"; {k}" for k in kept))
    assert obs.record is not None and obs.pid is not None
    record = obs.record
    t0 = time.monotonic()
    main = Handle(record.pid, record.starttime)
    if not main.valid:
        main.close()
        kept = []
        ended = tracked.finish(svc, dirs, record)
        cleaned = clean_leftovers(svc, dirs, obs.now(DEAD), kept)
        return Outcome(
            svc.name,
            Exit.OK,
            f"not running (process {record.pid} exited just now){ended}"
            + ("; removed the stale " + " and ".join(cleaned) if cleaned else "")
            + "".join(f"; {k}" for k in kept),
        )
    cgroup = tracked.v2_of(svc, dirs, record) if svc.kill_mode == "group" else ""
    group = record.pgid if svc.kill_mode == "group" and not cgroup else 0
    if group and obs.info is not None and obs.info.pgid != group:
        group = 0  # it left the group it started in: signal only the main process
    if group:
        _note_seen(svc, dirs, record)
    if cgroup:  # all of its cgroup: nothing in it can be another's (docs/security.md R-CG-1)
        handles = [main] + terminate_cgroup_handles(cgroup, {main.pid})
    else:
        handles = [main] + group_handles(group, main.pid, held_by=[main], fresh_after=t0)
    how, elapsed = terminate(svc, handles, group, main.pid, t0, progress=progress, cgroup=cgroup)
    said = tracked.finish(svc, dirs, record) + _clean_after_stop(svc, dirs, obs, how)
    if how.startswith("killed"):
        return Outcome(svc.name, Exit.OK, how + said, record.pid, elapsed)
    message = f"stopped {how} ({elapsed:.2f} s){said}"
    return Outcome(svc.name, Exit.OK, message, record.pid, elapsed)


def _note_seen(svc: Service, dirs: Dirs, record: Record) -> None:
    """Record that servicectl saw the service alive now (a start that finds it running, a stop
    before it signals the group), so that what a crash or an interrupted stop leaves of its
    group later can be proven the service's (identity.group_remnants). Only for a session the
    service itself made (servicectl started it, or it leads its session), and only with
    kill_mode group; a run directory that cannot be written changes nothing."""
    if record.phase == UNRECORDED or not (record.seen > 0 or record.sid == record.pid):
        return
    if record.kill_mode != "group" or svc.kill_mode != "group":
        return
    seen = seen_alive(record.pid, record.starttime, record.sid)
    if seen:
        try:
            write_record(dirs.run, svc.name, record._replace(seen=seen))
        except OSError:
            pass


def _stop_remnants(
    svc: Service, dirs: Dirs, obs: Observation, progress: Progress = silent
) -> Outcome:
    """Stop what is left of the service's process group (or cgroup) after its main process
    exited."""
    if obs.record is None:  # in its cgroup, with no record at all
        return tracked.stop_unrecorded(svc, dirs, obs.remnants, progress)
    t0 = time.monotonic()
    handles = []
    for info in obs.remnants:
        h = Handle(info.pid, info.starttime)
        if h.valid:
            handles.append(h)
        else:
            h.close()
    cgroup = tracked.v2_of(svc, dirs, obs.record)
    group = 0 if cgroup else obs.record.pgid
    how, elapsed = terminate(
        svc, handles, group, obs.record.pid, t0, progress=progress, cgroup=cgroup
    )
    said = tracked.finish(svc, dirs, obs.record)
    said += _clean_after_stop(svc, dirs, obs.now(STOPPED), how)
    n = len(obs.remnants)
    where = "cgroup" if cgroup else "process group"
    what = f"{n} leftover process{'es' if n > 1 else ''} of its {where}"
    main = f"its main process {obs.record.pid} had already exited"
    if how.startswith("killed"):
        message = f"{what} {how} ({main})"
    else:
        message = f"stopped {what} {how} ({elapsed:.2f} s; {main})"
    return Outcome(svc.name, Exit.OK, message + said, obs.record.pid, elapsed)


def _clean_after_stop(svc: Service, dirs: Dirs, obs: Observation, how: str) -> str:
    """Remove the stopped service's PID file and record; what was left alone, to be said."""
    kept: list[str] = []
    try:
        clean_leftovers(svc, dirs, obs.now(STOPPED), kept)
        return "".join(f"; {k}" for k in kept)
    except ServicectlError as exc:
        done = how if how.startswith("killed") else f"stopped {how}"
        raise ServicectlError(
            exc.message.replace(f"{svc.name}: ", f"{svc.name}: {done}, but ", 1),
            exit_code=exc.exit_code,
        ) from None


# ---------------------------------------------------------------------------------------------
# Restart, reload


def restart(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    """Stop if running, then start, all under one lock."""
    if svc.type == "oneshot":
        return oneshot.restart(svc, dirs, progress)
    t0 = time.monotonic()
    progress(svc.name, "waiting for its lock", None)
    with locked(svc, dirs):
        try:
            preflight(svc)
            prepare(svc, "")  # directories, config test: before anything is stopped
        except ServicectlError as exc:
            obs = inspect(svc, dirs)
            if obs.running:
                exc.message += f"; not restarted: it is still running (pid {obs.pid})"
            raise
        before = inspect(svc, dirs)
        _refuse_if_taken(svc, dirs, before)
        with client.holding(svc, dirs):
            stopped = _stop_locked(svc, dirs, before, progress)
        obs = inspect(svc, dirs)
        if obs.leftovers:
            clean_leftovers(svc, dirs, obs)
        try:
            with failed.noted(svc, dirs):
                pid = _start_locked(svc, dirs, progress, said=[])
        except ServicectlError as exc:
            if before.running:
                audit.failed(svc.name, f"{exc.message} (restart; it was stopped)")
            raise
    if before.running:
        message = f"restarted (was pid {stopped.pid}, now pid {pid})"
    elif before.remnants:
        message = f"started (pid {pid}); it was not running, and first {stopped.message}"
    else:
        message = f"started (pid {pid}; it was not running)"
    outcome = Outcome(svc.name, Exit.OK, message, pid, time.monotonic() - t0)
    audit.told(outcome)
    return outcome


def preflight(svc: Service) -> None:
    """What start checks before spawning (user, environment file, program, working directory),
    so that a restart that could not start again does not stop the running instance first."""
    account = resolve_account(svc)
    env = build_environment(svc, account)
    resolve_program(expanded(svc, env), env)
    if not svc.working_directory.is_dir():
        raise ServicectlError(
            f"{svc.name}: working directory {svc.working_directory} does not exist "
            f"(create it, or fix working_directory: in {svc.file})"
        )


def try_restart(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    """Restart only if running."""
    if svc.type == "oneshot":
        return oneshot.try_restart(svc, dirs, progress)
    with locked(svc, dirs):
        obs = inspect(svc, dirs)
    if not obs.running:
        pending = supervised.respawn_pending(obs.record)
        return Outcome(svc.name, Exit.OK, f"not running{pending}; not started (try-restart)")
    return restart(svc, dirs, progress)


def reload(svc: Service, dirs: Dirs) -> Outcome:
    """Send reload_signal or run reload_command (reloading.py); a oneshot has nothing to."""
    return oneshot.reload(svc, dirs) if svc.type == "oneshot" else _reload(svc, dirs)


def force_reload(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    """Reload if the service supports it, else restart it (only if it runs). A reload by signal
    is supported only if the process handles that signal (it would die of it otherwise)."""
    if not svc.reload:
        return try_restart(svc, dirs, progress)
    try:
        return reload(svc, dirs)
    except SignalNotHandled as exc:
        outcome = try_restart(svc, dirs, progress)
        if outcome.pid is not None:
            outcome.message += (
                f"; process {exc.pid} does not handle SIG{signal_name(exc.sig)}, so it was "
                f"restarted instead of reloaded"
            )
        return outcome
