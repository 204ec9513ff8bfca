"""Section 7: supervision beside its peers on this machine: runsv (runit), s6-supervise (s6) and
supervisord. Respawn latency, the memory (PSS) of the supervision of 100 and 1,000 services,
and what servicectl's health checks cost (its peers have none).

Every peer runs from a private directory under the benchmark's temp dir, is this benchmark's
child, and is ended (then its leftovers killed by PID, never by name) at the end of its row.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Callable, Optional

from common import CHILD_ENV, PY, SLEEP, VENV, kill_pids, log, pss_mib, run, supervisors
from report import NOTES, TARGETS, Series, cell, table

if TYPE_CHECKING:
    from pathlib import Path

    from environment import Env

SLEEP_EXE = os.path.realpath(SLEEP)


# ---------------------------------------------------------------------------------------------
# /proc


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return out


def runs_sleep(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == SLEEP_EXE
    except OSError:
        return False


def sleeping_child(parent: int, not_this: int = 0) -> Optional[int]:
    for c in children(parent):
        if c != not_this and runs_sleep(c):
            return c
    return None


def descendants(root: int) -> list[int]:
    out, todo = [], [root]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait(pred: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return None


def respawn_of(parent: Callable[[], int], reps: int, delay: float = 0.0) -> Series:
    """SIGKILL the sleeping child of ``parent()`` (its supervisor) ``reps`` times; each time,
    the time until a new child runs sleep, minus ``delay`` (polled every 0.2 ms). Each service
    has run 1.1 s before it is killed (runsv and s6-supervise wait 1 s after a quick exit)."""
    s = Series()
    for _ in range(reps):
        sup = parent()
        old = wait(lambda sup=sup: sleeping_child(sup), 10)
        if not old:
            s.failures.append("no running service to kill")
            break
        time.sleep(1.1)
        t0 = time.perf_counter()
        os.kill(int(old), signal.SIGKILL)  # type: ignore[arg-type]
        while time.perf_counter() - t0 < 10:
            if sleeping_child(sup, int(old)):  # type: ignore[arg-type]
                s.values.append(time.perf_counter() - t0 - delay)
                break
            time.sleep(0.0002)
        else:
            s.failures.append("no respawn within 10 s")
            break
    return s


# ---------------------------------------------------------------------------------------------
# The peers: a directory of N services each, started, measured, ended


class Peer:
    name = ""

    def __init__(self, base: Path, n: int) -> None:
        self.base = base
        self.n = n
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> bool:
        raise NotImplementedError

    def supervisors(self) -> list[int]:
        """The processes that supervise (the scanner and one per service, or one)."""
        assert self.proc is not None
        return [self.proc.pid, *children(self.proc.pid)]

    def services_up(self) -> bool:
        return sum(1 for s in self.supervisors() for c in children(s) if runs_sleep(c)) >= self.n

    def first(self) -> int:
        """The process whose child is the first service."""
        return self.supervisors()[1]

    def stop(self) -> None:
        """Freeze the supervising processes, note everything beneath them, kill them (a
        supervisor that outlives its children's TERM respawns them: supervisord left 100
        orphans that way), then the rest. Signals go through pidfds opened first."""
        if self.proc is None:
            return
        keepers = _pidfds([self.proc.pid, *self.supervisors()])
        _send(keepers, signal.SIGSTOP)  # from here on none of them forks
        everything = descendants(self.proc.pid) + [self.proc.pid]
        _send(keepers, signal.SIGKILL)
        self.proc.wait(10)
        kill_pids(everything)

    def run_scripts(self, svdir: Path) -> None:
        for i in range(self.n):
            d = svdir / f"s{i:04d}"
            d.mkdir(parents=True)
            (d / "run").write_text(f"#!/bin/sh\nexec {SLEEP} 100000\n")
            (d / "run").chmod(0o755)


class Runit(Peer):
    name = "runsv (runit)"

    def start(self) -> bool:
        if not shutil.which("runsvdir"):
            return False
        svdir = self.base / "runit"
        self.run_scripts(svdir)
        self.proc = subprocess.Popen(["runsvdir", "-P", str(svdir)], env=CHILD_ENV)
        return True


class S6(Peer):
    name = "s6-supervise (s6)"

    def start(self) -> bool:
        if not shutil.which("s6-svscan"):
            return False
        scandir = self.base / "s6"
        self.run_scripts(scandir)
        cmd = ["s6-svscan", "-c", str(self.n + 64), str(scandir)]
        self.proc = subprocess.Popen(cmd, env=CHILD_ENV)
        return True


def _pidfds(pids: list[int]) -> list[int]:
    fds = []
    for pid in dict.fromkeys(pids):
        try:
            fds.append(os.pidfd_open(pid))
        except OSError:  # gone already
            pass
    return fds


def _send(fds: list[int], sig: int) -> None:
    for fd in fds:
        try:
            signal.pidfd_send_signal(fd, sig)
        except OSError:
            pass
    if sig == signal.SIGKILL:
        for fd in fds:
            os.close(fd)


class Supervisord(Peer):
    name = "supervisord"

    def start(self) -> bool:
        sd = VENV / "bin" / "supervisord"
        if not sd.exists():
            return False
        d = self.base / "supervisord"
        d.mkdir(parents=True)
        conf = d / "supervisord.conf"
        text = f"[supervisord]\npidfile={d}/pid\nlogfile={d}/log\nminfds={4 * self.n + 64}\n"
        text += f"[unix_http_server]\nfile={d}/sock\n"
        for i in range(self.n):
            text += (
                f"[program:s{i:04d}]\ncommand={SLEEP} 100000\nautorestart=true\nstartsecs=0\n"
                "stdout_logfile=NONE\nstderr_logfile=NONE\n"
            )
        conf.write_text(text)
        self.proc = subprocess.Popen(
            [str(sd), "-n", "-c", str(conf)],
            env=CHILD_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return True

    def supervisors(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]

    def first(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Servicectl(Peer):
    name = "servicectl"

    def __init__(self, base: Path, n: int, env: Env) -> None:
        super().__init__(base, n)
        yaml = f"command: {SLEEP} 100000\nstart_grace: 0\nrestart: always\nrestart_delay: 0\n"
        yaml += "start_limit: {interval: 0}\n"
        self.sc = env.sc_dir(base.name, {f"s{i:04d}": yaml for i in range(n)})
        self.run_dir = env.base / base.name / "run"

    def start(self) -> bool:
        r = run([*self.sc, "startall"], timeout=1200)
        if r.rc != 0:
            NOTES.append(f"servicectl startall of {self.n}: rc={r.rc}: {r.err[-300:]}")
        return True

    def supervisors(self) -> list[int]:
        return supervisors(self.run_dir)

    def first(self) -> int:
        return self.supervisors()[0]

    def stop(self) -> None:
        run([*self.sc, "stopall"], timeout=1200)
        kill_pids(self.supervisors())


# ---------------------------------------------------------------------------------------------
# The section


def bench_peers(env: Env) -> None:
    print("## 7. Supervision beside runsv, s6-supervise and supervisord\n")
    print(
        "Each supervises `sleep 100000` (servicectl: `restart: always`, `restart_delay: 0`; "
        "runsv and s6-supervise: a `run` script that execs sleep; supervisord: "
        "`autorestart=true`, `startsecs=0`). Respawn: SIGKILL to the service after it ran 1.1 s "
        "(runsv and s6-supervise wait 1 s after a quicker exit), then the time until its "
        "supervisor has a new child running sleep (polled every 0.2 ms). PSS: the sum over "
        "every supervising process (runsvdir and the runsv of each service; s6-svscan and each "
        "s6-supervise; supervisord; servicectl's one supervisor).\n"
    )
    reps = max(3, env.args.reps)
    peers: list[Callable[[Path, int], Peer]] = [
        lambda b, n: Servicectl(b, n, env),
        Runit,
        S6,
        Supervisord,
    ]
    sizes = (1, 100, 1000)
    rows: dict[str, list[str]] = {}
    for make in peers:
        for n in sizes:
            p = make(env.base / f"peer-{len(rows)}-{n}", n)
            cells = rows.setdefault(p.name, [p.name])
            cells += _measure(p, reps if n == 1 else 0)
    headers = ["supervisor", "respawn (1 service)", "PSS, 1 service", "PSS, 100", "PSS, 1,000"]
    table(headers, [[c[0], c[1], c[2], c[4], c[6]] for c in rows.values()])
    bench_health(env)


def _measure(p: Peer, reps: int) -> list[str]:
    """[respawn, PSS] of one peer with N services ("—" where not measured)."""
    log(f"{p.name}: {p.n} services")
    try:
        if not p.start():
            return ["not installed", "—"]
        if not wait(p.services_up, 600):
            NOTES.append(f"{p.name}: {p.n} services were not all up within 600 s")
        time.sleep(0.5)
        pss = sum(pss_mib(s) for s in p.supervisors())
        target = {100: "pss100", 1000: "pss1000"}.get(p.n) if isinstance(p, Servicectl) else None
        if target:
            TARGETS[target].series = Series([pss])
        respawn = "—"
        if reps:
            s = respawn_of(p.first, reps)
            if isinstance(p, Servicectl):
                TARGETS["respawn"].series = s
            respawn = cell(s)
        mark = f" **{TARGETS[target].mark()}**" if target else ""
        return [respawn, f"{pss:.1f} MiB{mark}"]
    finally:
        p.stop()


HTTP_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def bench_health(env: Env) -> None:
    """The supervisor's CPU time with 100 services probed over http every 5 s, beside the
    same 100 without health checks, over the same window."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([PY, "-c", HTTP_SERVER, str(port)], env=CHILD_ENV)
    window = 30.0 if env.args.quick else 60.0
    results = {}
    try:
        for probed in (False, True):
            yaml = f"command: {SLEEP} 100000\nstart_grace: 0\nrestart: always\n"
            if probed:
                yaml += f'health: {{http: "http://127.0.0.1:{port}/health", interval: 5}}\n'
            name = f"health-{int(probed)}"
            sc = env.sc_dir(name, {f"s{i:03d}": yaml for i in range(100)})
            run([*sc, "startall"], timeout=600)
            sups = supervisors(env.base / name / "run")
            time.sleep(6)  # the first probes are under way
            before = {p: cpu_ticks(p) for p in sups}
            time.sleep(window)
            ticks = sum(cpu_ticks(p) - t for p, t in before.items())
            results[probed] = 100.0 * ticks / os.sysconf("SC_CLK_TCK") / window
            run([*sc, "stopall"], timeout=600)
            kill_pids(sups)
    finally:
        kill_pids([server.pid])
    TARGETS["health100"].series = Series([results[True]])
    table(
        ["100 supervised services", f"the supervisor's CPU over {window:g} s"],
        [
            ["without health checks", f"{results[False]:.2f} % of one core"],
            [
                "http health check each, every 5 s (20 probes/s)",
                f"{results[True]:.2f} % of one core **{TARGETS['health100'].mark()}**",
            ],
        ],
    )
