"""The supervisor process: its start, and its dealings with the system (its lock, its socket,
its own log, reaping). Started as ``python -S -m servicectl.supervisor.daemon RUN_DIR FD
[--foreground] [--handover FDS]``.

It takes the run directory's supervisor lock (held for life: one supervisor per run
directory), listens on the control socket, becomes a child subreaper (a forking service's
daemon re-parents to it), adopts what a dead supervisor left, says "ready" on FD, and runs
the loop. With ``--foreground`` (``servicectl supervise``, for an init system that restarts
it) it waits for the lock if another supervisor holds it (and takes over at once when that one
dies), and never leaves for being idle. With ``--handover`` it is the new code a supervisor
executed in its own process: it takes the services, the listening socket and the lock it was
handed (services/docs: docs/supervision.md, "Upgrades").
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time

from servicectl.supervisor import protocol
from servicectl.system import proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath


def _listening(run: StrPath) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    address, fd = protocol.socket_address(run)
    try:
        sock.connect(address)
        return True
    except OSError:
        return False
    finally:
        sock.close()
        if fd is not None:
            os.close(fd)


def claim(run: StrPath, wait: bool = False) -> int | str:
    """The run directory's supervisor lock, held for life; or "running" if another supervisor
    listens (a start raced this one), or why neither. ``wait``: for as long as another holds
    it (a foreground supervisor takes over when it leaves or dies)."""
    path = os.path.join(run, protocol.LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    if wait:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("another supervisor runs for this run directory: waiting to take over")
            notify("READY=1\nSTATUS=waiting for the running supervisor to leave, to take over")
            fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    deadline = time.monotonic() + 5
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if _listening(run):
            os.close(fd)
            return "running"
        if time.monotonic() > deadline:
            os.close(fd)
            return f"another supervisor holds {path} but does not listen"
        time.sleep(0.01)


def listen(run: StrPath) -> socket.socket:
    """The control socket, mode 0600 (the lock is held: a socket file left there is stale)."""
    path = os.path.join(run, protocol.SOCKET_NAME)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    address, fd = protocol.socket_address(run)
    old = os.umask(0o177)
    try:
        sock.bind(address)
    finally:
        os.umask(old)
        if fd is not None:
            os.close(fd)
    os.chmod(path, 0o600)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def handed(spec: str) -> tuple[int, socket.socket, int]:
    """The descriptors a hand-over passed: the state, the listening socket, the lock."""
    fds = [int(x) for x in spec.split(",")]
    state, listener = fds[0], socket.socket(fileno=fds[1])
    lock = fds[2] if len(fds) > 2 else -1
    for fd in (listener.fileno(), lock):
        if fd >= 0:
            os.set_inheritable(fd, False)
    listener.setblocking(False)
    return state, listener, lock


def say_ready(ready: str, text: str) -> None:
    if ready != "-":
        fd = int(ready)
        os.write(fd, text.encode() + b"\n")
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Helpers


def say(text: str) -> None:
    """A line in the supervisor's own log (its stderr)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        sys.stderr.write(f"{stamp} servicectl-supervisor[{os.getpid()}]: {text}\n")
        sys.stderr.flush()
    except OSError:
        pass


def drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def reap(pid: int) -> tuple[int | None, bool]:
    """The exit status of ``pid`` if it is our exited child: (status, True); else (None, False)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None, False
    if got != pid:
        return None, False
    return os.waitstatus_to_exitcode(status), True


def children() -> list[int]:
    out = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
    except OSError:
        return [p.pid for p in proc.children_since(os.getpid(), 0)]
    return out


def exited_child() -> int | None:
    """The PID of a child of this process that exited and is not collected yet, left so
    (``WNOWAIT``: whoever owns it still collects it); None when there is none."""
    try:
        found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # no child at all
        return None
    return found.si_pid if found is not None and found.si_pid > 0 else None


def zombie(pid: int) -> bool:
    info = proc.read_proc(pid)
    return info is not None and info.zombie


def notify(text: str) -> None:
    """Tell an init system that watches this supervisor (systemd's NOTIFY_SOCKET, for a
    Type=notify unit running ``servicectl supervise``); nothing without one."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(text.encode(), address)
    except OSError:
        pass


def take_run_dir(
    run: StrPath, ready: str, foreground: bool, handover: str | None
) -> tuple[int, socket.socket, int] | int:
    """The run directory's supervisor lock and listening socket (state, listener, lock): handed
    over by the supervisor this process replaces, or claimed now; or the exit code when it
    cannot be had (another supervisor listens: 0, said on ``ready``)."""
    from servicectl.paths import run_dir_problem

    if handover is not None:
        return handed(handover)
    problem = run_dir_problem(run)
    claimed = problem.message if problem is not None else claim(run, wait=foreground)
    if isinstance(claimed, str):
        say_ready(ready, claimed)
        if foreground:
            say(claimed)
        return 0 if claimed == "running" else 1
    try:
        listener = listen(run)
    except OSError as exc:
        say_ready(ready, f"cannot listen on {os.path.join(run, protocol.SOCKET_NAME)}: {exc}")
        return 1
    return -1, listener, claimed


EARLY: list[int] = []  # SIGTERM or SIGINT received before the supervisor's loop began


def _early_signal(signum: int, frame: object) -> None:
    EARLY.append(signum)


def catch_early_signals() -> None:
    """From the first moment, SIGTERM and SIGINT are noted, not deadly: the loop, once it
    runs, leaves cleanly for them (a stop asked during start-up is not a crash)."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _early_signal)
