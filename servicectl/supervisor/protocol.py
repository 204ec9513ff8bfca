"""What the supervisor and the commands say to each other: one JSON object a line each way over
a unix stream socket in the run directory (RUN/.supervisor.sock, mode 0600, SO_PEERCRED: root
and the supervisor's own user only).

Every connection opens with a hello: ``{"op": "hello", "protocol": N, "schema": HASH,
"version": V, "python": EXE, "path": DIR}``; the supervisor answers with its own. Versions
differ (the protocol, or the definitions' schema hash: servicectl was upgraded or edited under
a running supervisor): the supervisor hands its services over to a supervisor of the caller's
code (docs/supervision.md) and answers ``{"ok": false, "handover": true}``; the caller connects
again. A definition travels as data keyed by field name (``encode``), never pickled: a newer
supervisor reads an older definition (a field it lacks takes its default), an older one never
has to read a newer one.

Requests after the hello: ``{"op": "start"|"stop"|"restart"|"try-restart"|"reload"|
"force-reload"|"action", "name": NAME, "definition": {...}, "dirs": {...}, "verb": V}``,
answered by zero or more ``{"progress": [WHAT, SECONDS]}`` lines and then one
``{"ok": true, "outcome": {...}}`` or ``{"ok": false, "message": ..., "code": N}``;
``{"op": "cancel", "name": NAME}`` (the caller was interrupted: undo it), ``{"op": "confirm",
"name": NAME}`` (a stop's answer was heard), ``{"op": "info"}``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

    from _typeshed import StrPath

PROTOCOL = 2  # 1: the hold/spawn/release protocol with pickled definitions (0.1.0)
SOCKET_NAME = ".supervisor.sock"  # no service can be named so: definitions never start with "."
LOCK_NAME = ".supervisor.lock"
LOG_NAME = ".supervisor.log"  # in the log directory: the supervisor's own output
MARKER_NAME = ".supervised"  # present while some service of the run directory is supervised
MAX_LINE = 1 << 20
OPS = ("start", "stop", "restart", "try-restart", "reload", "force-reload", "action")


def hello(python: str = "", path: str = "") -> dict[str, Any]:
    """This code's hello: its protocol, schema hash and version, and (from a command) how to
    run it: the interpreter and the directory that holds the servicectl package."""
    import servicectl
    from servicectl.definitions.digest import schema_hash

    said: dict[str, Any] = {
        "protocol": PROTOCOL,
        "schema": schema_hash(),
        "version": servicectl.__version__,
    }
    if python:
        said.update(python=python, path=path)
    return said


def same_code(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two hellos come from code that can work together (protocol and schema)."""
    return a.get("protocol") == b.get("protocol") and a.get("schema") == b.get("schema")


def marked(run: StrPath) -> bool:
    """Whether some service of the run directory is supervised (its supervisor keeps the
    marker while it has any): a command that acts and finds no supervisor starts one."""
    try:
        os.lstat(os.path.join(run, MARKER_NAME))
        return True
    except OSError:
        return False


def socket_address(run: StrPath) -> tuple[str, int | None]:
    """The control socket's address, and a descriptor to close once it is used: a path too
    long for a socket address (108 bytes) is reached through the run directory's descriptor."""
    path = os.path.join(run, SOCKET_NAME)
    if len(os.fsencode(path)) < 100:
        return path, None
    fd = os.open(run, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{SOCKET_NAME}", fd


# ---------------------------------------------------------------------------------------------
# Definitions as data


def encode(value: Any) -> Any:
    """A definition value as JSON data: a record type as an object keyed by its field names
    (with ``$type``), a tuple as a list (paths are strings)."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        out = {"$type": type(value).__name__}
        out.update({f: encode(getattr(value, f)) for f in value._fields})
        return out
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not a definition's value")


def decode(data: Any) -> Any:
    """The value ``encode`` gave; only servicectl's definition types are made (``$type``
    names one of definitions.schema's record types, or Dirs); a field a type does not have is
    dropped, a field the data lacks takes the type's default."""
    if isinstance(data, list):
        return tuple(decode(v) for v in data)
    if isinstance(data, dict):
        if set(data) == {"$path"} and isinstance(data["$path"], str):
            return data["$path"]  # a path, as an older servicectl wrote it
        cls = _record_type(data.get("$type"))
        fields = {k: decode(v) for k, v in data.items() if k in cls._fields}
        return cls(**fields)
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    raise ValueError(f"{type(data).__name__} is not a definition's value")


def _record_type(name: object) -> Any:
    from servicectl.definitions import schema
    from servicectl.paths import Dirs

    if name == "Dirs":
        return Dirs
    found = getattr(schema, name, None) if isinstance(name, str) else None
    if not (isinstance(found, type) and issubclass(found, tuple) and hasattr(found, "_fields")):
        raise ValueError(f"{name!r} is not a type of a definition")
    return found


def definition(svc: Any, dirs: Any) -> dict[str, Any]:
    """What a request carries of the service it is about."""
    return {"definition": encode(svc), "dirs": encode(dirs)}


def read_definition(msg: dict[str, Any]) -> tuple[Any, Any]:
    """The (Service, Dirs) of a request, checked: the types are the schema's, and each field
    has the type of its default; a ValueError saying why not."""
    from servicectl.definitions.names import plain_name
    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs

    try:
        svc, dirs = decode(msg.get("definition")), decode(msg.get("dirs"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    if not isinstance(svc, Service) or not isinstance(dirs, Dirs):
        raise ValueError("not a service definition and its directories")
    for field, default in Service._field_defaults.items():
        _check_type(field, getattr(svc, field), default)
    if not isinstance(svc.name, str) or not plain_name(svc.name):
        raise ValueError(f"bad name {svc.name!r}")
    if not isinstance(svc.file, str) or not svc.command:
        raise ValueError("a definition needs its file and its command")
    if not all(isinstance(w, str) for w in svc.command):
        raise ValueError("command: not a list of words")
    if not all(isinstance(p, str) for p in dirs[:3]):
        raise ValueError("dirs: not paths")
    return svc, dirs


def _check_type(field: str, value: Any, default: Any) -> None:
    if default is None:
        return
    want = float if isinstance(default, float) else type(default)
    ok = isinstance(value, want) or (want is float and isinstance(value, int))
    if not ok or (isinstance(value, bool) and want is not bool):
        raise ValueError(f"{field}: {type(value).__name__}, not {want.__name__}")


# ---------------------------------------------------------------------------------------------
# Outcomes and errors


def outcome_data(outcome: Any) -> dict[str, Any]:
    return {slot: getattr(outcome, slot) for slot in outcome.__slots__}


def read_outcome(data: dict[str, Any]) -> Any:
    from servicectl.service.outcome import Outcome

    fields = {k: v for k, v in data.items() if k in Outcome.__slots__}
    return Outcome(**fields)


def error_data(exc: BaseException) -> dict[str, Any]:
    """An error as an answer: its message and exit code (an interruption says so)."""
    from servicectl.errors import Interrupted, ServicectlError

    if isinstance(exc, ServicectlError):
        return {
            "ok": False,
            "message": exc.message,
            "code": int(exc.exit_code),
            "detail": exc.detail,
        }
    if isinstance(exc, Interrupted):
        return {"ok": False, "message": exc.message, "code": 130, "interrupted": True}
    if isinstance(exc, KeyboardInterrupt):
        return {"ok": False, "message": "interrupted", "code": 130, "interrupted": True}
    return {"ok": False, "message": f"supervisor: {type(exc).__name__}: {exc}", "code": 1}


def raise_error(reply: dict[str, Any], name: str, op: str) -> None:
    """Raise the error an answer carries, as the action would have raised it here."""
    from servicectl.errors import Interrupted, ServicectlError

    message = str(reply.get("message") or f"{name}: the supervisor refused {op}")
    if reply.get("interrupted"):
        raise Interrupted(message)
    code = reply.get("code", 1)
    raise ServicectlError(
        message, exit_code=code if isinstance(code, int) else 1, detail=str(reply.get("detail", ""))
    )


class Conn:
    """One client connection: its socket, what it sent and was not read yet, its hello."""

    __slots__ = ("sock", "buf", "said", "names")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.said: dict[str, Any] | None = None
        self.names: set[str] = set()  # the services it asked something of
