"""The supervisor: one process per run directory, the parent of every supervised service and
the only actor on it (``servicectl.supervisor.daemon RUN_DIR FD``, started isolated by the
first command that needs it: client.SUPERVISOR_BOOT; or in the foreground by ``servicectl
supervise``).

One thread polls the control socket, the connections, the health probes, a pidfd per watched
process that is not its child, and the wake-up pipes of signals (SIGCHLD: a child exited) and
of worker threads; every change of a service's state happens there, by the table of
servicectl/supervisor/machine.py (the actions: steps.py). Whatever takes time runs in a
bounded pool of worker threads (jobs.py), one job at a time per service. Commands ask over the
socket (protocol.py) and wait for the answer; it exits after being idle (nothing supervised,
nobody connected) for a while, unless it runs in the foreground.
"""

from __future__ import annotations

import heapq
import os
import queue
import select
import signal
import socket
import struct
import sys
import threading
import time

from servicectl import jsontext  # json's text, without json's re (the supervisor's memory)
from servicectl.definitions.names import plain_name
from servicectl.supervisor import adopt, health, jobs, protocol
from servicectl.supervisor.machine import EXIT, RUNNING, Job, Unit
from servicectl.supervisor.protocol import Conn
from servicectl.supervisor.start import (
    EARLY,
    catch_early_signals,
    children,
    drain,
    exited_child,
    notify,
    reap,
    say,
    say_ready,
    take_run_dir,
    zombie,
)
from servicectl.supervisor.steps import Steps
from servicectl.system import cancel, proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

IDLE_EXIT = float(os.environ.get("SERVICECTL_SUPERVISOR_IDLE", "30") or 30)
SWEEP_DELAY = 1.0  # a zombie child no thread reaped for this long is an orphan's: reaped
CODE_CHECK = 2.0  # how often it looks whether its own code was upgraded on disk
# What the jobs import on the way (inside functions): imported once at start-up, so that an
# upgrade of the files on disk never mixes new modules into this process's old code.
PRELOAD = ("servicectl.system.ready", "servicectl.service.action", "subprocess")
JOBS = 64  # worker threads at most (more jobs wait their turn)
IN = select.POLLIN | select.POLLHUP | select.POLLERR


class Supervisor(Steps):
    def __init__(self, run: str, listener: socket.socket, foreground: bool = False) -> None:
        self.run = run
        self.listener = listener
        self.foreground = foreground
        self.units: dict[str, Unit] = {}
        self.conns: dict[int, Conn] = {}
        self.children: dict[int, Unit] = {}  # watched child PID -> unit (SIGCHLD reaps them)
        self.pidfds: dict[int, Unit] = {}  # pidfd -> unit, for watched processes not ours
        self.kept: dict[int, Any] = {}  # PID -> the Popen of a watched child (never polled)
        self.saved: dict[str, int] = {}  # name -> digest of the definition kept on disk
        self.timers: list[tuple[float, int, str]] = []
        self.seq = 0
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sig_r, self.sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller = select.poll()
        for fd in (listener.fileno(), self.wake_r, self.sig_r):
            self.poller.register(fd, IN)
        self.prober = health.Prober(self.poller, self.unhealthy, self.health_changed)
        self.busy = 0  # jobs running
        self.backlog: list[tuple[Unit, Job, Any, tuple[Any, ...]]] = []  # jobs waiting a thread
        self.idle_since = time.monotonic()
        self.sweep_at: float | None = None
        self.zombies, self.rescan = set[int](), False  # rescan: see _reap_children
        self.chld = False
        self.leaving = False
        self.handover: dict[str, Any] | None = None
        self.refused: set[str] = set()  # schemas a hand-over to failed for
        me = proc.read_proc(os.getpid())
        self.me = (os.getpid(), me.starttime if me else 0)
        self.hello = protocol.hello()
        self.to_log: set[str] = set()  # units whose transitions are not written yet
        self.code = adopt.code_stamp()
        self.code_at = time.monotonic() + CODE_CHECK
        self.lock_fd = -1  # the run directory's supervisor lock (kept across a hand-over)

    # ------------------------------------------------------------------ the loop

    def loop(self) -> None:
        signal.set_wakeup_fd(self.sig_w, warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        if EARLY:  # asked to leave before the loop listened for it: leave now, cleanly
            self.leaving = True
        while not self.leaving:
            for fd, ev in self.poller.poll(self._timeout()):
                try:
                    self._dispatch(fd, ev)
                except Exception as exc:  # noqa: BLE001 - one bad event must not end supervision
                    from servicectl import lastresort

                    text = lastresort.traceback_text(exc)
                    say(f"{lastresort.describe(exc)}; carrying on\n{text}")
            if self.chld:
                self.chld = False
                self._reap_children()
            self._timers()
            if self.handover is not None and not self.busy and not self.backlog:
                adopt.exec_handover(self)
        self._leave()

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.leaving = True
        elif signum == signal.SIGCHLD:
            self.chld = True

    def _timeout(self) -> int:
        due = [self.idle_since + IDLE_EXIT] if not self.foreground else []
        if self.timers:
            due.append(self.timers[0][0])
        if self.units:
            due.append(self.code_at)
        if self.sweep_at is not None:
            due.append(self.sweep_at)
        probe = self.prober.next_due()
        if probe is not None:
            due.append(probe)
        if not due:
            return -1
        return max(0, int((min(due) - time.monotonic()) * 1000) + 1)

    def _dispatch(self, fd: int, ev: int) -> None:
        if fd == self.listener.fileno():
            self._accept()
        elif fd in (self.wake_r, self.sig_r):
            drain(fd)
            while not self.events.empty():
                self._event(self.events.get())
        elif fd in self.pidfds:
            unit = self.pidfds[fd]
            self.event(unit, EXIT, *self.collect(unit))
        elif fd in self.conns:
            self._read(self.conns[fd])
        else:
            self.prober.ready(fd, ev)

    def _timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, name = heapq.heappop(self.timers)
            unit = self.units.get(name)
            if unit is not None and unit.job is None and self.handover is None:
                self.next(unit)
        self.prober.tick(now)
        if self.to_log:
            self._flush_logs()
        if now >= self.code_at:
            self.code_at = now + CODE_CHECK
            self._code_changed()
        if self.sweep_at is not None and now >= self.sweep_at:
            self._sweep()
        if self.units or self.conns or self.busy or self.foreground:
            self.idle_since = now
        elif now - self.idle_since >= IDLE_EXIT:
            say(f"idle for {IDLE_EXIT:g} s: leaving")
            self.leaving = True

    def _leave(self) -> None:
        """Stop listening; what runs keeps running (unsupervised: status says so, and the next
        command that acts starts a supervisor that adopts it)."""
        try:
            os.unlink(os.path.join(self.run, protocol.SOCKET_NAME))
        except OSError:
            pass
        self.listener.close()
        if self.units:
            say(f"leaving; no longer supervised: {', '.join(sorted(self.units))}")
        else:
            adopt.mark(self.run, False)

    def post(self, event: tuple[Any, ...]) -> None:
        """From a worker thread: hand ``event`` to the loop."""
        self.events.put(event)
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass  # the loop has wake-ups pending already

    def _event(self, event: tuple[Any, ...]) -> None:
        if event[0] == "progress":
            _, conn, what, budget = event
            if self.alive_conn(conn):
                self._send(conn, {"progress": [what, budget]}, wait=False)
            return
        _, unit, job, result = event
        if result.error is not None and job.own and not jobs.interrupted(result.error):
            say(f"{unit.name}: {job.kind}: {type(result.error).__name__}: {result.error}")
        self.busy -= 1
        self._next_job()
        if unit.job is job:
            unit.job = None
        job.cancel.close()
        for child in result.children:
            if child.returncode is None and child.pid in (result.alive or (0,))[:1]:
                self.kept[child.pid] = child
        self.on_done(unit, job, job.conn if self.alive_conn(job.conn) else None, result)
        self.next(unit)

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
        if not data or len(conn.buf) + len(data) > protocol.MAX_LINE:
            self._closed(conn)
            return
        conn.buf += data
        while b"\n" in conn.buf and self.alive_conn(conn):
            line, _, conn.buf = conn.buf.partition(b"\n")
            try:
                msg = jsontext.loads(line)
            except ValueError:
                msg = None
            self._message(conn, msg if isinstance(msg, dict) else {})

    def _message(self, conn: Conn, msg: dict[str, Any]) -> None:
        op, name = msg.get("op"), msg.get("name")
        if op == "info":
            self.answer(conn, self._info())
        elif op == "hello":
            self._hello(conn, msg)
        elif conn.said is None:
            self._refuse(conn, f"supervisor: say hello first (protocol {protocol.PROTOCOL})")
        elif not isinstance(name, str) or not plain_name(name):
            self._refuse(conn, f"supervisor: bad request {op!r} for {name!r}")
        elif op == "cancel":
            unit = self.units.get(name)
            if unit is not None and unit.job is not None and unit.job.conn is conn:
                unit.job.cancel.set()
        elif op == "confirm":
            self.confirm(conn, name)
        elif op in protocol.OPS:
            self._request(conn, msg, name)
        else:
            self._refuse(conn, f"{name}: unknown request {op!r}")

    def _refuse(self, conn: Conn, message: str) -> None:
        self.answer(conn, {"ok": False, "code": 1, "message": message})

    def _code_changed(self) -> None:
        """servicectl was upgraded (or edited) on disk under this supervisor: it hands its
        services over to the code now there, as it does when a newer command says hello."""
        stamp = adopt.code_stamp()
        if stamp == self.code or self.handover is not None or not self.units:
            return
        self.code = stamp
        import servicectl

        path = os.path.dirname(os.path.dirname(os.path.realpath(servicectl.__file__)))
        said = {"python": sys.executable, "path": path, "schema": f"on disk {stamp}"}
        self._begin_handover(said, "its code changed on disk (an upgrade?)")

    def _begin_handover(self, said: dict[str, Any], why: str) -> None:
        """Stop accepting; what waits is answered "handing over" (asked again of the new
        code); once the jobs under way are done, the loop executes the new code."""
        say(f"{why}: handing its services over")
        self.handover = said
        self.poller.unregister(self.listener.fileno())  # it stops accepting
        for unit in self.units.values():
            for waiting, _ in unit.waiting:
                self._handing_over(waiting)
            unit.waiting = []

    def _hello(self, conn: Conn, msg: dict[str, Any]) -> None:
        said = {k: v for k, v in msg.items() if k != "op"}
        if protocol.same_code(said, self.hello):
            conn.said = said
            self.answer(conn, {"ok": True, "pid": self.me[0], **self.hello})
            return
        why = (
            f"the supervisor (pid {self.me[0]}) runs servicectl {self.hello['version']} "
            f"(protocol {self.hello['protocol']}, schema {self.hello['schema']}); this "
            f"command is {said.get('version')} (protocol {said.get('protocol')}, schema "
            f"{said.get('schema')})"
        )
        python, path = said.get("python"), said.get("path")
        if not isinstance(python, str) or not isinstance(path, str) or not python:
            self._refuse(conn, f"{why}: a hand-over needs the command's interpreter")
            return
        if str(said.get("schema")) in self.refused:
            self._refuse(conn, f"{why}; a hand-over to it failed: see {protocol.LOG_NAME}")
            return
        if self.handover is None:
            self._begin_handover(said, why)
        self._handing_over(conn)

    def _handing_over(self, conn: Conn) -> None:
        self.answer(conn, {"ok": False, "handover": True, "message": "handing over"})

    def _request(self, conn: Conn, msg: dict[str, Any], name: str) -> None:
        if self.handover is not None:
            self._handing_over(conn)
            return
        try:
            svc, dirs = protocol.read_definition(msg)
            if svc.name != name or os.path.realpath(dirs.run) != os.path.realpath(self.run):
                raise ValueError("it is not this service's, or not of this run directory")
        except (ValueError, OSError) as exc:
            self._refuse(conn, f"supervisor: a definition could not be read: {exc}")
            return
        unit = self.units.get(name)
        if unit is None:
            unit = self.units[name] = Unit(name)
            adopt.mark(self.run, True)
        unit.svc, unit.dirs = svc, dirs
        adopt.save_definition(unit, self.saved)
        conn.names.add(name)
        self.request(conn, msg, unit)

    def _info(self) -> dict[str, Any]:
        units = {
            n: {**u.info(), "held": False, "busy": u.job is not None} for n, u in self.units.items()
        }
        return {"ok": True, "pid": self.me[0], **self.hello, "units": units}

    def answer(self, conn: Conn, reply: dict[str, Any]) -> None:
        self._send(conn, reply, wait=True)

    def _send(self, conn: Conn, reply: dict[str, Any], wait: bool) -> None:
        data = jsontext.dumps(reply).encode() + b"\n"
        try:
            if wait:
                conn.sock.settimeout(5)
                conn.sock.sendall(data)
                conn.sock.setblocking(False)
            else:
                conn.sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            pass  # it is gone (its closing is seen by the loop), or it does not read

    def _closed(self, conn: Conn) -> None:
        self.poller.unregister(conn.sock.fileno())
        del self.conns[conn.sock.fileno()]
        conn.sock.close()
        self.gone(conn)

    def alive_conn(self, conn: Conn | None) -> bool:
        return conn is not None and self.conns.get(conn.sock.fileno()) is conn

    def progress_for(self, conn: Conn | None) -> Any:
        def progress(name: str, what: str, budget: float | None = None) -> None:
            if conn is not None:
                self.post(("progress", conn, what, budget))

        return progress

    # ------------------------------------------------------------------ jobs

    def work(self, unit: Unit, kind: str, conn: Conn | None, fn: Any, *args: Any) -> None:
        """Start ``fn`` as the unit's job in a worker thread (or once one is free)."""
        job = Job(kind, conn, cancel.Cancel())
        unit.job = job
        hands = jobs.Hands(self.me, unit, job.cancel, respawn=kind == "respawn")
        hands.lines, unit.lines = unit.lines, []
        self.backlog.append((unit, job, fn, (hands, *args)))
        self._next_job()

    def _next_job(self) -> None:
        while self.backlog and self.busy < JOBS:
            unit, job, fn, args = self.backlog.pop(0)
            self.busy += 1

            def run(unit: Unit = unit, job: Job = job, fn: Any = fn, args: Any = args) -> None:
                result = jobs.run(job.kind, fn, *args)
                self.post(("done", unit, job, result))

            threading.Thread(target=run, name=f"{job.kind} {unit.name}", daemon=True).start()

    # ------------------------------------------------------------------ watching processes

    def watch(self, unit: Unit, pid: int, starttime: int) -> None:
        """Watch ``pid``: a child through SIGCHLD, any other process through a pidfd; one that
        is gone already is an exit now."""
        self.unwatch(unit)
        if (pid, starttime) != (unit.pid, unit.starttime):
            unit.health = None  # a new process: its health is not known yet
        unit.pid, unit.starttime = pid, starttime
        unit.move(RUNNING)
        info = proc.read_proc(pid)
        if info is not None and info.starttime == starttime and info.ppid == os.getpid():
            self.children[pid] = unit
            self.chld = True  # it may have exited already: look at once
        elif info is None or info.zombie or info.starttime != starttime:
            self.event(unit, EXIT, None, "it exited before its supervisor could watch it")
            return
        else:
            handle = proc.Handle(pid, starttime)
            if handle.fd is None or handle.fd < 0 or not handle.valid:
                handle.close()
                self.event(unit, EXIT, None, "it exited before its supervisor could watch it")
                return
            unit.handle = handle
            self.pidfds[handle.fd] = unit
            self.poller.register(handle.fd, select.POLLIN)
        assert unit.svc is not None
        self.prober.begin(unit)

    def unwatch(self, unit: Unit) -> None:
        self.prober.end(unit)
        if self.children.get(unit.pid) is unit:
            del self.children[unit.pid]
        if unit.handle is not None:
            if unit.handle.fd is not None:
                self.poller.unregister(unit.handle.fd)
                self.pidfds.pop(unit.handle.fd, None)
            unit.handle.close()
            unit.handle = None

    def collect(self, unit: Unit) -> tuple[int | None, str]:
        """The exit status of a watched process that is gone (it may have become a child)."""
        code, reaped = reap(unit.pid)
        self._reaped(unit.pid, code, reaped)
        if reaped:
            return code, ""
        return None, "its supervisor was not its parent"

    def _reaped(self, pid: int, code: int | None, reaped: bool) -> None:
        child = self.kept.pop(pid, None)
        if child is not None and reaped:
            child.returncode = code  # its Popen must never wait for it again
        from servicectl.service.launch import forget

        forget(pid)

    def _reap_children(self) -> None:
        """SIGCHLD: collect the watched children a peek names as exited, at once (no thousand
        waitpid calls, 2 ms); every watched one if it names none of ours, else at the sweep."""
        found = False
        while (pid := exited_child()) in self.children and self._collect_child(pid or 0):
            found = True
        self.rescan = found  # (what the peek cannot show, such as reaped elsewhere)
        for pid in () if found else list(self.children):
            self._collect_child(pid)
        if self.sweep_at is None:
            self.sweep_at = time.monotonic() + SWEEP_DELAY

    def _collect_child(self, pid: int) -> bool:
        """Collect the watched child ``pid`` if it exited (or was reaped elsewhere)."""
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            got, status = pid, -1
        if got != pid:
            return False
        unit = self.children.pop(pid)  # collected once: the event handles its exit
        code = os.waitstatus_to_exitcode(status) if status >= 0 else None
        self._reaped(pid, code, status >= 0)
        self.event(unit, EXIT, code, "" if status >= 0 else "it was reaped elsewhere")
        return True

    def _sweep(self) -> None:
        """Reap zombie children nobody reaps: orphans of supervised services (this process is
        their subreaper). A job reaps its own children at once; a zombie seen twice, a sweep
        apart, is nobody's. First, the watched children a peek alone left (_reap_children)."""
        for pid in list(self.children) if self.rescan else ():
            self._collect_child(pid)
        self.rescan = False
        mine = set(self.children) | self.prober.pids() | set(self.kept)
        zombies = {c for c in children() if c not in mine and zombie(c)}
        for pid in zombies & self.zombies:
            reap(pid)
        self.zombies = zombies - self.zombies
        self.sweep_at = time.monotonic() + SWEEP_DELAY if self.zombies else None

    # ------------------------------------------------------------------ states

    def transition(self, unit: Unit, state: str, why: str) -> None:
        """Move the unit, and say so with the time in the service's log: written by the job
        that follows (after its work: a respawn is not delayed by it), else by the loop."""
        old = unit.state
        unit.move(state)
        if old != state and unit.svc is not None and unit.svc.stdout is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            said = f"{old} -> {state}: {why}" if why else f"{old} -> {state}"
            unit.lines.append(f"{stamp} servicectl: {said}\n")
            self.to_log.add(unit.name)

    def _flush_logs(self) -> None:
        for name in self.to_log:
            unit = self.units.get(name)
            if unit is not None and unit.job is None and unit.lines:
                lines, unit.lines = unit.lines, []
                jobs.write_lines(unit.svc, lines)
        self.to_log.clear()

    def schedule(self, unit: Unit) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (unit.due, self.seq, unit.name))

    def forget(self, unit: Unit) -> None:
        if unit.lines:
            lines, unit.lines = unit.lines, []
            jobs.write_lines(unit.svc, lines)
        if self.units.get(unit.name) is unit:
            del self.units[unit.name]
            if unit.dirs is not None:
                adopt.forget_definition(unit.dirs.run, unit.name, self.saved)

    def health_changed(self, unit: Unit, state: dict[str, Any]) -> None:
        """The prober's verdict changed: the record says so (a short thread, under the lock)."""
        unit.health = state
        threading.Thread(target=jobs.write_health, args=(unit, state), daemon=True).start()


def main(argv: list[str]) -> int:
    """RUN_DIR FD [--foreground] [--handover FDS]: supervise the run directory's services; say
    "ready" (or "running": another one does, or why not) on FD ("-": none) once listening."""
    catch_early_signals()
    run, ready = argv[0], argv[1]
    foreground = "--foreground" in argv
    handover = argv[argv.index("--handover") + 1] if "--handover" in argv else None
    got = take_run_dir(run, ready, foreground, handover)
    if isinstance(got, int):
        return got
    state, listener, lock = got
    proc.become_subreaper()
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    sup = Supervisor(run, listener, foreground)
    sup.lock_fd = lock
    if handover is not None:
        said, units = adopt.load(state)
        adopt.restore(sup, said, units)
    else:
        say(f"supervising the services of {run}" + (" (foreground)" if foreground else ""))
        adopt.adopt_orphans(sup)
    say_ready(ready, "ready")
    if foreground:
        notify(f"READY=1\nSTATUS=supervising the services of {run}")
    os.environ.pop("NOTIFY_SOCKET", None)  # its own: never handed to what it runs or executes
    sup.loop()
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
