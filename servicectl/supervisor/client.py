"""The supervisor as commands reach it: the link to the run directory's supervisor (started on
demand), one JSON object a line each way over a unix stream socket in the run directory.

A command that acts on a supervised service first *holds* it (under the service's lock): while
a connection holds a service, the supervisor respawns nothing of it and does only what that
connection asks. Closing the connection, on purpose or because its servicectl died, releases
it: what still runs is supervised again, what has exited stays stopped.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicectl.errors import ServicectlError
from servicectl.service.supervised import OURS, delegated, supervisor_alive
from servicectl.states import (
    PHASE_RUNNING,
)

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.system.proc import Handle

SOCKET_NAME = ".supervisor.sock"  # no service can be named so: definitions never start with "."
LOCK_NAME = ".supervisor.lock"
LOG_NAME = ".supervisor.log"  # in the log directory: the supervisor's own output
STARTUP_TIMEOUT = 10.0  # how long a command waits for a supervisor it started to listen
REPLY_TIMEOUT = 30.0  # for requests that do not run a start (a hold, a release)
SPAWN_MARGIN = 15.0  # added to start_timeout for a spawn request
EXIT_WAIT = 1.0  # how long a start waits to learn the exit status of what died under it
_STARTING = threading.Lock()


# ---------------------------------------------------------------------------------------------
# The link to the supervisor


class SupervisorError(ServicectlError):
    """The supervisor could not be started or reached, or it refused a request."""


class Link:
    """One connection to the run directory's supervisor, holding one service."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.buffer = b""
        self.held: dict[str, Any] = {}
        self.unanswered = 0  # requests whose answer was not read (an interrupted wait)

    def request(self, op: str, timeout: float = REPLY_TIMEOUT, **args: Any) -> dict[str, Any]:
        """Send one request and wait for its answer; an error answer is raised as it came."""
        import json

        data = json.dumps({"op": op, "name": self.name, **args}).encode() + b"\n"
        try:
            self.sock.settimeout(timeout)
            while self.unanswered:  # the answer to a request whose wait was interrupted
                self._line()
                self.unanswered -= 1
            self.sock.sendall(data)
            self.unanswered += 1
            line = self._line()
            self.unanswered -= 1
        except OSError as exc:
            raise SupervisorError(
                f"{self.name}: its supervisor did not answer ({op}: "
                f"{exc.strerror or exc or 'timed out'}); see {LOG_NAME} in the log directory"
            ) from None
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise ServicectlError(
                reply.get("message", f"{self.name}: the supervisor refused {op}"),
                exit_code=int(reply.get("code", 1)),
                detail=reply.get("detail", ""),
            )
        return reply

    def _line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the connection was closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def hold(self, svc: Service | None = None, dirs: Dirs | None = None) -> dict[str, Any]:
        """Take the service from the supervisor: it cancels a pending respawn and respawns
        nothing until this link releases it or closes. With ``svc``, the supervisor keeps
        this definition for later respawns."""
        args: dict[str, Any] = {}
        if svc is not None:
            import base64
            import pickle

            args["service"] = base64.b64encode(pickle.dumps((svc, dirs), 4)).decode()
        self.held = self.request("hold", **args)
        return self.held

    def spawn(self, svc: Service, notify: str | None) -> tuple[RemoteChild, Handle]:
        """Have the supervisor spawn the service (its child), record it and let it run; the
        process as the readiness wait sees it, and a handle on it (one that is gone already
        is seen to have died, with its exit status)."""
        from servicectl.system.proc import Handle

        reply = self.request("spawn", svc.start_timeout + SPAWN_MARGIN, notify=notify)
        handle = Handle(int(reply["pid"]), int(reply["starttime"]))
        return RemoteChild(self, handle.pid), handle

    def release(self, pid: int | None = None, starttime: int = 0) -> dict[str, Any]:
        """Hand the service back: supervise ``pid`` from now on (None: whatever of it still
        runs; nothing: it stays stopped)."""
        return self.request("release", pid=pid, starttime=starttime)

    def release_started(self, dirs: Dirs, pid: int) -> None:
        """Hand back a service whose start this link confirmed: its supervisor watches the
        recorded process from now on (if it died just now, status says it is unsupervised)."""
        from servicectl.system.record import read_record

        record, _ = read_record(dirs.run, self.name)
        starttime = record.starttime if record is not None and record.pid == pid else 0
        try:
            self.release(pid, starttime)
        except SupervisorError:
            pass

    def abort(self) -> None:
        """Undo a start: the supervisor kills what it spawned, with its group, and removes the
        PID file and record; the service stays stopped."""
        self.request("abort", SPAWN_MARGIN)

    def close(self) -> None:
        self.sock.close()


def load_definition(payload: str) -> tuple[Any, Any]:
    """In the supervisor: the (Service, Dirs) that ``Link.hold`` sent; only servicectl's value
    types, paths and sets are accepted."""
    import base64
    import io
    import pickle

    class Loader(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in (
                ("pathlib", "PosixPath"),
                ("pathlib", "PurePosixPath"),
                ("builtins", "frozenset"),
                ("builtins", "set"),
            ):
                return super().find_class(module, name)
            if module.startswith("servicectl."):
                found = super().find_class(module, name)
                if isinstance(found, type) and issubclass(found, tuple):
                    return found
            raise pickle.UnpicklingError(f"{module}.{name} is not a definition's value")

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs

    try:
        svc, dirs = Loader(io.BytesIO(base64.b64decode(payload))).load()
        if not isinstance(svc, Service) or not isinstance(dirs, Dirs):
            raise TypeError("not a (Service, Dirs) pair")
    except Exception as exc:  # noqa: BLE001 - any malformed payload is refused alike
        raise ServicectlError(f"supervisor: a definition could not be read: {exc}") from None
    return svc, dirs


class RemoteChild:
    """The spawned process as the start's readiness wait sees it (the supervisor is its parent,
    so only the supervisor knows its exit status)."""

    def __init__(self, link: Link, pid: int) -> None:
        self.link = link
        self.pid = pid
        self.returncode: int | None = None
        self.asked = False

    def poll(self) -> int | None:
        if not self.asked:
            self.asked = True
            try:
                code = self.link.request("exit", EXIT_WAIT + 5, wait=EXIT_WAIT).get("code")
            except ServicectlError:
                code = None
            self.returncode = int(code) if isinstance(code, int) else None
        return self.returncode


def socket_address(run: Path) -> tuple[str, int | None]:
    """The control socket's address, and a descriptor to close once it is used: a path too
    long for a socket address (108 bytes) is reached through the run directory's descriptor."""
    path = str(run / SOCKET_NAME)
    if len(os.fsencode(path)) < 100:
        return path, None
    fd = os.open(run, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{SOCKET_NAME}", fd


def _connect(run: Path) -> socket.socket | None:
    """A connection to the run directory's supervisor, or None if none listens there."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    fd = None
    try:
        address, fd = socket_address(run)
        sock.connect(address)
        _check_peer(sock)
    except (OSError, ServicectlError):
        sock.close()
        return None
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def _check_peer(sock: socket.socket) -> None:
    """The listener must be servicectl's own user or root."""
    import socket
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    if uid not in (0, os.geteuid()):
        raise ServicectlError(f"the supervisor socket is served by uid {uid}")


def link(svc: Service, dirs: Dirs) -> Link:
    """A link holding ``svc``, to the run directory's supervisor, started if none runs."""
    for _ in range(3):
        sock = _connect(dirs.run)
        if sock is None:
            with _STARTING:  # the fleet's threads start one supervisor, not one each
                sock = _connect(dirs.run)
                if sock is None:
                    _start_supervisor(svc, dirs)
                    sock = _connect(dirs.run)
        if sock is None:
            continue
        held = Link(sock, svc.name)
        try:
            held.hold(svc, dirs)
            return held
        except SupervisorError:  # it was exiting (idle) as we came: start another one
            held.close()
    raise SupervisorError(
        f"{svc.name}: cannot reach its supervisor in {dirs.run}; see {dirs.log / LOG_NAME}"
    )


@contextmanager
def holding(svc: Service, dirs: Dirs) -> Iterator[dict[str, Any]]:
    """Hold ``svc`` for a stop, if a supervisor runs: no respawn can happen until the block
    ends; then what still runs of it is supervised again, and what is gone stays stopped."""
    sock = _connect(dirs.run)
    if sock is None:
        yield {}
        return
    held = Link(sock, svc.name)
    try:
        try:
            reply = held.hold()
        except SupervisorError:
            reply = {}  # it died or is leaving: nothing of it can respawn the service
        yield reply
        if reply:
            held.release()
    finally:
        held.close()


def attach(svc: Service, dirs: Dirs) -> str:
    """Put an already running service under supervision if its definition asks for it and no
    live supervisor has it (its supervisor was killed, or it was started without one); a note
    for the start's message. Called by start, under the service's lock."""
    from servicectl.system.record import read_record, write_record

    record, _ = read_record(dirs.run, svc.name)
    if record is None or not delegated(svc):
        return ""
    if record.supervision == OURS and supervisor_alive(record):
        return ""
    was = record.supervision == OURS
    held = link(svc, dirs)
    try:
        reply = held.release(record.pid, record.starttime)
    finally:
        held.close()
    pid, starttime = reply["supervisor"]
    write_record(
        dirs.run,
        svc.name,
        record._replace(
            phase=PHASE_RUNNING if record.phase == "unrecorded" else record.phase,
            supervision=OURS,
            supervisor_pid=pid,
            supervisor_starttime=starttime,
            restarts=0,
        ),
    )
    if was:
        return f"; its supervisor had gone: supervised again (by pid {pid})"
    return f"; now supervised (restart: {svc.restart}, by pid {pid})"


def _start_supervisor(svc: Service, dirs: Dirs) -> None:
    """Start the run directory's supervisor, detached like a service, and wait until it
    listens (or says another one does)."""
    import select
    import subprocess
    import sys

    import servicectl
    from servicectl.files import safe
    from servicectl.paths import ensure_dir

    ensure_dir(dirs.log, 0o750, "log directory")
    try:  # R-SUP-1: as any output file (a FIFO or a planted symlink never hangs or steers it)
        log = safe.open_output(dirs.log / LOG_NAME, None, os.geteuid(), "supervisor's log")
    except ServicectlError as exc:
        raise SupervisorError(f"{svc.name}: {exc.message}", exit_code=exc.exit_code) from None
    except OSError as exc:
        raise SupervisorError(
            f"{svc.name}: cannot open the supervisor's log {dirs.log / LOG_NAME}: {exc.strerror}"
        ) from None
    # R-EXEC-1: an isolated interpreter in "/" (no current directory, PYTHON* variable or user
    # site on its path) that loads servicectl from the very directory this one came from.
    env = {
        k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET" and not k.startswith("PYTHON")
    }
    package = str(Path(servicectl.__file__).resolve().parent)
    argv = [sys.executable, "-I", "-c", SUPERVISOR_BOOT, package, "servicectl.supervisor.daemon"]
    r, w = os.pipe()
    try:
        subprocess.Popen(
            [*argv, str(dirs.run), str(w)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(w,),
            cwd="/",
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise SupervisorError(f"{svc.name}: cannot start its supervisor: {exc.strerror}") from None
    finally:
        os.close(w)
        os.close(log)
    try:
        said = b""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while b"\n" not in said and time.monotonic() < deadline:
            if not select.select([r], [], [], deadline - time.monotonic())[0]:
                break
            chunk = os.read(r, 4096)
            if not chunk:
                break
            said += chunk
    finally:
        os.close(r)
    if not said.startswith((b"ready", b"running")):
        text = said.decode("utf-8", "replace").strip() or "it did not say it was listening"
        raise SupervisorError(
            f"{svc.name}: its supervisor did not start: {text}; see {dirs.log / LOG_NAME}"
        )


# How the supervisor is started (R-EXEC-1): ``python -I -c SUPERVISOR_BOOT PACKAGE
# servicectl.supervisor.daemon RUN_DIR FD``. PACKAGE is the directory of the servicectl that
# starts it (site-packages once installed, the checkout when run from source): the package is loaded
# from there by its path, and nothing else is looked up beside it; the standard library and
# the dependencies come from the interpreter's own isolated path.
SUPERVISOR_BOOT = (
    "import sys\n"
    "from importlib.util import module_from_spec, spec_from_file_location\n"
    "d = sys.argv[1]\n"
    "s = spec_from_file_location('servicectl', d + '/__init__.py', "
    "submodule_search_locations=[d])\n"
    "m = module_from_spec(s)\n"
    "sys.modules['servicectl'] = m\n"
    "s.loader.exec_module(m)\n"
    "from servicectl.supervisor.daemon import run\n"
    "sys.exit(run(sys.argv[3:]))\n"
)
