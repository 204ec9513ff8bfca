"""Health checks (``health:``), driven by the supervisor's poll loop: no thread per probe, no
blocking call. A tcp, unix or http probe is one non-blocking socket in the loop's poll set
(http: a GET of HTTP/1.0 written by hand and its status line read, without http.client); a
command probe is one process, run as the service's user with its environment, whose pidfd is
in the poll set. Probes begin ``interval`` seconds after the service is ready (and watched),
one at a time per service, every ``interval`` seconds; one that takes longer than ``timeout``
has failed. After ``retries`` failures in a row the supervisor restarts the service
(steps.Steps.unhealthy); every change of the verdict or of the last result is written to the
record (status shows it).
"""

from __future__ import annotations

import errno
import heapq
import os
import select
import signal
import socket
import time

from servicectl.states import HEALTHY, UNHEALTHY

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any, Callable

    from servicectl.definitions.schema import Health
    from servicectl.supervisor.machine import Unit

STARTING = "starting"  # no probe has answered yet
TIMES = ("never", "once", "twice", "three times", "four times", "five times", "six times")


def times(n: int) -> str:
    return TIMES[n] if 0 <= n < len(TIMES) else f"{n} times"


class Check:
    """One service's health: its probe, the verdict so far, and the probe in flight."""

    __slots__ = (
        "unit",
        "spec",
        "target",
        "failures",
        "state",
        "since",
        "last",
        "next_at",
        "deadline",
        "sock",
        "child",
        "fd",
        "sent",
        "got",
        "env",
        "run_as",
    )

    def __init__(self, unit: Unit, spec: Health) -> None:
        self.unit = unit
        self.spec = spec
        self.target: Any = None  # a socket address, or (host, port, path) for http
        self.failures = 0
        self.state = STARTING
        self.since = time.time()
        self.last = ""
        self.next_at = time.monotonic() + spec.interval
        self.deadline = 0.0
        self.sock: socket.socket | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.fd = -1  # the descriptor in the poll set while a probe is in flight
        self.sent = False
        self.got = b""
        self.env: dict[str, str] | None = None
        self.run_as: dict[str, Any] = {}

    def record(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": round(self.since, 3),
            "last": self.last,
            "failures": self.failures,
            "probe": self.spec.describe(),
        }


class Prober:
    """Every service's health check, for one poll loop."""

    def __init__(
        self,
        poller: select.poll,
        unhealthy: Callable[[Unit, str], None],
        changed: Callable[[Unit, dict[str, Any]], None],
    ) -> None:
        self.poller = poller
        self.unhealthy = unhealthy
        self.changed = changed
        self.checks: dict[str, Check] = {}
        self.inflight: dict[int, Check] = {}  # fd -> check
        self.due: list[tuple[float, int, str]] = []
        self.seq = 0

    def begin(self, unit: Unit) -> None:
        """The service runs and is watched: probe it every interval from now on."""
        spec = unit.svc.health if unit.svc is not None else None
        if spec is None:
            return
        self.end(unit)
        check = self.checks[unit.name] = Check(unit, spec)
        self._queue(check)

    def end(self, unit: Unit) -> None:
        check = self.checks.pop(unit.name, None)
        if check is not None:
            self._drop(check)

    def pids(self) -> set[int]:
        return {c.child.pid for c in self.inflight.values() if c.child is not None}

    def next_due(self) -> float | None:
        due = [self.due[0][0]] if self.due else []
        due += [c.deadline for c in self.inflight.values()]
        return min(due) if due else None

    def tick(self, now: float) -> None:
        for check in [c for c in self.inflight.values() if c.deadline <= now]:
            self._done(check, False, f"did not answer within {check.spec.timeout:g} s")
        while self.due and self.due[0][0] <= now:
            _, _, name = heapq.heappop(self.due)
            found = self.checks.get(name)
            if found is not None and found.fd < 0 and found.next_at <= now:
                self._probe(found)

    def ready(self, fd: int, events: int) -> None:
        check = self.inflight.get(fd)
        if check is None:
            return
        try:
            verdict = self._exited(check) if check.child else self._step(check, events)
        except OSError as exc:
            verdict = (False, exc.strerror or str(exc))
        if verdict is not None:
            self._done(check, *verdict)

    # ------------------------------------------------------------------ probes

    def _queue(self, check: Check) -> None:
        self.seq += 1
        heapq.heappush(self.due, (check.next_at, self.seq, check.unit.name))

    def _probe(self, check: Check) -> None:
        check.deadline = time.monotonic() + check.spec.timeout
        check.sent, check.got = False, b""
        try:
            if check.spec.kind == "command":
                self._spawn(check)
            else:
                self._connect(check)
        except (OSError, ValueError) as exc:
            self._done(check, False, getattr(exc, "strerror", None) or str(exc))

    def _connect(self, check: Check) -> None:
        if check.target is None:
            check.target = _address(check.spec)
        kind = check.spec.kind
        family = socket.AF_UNIX if kind == "unix" else check.target[0]
        address = check.target if kind == "unix" else check.target[1]
        sock = socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        check.sock = sock
        err = sock.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        check.fd = sock.fileno()
        self.inflight[check.fd] = check
        self.poller.register(check.fd, select.POLLOUT)

    def _step(self, check: Check, events: int) -> tuple[bool, str] | None:
        """A socket probe's next step; its verdict once it has one."""
        sock = check.sock
        assert sock is not None
        if not check.sent:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return False, os.strerror(err)
            if check.spec.kind != "http":
                return True, "connected"
            _, _, (host, path) = check.target
            sock.send(
                f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: servicectl\r\n\r\n".encode()
            )
            check.sent = True
            self.poller.modify(check.fd, select.POLLIN)
            return None
        chunk = sock.recv(4096)
        check.got += chunk
        line, found, _ = check.got.partition(b"\r\n")
        if not found and chunk and len(check.got) < 4096:
            return None
        words = line.split()
        if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
            return False, "did not answer HTTP"
        code = int(words[1])
        return 200 <= code < 300, f"answered {code}"

    def _spawn(self, check: Check) -> None:
        import subprocess

        if check.env is None:
            check.env, check.run_as = _command_env(check.unit)
        svc = check.unit.svc
        assert svc is not None and isinstance(check.spec.target, tuple)
        check.child = subprocess.Popen(
            list(check.spec.target),
            env=check.env,
            cwd=str(svc.working_directory),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            **check.run_as,
        )
        check.fd = os.pidfd_open(check.child.pid)
        self.inflight[check.fd] = check
        self.poller.register(check.fd, select.POLLIN)

    def _exited(self, check: Check) -> tuple[bool, str] | None:
        child = check.child
        assert child is not None
        got, status = os.waitpid(child.pid, os.WNOHANG)
        if got != child.pid:
            return None
        child.returncode = code = os.waitstatus_to_exitcode(status)
        return code == 0, f"exited with status {code}" if code >= 0 else f"killed by {-code}"

    def _drop(self, check: Check) -> None:
        """End the probe in flight (its socket closed, its process group killed)."""
        if check.fd >= 0:
            self.poller.unregister(check.fd)
            self.inflight.pop(check.fd, None)
            if check.child is not None:
                os.close(check.fd)
        if check.sock is not None:
            check.sock.close()
        if check.child is not None and check.child.returncode is None:
            try:
                os.killpg(check.child.pid, signal.SIGKILL)
            except OSError:
                pass
            check.child.wait()
        check.fd, check.sock, check.child = -1, None, None

    def _done(self, check: Check, ok: bool, said: str) -> None:
        self._drop(check)
        if self.checks.get(check.unit.name) is not check:
            return
        before = (check.state, check.last, check.failures)
        check.last = f"{check.spec.describe()} {said}"
        if ok:
            check.failures = 0
            if check.state != HEALTHY:
                check.state, check.since = HEALTHY, time.time()
        else:
            check.failures += 1
        verdict = not ok and check.failures >= check.spec.retries
        if verdict and check.state != UNHEALTHY:
            check.state, check.since = UNHEALTHY, time.time()
        check.next_at = time.monotonic() + check.spec.interval
        self._queue(check)
        if (check.state, check.last, check.failures) != before:
            self.changed(check.unit, check.record())
        if verdict:
            n = check.failures
            self.unhealthy(check.unit, f"unhealthy: {check.spec.describe()} {said} {times(n)}")


def _address(spec: Health) -> Any:
    """Where a socket probe connects: a unix path, or (family, sockaddr[, (host, path)])."""
    target = str(spec.target)
    if spec.kind == "unix":
        return target
    path = "/"
    if spec.kind == "http":
        rest = target.split("://", 1)[1]
        hostport, slash, tail = rest.partition("/")
        path = slash + tail if slash else "/"
        target = hostport if ":" in hostport.rstrip("]") else hostport + ":80"
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    info = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0]
    return info[0], info[4], (host, path)


def _command_env(unit: Unit) -> tuple[dict[str, str], dict[str, Any]]:
    """A command probe's environment and user (the service's, as its start gave them)."""
    from servicectl.system.spawn import build_environment, resolve_account

    svc = unit.svc
    assert svc is not None
    account = resolve_account(svc)
    env = build_environment(svc, account)
    if unit.pid:
        env["MAINPID"] = str(unit.pid)
    run_as: dict[str, Any] = {}
    if account.switch:
        run_as = {"user": account.uid, "group": account.gid, "extra_groups": list(account.groups)}
    return env, run_as
