"""Reloading one service: its reload signal (and, for a notify service, waiting for RELOADING=1
then READY=1), or its reload_command.
"""

from __future__ import annotations

import select
import shlex
import time

from servicectl.definitions.expansion import expand_command
from servicectl.definitions.schema import Service, signal_name
from servicectl.errors import Exit, ServicectlError
from servicectl.service import audit, supervised
from servicectl.service.action import would_kill
from servicectl.service.logtail import log_tail
from servicectl.service.observe import inspect
from servicectl.service.outcome import Outcome
from servicectl.service.preflight import prepare
from servicectl.states import LAUNCHING
from servicectl.system import proc
from servicectl.system.lock import locked
from servicectl.system.proc import Handle
from servicectl.system.record import Record, write_record
from servicectl.system.runner import run
from servicectl.system.spawn import build_environment, resolve_account

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.paths import Dirs
    from servicectl.system.ready import NotifySocket

RELOADING_WINDOW = 1.0  # how long a notify service has to say RELOADING=1 after the signal


class SignalNotHandled(ServicectlError):
    """The service's process does not catch its reload signal, which would kill it (exit 1):
    reload refuses, force-reload restarts instead."""

    def __init__(self, message: str, pid: int, sig: int) -> None:
        super().__init__(message, exit_code=Exit.FAILURE)
        self.pid = pid
        self.sig = sig


def reload(svc: Service, dirs: Dirs) -> Outcome:
    """Send reload_signal or run reload_command. 3 if reload is false, 7 if not running.
    A reload that was done, or tried and failed, is told to the system log."""
    outcome = _reload(svc, dirs)
    if outcome.code == Exit.OK:
        audit.told(outcome)
    elif outcome.code not in (Exit.UNIMPLEMENTED, Exit.NOT_RUNNING):
        audit.failed(svc.name, outcome.message)
    return outcome


def _reload(svc: Service, dirs: Dirs) -> Outcome:
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
            why = f"not running{supervised.respawn_pending(obs.record)}; nothing to reload"
            return Outcome(svc.name, Exit.NOT_RUNNING, why, ok_line=False)
        pid = obs.record.pid
        prepare(svc, f"not reloaded: pid {pid} runs on as it was", directories=False)
        if svc.reload_command:
            return _reload_command(svc, pid)
        sig = svc.reload_signal
        if would_kill(pid, sig):
            raise SignalNotHandled(
                f"{svc.name}: not reloaded: process {pid} does not handle "
                f"SIG{signal_name(sig)}, which would kill it; use restart (or set "
                f"reload_signal/reload_command in {svc.file})",
                pid=pid,
                sig=sig,
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


def _open_notify(record: Record) -> NotifySocket | None:
    """Listen again on a notify service's socket (None if it is not one, or it is busy)."""
    from servicectl.system.ready import NotifySocket

    if not record.notify_socket:
        return None
    try:
        # R-NOTIFY-1: root's service may have dropped privileges: open, senders checked
        return NotifySocket(record.notify_socket, uid=record.uid or None)
    except OSError:
        return None


def _await_reload(
    svc: Service, dirs: Dirs, record: Record, handle: Handle, notify: NotifySocket
) -> Outcome | None:
    """After a reload signal: if the service says RELOADING=1 (within a second), wait for its
    READY=1 up to start_timeout. None when it is done; an Outcome when the reload failed."""
    from servicectl.system.ready import Notes

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
    """Run reload_command as the service's user with MAINPID set, as a config test runs (its
    own session, killed with what it left at start_timeout, the end of its output kept)."""
    assert svc.reload_command is not None
    account = resolve_account(svc)
    env = build_environment(svc, account)
    env["MAINPID"] = str(pid)
    argv = expand_command(svc, "reload_command", svc.reload_command, env)
    ran = run(svc, argv, env, account, svc.start_timeout)
    if ran.code is None:
        return Outcome(
            svc.name,
            Exit.FAILURE,
            f"reload_command did not finish within {svc.start_timeout:g} s (it was killed)",
            pid,
            detail=ran.detail(),
            ok_line=False,
        )
    if ran.code != 0:
        return Outcome(
            svc.name,
            Exit.FAILURE,
            f"reload failed: {shlex.join(svc.reload_command)} {proc.describe_exit(ran.code)}",
            pid,
            detail=ran.detail(),
            ok_line=False,
        )
    return Outcome(svc.name, Exit.OK, f"reloaded ({shlex.join(svc.reload_command)})", pid)
