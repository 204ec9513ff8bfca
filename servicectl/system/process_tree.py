"""What a running service uses, for the ``status NAME`` block: its processes (the main process,
its descendants and the rest of its own process group: tree.py), their memory and CPU time,
and the sockets they listen on.

Whatever the service does, this stays small and quick (docs/security.md R-VIEW-2): its
cgroup's members and their descendants read alone (tree.family), or one pass over
/proc/PID/stat where it has no cgroup or its main process left it; at most MAX_LISTED
processes listed (the rest counted: "and N more"), at most MAX_ARGV bytes of each command
line, the socket tables and descriptors read with bounds
(procnet.py), and a time budget after which what is left is said to be unknown. Each field
is read on its own: a reader that fails leaves that field unknown, never the whole view
(R-VIEW-3).

What identifies the service (PID, start time, group) comes from observe.py; nothing here is
used to decide which process to signal.
"""

from __future__ import annotations

import os
import time

from servicectl.system import procnet, tree
from servicectl.tuples import NamedTuple

BUDGET = 0.5  # seconds one block's metrics may take
MAX_LISTED = 50  # processes listed in the tree
MAX_ARGV = 2048  # bytes of a command line read
NET_KINDS = ("tcp", "tcp6", "udp", "udp6", "unix")


class Member(NamedTuple):
    """One process of the service's tree."""

    pid: int
    ppid: int
    argv: tuple[str, ...] | None  # None: could not be read; a cut one ends with "..."
    name: str
    rss: int | None  # bytes
    cpu: float | None  # seconds, user + system, with its reaped children's


class Listener(NamedTuple):
    """A socket the service listens on: ``kind`` tcp, tcp6, udp, udp6 or unix."""

    kind: str
    address: str
    detail: str = ""  # for unix: stream, dgram, seqpacket


class Metrics:
    """The service's tree (parents before children, the first MAX_LISTED) and its totals.

    ``count``: its processes in all; ``more``: how many are not listed; ``hidden``: how many
    this user may not inspect for sockets (another user's: root's, say); ``unknown``: what
    could not be read, and why."""

    __slots__ = (
        "members",
        "count",
        "more",
        "memory",
        "cpu_seconds",
        "listeners",
        "hidden",
        "unknown",
    )

    def __init__(self) -> None:
        self.members: list[Member] = []
        self.count = 0
        self.more = 0
        self.memory: int | None = None
        self.cpu_seconds: float | None = None
        self.listeners: list[Listener] = []
        self.hidden = 0
        self.unknown: list[str] = []


def collect(
    pid: int, pgid: int = 0, sid: int = 0, cgroup: str = "", budget: float = BUDGET
) -> Metrics | None:
    """The tree of process ``pid``: it, its descendants and, when ``pgid`` is the service's
    own group, the members of that group in session ``sid`` (children a crashed parent left);
    with the service's ``cgroup``, every process in it, wherever it went. None if ``pid`` is
    gone (and, with a cgroup, nothing is left in it)."""
    deadline = time.monotonic() + budget
    table, also = _own(pid, cgroup, deadline) if cgroup else (None, set())
    if table is None:
        table = tree.scan(deadline)
        also = _cgroup_members(cgroup, table) if cgroup else set()
    if pid not in table:
        main = tree.read_stat(pid)  # not reached before the deadline, or gone
        if main is not None and not main.zombie:
            table[pid] = main
        elif not also:
            return None
    order, beyond = tree.members(table, pid, pgid, sid, also=also)
    return _metrics(table, pid, order, beyond, deadline)


def collect_pids(pids: list[int], budget: float = BUDGET) -> Metrics:
    """The processes ``pids`` (what is left of a service whose main process exited) as a
    tree, with what they use."""
    deadline = time.monotonic() + budget
    table = tree.scan(deadline)
    also = {p for p in pids if p in table}
    order, beyond = tree.members(table, 0, also=also)
    return _metrics(table, pids[0] if pids else 0, order, beyond, deadline)


def _own(pid: int, path: str, deadline: float) -> tuple[tree.Table | None, set[int]]:
    """The service's cgroup's members and their descendants, read alone, when the main process
    is in its cgroup; else (None, ...): one scan of every process then (a main process that
    left its cgroup, a kernel without /proc's children files, a cgroup that cannot be read)."""
    from servicectl.system import cgroup as cg

    pids = cg.members(path)
    if pid not in pids:
        return None, set()
    table = tree.family(pids, deadline)
    if table is None:
        return None, set()
    return table, {p for p in pids if p in table}


def _cgroup_members(path: str, table: tree.Table) -> set[int]:
    """The PIDs in the service's cgroup (those /proc showed: a member that appeared since is
    read alone)."""
    from servicectl.system import cgroup as cg

    found = set()
    for p in cg.members(path):
        if p not in table:
            st = tree.read_stat(p)
            if st is None or st.zombie:
                continue
            table[p] = st
        found.add(p)
    return found


def _metrics(
    table: tree.Table, pid: int, order: list[int], beyond: int, deadline: float
) -> Metrics:
    out = Metrics()
    out.count = len(order) + beyond
    out.more = out.count - min(len(order), MAX_LISTED)
    page = os.sysconf("SC_PAGE_SIZE")
    ticks = os.sysconf("SC_CLK_TCK")
    out.memory = sum(table[p].rss_pages for p in order) * page
    out.cpu_seconds = sum(table[p].cpu_ticks for p in order) / ticks
    if beyond:
        out.unknown.append(f"memory and CPU count the first {len(order)} processes only")
    if not table.complete:
        out.unknown.append("not every process was looked at (time limit): some may be missing")
    for p in order[:MAX_LISTED]:
        st = table[p]
        argv = _argv(p) if time.monotonic() < deadline else None
        out.members.append(
            Member(p, st.ppid, argv, st.comm, st.rss_pages * page, st.cpu_ticks / ticks)
        )
    _listeners(out, pid, order, deadline)
    return out


def _argv(pid: int) -> tuple[str, ...] | None:
    """The first MAX_ARGV bytes of the process's arguments (a cut one ends with ``...``);
    () when it has none or is gone, None when they cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb", buffering=0) as fh:
            raw = fh.read(MAX_ARGV + 1)
    except (FileNotFoundError, ProcessLookupError):
        return ()
    except Exception:  # R-VIEW-3: unreadable (permission, a kernel refusal): unknown
        return None
    cut = len(raw) > MAX_ARGV
    words = [a.decode("utf-8", "replace") for a in raw[:MAX_ARGV].split(b"\0") if a]
    if cut:
        words.append("...")
    return tuple(words)


def _listeners(out: Metrics, main: int, pids: list[int], deadline: float) -> None:
    """The listening sockets of ``pids`` (each once: workers share their master's): the
    sockets each process holds, looked up in the tables of the main process's network
    namespace."""
    inodes: set[int] = set()
    late = 0
    for p in pids:
        if time.monotonic() > deadline:
            late += 1
            continue
        try:
            inodes |= procnet.socket_inodes(p, deadline)
        except PermissionError:
            out.hidden += 1
        except Exception:  # gone meanwhile, or /proc refused: nothing to show of it
            continue
    if late:
        out.unknown.append(f"the sockets of {late} processes were not looked at (time limit)")
    seen: set[Listener] = set()
    for kind in NET_KINDS if inodes else ():
        try:
            table, whole = _table(kind, main, inodes, deadline)
        except Exception as exc:  # R-VIEW-3: one table unreadable, the others still count
            out.unknown.append(f"/proc/net/{kind} cannot be read ({_why(exc)})")
            continue
        if not whole:
            out.unknown.append(f"/proc/net/{kind} was not read to its end (size or time limit)")
        seen.update(shown_listeners(kind, table, whole))
    order = {"tcp": 0, "tcp6": 1, "udp": 2, "udp6": 3, "unix": 4}
    out.listeners = sorted(seen, key=lambda s: (order.get(s.kind, 9), s.address, s.detail))


def _table(
    kind: str, main: int, inodes: set[int], deadline: float
) -> tuple[list[procnet.Socket], bool]:
    def keep(s: procnet.Socket) -> bool:
        return s.inode in inodes

    try:
        return procnet.read_table(kind, main, keep, deadline)
    except (FileNotFoundError, ProcessLookupError):
        return procnet.read_table(kind, None, keep, deadline)


def shown_listeners(kind: str, table: list[procnet.Socket], whole: bool) -> set[Listener]:
    """What the view shows of a table's sockets (R-VIEW-3): a name another line also claims
    is not shown, and neither is any name of a unix table not read to its end (the real line
    of a socket whose name a made-up line claims may be in the part not read: a user's
    abstract socket name can hold a whole made-up line, an inet line cannot)."""
    unchecked = not whole and kind == "unix"
    return {_listener(s, unchecked) for s in table if s.listening or s.forged}


def _listener(s: procnet.Socket, unchecked: bool) -> Listener:
    if s.forged:  # another line claims this socket's inode: its name cannot be told
        return Listener(s.kind, "(name unknown: /proc/net/unix has a forged line)", s.detail)
    if unchecked:
        return Listener(s.kind, "(name unknown: /proc/net/unix not read to its end)", s.detail)
    return Listener(s.kind, s.address, s.detail)


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
