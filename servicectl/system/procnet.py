"""Sockets as the kernel lists them (/proc/net/tcp, tcp6, udp, udp6, unix) and the sockets a
process holds (/proc/PID/fd), read with bounds and parsed without trusting the text.

Any local user can put text of their choosing into /proc/net/unix: a socket's name is
printed raw, newlines included (an abstract name is bound by anyone). So a line is taken only
if every field parses, a line that does not is skipped, and a socket whose inode appears on
more than one line is marked ``forged``: one of its lines was made up. psutil raises a bare
RuntimeError on such a table (docs/security.md R-VIEW-3); this never raises for what is in it.

System layer: imports nothing of servicectl.
"""

from __future__ import annotations

import os
import sys
import time

from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_TABLE = 16 << 20  # bytes read of one /proc/net table
CHUNK = 1 << 16
MAX_FDS = 4096  # descriptors of one process looked at
TCP_LISTEN = 0x0A
UNIX_ACCEPTCON = 0x10000  # __SO_ACCEPTCON: a listening stream or seqpacket socket
UNIX_TYPES = {1: "stream", 2: "dgram", 5: "seqpacket"}
_LITTLE = sys.byteorder == "little"


class Socket(NamedTuple):
    """One socket of a table: ``kind`` tcp, tcp6, udp, udp6 or unix."""

    kind: str
    address: str  # 127.0.0.1:80, [::1]:80, /run/x.sock, @abstract
    detail: str  # unix: stream, dgram or seqpacket
    inode: int
    listening: bool
    forged: bool = False  # its inode is on more than one line: one of them was made up


def read_table(
    kind: str,
    pid: int | None = None,
    keep: Callable[[Socket], bool] | None = None,
    deadline: float | None = None,
) -> tuple[list[Socket], bool]:
    """The sockets of one table (``tcp``, ``tcp6``, ``udp``, ``udp6``, ``unix``) in the network
    namespace of ``pid`` (None: servicectl's own) that ``keep`` accepts (None: all), and
    whether the table was read whole. OSError if it cannot be read.

    Read as a stream (memory stays small whatever the table's size), at most MAX_TABLE bytes
    and until ``deadline``. ``forged`` is set on kept sockets whose inode is on more than one
    kept line: keep every line of the inodes you care about. In a table not read whole, a
    made-up line may not have met the real one: do not trust what it says alone."""
    path = f"/proc/{pid}/net/{kind}" if pid else f"/proc/net/{kind}"
    parse = _unix_line if kind == "unix" else _inet_line
    found: list[Socket] = []
    whole, total, rest, first = False, 0, b"", True
    with open(path, "rb", buffering=0) as fh:
        while total < MAX_TABLE and (deadline is None or time.monotonic() < deadline):
            chunk = fh.read(CHUNK)
            if not chunk:
                whole = True
                chunk = b"\n"
            total += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            if first:
                lines, first = lines[1:], False  # the heading
            for line in lines:
                sock = parse(kind, line)
                if sock is not None and (keep is None or keep(sock)):
                    found.append(sock)
            if whole:
                break
    count: dict[int, int] = {}
    for sock in found:
        count[sock.inode] = count.get(sock.inode, 0) + 1
    return [s._replace(forged=True) if count[s.inode] > 1 else s for s in found], whole


def _inet_line(kind: str, line: bytes) -> Socket | None:
    """One line of /proc/net/tcp (and tcp6, udp, udp6), or None if it does not parse."""
    f = line.split()
    if len(f) < 10 or not f[0].endswith(b":"):
        return None
    try:
        host, port = _inet_address(f[1])
        remote_port = int(f[2].rpartition(b":")[2], 16)
        state = int(f[3], 16)
        inode = int(f[9])
    except ValueError:
        return None
    shown = f"[{host}]:{port}" if kind.endswith("6") else f"{host}:{port}"
    listening = state == TCP_LISTEN if kind.startswith("tcp") else remote_port == 0
    return Socket(kind, shown, "", inode, listening)


def _inet_address(text: bytes) -> tuple[str, int]:
    """``0100007F:1F90`` as ("127.0.0.1", 8080): each 32-bit word in the host's byte order."""
    hexaddr, sep, hexport = text.partition(b":")
    raw = bytes.fromhex(hexaddr.decode("ascii"))
    if not sep or len(raw) not in (4, 16):
        raise ValueError("not an address")
    words = b"".join(
        int.from_bytes(raw[i : i + 4], "little" if _LITTLE else "big").to_bytes(4, "big")
        for i in range(0, len(raw), 4)
    )
    import socket  # here: a status of a service without inet sockets needs none (3-4 ms)

    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, words), int(hexport, 16)


def _unix_line(kind: str, line: bytes) -> Socket | None:
    """One line of /proc/net/unix (``Num RefCount Protocol Flags Type St Inode [Path]``), or
    None if it does not parse."""
    f = line.split(None, 7)
    if len(f) < 7 or not f[0].endswith(b":"):
        return None
    try:
        int(f[0][:-1], 16)
        int(f[1], 16)
        flags = int(f[3], 16)
        kind_number = int(f[4], 16)
        int(f[5], 16)
        inode = int(f[6])
    except ValueError:
        return None
    path = f[7].rstrip(b"\r").decode("utf-8", "backslashreplace") if len(f) > 7 else ""
    detail = UNIX_TYPES.get(kind_number, "")
    listening = bool(path) and (bool(flags & UNIX_ACCEPTCON) or detail == "dgram")
    return Socket("unix", path, detail, inode, listening)


def socket_inodes(pid: int, deadline: float | None = None) -> set[int]:
    """The inodes of the sockets process ``pid`` holds (at most MAX_FDS descriptors looked
    at). OSError (PermissionError for another user's process) if its fds cannot be listed;
    an fd closed meanwhile is skipped."""
    out: set[int] = set()
    fd_dir = f"/proc/{pid}/fd"
    with os.scandir(fd_dir) as entries:
        for k, entry in enumerate(entries):
            if k >= MAX_FDS or (deadline is not None and time.monotonic() > deadline):
                break
            try:
                target = os.readlink(f"{fd_dir}/{entry.name}")
            except OSError:
                continue
            if target.startswith("socket:[") and target.endswith("]"):
                try:
                    out.add(int(target[8:-1]))
                except ValueError:
                    continue
    return out


def same_network(pid: int) -> bool | None:
    """Whether process ``pid`` is in servicectl's network namespace (None: cannot tell)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None
