"""The supervisor as commands reach it: a connection to the run directory's supervisor
(started on demand), a hello (protocol.py: a supervisor of other code hands over, and the
command connects again), then one request, answered when the supervisor has carried it out.

A command interrupted while it waits (Ctrl-C, SIGTERM) asks the supervisor to cancel, and
waits for it to have undone what it did (a start kills what it spawned); a command killed
outright closes its connection, which cancels its request all the same.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from servicectl.errors import Interrupted, ServicectlError
from servicectl.supervisor import legacy, protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

    from _typeshed import StrPath

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.service.outcome import Outcome
    from servicectl.service.waits import Progress

STARTUP_TIMEOUT = 10.0  # how long a command waits for a supervisor it started to listen
HANDOVER_TIMEOUT = 30.0  # how long it waits for a supervisor handing over to the new code
REPLY_TIMEOUT = 30.0  # for a hello, and for the undoing of a cancelled request
_STARTING = threading.Lock()


class SupervisorError(ServicectlError):
    """The supervisor could not be started or reached, or it went away mid-request."""


class Lost(SupervisorError):
    """The supervisor went away (it died) while it carried out the request."""


class Link:
    """One connection to the run directory's supervisor."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.buffer = b""

    def send(self, msg: dict[str, Any]) -> None:
        import json

        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def receive(self, timeout: float | None) -> dict[str, Any]:
        import json

        from servicectl.system.turns import paused

        self.sock.settimeout(timeout)
        while b"\n" not in self.buffer:
            with paused():  # a fleet's worker lets another act meanwhile (turns.py)
                chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the connection was closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise ValueError("not an answer")
        return reply

    def answer(self, progress: Progress) -> dict[str, Any]:
        """The final answer to the request sent; progress lines go to ``progress``."""
        while True:
            reply = self.receive(None)
            said = reply.get("progress")
            if isinstance(said, list) and len(said) == 2:
                progress(self.name, str(said[0]), said[1])
                continue
            return reply

    def close(self) -> None:
        self.sock.close()


def ask(op: str, svc: Service, dirs: Dirs, progress: Progress, verb: str = "") -> Outcome:
    """Have the supervisor carry out ``op`` on ``svc`` and wait for it: its Outcome, or its
    error raised as the action would raise it here."""
    request = {"op": op, "name": svc.name, **protocol.definition(svc, dirs)}
    if verb:
        request["verb"] = verb
    deadline = time.monotonic() + HANDOVER_TIMEOUT
    while True:
        link = linked(svc.name, dirs)
        try:
            reply = _exchange(link, request, progress, op)
        finally:
            link.close()
        if not reply.get("handover") or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # it is handing over: the new code answers soon
    if not reply.get("ok"):
        protocol.raise_error(reply, svc.name, op)
    return protocol.read_outcome(reply.get("outcome") or {"name": svc.name, "code": 0})


def _exchange(link: Link, request: dict[str, Any], progress: Progress, op: str) -> dict[str, Any]:
    name = link.name
    try:
        link.send(request)
        try:
            reply = link.answer(progress)
        except KeyboardInterrupt:
            reply = _cancel(link)
        if reply.get("confirm"):
            link.send({"op": "confirm", "name": name})
        return reply
    except (OSError, ValueError) as exc:
        raise Lost(
            f"{name}: its supervisor went away during the {op} ({_why(exc)}); see "
            f"{protocol.LOG_NAME} in the log directory; the next command starts a new one, "
            f"which adopts the service"
        ) from None


def _cancel(link: Link) -> dict[str, Any]:
    """Interrupted: the supervisor undoes the request; its answer says what it left."""
    link.send({"op": "cancel", "name": link.name})
    while True:
        reply = link.receive(REPLY_TIMEOUT)
        if "progress" not in reply:
            break
    if not reply.get("ok") and not reply.get("interrupted"):
        reply["interrupted"] = True  # it failed as it was being undone: still an interruption
    if reply.get("ok"):  # it was done before the cancel came
        reply = {"ok": False, "interrupted": True, "message": _done_anyway(link.name, reply)}
    return reply


def _done_anyway(name: str, reply: dict[str, Any]) -> str:
    said = (reply.get("outcome") or {}).get("message", "done")
    return f"{name}: interrupted, but its supervisor had already done it: {said}"


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def hello() -> dict[str, Any]:
    """This command's hello: its code, and how a supervisor handing over would run it."""
    import sys

    import servicectl

    path = str(Path(servicectl.__file__).resolve().parent.parent)
    return {"op": "hello", **protocol.hello(sys.executable, path)}


def linked(name: str, dirs: Dirs) -> Link:
    """A connection to the run directory's supervisor, started if none runs, that said hello
    with the same code (one of other code hands over to this code first)."""
    deadline = time.monotonic() + HANDOVER_TIMEOUT
    said = hello()
    while True:
        sock = _connect(dirs.run)
        if sock is None:
            with _STARTING:  # the fleet's threads start one supervisor, not one each
                sock = _connect(dirs.run)
                if sock is None:
                    start_supervisor(dirs, name)
                    sock = _connect(dirs.run)
        if sock is not None:
            link = Link(sock, name)
            try:
                link.send(said)
                reply = link.receive(REPLY_TIMEOUT)
            except (OSError, ValueError):
                reply = {"ok": False, "retry": True}
            if reply.get("ok"):
                return link
            if legacy.protocol_1(reply) and legacy.retire(sock, dirs):
                reply = {"retry": True}  # it left: the supervisor started next adopts its services
            link.close()
            if not reply.get("handover") and not reply.get("retry"):
                raise SupervisorError(f"{name}: its supervisor refused it: {reply.get('message')}")
        if time.monotonic() > deadline:
            raise SupervisorError(
                f"{name}: cannot reach its supervisor in {dirs.run}; see "
                f"{os.path.join(dirs.log, protocol.LOG_NAME)}"
            )
        time.sleep(0.02)


def ensure(dirs: Dirs) -> None:
    """Some service of the run directory is supervised (its marker) and no supervisor
    listens: start one, which adopts them (every command that acts does this)."""
    if not protocol.marked(dirs.run):
        return
    sock = _connect(dirs.run)
    if sock is not None:
        sock.close()
        return
    with _STARTING:
        sock = _connect(dirs.run)
        if sock is None:
            try:
                start_supervisor(dirs, "")
            except ServicectlError:
                pass  # said again by the action that needs it
        else:
            sock.close()


def _connect(run: StrPath) -> socket.socket | None:
    """A connection to the run directory's supervisor, or None if none listens there."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    fd = None
    try:
        address, fd = protocol.socket_address(run)
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


def start_supervisor(dirs: Dirs, name: str = "") -> None:
    """Start the run directory's supervisor, detached like a service, and wait until it
    listens (or says another one does)."""
    import subprocess
    import sys

    import servicectl
    from servicectl.files import safe
    from servicectl.paths import ensure_dir, ensure_run_dir

    who = f"{name}: " if name else ""
    ensure_run_dir(dirs.run)
    ensure_dir(dirs.log, 0o750, "log directory")
    path = Path(dirs.log, protocol.LOG_NAME)
    try:  # R-SUP-1: as any output file (a FIFO or a planted symlink never hangs or steers it)
        log = safe.open_output(path, None, os.geteuid(), "supervisor's log")
    except ServicectlError as exc:
        raise SupervisorError(f"{who}{exc.message}", exit_code=exc.exit_code) from None
    except OSError as exc:
        raise SupervisorError(
            f"{who}cannot open the supervisor's log {path}: {exc.strerror}"
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
        raise SupervisorError(f"{who}cannot start its supervisor: {exc.strerror}") from None
    finally:
        os.close(w)
        os.close(log)
    said = _read_ready(r)
    if not said.startswith((b"ready", b"running")):
        text = said.decode("utf-8", "replace").strip() or "it did not say it was listening"
        raise SupervisorError(f"{who}its supervisor did not start: {text}; see {path}")


def _read_ready(r: int) -> bytes:
    import select

    said = b""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while b"\n" not in said and time.monotonic() < deadline:
            if not select.select([r], [], [], deadline - time.monotonic())[0]:
                break
            chunk = os.read(r, 4096)
            if not chunk:
                break
            said += chunk
    finally:
        os.close(r)
    return said


# How the supervisor is started (R-EXEC-1): ``python -I -c SUPERVISOR_BOOT PACKAGE
# servicectl.supervisor.daemon RUN_DIR FD``. PACKAGE is the directory of the servicectl that
# starts it (site-packages once installed, the checkout when run from source): the package is
# loaded from there by its path, and nothing else is looked up beside it; the standard library and
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


__all__ = ["Interrupted", "SupervisorError", "ask", "ensure", "linked", "start_supervisor"]
