"""A service's processes: its main process, that process's descendants and the rest of its own
process group (in its session), from one bounded scan of /proc.

``service_pids`` is the one answer to "which processes are this service's" for the readers
that are not about signals (the status view, readiness, the notify socket's senders); a later
cgroup tracking can answer it from ``cgroup.procs`` instead. Signals never rely on it: they go
through observe.py and terminate.py.

Every /proc read here is bounded, and a process that vanishes or cannot be read is left out:
nothing here raises for what another process does (docs/security.md R-VIEW-3).
"""

from __future__ import annotations

import os
import time

from servicectl.tuples import NamedTuple

MAX_PROCESSES = 4096  # processes of one service counted at all (the rest: "and N more")
STAT_BYTES = 4096  # /proc/PID/stat is about 300 bytes; a comm is at most 15


class Stat(NamedTuple):
    """What /proc/PID/stat says of one process."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    starttime: int  # clock ticks since boot
    comm: str
    cpu_ticks: int  # user + system, with its reaped children's
    rss_pages: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def parse_stat(pid: int, raw: bytes) -> Stat | None:
    """``raw`` (/proc/PID/stat) as a Stat, or None if it does not parse. The comm is taken
    up to the last ``)``, so a program named ``a) b`` cannot shift the fields."""
    head, paren, rest = raw.rpartition(b")")
    fields = rest.split()
    if not paren or len(fields) < 22:
        return None
    try:
        return Stat(
            pid=pid,
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            state=fields[0].decode("ascii", "replace"),
            starttime=int(fields[19]),
            comm=head.partition(b"(")[2].decode("utf-8", "replace"),
            cpu_ticks=sum(int(f) for f in fields[11:15]),
            rss_pages=max(0, int(fields[21])),
        )
    except ValueError:
        return None


def read_stat(pid: int) -> Stat | None:
    """The process as /proc shows it now, or None (gone, unreadable, malformed)."""
    try:
        with open(f"/proc/{pid}/stat", "rb", buffering=0) as fh:
            raw = fh.read(STAT_BYTES)
    except OSError:
        return None
    return parse_stat(pid, raw)


class Table(dict):  # type: ignore[type-arg]
    """PID -> Stat of every live process seen; ``complete`` False when the scan stopped at its
    deadline (a local user can start processes by the ten thousand): what was not seen is
    unknown, not gone."""

    complete = True


def family(roots: list[int], deadline: float | None = None) -> Table | None:
    """``roots`` (the members of a service's cgroup) and their descendants wherever they went,
    each read alone (``/proc/PID/task/TID/children``) instead of every process on the machine
    (``scan``): a status of one service among a thousand reads its own few. None where the
    kernel has no ``children`` files (CONFIG_PROC_CHILDREN): scan then. Zombies are left out,
    as by ``scan``; at ``deadline`` the rest is left out (``complete`` False)."""
    if not _HAS_CHILDREN:
        return None
    out = Table()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        if deadline is not None and time.monotonic() > deadline:
            out.complete = False
            break
        st = read_stat(pid)
        if st is None or st.zombie:
            continue
        out[pid] = st
        todo.extend(c for c in _children(pid) if c not in out)
    return out


def _children(pid: int) -> list[int]:
    """The PIDs the process's threads forked ([] if it is gone or they cannot be read)."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb", buffering=0) as fh:
                out += [int(c) for c in fh.read(1 << 20).split()]
    except (OSError, ValueError):
        pass
    return out


_HAS_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def scan(deadline: float | None = None) -> Table:
    """Every live process (zombies left out), from one pass over /proc; stops early at
    ``deadline`` (monotonic), leaving the rest out (``complete`` False)."""
    out = Table()
    try:
        names = os.listdir("/proc")
    except OSError:
        out.complete = False
        return out
    for k, name in enumerate(names):
        if not name.isdigit():
            continue
        if deadline is not None and k % 64 == 0 and time.monotonic() > deadline:
            out.complete = False
            break
        st = read_stat(int(name))
        if st is not None and not st.zombie:
            out[st.pid] = st
    return out


def members(
    table: dict[int, Stat],
    pid: int,
    pgid: int = 0,
    sid: int = 0,
    limit: int = MAX_PROCESSES,
    also: set[int] | frozenset[int] = frozenset(),
) -> tuple[list[int], int]:
    """The service of main process ``pid`` in ``table``: (its PIDs, parents before children,
    siblings by PID, the main process first; how many more there were beyond ``limit``).

    Descendants are followed by parent links (a child started no earlier than its parent: a
    reused PID brings in no one's children); with ``pgid`` (the service's own group, > 1),
    the group's members in session ``sid`` and their descendants come too (children a crashed
    parent left); the PIDs ``also`` (the service's cgroup's) and their descendants come too,
    wherever they went. Iterative: a chain of any depth costs no recursion."""
    if pid not in table and not also:
        return [], 0
    children: dict[int, list[int]] = {}
    for st in table.values():
        if st.ppid != st.pid:
            children.setdefault(st.ppid, []).append(st.pid)
    order: list[int] = []
    seen: set[int] = set()
    more = _walk(table, children, pid, seen, order, limit) if pid in table else 0
    group = {p for p in also if p in table}
    if pgid > 1:
        group |= {
            st.pid for st in table.values() if st.pgid == pgid and (sid <= 1 or st.sid == sid)
        }
    while group - seen:
        left = group - seen
        tops = sorted(g for g in left if table[g].ppid not in left) or [min(left)]
        for top in tops:
            more += _walk(table, children, top, seen, order, limit)
    return order, more


def _walk(
    table: dict[int, Stat],
    children: dict[int, list[int]],
    root: int,
    seen: set[int],
    order: list[int],
    limit: int,
) -> int:
    """Append ``root`` and its descendants to ``order`` (depth first, up to ``limit`` in all);
    how many were left out."""
    more = 0
    todo = [root]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if len(order) < limit:
            order.append(current)
        else:
            more += 1
        start = table[current].starttime
        kids = [c for c in children.get(current, ()) if table[c].starttime >= start]
        todo.extend(sorted((c for c in kids if c not in seen), reverse=True))
    return more


def service_pids(
    pid: int, pgid: int = 0, sid: int = 0, deadline: float | None = None
) -> set[int] | None:
    """The PIDs of the service whose main process is ``pid`` (see ``members``), now; None when
    /proc could not be read whole before ``deadline`` (some of them may be missing)."""
    table = scan(deadline)
    if not table.complete:
        return None
    found, _ = members(table, pid, pgid, sid)
    return set(found)
