"""Seeing processes come and go without polling, for the side-by-side section (bench/peers.py).

ProcWatch reads the kernel's process events (the netlink proc connector, root only): every
exec and exit on the machine, stamped by the kernel with CLOCK_MONOTONIC. A benchmark service
runs ``/usr/bin/sleep KEY`` where KEY is ``9<tool digit><index, 5 digits>.<run id, 6 digits>``
(about 100 days, with a fraction no other program's sleep has): the watcher reads
the command line of each exec and so knows, for every tool, which of its services runs as
which PID since when, and when each one exited. Bring-up ("the last of N services has exec'd
its program"), tear-down ("the last of N has exited") and respawn ("exit of the old process →
exec of the new") are read from the kernel's timestamps, not from when the benchmark noticed.

Reaper makes this process the child subreaper of everything it starts: a daemon that detaches
(s6-svscan's services do not, but start-stop-daemon's, supervise-daemon's and servicectl's do)
is reparented here, not to PID 1, and reaped at once. PID 1 of this machine reaps orphans only
every 1-2 s, and start-stop-daemon --stop or supervise-daemon --stop wait until the process
is gone (a zombie counts as alive): without a prompt reaper they would be timed as PID 1's
tick, not as their own work. The children that ``common.run`` waits for itself are left to it.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from common import CHILDREN

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000
SO_RCVBUFFORCE = 33
HDR = 16 + 20  # nlmsghdr + cn_msg
EV = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
PIDS = struct.Struct("=ii")  # pid, tgid (exec and exit alike)
SLEEP_NAMES = ("/usr/bin/sleep", "/bin/sleep", "sleep")


@dataclass
class Sighting:
    """One process that runs a marked sleep."""

    pid: int
    key: str
    exec_ns: int
    exit_ns: Optional[int] = None


@dataclass
class ProcWatch:
    """The kernel's exec/exit events, read on demand (``pump``) into per-key sightings."""

    mark: str
    sock: socket.socket = field(init=False)
    by_pid: dict[int, Sighting] = field(default_factory=dict)
    by_key: dict[str, Sighting] = field(default_factory=dict)  # the newest process of a key
    history: dict[str, list[Sighting]] = field(default_factory=dict)
    execs_seen: dict[int, int] = field(default_factory=dict)  # pid -> event number
    events: int = 0
    overruns: int = 0

    def __post_init__(self) -> None:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        s.bind((0, CN_IDX_PROC))
        self.sock = s
        self._control(PROC_CN_MCAST_LISTEN)
        s.setblocking(False)

    def _control(self, op: int) -> None:
        body = struct.pack("=I", op)
        cn = struct.pack("=IIIIHH", CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(body), 0) + body
        nl = struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn  # NLMSG_DONE
        self.sock.send(nl)

    def close(self) -> None:
        try:
            self._control(PROC_CN_MCAST_IGNORE)
        except OSError:
            pass
        self.sock.close()

    # ------------------------------------------------------------ events

    def pump(self, timeout: float = 0.0) -> None:
        """Handle every queued event; first wait up to ``timeout`` for one to arrive."""
        if timeout > 0:
            select.select([self.sock], [], [], timeout)
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:  # ENOBUFS: the kernel dropped events
                self.overruns += 1
                if self.overruns == 1:
                    from report import NOTES

                    NOTES.append(f"peers: the proc connector dropped events ({e}); re-run")
                continue
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        off = 0
        while off + HDR + EV.size <= len(data):
            nl_len = struct.unpack_from("=I", data, off)[0]
            what, _cpu, ts = EV.unpack_from(data, off + HDR)
            pid, tgid = PIDS.unpack_from(data, off + HDR + EV.size)
            self.events += 1
            if what == PROC_EVENT_EXEC and pid == tgid:
                self.execs_seen[pid] = self.events
                self._on_exec(pid, ts)
            elif what == PROC_EVENT_EXIT and pid == tgid:
                s = self.by_pid.pop(pid, None)
                if s is not None:
                    s.exit_ns = ts
            if nl_len <= 0:
                break
            off += (nl_len + 3) & ~3

    def _on_exec(self, pid: int, ts: int) -> None:
        known = self.by_pid.get(pid)
        if known is not None:  # the same process exec'd again: its newest exec is the sleep's
            known.exec_ns = ts
            return
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read(256).split(b"\0")
        except OSError:
            return
        if len(argv) < 2 or not self.ours(argv[1].decode(errors="replace")):
            return
        if argv[0].decode(errors="replace") not in SLEEP_NAMES:
            return
        key = argv[1].decode()
        s = Sighting(pid, key, ts)
        self.by_pid[pid] = s
        self.by_key[key] = s
        self.history.setdefault(key, []).append(s)

    def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        """Handle events until pred() holds: each wait is for the next event, never a nap."""
        deadline = time.monotonic() + timeout
        self.pump()
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            self.pump(min(left, 1.0))

    def barrier(self) -> None:
        """Return once every event before this call is handled: exec a short process and wait
        for its own exec event (the queue is in order)."""
        p = CHILDREN.popen(["/bin/true"])
        seen_before = self.events
        try:
            self.wait(lambda: self.execs_seen.get(p.pid, 0) > seen_before, 10, "the barrier's exec")
        finally:
            CHILDREN.reap(p)

    # ------------------------------------------------------------ questions

    def ours(self, key: str) -> bool:
        """Whether a sleep's argument is one of this run's keys (never another's ``sleep``)."""
        head, dot, tail = key.partition(".")
        return dot == "." and tail == self.mark and len(head) == 7 and head.isdigit()

    def live(self, prefix: str = "") -> list[Sighting]:
        """Our live processes whose key starts with prefix (one per key: the newest)."""
        return [s for k, s in self.by_key.items() if k.startswith(prefix) and s.exit_ns is None]

    def count_live(self, prefix: str) -> int:
        return len(self.live(prefix))


# ---------------------------------------------------------------- the subreaper

PR_SET_CHILD_SUBREAPER = 36


class Reaper:
    """This process as child subreaper, and a thread that reaps every orphan it inherits."""

    def __init__(self) -> None:
        self.stop = False
        self.libc = ctypes.CDLL(None, use_errno=True)
        if self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self.thread = threading.Thread(target=self._loop, name="reaper", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop:
            spawned = CHILDREN.spawned
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:  # no children, so no orphans to come: wait for a spawn
                with CHILDREN.cond:
                    CHILDREN.cond.wait_for(lambda n=spawned: CHILDREN.spawned != n or self.stop)
                continue
            if info is None:
                continue
            CHILDREN.reap_orphan(info.si_pid)

    def close(self) -> None:
        self.stop = True
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        CHILDREN.reap(CHILDREN.popen(["/bin/true"]))  # wakes the thread's waitid
        self.thread.join(5)
