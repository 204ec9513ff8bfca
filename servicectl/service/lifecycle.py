"""The actions on one service: start, stop, restart, try-restart and force-reload, composed from
the parts (observe: which process is it; launch: get it running and recorded; terminate: the
stop schedule; readiness: ready and confirmed; reload: reload).

Each action holds the service's lock and returns an Outcome; failures raise ServicectlError.
"""

from __future__ import annotations

import os
import time
from _signal import SIGKILL  # the C module: signal's enums import enum

from servicectl.definitions.schema import KILL_WAIT, Service, signal_name
from servicectl.errors import Exit, Interrupted, ServicectlError
from servicectl.service import audit, failed, supervised, tracked
from servicectl.service.actor import COMMAND, Actor
from servicectl.service.identity import seen_alive
from servicectl.service.observe import clean_leftovers, inspect
from servicectl.service.outcome import Outcome, StartFailed
from servicectl.service.terminate import cgroup_handles as terminate_cgroup_handles
from servicectl.service.terminate import group_handles, terminate
from servicectl.service.waits import Progress, silent
from servicectl.states import DEAD, LAUNCHING, PHASE_RUNNING, PHASE_STARTING, STOPPED, UNRECORDED
from servicectl.system import proc
from servicectl.system.lock import locked
from servicectl.system.proc import Handle
from servicectl.system.record import Record, read_record, write_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

    from servicectl.paths import Dirs
    from servicectl.service.observation import Observation

# ---------------------------------------------------------------------------------------------
# Start


def start(svc: Service, dirs: Dirs, progress: Progress = silent, actor: Actor = COMMAND) -> Outcome:
    """Start ``svc`` (success if it already runs). The lock is held throughout. ``actor``:
    who starts it (servicectl's command, or the supervisor: servicectl/service/actor.py)."""
    from servicectl.service.preflight import prepare

    if svc.type == "oneshot":
        from servicectl.service import oneshot

        return oneshot.start(svc, dirs, progress)
    t0 = time.monotonic()
    progress(svc.name, "waiting for its lock", None)
    with locked(svc, dirs):
        obs = inspect(svc, dirs)
        if obs.record is not None and obs.record.phase == LAUNCHING:
            obs = _await_orphaned_launch(svc, dirs, obs.record, progress)
        if obs.running:
            return _already_running(svc, dirs, obs, actor)
        _refuse_if_taken(svc, dirs, obs)
        prepare(svc, "not started")  # directories, config test
        ended = _stop_remnants(svc, dirs, obs, actor=actor).message if obs.remnants else ""
        keep = actor.keep_record
        cleaned = clean_leftovers(svc, dirs, obs, None, keep) if obs.leftovers and not ended else []
        said: list[str] = []
        try:
            with failed.noted(svc, dirs):  # a failure is kept until the next start or stop
                pid = _start_locked(svc, dirs, progress, actor, said=said)
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


def _already_running(svc: Service, dirs: Dirs, obs: Observation, actor: Actor) -> Outcome:
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
    if obs.record is not None:
        note += actor.attach(svc, dirs, obs.record)
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
            launcher.send(SIGKILL)
            proc.wait_all_exit([launcher], time.monotonic() + KILL_WAIT, False)
    return inspect(svc, dirs)


def _start_locked(
    svc: Service,
    dirs: Dirs,
    progress: Progress = silent,
    actor: Actor = COMMAND,
    said: list[str] | None = None,
) -> int:
    """Spawn (or launch) and record, wait until ready, confirm; the PID. On a failure or an
    interruption, what was started is killed and no PID file or record of it is left (but
    the record of a supervisor's respawn: ``actor.keep_record``).

    The service's cgroups are made fresh first: what an earlier run left in them is ended, and
    said in ``said`` (a supervisor's respawn goes through here too)."""
    from servicectl.definitions.expansion import expanded
    from servicectl.service import launch
    from servicectl.service.readiness import await_ready, confirm, notify_socket, start_clock
    from servicectl.system.spawn import Gate, build_environment, resolve_account, resolve_program

    cgroups = tracked.plan(svc, dirs)  # a limit that cannot be applied: exit 6, before all
    account = resolve_account(svc)
    env = build_environment(svc, account)
    written, svc = svc, expanded(svc, env)  # $VAR in its commands
    program = resolve_program(svc, env)
    ended = tracked.open_cgroups(svc, cgroups)
    if ended and said is not None:
        said.append(ended)
    notify = notify_socket(svc, dirs, env, account)
    gate = Gate() if svc.type == "simple" else None
    fields = {**actor.fields(svc), **tracked.fields(cgroups)}
    since = start_clock()  # before the spawn: a ready file must be newer (R-READY-2)
    try:
        if gate is None:
            child, found, strays = launch.launch_forking(
                svc, dirs, account, env, program, progress, cgroups, fields, actor.keep_record
            )
        else:
            progress(svc.name, "spawning", None)
            child = launch.spawn_simple(svc, account, env, program, gate, cgroups)
            found, strays = None, []
        actor.spawned(child)
        try:
            handle, info = found or launch.identify(svc, child)
            address = notify.address if notify else None
            record = launch.record_start(
                svc, dirs, info, program, child, gate, address, fields, written
            )
            result = await_ready(svc, account, env, child, handle, record, notify, progress, since)
            return confirm(svc, dirs, record, handle, result)
        except BaseException as exc:
            launch.abort_start(svc, dirs, child, strays, actor.keep_record)
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


def finish_start(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    """A start whose supervisor died under it (the process it spawned runs, recorded but not
    confirmed): this command sees it through as a start would, within start_grace or
    start_timeout from now, and confirms it (the next supervisor adopts it), or kills it with
    a verified handle and removes its PID file and record."""
    from servicectl.definitions.expansion import expanded
    from servicectl.service import launch
    from servicectl.service.readiness import NotOurs, await_ready, confirm, reopen_notify
    from servicectl.system.spawn import build_environment, resolve_account

    t0 = time.monotonic()
    with locked(svc, dirs):
        obs = inspect(svc, dirs)
        record = obs.record
        if not obs.running or record is None:
            raise StartFailed(
                f"{svc.name}: failed to start: its supervisor died during the start, and the "
                f"service is not running"
            )
        if record.phase != PHASE_STARTING:
            return _already_running(svc, dirs, obs, COMMAND)
        account = resolve_account(svc)
        env = build_environment(svc, account)
        handle = Handle(record.pid, record.starttime)
        notify = reopen_notify(record)
        try:
            xsvc = expanded(svc, env)
            child: subprocess.Popen[bytes] = NotOurs()  # type: ignore[assignment]
            result = await_ready(xsvc, account, env, child, handle, record, notify, progress)
            pid = confirm(svc, dirs, record, handle, result)
        except BaseException:
            launch.kill_quietly(handle, record.pgid)
            launch.remove_start_files(svc, dirs)
            raise
        finally:
            if notify is not None:
                notify.close()
    message = f"started (pid {pid}); its supervisor died during the start; unsupervised"
    outcome = Outcome(svc.name, Exit.OK, message, pid, time.monotonic() - t0)
    audit.told(outcome)
    return outcome


# ---------------------------------------------------------------------------------------------
# Stop


def stop(svc: Service, dirs: Dirs, progress: Progress = silent, actor: Actor = COMMAND) -> Outcome:
    """Stop ``svc``: stop signal (then CONT), wait up to stop_timeout, KILL, confirm, clean up.

    Success if it was not running; a PID file that names another process is reported and the
    process is left alone.
    """
    if svc.type == "oneshot":
        from servicectl.service import oneshot

        return oneshot.stop(svc, dirs, progress)
    progress(svc.name, "waiting for its lock", None)
    with locked(svc, dirs):
        outcome = _stop_locked(svc, dirs, progress=progress, actor=actor)
        if failed.forget(svc, dirs) and outcome.pid is None:
            outcome.message += "; its failed state is cleared"
    if outcome.pid is not None:
        audit.told(outcome)
    return outcome


def stop_locked(svc: Service, dirs: Dirs, actor: Actor = COMMAND) -> Outcome:
    """Stop ``svc`` as stop does, the caller holding its lock (a supervisor's health restart:
    the stop and the record of what comes next under one lock)."""
    return _stop_locked(svc, dirs, actor=actor)


def _stop_locked(
    svc: Service,
    dirs: Dirs,
    obs: Observation | None = None,
    progress: Progress = silent,
    actor: Actor = COMMAND,
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
    how, elapsed = terminate(
        svc,
        handles,
        group,
        main.pid,
        t0,
        progress=progress,
        cgroup=cgroup,
        reaped=actor.reaped,
    )
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
    svc: Service,
    dirs: Dirs,
    obs: Observation,
    progress: Progress = silent,
    actor: Actor = COMMAND,
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
    said += _clean_after_stop(svc, dirs, obs.now(STOPPED), how, actor.keep_record)
    n = len(obs.remnants)
    where = "cgroup" if cgroup else "process group"
    what = f"{n} leftover process{'es' if n > 1 else ''} of its {where}"
    main = f"its main process {obs.record.pid} had already exited"
    if how.startswith("killed"):
        message = f"{what} {how} ({main})"
    else:
        message = f"stopped {what} {how} ({elapsed:.2f} s; {main})"
    return Outcome(svc.name, Exit.OK, message + said, obs.record.pid, elapsed)


def _clean_after_stop(
    svc: Service, dirs: Dirs, obs: Observation, how: str, keep_record: bool = False
) -> str:
    """Remove the stopped service's PID file and record; what was left alone, to be said."""
    kept: list[str] = []
    try:
        clean_leftovers(svc, dirs, obs.now(STOPPED), kept, keep_record)
        return "".join(f"; {k}" for k in kept)
    except ServicectlError as exc:
        done = how if how.startswith("killed") else f"stopped {how}"
        raise ServicectlError(
            exc.message.replace(f"{svc.name}: ", f"{svc.name}: {done}, but ", 1),
            exit_code=exc.exit_code,
        ) from None


# ---------------------------------------------------------------------------------------------
# Restart, reload


def restart(
    svc: Service, dirs: Dirs, progress: Progress = silent, actor: Actor = COMMAND
) -> Outcome:
    """Stop if running, then start, all under one lock."""
    from servicectl.service.preflight import prepare

    if svc.type == "oneshot":
        from servicectl.service import oneshot

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
        stopped = _stop_locked(svc, dirs, before, progress, actor)
        obs = inspect(svc, dirs)
        if obs.leftovers:
            clean_leftovers(svc, dirs, obs)
        try:
            with failed.noted(svc, dirs):
                pid = _start_locked(svc, dirs, progress, actor, said=[])
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
    from servicectl.definitions.expansion import expanded
    from servicectl.system.spawn import build_environment, resolve_account, resolve_program

    account = resolve_account(svc)
    env = build_environment(svc, account)
    resolve_program(expanded(svc, env), env)
    if not os.path.isdir(svc.working_directory):
        raise ServicectlError(
            f"{svc.name}: working directory {svc.working_directory} does not exist "
            f"(create it, or fix working_directory: in {svc.file})"
        )


def try_restart(
    svc: Service, dirs: Dirs, progress: Progress = silent, actor: Actor = COMMAND
) -> Outcome:
    """Restart only if running."""
    if svc.type == "oneshot":
        from servicectl.service import oneshot

        return oneshot.try_restart(svc, dirs, progress)
    with locked(svc, dirs):
        obs = inspect(svc, dirs)
    if not obs.running:
        pending = supervised.respawn_pending(obs.record)
        return Outcome(svc.name, Exit.OK, f"not running{pending}; not started (try-restart)")
    return restart(svc, dirs, progress, actor)


def reload(svc: Service, dirs: Dirs) -> Outcome:
    """Send reload_signal or run reload_command (reload.py); a oneshot has nothing to."""
    from servicectl.service.reload import reload as _reload

    if svc.type == "oneshot":
        from servicectl.service import oneshot

        return oneshot.reload(svc, dirs)
    return _reload(svc, dirs)


def force_reload(
    svc: Service, dirs: Dirs, progress: Progress = silent, actor: Actor = COMMAND
) -> Outcome:
    """Reload if the service supports it, else restart it (only if it runs). A reload by signal
    is supported only if the process handles that signal (it would die of it otherwise)."""
    from servicectl.service.reload import SignalNotHandled

    if not svc.reload:
        return try_restart(svc, dirs, progress, actor)
    try:
        return reload(svc, dirs)
    except SignalNotHandled as exc:
        outcome = try_restart(svc, dirs, progress, actor)
        if outcome.pid is not None:
            outcome.message += (
                f"; process {exc.pid} does not handle SIG{signal_name(exc.sig)}, so it was "
                f"restarted instead of reloaded"
            )
        return outcome
