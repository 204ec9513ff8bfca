"""Readiness: wait until a started service is ready (its ``ready`` probe succeeds, or it sends
READY=1 through the notify socket), dies, or runs out of time.

Death and notify messages wake the wait through poll(); polling probes back off from 2 ms.
"""

from __future__ import annotations

import os
import time

from servicectl.system.cancel import CANCEL_SLICE, cancel_fd, check_cancel
from servicectl.system.proc import Handle, is_descendant, read_proc
from servicectl.system.turns import paused

TYPE_CHECKING = False
if TYPE_CHECKING:
    import select
    from typing import Any

    from _typeshed import StrPath

    from servicectl.definitions.schema import Ready, Service
    from servicectl.system.spawn import Account

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


MAX_IGNORED = 8  # refused notify messages remembered for the failure message
MAX_SUN_PATH = 107  # bytes of a socket path (sun_path is 108, with the final NUL)


def notify_address(run_dir: StrPath, name: str, uid: int | None = None) -> str:
    """The service's NOTIFY_SOCKET (docs/security.md R-NOTIFY-1, R-NOTIFY-2).

    A path socket in the run directory, where no one but servicectl can create anything: no
    other user can bind it first or receive the service's messages. When that path does not
    fit in a socket address, or the service's user (``uid``; None: any user) cannot reach the
    run directory, an abstract name with 128 random bits (``@servicectl/...``): it cannot be
    guessed, so it cannot be bound first either.
    """
    path = str(os.path.join(run_dir, f"{name}.notify"))
    if len(os.fsencode(path)) <= MAX_SUN_PATH and _reachable(run_dir, uid):
        return path
    import secrets

    return f"@servicectl/{secrets.token_hex(16)}"


def _reachable(directory: StrPath, uid: int | None) -> bool:
    """Whether ``uid`` (None: every user) can surely search every directory down to
    ``directory`` (group permissions are not counted: when unsure, say no)."""
    if uid == 0:
        return True
    import stat

    from servicectl.paths import ancestors

    for part in (os.fspath(directory), *ancestors(os.fspath(directory))):
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
        import socket  # here: a start without a notify socket or a probe needs none (3-4 ms)

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
        import socket
        import struct

        creds_size = struct.calcsize("3i")
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds_size))
            except (BlockingIOError, InterruptedError):
                return
            sender, uid = _sender(anc, creds_size)
            why = _refusal(sender, main_pid, pgid)
            if why:
                if len(notes.ignored) < MAX_IGNORED:
                    notes.ignored.append(f"a notify message from PID {sender} (uid {uid}): {why}")
                continue
            for line in data.decode("utf-8", "replace").split("\n"):  # sd_notify: \n only
                notes.take(line)


def _sender(ancillary: list[tuple[int, int, bytes]], creds_size: int) -> tuple[int, int]:
    """The sender's PID and uid from a message's credentials (SCM_CREDENTIALS); (0, -1)
    when it has none."""
    import socket
    import struct

    sender, uid = 0, -1
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            sender, uid, _gid = struct.unpack("3i", payload[:creds_size])
    return sender, uid


def _refusal(pid: int, main_pid: int, pgid: int) -> str:
    """Why a message from ``pid`` is not the service's (R-NOTIFY-3), or "" if it is: the
    main process, a member of its process group, or a descendant of it (whatever user it
    switched to)."""
    if pid == main_pid and pid > 0:
        return ""
    if pid <= 0:
        return "refused: it carries no sender credentials"
    info = read_proc(pid)
    if info is None:
        return "refused: the sender exited before it could be checked (send from a live process)"
    if (pgid > 0 and info.pgid == pgid) or is_descendant(pid, main_pid):
        return ""
    return "refused: the sender is not a process of the service"


def start_clock() -> int:
    """Now, in nanoseconds, on the clock the kernel stamps files with (CLOCK_REALTIME_COARSE,
    which a file's ctime never precedes): taken before a spawn, a ready file written after it
    has a ctime at or after this (R-READY-2)."""
    try:
        return time.clock_gettime_ns(CLOCK_REALTIME_COARSE)
    except OSError:
        return time.time_ns() - 10_000_000  # the coarse clock lags by at most a tick


CLOCK_REALTIME_COARSE = 5  # Linux's clock id (not named in Python's time module)


class Probe:
    """One readiness check that can be retried: ``check()`` is True once ready.

    A ready file counts only if written (its ctime) at or after ``since`` (ns, start_clock
    before the spawn): one left by an earlier run is not this start's (R-READY-2). A tcp,
    http or unix probe that connects counts only if the socket that answered is one of the
    service's (``service``: main PID, group, session; R-READY-1); ``note`` says when that
    could not be told."""

    def __init__(self, svc: Service, account: Account, env: dict[str, str], since: int = 0) -> None:
        assert svc.ready is not None
        self.svc = svc
        self.ready: Ready = svc.ready
        self.account = account
        self.env = env
        self.since = since
        self.service: tuple[int, int, int] | None = None
        self.last_error = ""
        self.note = ""

    def check(self, remaining: float) -> bool:
        import socket

        kind = self.ready.kind
        target = self.ready.target
        try:
            if kind == "file":
                return self._file(str(target))
            if kind == "tcp":
                host, _, port = str(target).rpartition(":")
                with socket.create_connection(
                    (host.strip("[]"), int(port)), timeout=min(1.0, remaining)
                ) as conn:
                    return self._owned("tcp", conn.getpeername())
            if kind == "unix":
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(min(1.0, remaining))
                    s.connect(str(target))
                return self._owned("unix", str(target))
            if kind == "http":
                return self._http(str(target), remaining)
            if kind == "command":
                return self._command(remaining)
        except OSError as exc:
            self.last_error = exc.strerror or str(exc)
            return False
        return False

    def _file(self, path: str) -> bool:
        st = os.stat(path)
        if st.st_ctime_ns >= self.since:
            return True
        when = time.strftime("%H:%M:%S", time.localtime(st.st_ctime))
        self.last_error = f"{path} is from before this start (written at {when})"
        return False

    def _owned(self, kind: str, peer: Any) -> bool:
        """Whether the socket that answered is the service's own (R-READY-1)."""
        if self.service is None:
            return True
        from servicectl.system import ownership

        pid, pgid, sid = self.service
        deadline = time.monotonic() + ownership.BUDGET
        try:
            if kind == "unix":
                verdict = ownership.unix(peer, pid, pgid, sid, deadline)
            else:
                verdict = ownership.inet(peer, pid, pgid, sid, deadline)
        except Exception as exc:  # an unreadable or malformed /proc: cannot tell, and say so
            verdict = ownership.Verdict(None, f"not checked ({type(exc).__name__}: {exc})")
        if verdict.owned is False:
            self.last_error = verdict.why
            return False
        self.note = verdict.why if verdict.owned is None else ""
        return True

    def _http(self, url: str, remaining: float) -> bool:
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=min(2.0, remaining))
        try:
            conn.connect()
            assert conn.sock is not None
            if not self._owned("tcp", conn.sock.getpeername()):
                return False  # another program's server: not asked anything
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
        """Run the probe command as a service's command is run (preflight.run: as its user,
        the directory entered after the switch, output bounded, its group killed at the
        limit)."""
        from servicectl.errors import ServicectlError
        from servicectl.system.runner import run

        assert isinstance(self.ready.target, tuple)
        timeout = min(self.ready.timeout or 10.0, max(remaining, 0.01))
        try:
            ran = run(self.svc, self.ready.target, self.env, self.account, timeout)
        except ServicectlError as exc:
            self.last_error = exc.message.removeprefix(f"{self.svc.name}: ")
            return False
        if ran.code is None:
            self.last_error = f"probe command timed out after {timeout:.1f} s"
            return False
        tail = ran.output.strip().splitlines()[-1:]
        self.last_error = f"exit status {ran.code}" + (f": {tail[0]}" if tail else "")
        return ran.code == 0


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
    poller = None  # made for the first wait (a start_grace of 0 never waits)
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
                # R-READY-1: ready only while the main process runs (it may have died of
                # EADDRINUSE while another program answered the probe)
                if handle.exited():
                    return WaitResult("died", notes)
                return WaitResult("ready", notes, probe.note)
            next_probe = time.monotonic() + backoff
            backoff = min(backoff * 2, cap)
        now = time.monotonic()
        if now >= deadline:
            return _at_deadline(notes, probe, notify)
        wake = deadline if probe is None else min(deadline, next_probe)
        wake = min(wake, now + CANCEL_SLICE)
        poller = poller or _poller(handle, notify)
        with paused():  # a fleet's worker lets another act meanwhile (turns.py)
            poller.poll(max(0, int((wake - now) * 1000) + 1))


def _poller(handle: Handle, notify: NotifySocket | None) -> select.poll:
    """A poll object woken by the process's death (its pidfd) and by notify messages."""
    import select

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
