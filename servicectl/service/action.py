"""A service's extra verbs (``actions``), like an init.d script's ``rotate`` or ``upgrade``:
what ``servicectl action NAME VERB`` does, by the command itself or, for a supervised service,
by its supervisor.

A signal action is sent to the running main process under the service's lock, through the
same identity check as stop (a pidfd on the recorded process); not running: exit 7. A command
action runs as the service's user with its environment plus MAINPID (when it runs), like
reload_command; a daemon that replaced itself meanwhile (nginx's binary upgrade) is recorded
as its new process. A verb the service does not have: exit 2, with the verbs it has.
"""

from __future__ import annotations

from _signal import SIGCHLD, SIGCONT, SIGURG, SIGWINCH  # not signal: its enums import enum

from servicectl.errors import Exit
from servicectl.service.outcome import Outcome
from servicectl.system.lock import locked

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Action, Service
    from servicectl.paths import Dirs

HARMLESS = (SIGCONT, SIGCHLD, SIGURG, SIGWINCH)


def would_kill(pid: int, sig: int) -> bool:
    """Whether ``sig`` would end the process: it neither catches, ignores nor blocks it, and
    its default action is not harmless (an action's signal, a reload's: neither is sent)."""
    from servicectl.system import proc

    return proc.signal_disposition(pid, sig) == "default" and sig not in HARMLESS


def verbs_of(svc: Service) -> list[str]:
    return [verb for verb, _ in svc.actions]


def run(svc: Service, dirs: Dirs, verb: str) -> Outcome:
    """Do ``verb`` to ``svc``; an Outcome (exit 2 for a verb it does not have)."""
    action = dict(svc.actions).get(verb)
    if action is None:
        have = ", ".join(verbs_of(svc))
        known = f"its actions: {have}" if have else "it has no actions"
        return Outcome(
            svc.name,
            Exit.USAGE,
            f"no action {verb!r} ({known}; see actions: in {svc.file})",
            ok_line=False,
        )
    from servicectl.service import audit

    with locked(svc, dirs):
        if action.stops:  # a verb that stops it (graceful-stop, abort): it ends stopped
            outcome = _stopping(svc, dirs, verb, action)
        else:
            outcome = (_send if action.signal else _command)(svc, dirs, verb, action)
    if outcome.code == Exit.OK:
        audit.told(outcome)
    elif outcome.code != Exit.NOT_RUNNING:
        audit.failed(svc.name, outcome.message)
    return outcome


def _send(svc: Service, dirs: Dirs, verb: str, action: Action) -> Outcome:
    from servicectl.service import supervised
    from servicectl.service.observe import inspect
    from servicectl.states import LAUNCHING
    from servicectl.system.proc import Handle

    obs = inspect(svc, dirs)
    sig = action.describe()
    if not obs.running or obs.record is None or obs.record.phase == LAUNCHING:
        pending = supervised.respawn_pending(obs.record)
        return Outcome(
            svc.name,
            Exit.NOT_RUNNING,
            f"not running{pending}; {verb} ({sig}) not sent",
            ok_line=False,
        )
    pid = obs.record.pid
    if would_kill(pid, action.signal):
        return Outcome(
            svc.name,
            Exit.FAILURE,
            f"{verb}: not sent: process {pid} does not handle {sig}, which would kill it",
            pid,
            ok_line=False,
        )
    with Handle(pid, obs.record.starttime) as h:
        if not h.send(action.signal):
            return Outcome(
                svc.name, Exit.NOT_RUNNING, f"not running; {verb} ({sig}) not sent", ok_line=False
            )
    return Outcome(svc.name, Exit.OK, f"{verb}: {sig} sent to pid {pid}", pid)


def _command(svc: Service, dirs: Dirs, verb: str, action: Action) -> Outcome:
    from servicectl.definitions.expansion import expand_command
    from servicectl.service.observe import inspect
    from servicectl.system import runner
    from servicectl.system.spawn import build_environment, resolve_account

    obs = inspect(svc, dirs)
    pid = obs.pid if obs.running and obs.record is not None else None
    account = resolve_account(svc)
    env = build_environment(svc, account)
    if pid is not None:
        env["MAINPID"] = str(pid)
    argv = expand_command(svc, f"actions.{verb}.command", action.command, env)
    try:
        ran = runner.run(svc, argv, env, account, svc.start_timeout)
    finally:
        moved = _follow(svc, dirs, pid) if pid is not None else ""
    shown = " ".join(argv)
    if ran.code != 0:
        how = (
            f"did not finish within start_timeout {svc.start_timeout:g} s (it was killed)"
            if ran.code is None
            else f"exited {ran.code}"
        )
        return Outcome(
            svc.name,
            Exit.FAILURE,
            f"{verb} failed: {shown} {how}{moved}",
            pid,
            detail=ran.detail(),
            ok_line=False,
        )
    return Outcome(svc.name, Exit.OK, f"{verb}: done ({shown}){moved}", pid, detail=ran.detail())


def _stopping(svc: Service, dirs: Dirs, verb: str, action: Action) -> Outcome:
    """A verb that stops the service (``stops: true``: graceful-stop, abort): do it, wait for
    the main process to end (at most the stop schedule's time), then remove its PID file and
    record, as stop does: it is stopped, not dead."""
    import time

    from servicectl.service.observe import clean_leftovers, inspect
    from servicectl.service.terminate import group_handles
    from servicectl.system.proc import Handle, wait_all_exit

    obs = inspect(svc, dirs)
    record = obs.record if obs.running else None
    handles = []
    if record is not None:  # its main process and its own group (workers that finish late)
        handles.append(Handle(record.pid, record.starttime))
        if svc.kill_mode == "group":
            handles += group_handles(record.pgid, record.pid, held_by=handles)
    try:
        outcome = (_send if action.signal else _command)(svc, dirs, verb, action)
        if not handles or outcome.code != Exit.OK:
            return outcome
        budget = sum(seconds for _, seconds in svc.stop_steps)
        t0 = time.monotonic()
        if wait_all_exit(handles, t0 + budget):
            outcome.code = Exit.FAILURE
            outcome.ok_line = False
            outcome.message += f"; it still runs after {budget:g} s (stop ends it)"
            return outcome
    finally:
        for h in handles:
            h.close()
    after = inspect(svc, dirs)
    kept: list[str] = []
    if after.remnants:  # its group outlived it: stop ends them (and cleans up then)
        n = len(after.remnants)
        kept.append(f"{n} process{'es' if n > 1 else ''} of its group still run (stop ends them)")
    elif not after.running:
        clean_leftovers(svc, dirs, after, kept)
    outcome.message = outcome.message.split("; it is no longer running")[0]
    outcome.message += f"; it has stopped ({time.monotonic() - t0:.2f} s)"
    outcome.message += "".join(f"; {k}" for k in kept)
    return outcome


def _follow(svc: Service, dirs: Dirs, before: int) -> str:
    """After a command action: a daemon that replaced itself (a binary upgrade) is recorded
    as its new process, if the identity rules accept it; a note for the output."""
    from servicectl.service.observe import inspect
    from servicectl.system.record import write_record

    obs = inspect(svc, dirs)
    if not obs.running or obs.record is None or obs.record.pid == before:
        return "" if obs.running else f"; it is no longer running ({obs.state})"
    try:
        write_record(dirs.run, svc.name, obs.record)
    except OSError as exc:
        return f"; it now runs as pid {obs.record.pid} (not recorded: {exc.strerror})"
    return f"; it now runs as pid {obs.record.pid}"
