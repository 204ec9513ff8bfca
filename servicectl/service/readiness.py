"""After the spawn: the notify socket a service reports on, the wait until it is ready (or
start_grace has passed), and the confirmation that records it as running. lifecycle.start
and a start seen through after its supervisor died share them.
"""

from __future__ import annotations

import time

from servicectl.service import launch
from servicectl.service.identity import seen_alive
from servicectl.service.logtail import log_tail
from servicectl.service.outcome import StartFailed
from servicectl.service.waits import Progress, silent
from servicectl.states import PHASE_RUNNING
from servicectl.system import proc
from servicectl.system.spawn import (
    CHDIR_EXIT,
    Account,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.system.proc import Handle
    from servicectl.system.ready import Notes, NotifySocket, Probe, WaitResult
    from servicectl.system.record import Record


class NotOurs:
    """The process of a start this command took over: another process spawned it."""

    returncode = None

    def poll(self) -> None:
        return None


def reopen_notify(record: Record) -> NotifySocket | None:
    if not record.notify_socket:
        return None
    from servicectl.system.ready import NotifySocket

    try:
        return NotifySocket(record.notify_socket, uid=record.uid)
    except OSError:
        return None


def notify_socket(
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


def await_ready(
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


def confirm(svc: Service, dirs: Dirs, record: Record, handle: Handle, result: WaitResult) -> int:
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


def start_clock() -> int:
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
