"""The actions on a ``type: oneshot`` service (a task run to its end: sysctl at boot, a clock
saved at shutdown), called by lifecycle.py for such a service:

- ``start`` makes its directories, runs its config test, then runs ``command`` detached as a
  service runs (user, environment, limits, output to its log) and waits for it to end, at most
  ``start_timeout`` seconds (then it is killed, with what it started). Exit 0 makes it
  ``exited``; anything else ``failed`` (exit 1, with the status and the log's last lines). A
  oneshot already ``exited`` is not run again (start is idempotent); ``restart`` runs it again.
- ``stop`` runs ``stop_command`` (within ``stop_timeout``), if any; it is ``stopped`` then.
- ``reload`` is not supported (exit 3); ``force-reload`` runs it again, as restart.

The run record (oneshot_state.py) is written before the command runs, so that status shows a
run under way and an interrupted one is found ``failed``.
"""

from __future__ import annotations

import time

from servicectl.errors import Exit, Interrupted, ServicectlError
from servicectl.service import audit, launch, oneshot_state
from servicectl.service.logtail import log_tail
from servicectl.service.oneshot_state import RUNNING, Run
from servicectl.service.outcome import Outcome, StartFailed
from servicectl.states import EXITED, FAILED, STARTING
from servicectl.system import proc
from servicectl.system.lock import locked

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.service.waits import Progress


def start(svc: Service, dirs: Dirs, progress: Progress | None = None) -> Outcome:
    """Run the oneshot unless its last run succeeded; the lock is held throughout."""
    with locked(svc, dirs):
        obs, run = oneshot_state.observe(svc, dirs)
        if obs.taken_by is not None:
            raise ServicectlError(
                f"{svc.name}: not started: {dirs.run} already has a service of this name, "
                f"started from {obs.taken_by}"
            )
        if obs.state == EXITED and run is not None:
            return Outcome(
                svc.name, Exit.OK, f"already exited ({_ran(run)}; restart runs it again)"
            )
        return _start_locked(svc, dirs, progress, "ran")


def restart(svc: Service, dirs: Dirs, progress: Progress | None = None) -> Outcome:
    """stop_command (if it had run), then run it again; the config test comes first."""
    from servicectl.service.preflight import prepare

    with locked(svc, dirs):
        prepare(svc, "not run again")
        obs, _ = oneshot_state.observe(svc, dirs)
        note = ""
        if obs.state == EXITED and svc.stop_command:
            note = f"; first {_stop_locked(svc, dirs).message}"
        outcome = _start_locked(svc, dirs, progress, "ran again")
    outcome.message += note
    return outcome


def try_restart(svc: Service, dirs: Dirs, progress: Progress | None = None) -> Outcome:
    obs, _ = oneshot_state.observe(svc, dirs)
    if obs.state not in (EXITED, STARTING):
        return Outcome(svc.name, Exit.OK, f"{obs.state}; not run (try-restart)")
    return restart(svc, dirs, progress)


def reload(svc: Service, dirs: Dirs) -> Outcome:
    return Outcome(
        svc.name,
        Exit.UNIMPLEMENTED,
        "cannot be reloaded: a type: oneshot service has no process; restart runs it again",
        ok_line=False,
    )


def stop(svc: Service, dirs: Dirs, progress: Progress | None = None) -> Outcome:
    """Run stop_command (if the oneshot ran), then forget the run: stopped."""
    with locked(svc, dirs):
        obs, run = oneshot_state.observe(svc, dirs)
        if run is None:
            oneshot_state.remove(dirs.run, svc.name)  # one of another boot
            return Outcome(svc.name, Exit.OK, "not running (it has not run)")
        if obs.state == FAILED:
            oneshot_state.remove(dirs.run, svc.name)
            return Outcome(svc.name, Exit.OK, "stopped (its last run had failed)")
        outcome = _stop_locked(svc, dirs)
    if outcome.code == Exit.OK:
        audit.told(outcome)
    return outcome


def _stop_locked(svc: Service, dirs: Dirs) -> Outcome:
    if not svc.stop_command:
        oneshot_state.remove(dirs.run, svc.name)
        return Outcome(svc.name, Exit.OK, "stopped (it has no stop_command)")
    t0 = time.monotonic()
    code, detail = _execute(svc, svc.stop_command, svc.stop_timeout, None)
    took = time.monotonic() - t0
    shown = " ".join(svc.stop_command)
    if code != 0:
        why = f"stop_command {shown} {_how(code, svc.stop_timeout)}"
        oneshot_state.write(dirs.run, svc.name, _ended(svc, FAILED, code, why, took))
        return Outcome(svc.name, Exit.FAILURE, f"{why}; it is failed", detail=detail, ok_line=False)
    oneshot_state.remove(dirs.run, svc.name)
    return Outcome(svc.name, Exit.OK, f"stopped (ran {shown}, {took:.2f} s)", elapsed=took)


def _start_locked(svc: Service, dirs: Dirs, progress: Progress | None, did: str) -> Outcome:
    from servicectl.service.preflight import prepare

    t0 = time.monotonic()
    prepare(svc, "not run")  # directories, config test
    if progress is not None:
        progress(svc.name, "running its command", svc.start_timeout)
    try:
        code, detail = _execute(svc, svc.command, svc.start_timeout, dirs)
    except ServicectlError as exc:
        why = exc.message.removeprefix(f"{svc.name}: ")
        oneshot_state.write(dirs.run, svc.name, _ended(svc, FAILED, None, why, 0.0))
        audit.failed(svc.name, exc.message)
        raise
    took = time.monotonic() - t0
    if code != 0:
        why = f"its command {_how(code, svc.start_timeout)}"
        oneshot_state.write(dirs.run, svc.name, _ended(svc, FAILED, code, why, took))
        failure = StartFailed(f"{svc.name}: failed: {why}", detail=detail or log_tail(svc))
        audit.failed(svc.name, failure.message)
        raise failure
    oneshot_state.write(dirs.run, svc.name, _ended(svc, EXITED, 0, "", took))
    outcome = Outcome(svc.name, Exit.OK, f"{did} to completion (exit 0, {took:.2f} s)", None, took)
    audit.told(outcome)
    return outcome


def _execute(
    svc: Service, argv: tuple[str, ...], timeout: float, dirs: Dirs | None
) -> tuple[int | None, str]:
    """Run ``argv`` as the service runs its command, and wait for it (pidfd) at most
    ``timeout`` s: its exit code (negative: a signal; None: it was killed at the timeout) and
    the log's last lines if it failed. With ``dirs``, its run is recorded before it runs."""
    from servicectl.definitions.expansion import expand_command
    from servicectl.system.spawn import Gate, build_environment, resolve_account, resolve_program

    account = resolve_account(svc)
    env = build_environment(svc, account)
    env.pop("NOTIFY_SOCKET", None)
    key = "command" if argv == svc.command else "stop_command"
    words = tuple(expand_command(svc, key, argv, env))
    program = resolve_program(svc, env, words)
    gate = Gate()
    try:
        child = launch.spawn_simple(svc._replace(command=words), account, env, program, gate)
        info = proc.read_proc(child.pid)
        handle = proc.Handle(child.pid, info.starttime if info else 0)
        try:
            if dirs is not None and info is not None:
                run = Run(RUNNING, time.time(), proc.boot_id(), str(svc.file), child.pid)
                oneshot_state.write(dirs.run, svc.name, run._replace(starttime=info.starttime))
            launch.open_gate(svc, program, gate, child)
            code = _wait(child, handle, timeout)
        except BaseException as exc:
            launch.kill_quietly(handle, child.pid)
            child.wait()
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                raise Interrupted(f"{svc.name}: interrupted; its command was stopped") from None
            raise
        finally:
            handle.close()
    finally:
        gate.close()
    return code, "" if code == 0 else log_tail(svc)


def _wait(child: subprocess.Popen[bytes], handle: proc.Handle, timeout: float) -> int | None:
    """The command's exit code; None if it ran past ``timeout`` (it and what it started are
    killed then)."""
    if proc.wait_all_exit([handle], time.monotonic() + timeout):
        launch.kill_quietly(handle, child.pid)
        child.wait()
        return None
    return child.wait()


def _how(code: int | None, timeout: float) -> str:
    if code is None:
        return f"did not end within {timeout:g} s (it was killed)"
    return proc.describe_exit(code)


def _ended(svc: Service, result: str, code: int | None, why: str, took: float) -> Run:
    signal = None
    if code is not None and code < 0:
        signal = proc.describe_exit(code).rsplit(" ", 1)[-1]
        code = None
    return Run(result, time.time(), proc.boot_id(), str(svc.file), 0, 0, code, signal, why, took)


def _ran(run: Run) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.at))
    return f"it ran at {when}, exit 0"
