"""Readiness: wait until a started service is ready (its ``ready`` probe succeeds, or it sends
READY=1 through the notify socket), dies, or runs out of time.

Death and notify messages wake the wait through poll(); polling probes back off from 2 ms.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from servicectl.system.proc import (
    CANCEL_SLICE,
    Handle,
    cancel_fd,
    check_cancel,
    is_descendant,
    read_proc,
)

if TYPE_CHECKING:
    from pathlib import Path

    from servicectl.definitions.schema import Ready

FIRST_BACKOFF = 0.002
MAX_BACKOFF = 0.1
MAX_COMMAND_BACKOFF = 0.5


class Notes:
    """What a notify service told us while starting or reloading."""

    __slots__ = ("ready", "reloading", "status", "mainpid", "errno", "extend_until", "ignored")

    def __init__(self) -> None:
        self.ready = False
        self.reloading = False
        self.status: str | None = None
        self.mainpid: int | None = None
        self.errno: int | None = None
        self.extend_until: float | None = None
        self.ignored: list[str] = []

    def take(self, line: str) -> None:
        """Note one line of a message (``KEY=VALUE``); unknown or malformed lines are skipped."""
        key, _, value = line.partition("=")
        if key == "READY" and value == "1":
            self.ready = True
            self.reloading = False
        elif key == "RELOADING" and value == "1":
            self.reloading = True
            self.ready = False
        elif key == "STATUS":
            self.status = value
        elif key == "MAINPID" and value.isdigit():
            self.mainpid = int(value)
        elif key == "ERRNO" and value.isdigit():
            self.errno = int(value)
        elif key == "EXTEND_TIMEOUT_USEC" and value.isdigit():
            self.extend_until = time.monotonic() + int(value) / 1e6


MAX_SUN_PATH = 107  # bytes of a socket path (sun_path is 108, with the final NUL)


def notify_address(run_dir: Path, name: str, uid: int | None = None) -> str:
    """The service's NOTIFY_SOCKET (docs/security.md R-NOTIFY-1, R-NOTIFY-2).

    A path socket in the run directory, where no one but servicectl can create anything: no
    other user can bind it first or receive the service's messages. When that path does not
    fit in a socket address, or the service's user (``uid``; None: any user) cannot reach the
    run directory, an abstract name with 128 random bits (``@servicectl/...``): it cannot be
    guessed, so it cannot be bound first either.
    """
    path = str(run_dir / f"{name}.notify")
    if len(os.fsencode(path)) <= MAX_SUN_PATH and _reachable(run_dir, uid):
        return path
    import secrets

    return f"@servicectl/{secrets.token_hex(16)}"


def _reachable(directory: Path, uid: int | None) -> bool:
    """Whether ``uid`` (None: every user) can surely search every directory down to
    ``directory`` (group permissions are not counted: when unsure, say no)."""
    if uid == 0:
        return True
    import stat

    for part in (directory, *directory.parents):
        try:
            st = os.stat(part)
        except OSError:
            return False
        if not (st.st_mode & stat.S_IXOTH or (st.st_uid == uid and st.st_mode & stat.S_IXUSR)):
            return False
    return True


class NotifySocket:
    """A datagram socket bound at the service's notify address, checking each sender's PID.

    Only messages from the service's own process tree (its main PID, its process group, or a
    descendant) count, so another local process cannot declare the service ready.

    A path socket is made writable by ``uid`` alone (mode 0600, that owner) when given: the
    service's user, the only one that needs to send. Without ``uid`` it is mode 0666 (the
    senders are still checked). A socket left at the path is replaced; anything else there
    is not (OSError EADDRINUSE). ``close`` removes the socket file.
    """

    def __init__(self, address: str, uid: int | None = None) -> None:
        self.address = address
        self._inode: int | None = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            if address.startswith("@"):
                self.sock.bind("\0" + address[1:])
            else:
                self._bind_path(address, uid)
            self.sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def _bind_path(self, path: str, uid: int | None) -> None:
        import stat

        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)  # left by a servicectl that was killed
        except FileNotFoundError:
            pass
        self.sock.bind(path)
        st = os.lstat(path)
        self._inode = st.st_ino
        os.chmod(path, 0o600 if uid is not None else 0o666)
        if uid is not None and uid != st.st_uid:
            os.chown(path, uid, -1, follow_symlinks=False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        """Close the socket and remove its file (if it is still the one bound here)."""
        self.sock.close()
        if self._inode is not None:
            try:
                if os.lstat(self.address).st_ino == self._inode:
                    os.unlink(self.address)
            except OSError:
                pass
            self._inode = None

    def drain(self, notes: Notes, main_pid: int, pgid: int) -> None:
        """Read every pending message into ``notes``."""
        creds_size = struct.calcsize("3i")
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds_size))
            except (BlockingIOError, InterruptedError):
                return
            sender = _sender_pid(anc, creds_size)
            if sender is None or not _belongs(sender, main_pid, pgid):
                notes.ignored.append(f"message from PID {sender} outside the service ignored")
                continue
            for line in data.decode("utf-8", "replace").splitlines():
                notes.take(line)


def _sender_pid(ancillary: list[tuple[int, int, bytes]], creds_size: int) -> int | None:
    """The sender's PID from a message's credentials (SCM_CREDENTIALS), or None."""
    sender = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            sender = struct.unpack("3i", payload[:creds_size])[0]
    return sender


def _belongs(pid: int, main_pid: int, pgid: int) -> bool:
    if pid == main_pid:
        return True
    info = read_proc(pid)
    if info is None:
        return False  # sent and exited already: cannot be checked
    return (pgid > 0 and info.pgid == pgid) or is_descendant(pid, main_pid)


class Probe:
    """One readiness check that can be retried: ``check()`` is True once ready."""

    def __init__(
        self, ready: Ready, env: dict[str, str], run_as: tuple[int, int] | None, cwd: str
    ) -> None:
        self.ready = ready
        self.env = env
        self.run_as = run_as
        self.cwd = cwd
        self.last_error = ""

    def check(self, remaining: float) -> bool:
        kind = self.ready.kind
        target = self.ready.target
        try:
            if kind == "file":
                return os.path.exists(str(target))
            if kind == "tcp":
                host, _, port = str(target).rpartition(":")
                with socket.create_connection(
                    (host.strip("[]"), int(port)), timeout=min(1.0, remaining)
                ):
                    return True
            if kind == "unix":
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(min(1.0, remaining))
                    s.connect(str(target))
                    return True
            if kind == "http":
                return self._http(str(target), remaining)
            if kind == "command":
                return self._command(remaining)
        except OSError as exc:
            self.last_error = exc.strerror or str(exc)
            return False
        return False

    def _http(self, url: str, remaining: float) -> bool:
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=min(2.0, remaining))
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            conn.request("GET", path)
            status = conn.getresponse().status
            self.last_error = f"HTTP {status}"
            return 200 <= status < 300
        except http.client.HTTPException as exc:
            self.last_error = str(exc) or type(exc).__name__
            return False
        finally:
            conn.close()

    def _command(self, remaining: float) -> bool:
        import subprocess

        assert isinstance(self.ready.target, tuple)
        timeout = min(self.ready.timeout or 10.0, max(remaining, 0.01))
        kwargs: dict[str, Any] = {}
        if self.run_as is not None:
            kwargs.update(user=self.run_as[0], group=self.run_as[1])
        try:
            result = subprocess.run(
                list(self.ready.target),
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
                start_new_session=True,
                **kwargs,
            )
        except subprocess.TimeoutExpired:
            self.last_error = f"probe command timed out after {timeout:.1f} s"
            return False
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        self.last_error = f"exit status {result.returncode}" + (f": {tail[0]}" if tail else "")
        return result.returncode == 0


class WaitResult:
    """How a wait for readiness ended: ``outcome`` is ready, died, timeout or error."""

    __slots__ = ("outcome", "notes", "detail")

    def __init__(self, outcome: str, notes: Notes, detail: str = "") -> None:
        self.outcome = outcome
        self.notes = notes
        self.detail = detail


def wait_ready(
    handle: Handle,
    deadline: float,
    probe: Probe | None = None,
    notify: NotifySocket | None = None,
    pgid: int = 0,
) -> WaitResult:
    """Wait until ready (probe passes, or READY=1), the process dies, or ``deadline``.

    Without probe and notify this is the start_grace watch: "ready" means it survived.
    The process's death wakes the wait at once (pidfd); an EXTEND_TIMEOUT_USEC message moves
    the deadline.
    """
    notes = Notes()
    backoff = FIRST_BACKOFF
    cap = MAX_COMMAND_BACKOFF if probe and probe.ready.kind == "command" else MAX_BACKOFF
    poller = _poller(handle, notify)
    next_probe = time.monotonic()
    while True:
        check_cancel()
        now = time.monotonic()
        if notify is not None:
            heard = _heard(notify, notes, handle.pid, pgid)
            if heard is not None:
                return heard
            deadline = max(deadline, notes.extend_until or deadline)
        if handle.exited():
            return WaitResult("died", notes)
        if probe is not None and now >= next_probe:
            if probe.check(max(deadline - now, 0.01)):
                return WaitResult("ready", notes)
            next_probe = time.monotonic() + backoff
            backoff = min(backoff * 2, cap)
        now = time.monotonic()
        if now >= deadline:
            return _at_deadline(notes, probe, notify)
        wake = deadline if probe is None else min(deadline, next_probe)
        wake = min(wake, now + CANCEL_SLICE)
        poller.poll(max(0, int((wake - now) * 1000) + 1))


def _poller(handle: Handle, notify: NotifySocket | None) -> select.poll:
    """A poll object woken by the process's death (its pidfd) and by notify messages."""
    poller = select.poll()
    if handle.fd is not None and handle.fd >= 0:
        poller.register(handle.fd, select.POLLIN)
    stop = cancel_fd()
    if stop is not None:
        poller.register(stop, select.POLLIN)
    if notify is not None:
        poller.register(notify.fileno(), select.POLLIN)
    return poller


def _heard(notify: NotifySocket, notes: Notes, main_pid: int, pgid: int) -> WaitResult | None:
    """Read the pending notify messages into ``notes``: the result when the service said it
    is ready (READY=1) or failed (ERRNO=), else None."""
    notify.drain(notes, main_pid, pgid)
    if notes.errno is not None:
        return WaitResult(
            "error", notes, f"reported ERRNO={notes.errno} ({os.strerror(notes.errno)})"
        )
    if notes.ready:
        return WaitResult("ready", notes)
    return None


def _at_deadline(notes: Notes, probe: Probe | None, notify: NotifySocket | None) -> WaitResult:
    """How the wait ends at its deadline: with neither probe nor notify the process survived
    start_grace (ready); otherwise a timeout, with the probe's last error."""
    if probe is None and notify is None:
        return WaitResult("ready", notes)
    return WaitResult("timeout", notes, probe.last_error if probe else "")
