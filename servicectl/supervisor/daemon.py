"""The supervisor: one process per run directory, parent of every supervised service, started by
the first start of a supervised service (``servicectl.supervisor.daemon RUN_DIR FD``).

One thread polls the control socket, the connections, a pidfd per supervised process, and the
wake-up pipes of signals and of worker threads; every change to what it knows happens there.
Whatever takes time (spawning, readiness, recording an exit, respawning) runs in a worker
thread (respawn.py) under the service's lock. It exits after being idle (nothing supervised,
nobody connected) for a while, and never holds a service's lock while idle.

The protocol: a JSON object a line, one answer per request, requests of a connection served in
order (see client.py for the client's side).
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from servicectl.definitions.names import NAME_RE
from servicectl.errors import ServicectlError
from servicectl.service import launch, supervised
from servicectl.supervisor import client, respawn
from servicectl.supervisor.respawn import Unit
from servicectl.system import proc

IDLE_EXIT = float(os.environ.get("SERVICECTL_SUPERVISOR_IDLE", "30") or 30)
SWEEP_DELAY = 1.0  # a zombie child no thread reaped for this long is an orphan's: reaped
MAX_LINE = 1 << 20  # a request line
IN = select.POLLIN | select.POLLHUP | select.POLLERR  # what a watched descriptor may say


class Conn:
    """One client connection: its socket, what it sent and was not served yet, what it holds."""

    __slots__ = ("sock", "buf", "todo", "busy", "held")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.todo: list[dict[str, Any]] = []
        self.busy = False  # a request of it is being served (its answer is not sent yet)
        self.held: set[str] = set()


class Supervisor:
    def __init__(self, run: Path, listener: socket.socket) -> None:
        self.run = run
        self.listener = listener
        self.units: dict[str, Unit] = {}
        self.conns: dict[int, Conn] = {}
        self.watched: dict[int, Unit] = {}  # pidfd -> unit
        self.waiters: list[tuple[float, Conn, Unit]] = []  # "exit" requests not answered yet
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sig_r, self.sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller = select.poll()
        for fd in (listener.fileno(), self.wake_r, self.sig_r):
            self.poller.register(fd, IN)
        self.workers = 0
        self.idle_since = time.monotonic()
        self.sweep_at: float | None = None
        self.zombies: set[int] = set()
        self.leaving = False

    # ------------------------------------------------------------------ the loop

    def loop(self) -> None:
        signal.set_wakeup_fd(self.sig_w, warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        while not self.leaving:
            for fd, _ in self.poller.poll(self._timeout()):
                try:
                    self._dispatch(fd)
                except Exception as exc:  # noqa: BLE001 - one bad event must not end supervision
                    from servicectl import lastresort

                    text = lastresort.traceback_text(exc)
                    say(f"{lastresort.describe(exc)}; carrying on\n{text}")
            self._timers()
        self._leave()

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.leaving = True
        elif signum == signal.SIGCHLD and self.sweep_at is None:
            self.sweep_at = time.monotonic() + SWEEP_DELAY

    def _timeout(self) -> int:
        now = time.monotonic()
        due = [self.idle_since + IDLE_EXIT]
        due += [d for d, _, _ in self.waiters]
        if self.sweep_at is not None:
            due.append(self.sweep_at)
        return max(0, int((min(due) - now) * 1000) + 1)

    def _dispatch(self, fd: int) -> None:
        if fd == self.listener.fileno():
            self._accept()
        elif fd == self.wake_r or fd == self.sig_r:
            _drain(fd)
            while not self.events.empty():
                self._event(self.events.get())
        elif fd in self.watched:
            self._exited(self.watched[fd])
        elif fd in self.conns:
            self._read(self.conns[fd])

    def _timers(self) -> None:
        now = time.monotonic()
        for waiter in [w for w in self.waiters if w[0] <= now]:
            self.waiters.remove(waiter)
            self._answer(waiter[1], {"ok": True, "code": None})
        if self.sweep_at is not None and now >= self.sweep_at:
            self._sweep()
        if self.units or self.conns or self.workers:
            self.idle_since = now
        elif now - self.idle_since >= IDLE_EXIT:
            say(f"idle for {IDLE_EXIT:g} s: leaving")
            self.leaving = True

    def _leave(self) -> None:
        """Stop listening; what runs keeps running (unsupervised: status says so)."""
        try:
            os.unlink(self.run / client.SOCKET_NAME)
        except OSError:
            pass
        self.listener.close()
        if self.units:
            names = ", ".join(sorted(self.units))
            say(f"leaving; no longer supervised: {names}")

    def post(self, event: tuple[Any, ...]) -> None:
        """From a worker thread: hand ``event`` to the loop."""
        self.events.put(event)
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass  # the loop has wake-ups pending already

    # ------------------------------------------------------------------ connections

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
        if uid not in (0, os.geteuid()):
            say(f"refused a connection from uid {uid} (pid {pid})")
            sock.close()
            return
        sock.setblocking(False)
        self.conns[sock.fileno()] = Conn(sock)
        self.poller.register(sock.fileno(), IN)

    def _read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data or len(conn.buf) + len(data) > MAX_LINE:
            self._closed(conn)
            return
        conn.buf += data
        while b"\n" in conn.buf:
            line, _, conn.buf = conn.buf.partition(b"\n")
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
            conn.todo.append(msg if isinstance(msg, dict) else {})
        self._serve(conn)

    def _closed(self, conn: Conn) -> None:
        """A connection closed (its servicectl finished, or died): what it held is released."""
        self.poller.unregister(conn.sock.fileno())
        del self.conns[conn.sock.fileno()]
        conn.sock.close()
        self.waiters = [w for w in self.waiters if w[1] is not conn]
        for name in sorted(conn.held):
            unit = self.units.get(name)
            if unit is not None and unit.holder is conn:
                unit.holder = None
                self._resume(unit, closed=True)
        conn.held.clear()

    def _answer(self, conn: Conn, reply: dict[str, Any]) -> None:
        conn.busy = False
        if conn.sock.fileno() in self.conns:
            try:
                conn.sock.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass  # it is gone; its closing is seen by the loop
        self._serve(conn)

    def _serve(self, conn: Conn) -> None:
        while conn.todo and not conn.busy and conn.sock.fileno() in self.conns:
            msg = conn.todo.pop(0)
            conn.busy = True
            try:
                self._request(conn, msg)
            except ServicectlError as exc:
                self._answer(conn, _error(exc))

    def _request(self, conn: Conn, msg: dict[str, Any]) -> None:
        op, name = msg.get("op"), msg.get("name")
        if op == "info":
            self._answer(conn, {"ok": True, "pid": os.getpid(), "units": self._info()})
            return
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ServicectlError(f"supervisor: bad request {op!r} for {name!r}")
        if op == "hold":
            self._hold(conn, name, msg.get("service"))
            return
        unit = self.units.get(name)
        if unit is None or unit.holder is not conn:
            raise ServicectlError(f"{name}: {op}: the service is not held by this connection")
        handler: Callable[[Conn, Unit, dict[str, Any]], None] = {
            "spawn": self._spawn,
            "exit": self._exit_status,
            "abort": self._abort,
            "release": self._release,
        }.get(str(op), _unknown)
        handler(conn, unit, msg)

    def _info(self) -> dict[str, Any]:
        return {
            n: {"pid": u.pid if u.handle else None, "held": u.holder is not None, "busy": u.busy}
            for n, u in self.units.items()
        }

    # ------------------------------------------------------------------ requests

    def _hold(self, conn: Conn, name: str, payload: object) -> None:
        """The command holding ``name`` acts alone on it from now on: a pending respawn is
        cancelled, and none can start until the hold ends."""
        # R-SUP-3: a definition that cannot be read is refused before anything changes (no
        # unit is left behind for it, which would keep this supervisor from ever idling out)
        definition = client.load_definition(payload) if isinstance(payload, str) else None
        unit = self.units.setdefault(name, Unit(name))
        if definition is not None:
            unit.svc, unit.dirs = definition
        was_respawning = unit.busy and unit.holder is None and unit.handle is None
        unit.gen += 1
        unit.cancel.set()
        unit.cancel = threading.Event()
        old = unit.holder
        if isinstance(old, Conn) and old is not conn:
            old.held.discard(name)  # a holder that died; its lock is gone too
        unit.holder = conn
        conn.held.add(name)
        reply: dict[str, Any] = {"ok": True, "pid": unit.pid if unit.handle else None}
        if was_respawning:
            reply["cancelled"] = "its supervisor's pending respawn was cancelled"
        self._answer(conn, reply)

    def _spawn(self, conn: Conn, unit: Unit, msg: dict[str, Any]) -> None:
        if unit.svc is None:
            raise ServicectlError(f"{unit.name}: spawn: no definition was given")
        notify = msg.get("notify")
        self._work(conn, unit, "spawned", respawn.spawn_for, unit, notify if notify else None)

    def _exit_status(self, conn: Conn, unit: Unit, msg: dict[str, Any]) -> None:
        if unit.handle is None:
            last = unit.last_exit or {}
            code = last.get("code")
            if "signal" in last:
                code = -int(getattr(signal, f"SIG{last['signal']}", 0))
            self._answer(conn, {"ok": True, "code": code})
            return
        wait = min(float(msg.get("wait") or 0), 10.0)
        self.waiters.append((time.monotonic() + wait, conn, unit))

    def _abort(self, conn: Conn, unit: Unit, msg: dict[str, Any]) -> None:
        self._work(conn, unit, "aborted", respawn.abort_for, unit)

    def _release(self, conn: Conn, unit: Unit, msg: dict[str, Any]) -> None:
        """The holder is done: supervise ``pid`` (a start confirmed it, or the service runs
        unsupervised and is attached), or whatever still runs of it."""
        unit.holder = None
        conn.held.discard(unit.name)
        pid, starttime = msg.get("pid"), msg.get("starttime")
        me = proc.read_proc(os.getpid())
        reply = {"ok": True, "supervisor": [os.getpid(), me.starttime if me else 0]}
        respawn.refresh_record(unit)
        if isinstance(pid, int) and isinstance(starttime, int):
            if pid != unit.pid:
                self._unwatch(unit)
                child = unit.child if unit.child is not None and unit.child.pid == pid else None
                self._watch(unit, pid, starttime, child)
            elif unit.handle is None and not unit.busy:
                self._answer(conn, reply)
                self._after_exit(unit)  # it exited before the start let go of it
                return
        self._resume(unit, closed=False)
        self._answer(conn, reply)

    def _resume(self, unit: Unit, closed: bool) -> None:
        """A hold ended: a live process is supervised again; without one, the service leaves
        the supervisor (if its holder died, its record says how it exited)."""
        if unit.handle is not None or unit.busy:
            return
        del self.units[unit.name]
        if closed and unit.pid and unit.last_exit is not None and unit.svc is not None:
            self._work(None, unit, "recorded", respawn.record_abandoned, unit)

    # ------------------------------------------------------------------ workers and events

    def _work(self, conn: Conn | None, unit: Unit, kind: str, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` in a worker thread; its result comes back as a ``kind`` event."""
        unit.busy = True
        self.workers += 1

        def run() -> None:
            try:
                self.post((kind, conn, unit, fn(*args), None))
            except BaseException as exc:  # noqa: BLE001 - the loop answers it
                self.post((kind, conn, unit, None, exc))

        threading.Thread(target=run, name=f"{kind} {unit.name}", daemon=True).start()

    def _event(self, event: tuple[Any, ...]) -> None:
        kind, conn, unit, result, exc = event
        assert isinstance(unit, Unit)
        self.workers -= 1
        unit.busy = False
        if kind == "spawned" and exc is None:
            pid, starttime = result
            child = launch.KEPT.pop(pid, None) if launch.KEPT is not None else None
            self._watch(unit, pid, starttime, child)
        elif kind == "respawned" and exc is None and result is not None:
            _, pid, child = result
            self._watch(unit, pid, unit.record.starttime if unit.record else 0, child)
        if exc is not None and not isinstance(exc, ServicectlError):
            from servicectl import lastresort

            text = lastresort.traceback_text(exc)
            say(f"{unit.name}: {kind}: {lastresort.describe(exc)}\n{text}")
        if conn is not None:
            self._answer(conn, _error(exc, unit.name) if exc is not None else _ok(kind, result))
        if unit.holder is None and self.units.get(unit.name) is unit:
            self._resume(unit, closed=False)

    # ------------------------------------------------------------------ watching processes

    def _watch(self, unit: Unit, pid: int, starttime: int, child: Any = None) -> None:
        """Poll ``pid`` for its exit (it may be a child, or a process attached to)."""
        unit.pid, unit.starttime, unit.child = pid, starttime, child
        handle = proc.Handle(pid, starttime)
        info = proc.read_proc(pid)
        if handle.fd is None or handle.fd < 0 or info is None or info.starttime != starttime:
            handle.close()  # gone already (or its PID is another process's now)
            self._exited(unit)
            return
        unit.handle = handle
        self.watched[handle.fd] = unit
        self.poller.register(handle.fd, select.POLLIN)

    def _unwatch(self, unit: Unit) -> None:
        if unit.handle is not None and unit.handle.fd is not None:
            self.poller.unregister(unit.handle.fd)
            self.watched.pop(unit.handle.fd, None)
            unit.handle.close()
        unit.handle = None

    def _exited(self, unit: Unit) -> None:
        """The watched process exited: reap it, then the holder decides, or the policy does."""
        self._unwatch(unit)
        code, reaped = _reap(unit.pid)
        if not reaped and unit.child is not None and unit.child.returncode is not None:
            code, reaped = unit.child.returncode, True  # its Popen reaped it (at the gate)
        if unit.child is not None and reaped:
            unit.child.returncode = code  # its Popen must never wait for it again
        respawn.record_exit_now(unit, code, reaped)
        for waiter in [w for w in self.waiters if w[2] is unit]:
            self.waiters.remove(waiter)
            self._answer(waiter[1], {"ok": True, "code": code if reaped else None})
        if unit.holder is None and not unit.busy:
            self._after_exit(unit)

    def _after_exit(self, unit: Unit) -> None:
        """What its definition says to do after an exit nobody asked for."""
        svc = unit.svc
        if svc is None or svc.restart == "no":
            del self.units[unit.name]
            return
        self._work(None, unit, "respawned", respawn.handle_exit, unit, unit.gen, unit.cancel)

    def _sweep(self) -> None:
        """Reap zombie children nobody reaps: orphans of supervised services (this process is
        their subreaper). A worker reaps its own children at once; a zombie seen twice, a
        sweep apart, is nobody's."""
        mine = {u.pid for u in self.units.values() if u.handle is not None}
        zombies = {c for c in _children() if c not in mine and proc.is_zombie(c)}
        for pid in zombies & self.zombies:
            _reap(pid)
        self.zombies = zombies - self.zombies
        self.sweep_at = time.monotonic() + SWEEP_DELAY if self.zombies else None


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


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _reap(pid: int) -> tuple[int | None, bool]:
    """The exit status of ``pid`` if it is our exited child: (status, True); else (None, False)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None, False
    if got != pid:
        return None, False
    return os.waitstatus_to_exitcode(status), True


def _children() -> list[int]:
    out = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
    except OSError:
        return [p.pid for p in proc.children_since(os.getpid(), 0)]
    return out


def _ok(kind: str, result: Any) -> dict[str, Any]:
    if kind == "spawned":
        return {"ok": True, "pid": result[0], "starttime": result[1]}
    return {"ok": True}


def _error(exc: BaseException, name: str = "") -> dict[str, Any]:
    if isinstance(exc, ServicectlError):
        return {
            "ok": False,
            "message": exc.message,
            "code": int(exc.exit_code),
            "detail": exc.detail,
        }
    return {
        "ok": False,
        "message": (f"{name}: " if name else "")
        + f"internal error in the supervisor: {type(exc).__name__}: {exc} (see its log)",
        "code": 1,
    }


def _unknown(conn: Conn, unit: Unit, msg: dict[str, Any]) -> None:
    raise ServicectlError(f"{unit.name}: unknown request {msg.get('op')!r}")


# ---------------------------------------------------------------------------------------------
# Start-up


def _listening(run: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    address, fd = client.socket_address(run)
    try:
        sock.connect(address)
        return True
    except OSError:
        return False
    finally:
        sock.close()
        if fd is not None:
            os.close(fd)


def _claim(run: Path) -> int | str:
    """The run directory's supervisor lock, held for life; or "running" if another supervisor
    listens (a start raced this one), or why neither."""
    path = run / client.LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
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


def _listen(run: Path) -> socket.socket:
    """The control socket, mode 0600 (the lock is held: a socket file left there is stale)."""
    path = run / client.SOCKET_NAME
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    address, fd = client.socket_address(run)
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


def main(argv: list[str]) -> int:
    """RUN_DIR FD: supervise the run directory's services; say "ready" (or "running": another
    one does) on FD once listening."""
    import subprocess

    from servicectl.paths import run_dir_problem

    run, ready = Path(argv[0]), int(argv[1])
    supervised.IN_SUPERVISOR = True
    launch.KEPT = {}
    subprocess._active = None  # type: ignore[attr-defined]  # no Popen reaps behind the loop
    problem = run_dir_problem(run)
    claimed: int | str = problem.message if problem is not None else _claim(run)
    if isinstance(claimed, str):
        os.write(ready, claimed.encode() + b"\n")
        return 0 if claimed == "running" else 1
    try:
        listener = _listen(run)
    except OSError as exc:
        os.write(ready, f"cannot listen on {run / client.SOCKET_NAME}: {exc}\n".encode())
        return 1
    proc.become_subreaper()
    say(f"supervising the services of {run}")
    os.write(ready, b"ready\n")
    os.close(ready)
    Supervisor(run, listener).loop()
    return 0


def run(argv: list[str]) -> int:
    """``main``, under the last net (R-VIEW-4): an exception nothing else caught is one line
    and its traceback in the supervisor's log (its stderr), never lost, exit 1. A worker
    thread's is logged the same way."""
    from servicectl import lastresort

    def log(exc: BaseException) -> None:
        say(f"{lastresort.describe(exc)}\n{lastresort.traceback_text(exc)}")

    threading.excepthook = lambda a: (
        None if a.exc_type is SystemExit else log(a.exc_value or a.exc_type())
    )
    try:
        return main(argv)
    except Exception as exc:
        log(exc)
        return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
