"""What a running service uses, for the ``status NAME`` block: its processes (the main process,
its descendants and the rest of its own process group), their memory and CPU time, and the
sockets they listen on. Read with psutil, imported here only when a block needs it.

What identifies the service (PID, start time, group) comes from observe.py; nothing here is
used to decide which process to signal.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Member(NamedTuple):
    """One process of the service's tree."""

    pid: int
    ppid: int
    argv: tuple[str, ...]
    name: str
    rss: int | None  # bytes
    cpu: float | None  # seconds, user + system, with its reaped children's


class Listener(NamedTuple):
    """A socket the service listens on: ``kind`` tcp, tcp6, udp, udp6 or unix."""

    kind: str
    address: str
    detail: str = ""  # for unix: stream, dgram, seqpacket


class Metrics:
    """The service's tree (parents before children) and its totals. ``hidden``: how many of its
    processes this user may not inspect for sockets (another user's: root's, say)."""

    __slots__ = ("members", "memory", "cpu_seconds", "listeners", "hidden")

    def __init__(self) -> None:
        self.members: list[Member] = []
        self.memory: int | None = None
        self.cpu_seconds: float | None = None
        self.listeners: list[Listener] = []
        self.hidden = 0


def collect(pid: int, pgid: int = 0, sid: int = 0, cgroup: str = "") -> Metrics | None:
    """The tree of process ``pid``: it, its descendants and, when ``pgid`` is the service's
    own group, the members of that group in session ``sid`` (children a crashed parent left);
    with the service's ``cgroup``, every process in it, wherever it went. None if ``pid`` is
    gone (and, with a cgroup, nothing is left in it)."""
    import psutil

    found: dict[int, Any] = {}
    try:
        main = psutil.Process(pid)
        found[pid] = main
        found.update((c.pid, c) for c in main.children(recursive=True))
    except psutil.Error:
        if not cgroup:
            return None
    if cgroup:
        from servicectl.system import cgroup as cg

        _add(found, cg.members(cgroup), psutil)
        if not found:
            return None
    if pgid > 1:
        from servicectl.system import proc

        group = proc.group_members(pgid)
        _add(found, [i.pid for i in group if sid <= 1 or i.sid == sid], psutil)
    return _metrics(found, pid, psutil)


def collect_pids(pids: list[int]) -> Metrics:
    """The processes ``pids`` (what is left of a service whose main process exited) as a
    tree, with what they use."""
    import psutil

    found: dict[int, Any] = {}
    _add(found, pids, psutil)
    return _metrics(found, pids[0] if pids else 0, psutil)


def _add(found: dict[int, Any], pids: list[int], psutil: Any) -> None:
    for pid in pids:
        if pid not in found:
            try:
                found[pid] = psutil.Process(pid)
            except psutil.Error:
                continue


def _metrics(found: dict[int, Any], pid: int, psutil: Any) -> Metrics:
    out = Metrics()
    members = [m for m in (_member(p, psutil) for p in found.values()) if m is not None]
    out.members = _tree_order(members, pid)
    rss = [m.rss for m in out.members if m.rss is not None]
    cpu = [m.cpu for m in out.members if m.cpu is not None]
    out.memory = sum(rss) if rss else None
    out.cpu_seconds = sum(cpu) if cpu else None
    _listeners(out, [found[m.pid] for m in out.members], psutil)
    return out


def _member(p: Any, psutil: Any) -> Member | None:
    try:
        with p.oneshot():
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
            ppid = p.ppid()
            name = p.name()
            try:
                argv = tuple(p.cmdline())
            except psutil.AccessDenied:
                argv = ()
            rss: int | None = None
            cpu: float | None = None
            try:
                rss = p.memory_info().rss
                t = p.cpu_times()
                cpu = t.user + t.system + t.children_user + t.children_system
            except psutil.AccessDenied:
                pass
    except psutil.Error:  # gone meanwhile
        return None
    return Member(p.pid, ppid, argv, name, rss, cpu)


def _tree_order(members: list[Member], main: int) -> list[Member]:
    """Parents before their children, siblings by PID; the main process's tree first."""
    by_pid = {m.pid: m for m in members}
    children: dict[int, list[Member]] = {}
    roots = []
    for m in sorted(members, key=lambda m: m.pid):
        if m.ppid in by_pid and m.ppid != m.pid:
            children.setdefault(m.ppid, []).append(m)
        else:
            roots.append(m)
    roots.sort(key=lambda m: (m.pid != main, m.pid))
    out: list[Member] = []
    todo = list(reversed(roots))
    while todo:
        m = todo.pop()
        out.append(m)
        todo.extend(reversed(children.get(m.pid, [])))
    return out


def depth(members: list[Member], member: Member) -> int:
    """How deep ``member`` sits in the tree of ``members`` (0: a root)."""
    by_pid = {m.pid: m for m in members}
    d = 0
    seen = {member.pid}
    while member.ppid in by_pid and member.ppid not in seen:
        member = by_pid[member.ppid]
        seen.add(member.pid)
        d += 1
    return d


def _listeners(out: Metrics, procs: list[Any], psutil: Any) -> None:
    """The listening sockets of ``procs`` (each once: workers share their master's)."""
    import socket

    seen: set[Listener] = set()
    for p in procs:
        try:
            conns = p.net_connections(kind="all")
        except psutil.AccessDenied:
            out.hidden += 1
            continue
        except psutil.Error:
            continue
        for c in conns:
            got = _listener(c, socket, psutil)
            if got is not None and got not in seen:
                seen.add(got)
    order = {"tcp": 0, "tcp6": 1, "udp": 2, "udp6": 3, "unix": 4}
    out.listeners = sorted(seen, key=lambda s: (order.get(s.kind, 9), s.address, s.detail))


def _listener(c: Any, socket: Any, psutil: Any) -> Listener | None:
    if c.family == socket.AF_UNIX:
        if not c.laddr:
            return None
        kind = {
            socket.SOCK_STREAM: "stream",
            socket.SOCK_DGRAM: "dgram",
            socket.SOCK_SEQPACKET: "seqpacket",
        }
        return Listener("unix", str(c.laddr), kind.get(c.type, ""))
    if not c.laddr:
        return None
    six = "6" if c.family == socket.AF_INET6 else ""
    host = f"[{c.laddr.ip}]" if six else c.laddr.ip
    if c.type == socket.SOCK_STREAM and c.status == psutil.CONN_LISTEN:
        return Listener("tcp" + six, f"{host}:{c.laddr.port}")
    if c.type == socket.SOCK_DGRAM and not c.raddr:
        return Listener("udp" + six, f"{host}:{c.laddr.port}")
    return None
