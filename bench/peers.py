"""Section 7 (``--peers``): servicectl beside s6, runit, OpenRC's supervise-daemon, supervisord
and start-stop-daemon on this machine, in one sitting.

For each fleet size N (1, 100, 1,000), each tool gets N services (``sleep``) and one stopped
service, x. In every round each tool in turn (the order rotating) brings its fleet up, has the
PSS of its supervising processes read, answers ``status`` of the fleet, of a running service
and of x, starts and stops x, respawns a killed service, and tears its fleet down. Only one
tool's fleet runs at a time. servicectl's commands alternate with ``python -c pass`` of the
same interpreter (its own venv, holding a wheel of the tree measured): the ratios to the
interpreter compare figures taken side by side.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from common import CHILD_ENV, log, pss_mib, run
from peer_setup import Peers, get_peers
from peer_tools import (
    S6,
    Runit,
    Servicectl,
    ServicectlSupervised,
    Ssd,
    SuperviseDaemon,
    Supervisord,
    Tool,
    X,
)
from procwatch import ProcWatch, Reaper
from report import NOTES, Series

if TYPE_CHECKING:
    import argparse

INTERLEAVE_MAX = 1  # up to this N, all tools run at once and their commands alternate


@dataclass
class Results:
    """Figures by (row, N, tool key); the interpreter's, taken alternately, by (row, N)."""

    fig: dict[tuple[str, int, str], Series] = field(default_factory=dict)
    floor: dict[tuple[str, int], Series] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    how: dict[str, tuple[str, str]] = field(default_factory=dict)

    def series(self, row: str, n: int, tool: str) -> Series:
        return self.fig.setdefault((row, n, tool), Series())

    def floor_of(self, row: str, n: int) -> Series:
        return self.floor.setdefault((row, n), Series())


def clean_env(peers: Peers) -> dict[str, str]:
    """The environment every tool runs in: no PYTHON* variables (a normal shell's)."""
    env = {k: v for k, v in CHILD_ENV.items() if not k.startswith("PYTHON")}
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["PATH"] = f"{peers.runit_bin}:{path}" if peers.runit_bin else path
    env.pop("VIRTUAL_ENV", None)
    return env


def make_tools(peers: Peers, n: int, base: Path, watch: ProcWatch, env: dict[str, str],
               full: bool) -> list[Tool]:  # fmt: skip
    sc_exe = str(peers.sc_venv / "bin" / "servicectl")
    d = base / f"n{n}"
    tools: list[Tool] = [
        Servicectl(sc_exe, d / "sc", n, watch, env),
        ServicectlSupervised(sc_exe, d / "scs", n, watch, env),
    ]
    if peers.s6:
        tools.append(S6(d / "s6", n, watch, env))
    if peers.runit_bin:
        tools.append(Runit(d / "runit", n, watch, env))
    if peers.sd and (n <= 100 or full):
        sd_env = dict(env, LD_LIBRARY_PATH=peers.sd_libs)
        tools.append(SuperviseDaemon(peers.sd, d / "sd", n, watch, sd_env))
    if peers.sup_venv:
        tools.append(Supervisord(peers.sup_venv, d / "sup", n, watch, env))
    if peers.ssd and n == 1:
        tools.append(Ssd(peers.ssd, d / "ssd", n, watch, env))
    return tools


def tool_key(t: Tool) -> str:
    return type(t).__name__


class Bench:
    def __init__(self, args: argparse.Namespace, base: Path) -> None:
        self.args, self.base = args, base
        self.res = Results()
        tree = Path(args.tree).resolve()
        self.peers = get_peers(tree)
        self.env = clean_env(self.peers)
        self.floor = [str(self.peers.sc_venv / "bin" / "python"), "-c", "pass"]
        self.watch = ProcWatch(f"{random.randint(0, 999999):06d}")
        self.warmed: set[tuple[str, int, str]] = set()
        self.load0 = os.getloadavg()

    # ------------------------------------------------------------ one command, timed

    def timed(self, t: Tool, row: str, argv: list[str], ok: tuple[int, ...]) -> None:
        n, k = t.n, tool_key(t)
        if (row, n, k) not in self.warmed:  # one untimed run: page cache, .pyc, dentries
            self.warmed.add((row, n, k))
            run(argv, env=t.env)
            if isinstance(t, Servicectl):
                run(self.floor, env=self.env)
        self.res.series(row, n, k).add(run(argv, env=t.env), ok, what=f"{k} {row}")
        if isinstance(t, Servicectl):
            self.res.floor_of(row, n).add(run(self.floor, env=self.env))

    def start_stop(self, t: Tool, argv: tuple[list[str], list[str]]) -> None:
        """Start x, then stop it: the two commands' wall times, summed. Between them, and after,
        the benchmark waits (untimed) until x's program has exec'd, then exited: a stop never
        races a start still under way (supervise-daemon and start-stop-daemon return from
        --start before their program runs)."""
        n, k = t.n, tool_key(t)
        start, stop = argv
        s = self.res.series("startstop", n, k)
        xkey = t.key(X)
        a = run(start, env=t.env)
        try:
            if a.rc == 0:
                self.watch.wait(lambda: self._x_live(xkey), 10, f"{t.label}: x running")
            b = run(stop, env=t.env)
            if a.rc == 0 and b.rc == 0:
                self.watch.wait(lambda: not self._x_live(xkey), 10, f"{t.label}: x stopped")
        except TimeoutError as e:
            s.failures.append(str(e))
            return
        if a.rc != 0 or b.rc != 0:
            bad = a if a.rc != 0 else b
            s.failures.append(f"rc={bad.rc}: {bad.err[-300:]}")
        else:
            s.values.append(a.secs + b.secs)
        if isinstance(t, Servicectl):
            self.res.floor_of("startstop", n).add(run(self.floor, env=self.env))
        self.watch.pump()

    def _x_live(self, key: str) -> bool:
        x = self.watch.by_key.get(key)
        return x is not None and x.exit_ns is None

    def respawn(self, t: Tool) -> None:
        """SIGKILL service 0's process: the kernel's time from its exit to the exec of the
        new one."""
        s = self.res.series("respawn", t.n, tool_key(t))
        key = t.key(0)
        self.watch.pump()
        old = self.watch.by_key.get(key)
        if old is None or old.exit_ns is not None:
            s.failures.append("service 0 not running")
            return
        try:
            fd = os.pidfd_open(old.pid)
        except OSError as e:
            s.failures.append(f"pidfd_open: {e}")
            return
        try:
            with open(f"/proc/{old.pid}/cmdline", "rb") as f:
                if key.encode() not in f.read():
                    s.failures.append("PID reused")
                    return
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        finally:
            os.close(fd)
        try:
            self.watch.wait(
                lambda: (
                    old.exit_ns is not None
                    and (new := self.watch.by_key.get(key)) is not None
                    and new is not old
                ),
                15,
                f"{t.label}: respawn",
            )
            self.watch.barrier()
        except TimeoutError as e:
            s.failures.append(str(e))
            return
        new = self.watch.by_key[key]
        assert old.exit_ns is not None
        s.values.append((new.exec_ns - old.exit_ns) / 1e9)

    # ------------------------------------------------------------ one round of one tool

    def up(self, t: Tool) -> bool:
        """Bring t's fleet up (timed), let x's supervisor settle, read the supervisors' PSS."""
        n, k = t.n, tool_key(t)
        res = self.res
        res.labels[k] = t.label
        res.how[k] = (t.up_how, t.down_how)
        if not isinstance(t, Ssd):
            secs, err = self._step(t.bring_up)
            self._add(res.series("bringup", n, k), secs, err)
            if secs is None:
                return False
            t.settle()
        if t.supervises:
            sups = t.supervising()
            if sups:
                res.series("pss", n, k).values.append(sum(pss_mib(p) for p in sups))
            else:
                res.series("pss", n, k).failures.append("no supervising process found")
        return True

    def commands(self, tools: list[Tool], reps: int) -> None:
        """The per-command rows, ``reps`` times; within each, the tools alternate."""
        per_command = [t for t in tools if not isinstance(t, ServicectlSupervised)]
        for _ in range(reps):
            for row in ("board", "status_running", "status_stopped"):
                for t in per_command:
                    c = getattr(t, row)()
                    if c is not None:
                        self.timed(t, row, *c)
            for t in per_command:
                ss = t.start_stop()
                if ss is not None:
                    self.start_stop(t, ss)
            for t in tools:
                if t.supervises:
                    self.respawn(t)

    def down(self, t: Tool) -> None:
        if not isinstance(t, Ssd):
            secs, err = self._step(t.tear_down)
            self._add(self.res.series("teardown", t.n, tool_key(t)), secs, err)

    @staticmethod
    def _step(fn: object) -> tuple[Optional[float], str]:
        try:
            return fn()  # type: ignore[operator,no-any-return]
        except (TimeoutError, RuntimeError, OSError) as e:
            return None, repr(e)

    @staticmethod
    def _add(s: Series, secs: Optional[float], err: str) -> None:
        if secs is None:
            s.failures.append(err or "no figure")
        else:
            s.values.append(secs)

    # ------------------------------------------------------------ the sizes

    def size(self, n: int) -> None:
        a = self.args
        rounds = rounds_for(n, a.quick)
        reps = max(1, math.ceil(a.reps / rounds))
        tools = make_tools(self.peers, n, self.base, self.watch, self.env, not a.quick)
        log(f"peers N={n}: preparing {', '.join(t.label for t in tools)}")
        ready = []
        try:
            for t in tools:
                try:
                    t.prepare()
                    ready.append(t)
                except (OSError, RuntimeError, TimeoutError) as e:
                    NOTES.append(f"peers N={n}: {t.label} not set up: {e!r}")
            for t in ready:
                if isinstance(t, Servicectl):
                    t.warm()
                    break
            for r in range(rounds):
                order = ready[r % len(ready) :] + ready[: r % len(ready)]
                log(f"peers N={n}: round {r + 1} of {rounds} ({reps} of each command)")
                if n <= INTERLEAVE_MAX:  # every tool up at once, the commands alternating
                    up = [t for t in order if self.up(t)]
                    self.commands(up, reps)
                    for t in up:
                        self.down(t)
                    continue
                for t in order:  # one fleet at a time: only its processes in /proc
                    log(f"  {t.label}")
                    if self.up(t):
                        self.commands([t], reps)
                        self.down(t)
        finally:
            for t in ready:
                try:
                    t.close()
                except Exception as e:  # keep closing the others
                    NOTES.append(f"peers N={n}: closing {t.label}: {e!r}")
            self.kill_leftovers()

    def kill_leftovers(self) -> None:
        """SIGKILL any marked service still alive (ours by construction: the marker)."""
        self.watch.pump()
        for s in self.watch.live():
            if not self.watch.ours(s.key):
                continue
            try:
                fd = os.pidfd_open(s.pid)
            except OSError:
                continue
            try:
                with open(f"/proc/{s.pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                    if len(argv) > 1 and argv[1] == s.key.encode():
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                        NOTES.append(f"peers: killed a leftover service {s.key} (pid {s.pid})")
            except OSError:
                pass
            finally:
                os.close(fd)


def rounds_for(n: int, quick: bool) -> int:
    if n >= 1000:
        return 1 if quick else 3
    if n >= 100:
        return 2 if quick else 5
    return 3 if quick else 7


def bench_peers(args: argparse.Namespace, base: Path) -> Results:
    from peers_report import print_report

    t0 = time.monotonic()
    b = Bench(args, base)
    reaper = Reaper()
    try:
        for n in args.peer_sizes:
            b.size(n)
    finally:
        reaper.close()
        b.watch.close()
    print_report(b, time.monotonic() - t0)
    return b.res


__all__ = ["X", "bench_peers"]
