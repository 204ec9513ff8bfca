"""An upgrade from servicectl 0.1.0, whose supervisor speaks protocol 1 (no hello, definitions
pickled by position) and cannot hand over: a command of this code that meets one asks it to
leave (SIGTERM: it leaves its services running), keeps the definitions of what it supervised
(from the command's own services directory, where the record names that file), and carries on:
the supervisor it then starts adopts them (docs/supervision.md). Their exit statuses are
unknown from then on: they are not the new supervisor's children.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from servicectl.supervisor import protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.paths import Dirs

LEAVE_TIMEOUT = 10.0


def protocol_1(reply: dict[str, object]) -> bool:
    """Whether an answer to a hello is protocol 1's: it knows no hello."""
    return reply.get("ok") is False and "bad request 'hello'" in str(reply.get("message", ""))


def retire(sock: socket.socket, dirs: Dirs) -> bool:
    """Make the protocol-1 supervisor at the other end of ``sock`` leave, once its services'
    definitions are kept for its successor; whether it left."""
    from servicectl.system.proc import Handle, read_proc, wait_all_exit

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid = struct.unpack("3i", creds)[0]
    info = read_proc(pid)
    if info is None or not _is_supervisor_of(pid, dirs):
        return False
    keep_definitions(dirs, pid)
    with Handle(pid, info.starttime) as h:
        if not h.valid or not h.send(15):
            return False
        wait_all_exit([h], time.monotonic() + LEAVE_TIMEOUT, cancellable=False)
        return h.exited()


def _is_supervisor_of(pid: int, dirs: Dirs) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read(65536).split(b"\0")
    except OSError:
        return False
    return b"servicectl.supervisor.daemon" in argv and os.fsencode(str(dirs.run)) in argv


def keep_definitions(dirs: Dirs, supervisor: int) -> None:
    """The definition of each service ``supervisor`` has, from this services directory (as
    ``supervisor.adopt`` keeps them), so that its successor can adopt them."""
    import json

    from servicectl.definitions.catalog import load_catalog
    from servicectl.files.atomic import atomic_write
    from servicectl.system.record import read_record

    catalog = load_catalog(dirs)
    for name, svc in catalog.services.items():
        record, _ = read_record(dirs.run, name)
        if record is None or record.supervisor_pid != supervisor:
            continue
        if record.definition and record.definition != str(svc.file):
            continue  # another services directory's service of that name
        data = json.dumps(protocol.definition(svc, dirs), sort_keys=True).encode() + b"\n"
        try:
            atomic_write(os.path.join(dirs.run, f".{name}.definition"), data, 0o600)
        except OSError:
            pass
