"""Benchmarks for servicectl: fleet start/status/stop, CLI cost, start/stop cycles, stop latency.
Measures and prints Markdown tables, never asserts: python bench/bench.py [--quick] [--only X]."""

from __future__ import annotations

import argparse
import datetime
import fcntl
import glob
import json
import os
import platform
import select
import shutil
import signal
import site
import socket
import statistics
import struct
import subprocess
import sys
import sysconfig
import tempfile
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import psutil

REPO = Path(__file__).resolve().parent.parent
FORKINGD = REPO / "services.d" / "bin" / "forkingd.py"
SLEEP = "/usr/bin/sleep"
SYS_PY3 = "/usr/bin/python3"  # what forkingd.py's `#!/usr/bin/env python3` finds in the clean PATH
PY = os.path.realpath(sys.executable)
VENV = Path("/tmp/servicectl-bench-venv")
T_START = time.time()
ORIG_ENV = dict(os.environ)
CHILD_ENV = dict(os.environ)  # main() adjusts bytecode caching unless --env-as-is
SSD_RETRY = "TERM/30/KILL/5"
FORKING_YAML = (
    f"type: forking\ncommand: {json.dumps([str(FORKINGD), '--pidfile', '{run_dir}/f.pid'])}\n"
    'pid_file: "{run_dir}/f.pid"\nstart_grace: 0\n'
)

LATPROG = '''\
"""Stop-latency probe: on SIGTERM write time.time() to argv[1], then _exit at once."""
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
def on_term(signum, frame):
    t = time.time()
    os.write(fd, repr(t).encode())
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
os.close(os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644))  # ready: handler installed
while True:
    signal.pause()
'''


def log(msg: str) -> None:
    print(f"[bench {time.time() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- running and waiting


@dataclass
class Run:
    secs: float
    rc: int
    maxrss_kb: int
    err: str
    ended: float  # time.time() right after the reap
    cpu: float = 0.0  # user + system CPU seconds of the command (and its reaped children)


def run(cmd: list[str], timeout: float = 180.0, env: Optional[dict[str, str]] = None) -> Run:
    """Run cmd, stdout to /dev/null; wall time from spawn to reap (and ru_maxrss, see peak_rss)."""
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errf,
            env=CHILD_ENV if env is None else env,
        )
        fd = os.pidfd_open(p.pid)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            timed_out = not poller.poll(timeout * 1000)
            if timed_out:
                p.kill()
            _, status, usage = os.wait4(p.pid, 0)
            secs = time.perf_counter() - t0
            ended = time.time()
        except BaseException:  # interrupted: let the tool undo its half-done action, then reap
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            raise
        finally:
            os.close(fd)
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace").strip()
    if timed_out:
        err = f"timed out after {timeout} s; {err}"
    cpu = usage.ru_utime + usage.ru_stime
    return Run(secs, p.returncode, usage.ru_maxrss, err, ended, cpu)


PTY_ENV = {"TERM": "xterm-256color"}


def run_pty(cmd: list[str], timeout: float = 180.0) -> Run:
    """Run cmd with stdout and stderr on a fresh pseudo-terminal of 120x40 (TERM=xterm-256color,
    no NO_COLOR), as a person at a terminal would; its output is drained meanwhile. Wall time
    from spawn to reap, as run()."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: every slave end is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {k: v for k, v in CHILD_ENV.items() if k != "NO_COLOR"}
    env.update(PTY_ENV)
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    finally:
        os.close(slave)
    fd = os.pidfd_open(p.pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        timed_out = not poller.poll(timeout * 1000)
        if timed_out:
            p.kill()
        _, status, usage = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
        ended = time.time()
    finally:
        os.close(fd)
    reader.join(10)
    os.close(master)
    p.returncode = os.waitstatus_to_exitcode(status)
    out = b"".join(chunks).decode(errors="replace")
    if timed_out:
        out = f"timed out after {timeout} s; {out}"
    cpu = usage.ru_utime + usage.ru_stime
    return Run(secs, p.returncode, usage.ru_maxrss, out[-2000:], ended, cpu)


def peak_rss(cmd: list[str]) -> int:
    """Peak RSS in KiB of one run of cmd (0 if it failed)."""
    if not os.access("/usr/bin/time", os.X_OK):
        return run(cmd).maxrss_kb
    with tempfile.NamedTemporaryFile("r") as f:
        r = run(["/usr/bin/time", "-f", "%M", "-o", f.name, *cmd])
        text = f.read().strip().splitlines()
    return int(text[-1]) if r.rc in (0, 3) and text and text[-1].isdigit() else 0


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll pred with short exponential backoff (1 ms .. 50 ms) until true or the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not pred():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def read_pid(path: str | Path) -> Optional[int]:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; PID 1 here reaps orphans only every ~1-2 s)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def ours(pid: int) -> bool:
    """A live process of our user, started after this benchmark began: safe to kill."""
    if pid <= 1 or pid == os.getpid():
        return False
    try:
        p = psutil.Process(pid)
        return (
            p.status() != psutil.STATUS_ZOMBIE
            and p.uids().real == os.getuid()
            and p.create_time() >= T_START - 2
        )
    except psutil.Error:
        return False


def kill_pids(pids: list[int], timeout: float = 10.0) -> None:
    """TERM (then KILL) each PID that is still one we started; pidfd opened before the check."""
    fds: dict[int, int] = {}
    for pid in set(pids):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        if ours(pid):
            fds[pid] = fd
        else:
            os.close(fd)
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for fd in fds.values():
                try:
                    signal.pidfd_send_signal(fd, sig)
                    signal.pidfd_send_signal(fd, signal.SIGCONT)
                except OSError:
                    pass
            try:
                wait_for(lambda: not any(alive(p) for p in fds), timeout, "processes to exit")
                return
            except TimeoutError:
                log(f"still alive after {sig.name}: {[p for p in fds if alive(p)]}")
    finally:
        for fd in fds.values():
            os.close(fd)


# ---------------------------------------------------------------- statistics and tables


@dataclass
class Series:
    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    estimate: bool = False

    def add(self, r: Run, ok: tuple[int, ...] = (0,), what: str = "") -> bool:
        if r.rc in ok:
            self.values.append(r.secs)
            return True
        self.failures.append(f"{what}: rc={r.rc}: {r.err[-300:]}")
        return False

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.values) if self.values else None


def fmt_t(v: float, unit_of: Optional[float] = None) -> str:
    """Seconds with 2 decimals from 1 s, else ms: whole from 100 ms, 1 decimal below."""
    u = v if unit_of is None else unit_of
    if u >= 1:
        return f"{v:.2f} s"
    if u >= 0.1:
        return f"{v * 1000:.0f} ms"
    return f"{v * 1000:.1f} ms"


def fmt_limit(v: float) -> str:
    return fmt_t(v).replace(".0 ms", " ms")


def cell(s: Optional[Series]) -> str:
    if s is None:
        return "—"
    if not s.values:
        return "FAILED" if s.failures else "—"
    med = s.median
    assert med is not None
    if s.estimate:
        return f"≈{fmt_t(med)} (est.)"
    lo, hi = (fmt_t(x, med).split()[0] for x in (min(s.values), max(s.values)))
    spread = f"{lo}–{hi}"
    fails = f", {len(s.failures)} failed" if s.failures else ""
    return f"{fmt_t(med)} ({spread}{fails})"


def ratio(a: Optional[Series], b: Optional[Series]) -> str:
    if a is None or b is None or a.median is None or not b.median:
        return "—"
    r = a.median / b.median
    digits = ".0f" if r >= 10 else ".2f" if r >= 0.1 else ".3f"
    return f"{'≈' if a.estimate or b.estimate else ''}{r:{digits}}×"


def table(headers: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


@dataclass
class Target:
    what: str
    limit: float
    series: Optional[Series] = None
    unit: str = ""  # "" for seconds; "MiB" for memory figures

    def verdict(self) -> str:
        s = self.series
        if s is None or s.median is None:
            return "not measured"
        return "PASS" if s.median <= self.limit else "MISS"

    def limit_text(self) -> str:
        return f"{self.limit:g} {self.unit}" if self.unit else fmt_limit(self.limit)

    def mark(self) -> str:
        return f"≤ {self.limit_text()}: {self.verdict()}"

    def figure(self) -> str:
        s = self.series
        if self.unit and s is not None and s.median is not None:
            return f"{s.median:.1f} {self.unit}"
        return cell(s)


TARGETS: dict[str, Target] = {
    "startall100": Target("fleet: startall, N=100", 2.0),
    "status200": Target("fleet: status, N=200 (the board, piped)", 0.120),
    "stopall100": Target("fleet: stopall, N=100", 2.0),
    "status_name": Target("cli: status NAME (stopped, piped)", 0.045),
    "help": Target("cli: --help", 0.080),
    "cycle_simple": Target("cycle: simple start+stop (start_grace 0)", 0.150),
    "cycle_forking": Target("cycle: forking start+stop", 0.150),
    "stop_latency": Target("stop latency (daemon exit → stop returns)", 0.020),
    "status_pty": Target("view: status NAME (running) on a pseudo-terminal", 0.120),
    "respawn": Target("supervise: respawn latency (exit → new process running, − delay)", 0.050),
    "pss100": Target("supervise: PSS of the supervision of 100 services", 64.0, unit="MiB"),
}
SUPERVISED_CYCLE_RATIO = 1.5  # a supervised start+stop over an unsupervised one (issue 16)
# startall of 100 with the live display on a pseudo-terminal, over the same piped (issue 17)
LIVE_RATIO_LIMIT = 1.2

NOTES: list[str] = []


def note_failures(label: str, s: Optional[Series]) -> None:
    if s is not None:
        for f in s.failures[:3]:
            NOTES.append(f"{label}: {f}")
        if len(s.failures) > 3:
            NOTES.append(f"{label}: ... {len(s.failures) - 3} more failures")


# ---------------------------------------------------------------- environment


class Env:
    """Temp dirs, the servicectl executable, and everything to clean up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.base = Path(tempfile.mkdtemp(prefix="servicectl-bench-"))
        self.sc_exe = args.servicectl or self.find_servicectl()
        self.sc_dirs: list[tuple[Path, Path, Path]] = []
        self.ssd = shutil.which("start-stop-daemon") or next(
            (
                p
                for p in ("/usr/sbin/start-stop-daemon", "/sbin/start-stop-daemon")
                if os.access(p, os.X_OK)
            ),
            None,
        )
        self.sup: Optional[Supervisor] = None
        self.sup_why = "not needed"

    @staticmethod
    def find_servicectl() -> str:
        # The console script next to this interpreter, not a pyenv shim on PATH (~55 ms of bash).
        direct = Path(sysconfig.get_path("scripts")) / "servicectl"
        if direct.is_file():
            return str(direct)
        found = shutil.which("servicectl")
        if not found:
            sys.exit("servicectl not found: pip install -e /work/main")
        return found

    def sc_dir(self, name: str, services: dict[str, str]) -> list[str]:
        """Make services/run/log dirs holding NAME.yaml for each NAME -> text; return base argv."""
        d = self.base / name
        svc, rundir, logdir = d / "svc", d / "run", d / "log"
        for p in (svc, rundir, logdir):
            p.mkdir(parents=True, exist_ok=True)
        for n, text in services.items():
            (svc / f"{n}.yaml").write_text(text)
        self.sc_dirs.append((svc, rundir, logdir))
        return [self.sc_exe, "-d", str(svc), "--run-dir", str(rundir), "--log-dir", str(logdir)]

    def cleanup(self) -> None:
        log("cleanup")
        if self.sup is not None:
            try:
                self.sup.shutdown()
            except Exception as e:  # keep cleaning
                log(f"supervisord shutdown: {e!r}")
        for svc, rundir, logdir in self.sc_dirs:
            cmd = [self.sc_exe, "-d", str(svc), "--run-dir", str(rundir), "--log-dir", str(logdir)]
            r = run([*cmd, "stopall"], timeout=120)
            if r.rc != 0:
                log(f"stopall in {svc.parent.name}: rc={r.rc} {r.err[-200:]}")
            kill_pids(supervisors(rundir))
        pids = [p for f in glob.glob(f"{self.base}/**/*.pid", recursive=True) if (p := read_pid(f))]
        kill_pids(pids)
        shutil.rmtree(self.base, ignore_errors=True)


class Supervisor:
    """A private supervisord (our child) with programs sleeper, w02..w20: 20 in all."""

    def __init__(self, env: Env) -> None:
        self.dir = env.base / "supervisor"
        self.dir.mkdir()
        d = self.dir
        self.conf = d / "supervisord.conf"
        self.sock = d / "supervisor.sock"
        self.pidfile = d / "supervisord.pid"
        progs = ["sleeper"] + [f"w{i:02d}" for i in range(2, 21)]
        text = (
            f"[unix_http_server]\nfile={self.sock}\n\n"
            f"[supervisord]\npidfile={self.pidfile}\nlogfile={d}/supervisord.log\n"
            f"childlogdir={d}\nuser={psutil.Process().username()}\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{self.sock}\n\n"
        )
        for p in progs:
            text += f"[program:{p}]\ncommand={SLEEP} 100000\nautostart=false\nstartsecs=0\n\n"
        self.conf.write_text(text)
        self.ctl = [str(VENV / "bin" / "supervisorctl"), "-c", str(self.conf)]
        self.proc = subprocess.Popen(
            [str(VENV / "bin" / "supervisord"), "-n", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.connectable, 30, "supervisord's socket")

    def connectable(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"supervisord exited with {self.proc.returncode}")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.sock))
                return True
            except OSError:
                return False

    def shutdown(self) -> None:
        pid = read_pid(self.pidfile) or self.proc.pid
        try:
            kids = [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            kids = []
        if pid == self.proc.pid and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        kill_pids(kids)


def ensure_supervisor(env: Env) -> None:
    sd, ctl = VENV / "bin" / "supervisord", VENV / "bin" / "supervisorctl"
    if not (sd.exists() and ctl.exists()):
        log(f"creating {VENV} and installing supervisor")
        for cmd in (
            [PY, "-m", "venv", str(VENV)],
            [str(VENV / "bin" / "pip"), "install", "-q", "supervisor"],
        ):
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as e:
                env.sup_why = f"`{' '.join(cmd)}` failed: {e}"
                return
            if p.returncode != 0:
                env.sup_why = f"`{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()[-300:]}"
                return
    try:
        env.sup = Supervisor(env)
        env.sup_why = ""
    except Exception as e:
        env.sup_why = f"supervisord did not start: {e}"


# ---------------------------------------------------------------- 1. fleet


def ssd_start_simple(env: Env, pidfile: Path, exe: str = SLEEP, *args: str) -> list[str]:
    assert env.ssd
    return [
        env.ssd, "--start", "--background", "--make-pidfile", "--pidfile", str(pidfile),
        "--exec", exe, "--", *(args or ("100000",)),
    ]  # fmt: skip


def ssd_stop(env: Env, pidfile: Path, remove: bool = True) -> list[str]:
    assert env.ssd
    cmd = [env.ssd, "--stop", "--pidfile", str(pidfile), "--retry", SSD_RETRY]
    return [*cmd, "--remove-pidfile"] if remove else cmd


def bench_fleet(env: Env) -> None:
    a = env.args
    reps = a.reps
    sizes = [10, 100, 200]
    print("## 1. Fleet: startall / status / stopall (issue 3)\n")
    print(
        f"N trivial services (`command: sleep 100000`, default start_grace 0.5 s). Wall time of "
        f"one `servicectl` subprocess each; median (min–max) of {reps} repetitions, servicectl "
        f"and start-stop-daemon alternating within each repetition. The s-s-d loops are the "
        f"classic init.d way: N sequential `start-stop-daemon --start --background "
        f"--make-pidfile` / `--stop --retry {SSD_RETRY} --remove-pidfile`.\n"
    )
    if not env.ssd:
        print("start-stop-daemon not found: s-s-d columns skipped.\n")
    else:
        print(
            f"s-s-d is compared for N ≤ {a.sdd_max} (`--sdd-max`). Each s-s-d `--stop` waits "
            f"until the process is reaped, and PID 1 here reaps orphans only every ~1–2 s, so "
            f"the stop loop costs ~1–2 s per service: it is timed for N ≤ {a.sdd_stop_max} "
            f"(`--sdd-stop-max`) in the first {min(a.sdd_stop_reps, reps)} repetition(s) "
            f"(`--sdd-stop-reps`; its spread is tiny, being a wait for PID 1's reap tick). "
            f"Otherwise the started sleeps are killed by PID instead (untimed), and above "
            f"N = {a.sdd_stop_max} the loop is estimated as N × the per-stop median of the "
            f"largest timed N, marked (est.). Note that s-s-d `--start --background` returns "
            f"without checking that the program survived, while servicectl waits start_grace "
            f"(0.5 s) for it: startall's floor is 0.5 s.\n"
        )
    rows = []
    per_stop: Optional[float] = None
    for n in sizes:
        cmd = env.sc_dir(f"fleet{n}", {f"s{i:03d}": "command: sleep 100000\n" for i in range(n)})
        ssd_run = env.base / f"fleet{n}" / "ssd-run"
        ssd_run.mkdir()
        use_ssd = bool(env.ssd) and n <= a.sdd_max
        ssd_timed_stop = use_ssd and n <= a.sdd_stop_max
        st, sa, so = Series(), Series(), Series()
        s_start, s_stop = (Series(), Series()) if use_ssd else (None, None)
        log(f"fleet N={n}: {reps} reps (s-s-d: {'yes' if use_ssd else 'no'})")
        for rep in range(reps):
            r = run([*cmd, "startall"])
            if st.add(r, what=f"startall N={n}"):
                sa.add(run([*cmd, "status"]), what=f"status N={n}")
            else:
                sa.failures.append("skipped: startall failed")
            so.add(run([*cmd, "stopall"]), what=f"stopall N={n}")
            if not use_ssd:
                continue
            assert s_start is not None and s_stop is not None
            pidfiles = [ssd_run / f"s{i:03d}.pid" for i in range(n)]
            t0 = time.perf_counter()
            bad = [r for p in pidfiles if (r := run(ssd_start_simple(env, p))).rc != 0]
            elapsed = time.perf_counter() - t0
            if bad:
                s_start.failures.append(f"{len(bad)} of {n} starts failed: {bad[0].err[-200:]}")
            else:
                s_start.values.append(elapsed)
            missing = [f for f in pidfiles if not f.exists()]
            if missing:  # s-s-d returned before its child wrote the PID file
                NOTES.append(f"fleet N={n}: {len(missing)} s-s-d PID files absent at loop end")
                wait_for(lambda fs=pidfiles: all(f.exists() for f in fs), 10, "s-s-d PID files")
            if ssd_timed_stop and rep < a.sdd_stop_reps:
                t0 = time.perf_counter()
                bad = [r for p in pidfiles if (r := run(ssd_stop(env, p))).rc != 0]
                elapsed = time.perf_counter() - t0
                if bad:
                    s_stop.failures.append(f"{len(bad)} of {n} stops failed: {bad[0].err[-200:]}")
                else:
                    s_stop.values.append(elapsed)
            # whatever is left (all of it when the stop loop is not timed): kill by PID
            kill_pids([p for f in pidfiles if (p := read_pid(f))])
            for f in pidfiles:
                f.unlink(missing_ok=True)
        if s_stop is not None:
            if ssd_timed_stop and s_stop.median is not None:
                per_stop = s_stop.median / n
            elif not ssd_timed_stop and per_stop is not None:
                s_stop.values, s_stop.estimate = [per_stop * n], True
        if n == 100:
            TARGETS["startall100"].series = st
            TARGETS["stopall100"].series = so
        if n == 200:
            TARGETS["status200"].series = sa

        def with_target(s: Series, key: str, at: int, n: int = n) -> str:
            return f"{cell(s)} **{TARGETS[key].mark()}**" if n == at else cell(s)

        rows.append(
            [
                str(n),
                with_target(st, "startall100", 100),
                with_target(sa, "status200", 200),
                with_target(so, "stopall100", 100),
                cell(s_start),
                cell(s_stop)
                + (
                    f" n={len(s_stop.values)}"
                    if s_stop and not s_stop.estimate and 0 < len(s_stop.values) < reps
                    else ""
                ),
                ratio(st, s_start),
                ratio(so, s_stop),
            ]
        )
        for label, s in (("startall", st), ("status", sa), ("stopall", so)):
            note_failures(f"fleet N={n} servicectl {label}", s)
        note_failures(f"fleet N={n} s-s-d start loop", s_start)
        note_failures(f"fleet N={n} s-s-d stop loop", s_stop)
        shutil.rmtree(ssd_run, ignore_errors=True)
    table(
        [
            "N",
            "servicectl startall",
            "servicectl status",
            "servicectl stopall",
            "s-s-d start loop",
            "s-s-d stop loop",
            "startall / s-s-d start",
            "stopall / s-s-d stop",
        ],
        rows,
    )


# ---------------------------------------------------------------- 2. CLI cost


def bench_cli(env: Env) -> None:
    reps = env.args.reps
    one = env.sc_dir("cli-one", {"one": "command: sleep 100000\n"})
    twenty = env.sc_dir("cli-20", {f"s{i:02d}": "command: sleep 100000\n" for i in range(1, 21)})
    sup = env.sup
    ssd_pid = str(env.base / "cli-one" / "run" / "one.pid")
    floor = [PY, "-c", "pass"]
    print("## 2. CLI cost (issue 6)\n")
    print(
        f"Wall time of one invocation (fresh process each time; one untimed warm-up run first, "
        f"so page cache and .pyc are warm), stdout to /dev/null, median (min–max) of {reps}, "
        f"tools alternating. servicectl is run as `{env.sc_exe}` (the console script of this "
        f"interpreter). Comparators: the interpreter floor `python -c pass` (same "
        f"{platform.python_version()}), `supervisorctl` (Python too, talking to a running "
        f"supervisord with 20 programs), `start-stop-daemon` (C).\n"
    )
    if not sup:
        print(f"supervisorctl column skipped: {env.sup_why}\n")

    def measure(
        cmds: dict[str, tuple[list[str], tuple[int, ...]]], env: Optional[dict[str, str]] = None
    ) -> dict[str, Series]:
        out = {k: Series() for k in cmds}
        for argv, _ok in cmds.values():
            run(argv, env=env)  # warm-up
        for _ in range(reps):
            for k, (argv, ok) in cmds.items():
                out[k].add(run(argv, env=env), ok, what=" ".join(argv[-2:]))
        return out

    rows: list[list[str]] = []

    def row(label: str, res: dict[str, Series], target: str = "") -> None:
        sc = res["sc"]
        ratios = ", ".join(
            f"{ratio(sc, res[k])} {name}"
            for k, name in (("py", "python"), ("sup", "supervisorctl"), ("ssd", "s-s-d"))
            if k in res
        )
        rows.append(
            [
                label,
                cell(sc) + (f" **{TARGETS[target].mark()}**" if target else ""),
                cell(res.get("py")),
                cell(res.get("sup")),
                cell(res.get("ssd")),
                ratios,
            ]
        )
        for k, s in res.items():
            note_failures(f"cli {label} [{k}]", s)

    log("cli: --help")
    cmds = {
        "sc": ([*one, "--help"], (0,)),
        "py": (floor, (0,)),
        "pyS": ([PY, "-S", "-c", ""], (0,)),
    }
    if sup:
        cmds["sup"] = ([*sup.ctl, "--help"], (0,))
    res = measure(cmds)
    TARGETS["help"].series = res["sc"]
    row("`--help`", res, "help")
    py, py_s = res["py"].median, res["pyS"].median
    if py is not None and py_s is not None:
        pth = sorted(p.name for d in site.getsitepackages() for p in Path(d).glob("*.pth"))
        NOTES.append(
            f"Interpreter floor: `python -c pass` {fmt_t(py)}, `python -S -c pass` {fmt_t(py_s)}: "
            f"site-packages start-up costs {fmt_t(py - py_s)} in every process of this "
            f"interpreter, servicectl included ({', '.join(pth) or 'no .pth files'}). "
            f"supervisorctl runs from its own venv, which loads none of those."
        )

    # What a user typing `servicectl` gets: the first one on PATH that is not the script itself
    # (under `pyenv exec` the script's own bin dir comes first, the shim later).
    shim = next(
        (
            p
            for d in os.environ.get("PATH", "").split(os.pathsep)
            if d
            and os.access(p := os.path.join(d, "servicectl"), os.X_OK)
            and os.path.realpath(p) != os.path.realpath(env.sc_exe)
        ),
        None,
    )
    if shim:
        log("cli: --help via PATH")
        res2 = measure({"sc": ([shim, "--help"], (0,)), "py": (floor, (0,))})
        row(f"`--help` via PATH (`{shim}`)", res2)
        NOTES.append(
            f"`servicectl` on PATH is `{shim}` (a wrapper, e.g. a pyenv shim); the rows above "
            f"use the console script directly. Via PATH costs {ratio(res2['sc'], res['sc'])} "
            f"the direct script for `--help`."
        )

    log("cli: status NAME")
    cmds = {"sc": ([*one, "status", "one"], (3,)), "py": (floor, (0,))}
    if sup:
        cmds["sup"] = ([*sup.ctl, "status", "sleeper"], (0, 3))
    if env.ssd:
        cmds["ssd"] = ([env.ssd, "--status", "--pidfile", ssd_pid], (3,))
    res = measure(cmds)
    TARGETS["status_name"].series = res["sc"]
    row("`status NAME` (stopped)", res, "status_name")
    if CHILD_ENV != ORIG_ENV:
        log("cli: status NAME, environment as-is")
        res = measure({"sc": ([*one, "status", "one"], (3,)), "py": (floor, (0,))}, env=ORIG_ENV)
        row("`status NAME`, environment as-is (no bytecode cache)", res)

    log("cli: status/list with 20 services")
    r = run([*twenty, "startall"])
    if r.rc != 0:
        NOTES.append(f"cli: startall of 20 failed (rc={r.rc}): {r.err[-300:]}")
    if sup:
        r = run([*sup.ctl, "start", "all"])
        if r.rc != 0:
            NOTES.append(f"cli: supervisorctl start all failed (rc={r.rc}): {r.err[-300:]}")
    cmds = {"sc": ([*twenty, "status"], (0,)), "py": (floor, (0,))}
    if sup:
        cmds["sup"] = ([*sup.ctl, "status"], (0,))
    res_status = measure(cmds)
    row("`status`, 20 running", res_status)
    cmds = {"sc": ([*twenty, "list"], (0,)), "py": (floor, (0,))}
    if sup:
        cmds["sup"] = ([*sup.ctl, "avail"], (0,))
    row("`list`, 20 (supervisorctl: `avail`)", measure(cmds))
    table(
        ["command", "servicectl", "python -c pass", "supervisorctl", "start-stop-daemon", "ratios"],
        rows,
    )

    log("cli: peak RSS")
    # wait4's ru_maxrss would be wrong here: Popen spawns with vfork, and the kernel carries the
    # parent's (this benchmark's) high-water RSS into the child at exec. GNU time forks instead.
    rss: dict[str, list[int]] = {"sc": [], "py": [], "sup": []}
    how = "`/usr/bin/time -f %M` (GNU time forks: only the command's own pages count)"
    if not os.access("/usr/bin/time", os.X_OK):
        how = "`wait4` ru_maxrss — an upper bound: it includes this benchmark's own RSS (vfork)"
    for _ in range(reps):
        rss["sc"].append(peak_rss([*twenty, "status"]))
        rss["py"].append(peak_rss(floor))
        if sup:
            rss["sup"].append(peak_rss([*sup.ctl, "status"]))
    rss = {k: [x for x in v if x > 0] for k, v in rss.items()}

    def mb(v: list[int]) -> str:
        if not v:
            return "—"
        return f"{statistics.median(v) / 1024:.1f} MB ({min(v) / 1024:.1f}–{max(v) / 1024:.1f})"

    print(f"Peak RSS of one invocation, `status` with 20 running services, measured with {how}:\n")
    sup_ratio = "—"
    if rss["sup"] and rss["sc"]:
        sup_ratio = f"{statistics.median(rss['sc']) / statistics.median(rss['sup']):.2f}×"
    table(
        [
            "servicectl status",
            "python -c pass",
            "supervisorctl status",
            "servicectl / supervisorctl",
        ],
        [[mb(rss["sc"]), mb(rss["py"]), mb(rss["sup"]), sup_ratio]],
    )
    run([*twenty, "stopall"])
    if sup:
        run([*sup.ctl, "stop", "all"])


# ---------------------------------------------------------------- 3. cycles


def timed_pair(a: list[str], b: list[str], what: str) -> tuple[Optional[float], float, float, str]:
    """Run a then b; (total or None on failure, a secs, b secs, error)."""
    ra = run(a)
    rb = run(b)
    if ra.rc != 0 or rb.rc != 0:
        bad = ra if ra.rc != 0 else rb
        return None, ra.secs, rb.secs, f"{what}: rc={bad.rc}: {bad.err[-300:]}"
    return ra.secs + rb.secs, ra.secs, rb.secs, ""


@dataclass
class Cycle:
    total: Series = field(default_factory=Series)
    start: list[float] = field(default_factory=list)
    stop: list[float] = field(default_factory=list)

    def add(self, res: tuple[Optional[float], float, float, str]) -> None:
        tot, a, b, err = res
        if tot is None:
            self.total.failures.append(err)
            return
        self.total.values.append(tot)
        self.start.append(a)
        self.stop.append(b)

    def parts(self) -> str:
        if not self.start:
            return "—"
        return f"{fmt_t(statistics.median(self.start))} / {fmt_t(statistics.median(self.stop))}"


def bench_cycles(env: Env) -> None:
    reps = env.args.reps
    run_dir = env.base / "cycle" / "run"
    sc = env.sc_dir(
        "cycle",
        {
            "s0": "command: sleep 100000\nstart_grace: 0\n",
            "s05": "command: sleep 100000\n",
            "f": FORKING_YAML,
        },
    )
    ssd_dir = env.base / "cycle" / "ssd-run"
    ssd_dir.mkdir()
    sup = env.sup
    print("## 3. Start+stop cycles (issue 6)\n")
    print(
        f"One `start` then one `stop` subprocess, timed together (start / stop medians shown "
        f"beside); median (min–max) of {reps}, tools alternating. Simple: `sleep 100000`. "
        f"Forking: `{FORKINGD.name} --pidfile P` (double fork, writes its own PID file), run by "
        f"`{SYS_PY3}`. s-s-d: `--start --background --make-pidfile` (simple) or `--start "
        f"--pidfile P --exec {SYS_PY3}` (forking), then `--stop --retry {SSD_RETRY}`. "
        f"supervisorctl: `start sleeper` / `stop sleeper` (`startsecs=0`) against a running "
        f"supervisord, which is the sleeper's parent and reaps it at once. s-s-d's simple start "
        f"returns once it has forked (it checks nothing); its stop waits for PID 1 to reap.\n"
    )
    if not env.ssd:
        print("start-stop-daemon not found: its columns are skipped.\n")
    if not sup:
        print(f"supervisorctl column skipped: {env.sup_why}\n")
    c = {k: Cycle() for k in ("sc0", "sc05", "ssd", "sup", "scf", "ssdf")}
    ssd_p, ssdf_p = ssd_dir / "s.pid", ssd_dir / "f.pid"
    log(f"cycles: {reps} reps")
    for _ in range(reps):
        c["sc0"].add(timed_pair([*sc, "start", "s0"], [*sc, "stop", "s0"], "servicectl s0"))
        if env.ssd:
            c["ssd"].add(timed_pair(ssd_start_simple(env, ssd_p), ssd_stop(env, ssd_p), "s-s-d"))
        c["sc05"].add(timed_pair([*sc, "start", "s05"], [*sc, "stop", "s05"], "servicectl s05"))
        if sup:
            c["sup"].add(
                timed_pair([*sup.ctl, "start", "sleeper"], [*sup.ctl, "stop", "sleeper"], "sup")
            )
        c["scf"].add(timed_pair([*sc, "start", "f"], [*sc, "stop", "f"], "servicectl forking"))
        if env.ssd:
            start = [env.ssd, "--start", "--pidfile", str(ssdf_p), "--exec", SYS_PY3, "--"]
            c["ssdf"].add(
                timed_pair(
                    [*start, str(FORKINGD), "--pidfile", str(ssdf_p)],
                    ssd_stop(env, ssdf_p, remove=False),
                    "s-s-d forking",
                )
            )
        leftovers = [read_pid(p) for p in (ssd_p, ssdf_p, *run_dir.glob("*.pid"))]
        if any(p and alive(p) for p in leftovers):
            NOTES.append(f"cycles: processes left running after a cycle: {leftovers}")
            kill_pids([p for p in leftovers if p])
    TARGETS["cycle_simple"].series = c["sc0"].total
    TARGETS["cycle_forking"].series = c["scf"].total
    have = {"ssd": bool(env.ssd), "ssdf": bool(env.ssd), "sup": sup is not None}

    def col(k: str) -> list[str]:
        return [cell(c[k].total), c[k].parts()] if have[k] else ["—", "—"]

    def ratios(k: str, *others: tuple[str, str]) -> str:
        out = [f"{ratio(c[k].total, c[o].total)} {name}" for o, name in others if have[o]]
        return ", ".join(out) or "—"

    rows = [
        [
            "simple, start_grace 0",
            cell(c["sc0"].total) + f" **{TARGETS['cycle_simple'].mark()}**",
            c["sc0"].parts(),
            *col("ssd"),
            *col("sup"),
            ratios("sc0", ("ssd", "s-s-d"), ("sup", "supervisorctl")),
        ],
        [
            "simple, start_grace 0.5 (default)",
            cell(c["sc05"].total),
            c["sc05"].parts(),
            *col("ssd"),
            *col("sup"),
            ratios("sc05", ("ssd", "s-s-d"), ("sup", "supervisorctl")),
        ],
        [
            "forking (double fork), start_grace 0",
            cell(c["scf"].total) + f" **{TARGETS['cycle_forking'].mark()}**",
            c["scf"].parts(),
            *col("ssdf"),
            "—",
            "—",
            ratios("scf", ("ssdf", "s-s-d")),
        ],
    ]
    table(
        [
            "cycle",
            "servicectl",
            "start / stop",
            "s-s-d",
            "start / stop",
            "supervisorctl",
            "start / stop",
            "servicectl / other",
        ],
        rows,
    )
    for k, cy in c.items():
        note_failures(f"cycle {k}", cy.total)


# ---------------------------------------------------------------- 4. stop latency


def bench_latency(env: Env) -> None:
    reps = env.args.reps
    d = env.base / "latency"
    d.mkdir()
    prog = d / "latprog.py"
    prog.write_text(LATPROG)
    out_sc, ready_sc = d / "exit-sc.txt", d / "ready-sc"
    out_ssd, ready_ssd = d / "exit-ssd.txt", d / "ready-ssd"
    ssd_pid = d / "ssd.pid"
    lat_cmd = json.dumps([PY, str(prog), str(out_sc), str(ready_sc)])
    sc = env.sc_dir("latency-sc", {"lat": f"command: {lat_cmd}\nstart_grace: 0\n"})
    print("## 4. Stop latency (issue 6)\n")
    print(
        f"Time from the daemon's exit to the stop command returning. The daemon (a Python "
        f"program) writes `time.time()` right before `os._exit(0)` in its SIGTERM handler; the "
        f"benchmark takes `time.time()` right after the stop subprocess is reaped. Median "
        f"(min–max) of {reps}, tools alternating. 'whole stop' is the stop command's wall time "
        f"(includes its start-up).\n"
    )
    res = {"sc": (Series(), Series()), "ssd": (Series(), Series())}

    def one(key: str, start: list[str], stop: list[str], out: Path, ready: Path) -> None:
        lat, whole = res[key]
        for f in (out, ready):
            f.unlink(missing_ok=True)
        r = run(start)
        if r.rc != 0:
            lat.failures.append(f"start rc={r.rc}: {r.err[-300:]}")
            return
        try:
            wait_for(ready.exists, 10, f"{key} probe to install its SIGTERM handler")
        except TimeoutError as e:
            lat.failures.append(str(e))
            return
        r = run(stop)
        t_ret = r.ended
        try:
            t_exit = float(out.read_text())
        except (OSError, ValueError) as e:
            lat.failures.append(f"stop rc={r.rc}, no exit time: {e!r} {r.err[-200:]}")
            return
        if r.rc != 0:
            lat.failures.append(f"stop rc={r.rc}: {r.err[-300:]}")
            return
        lat.values.append(t_ret - t_exit)
        whole.values.append(r.secs)

    log(f"latency: {reps} reps")
    for _ in range(reps):
        one("sc", [*sc, "start", "lat"], [*sc, "stop", "lat"], out_sc, ready_sc)
        if env.ssd:
            one(
                "ssd",
                ssd_start_simple(env, ssd_pid, PY, str(prog), str(out_ssd), str(ready_ssd)),
                ssd_stop(env, ssd_pid),
                out_ssd,
                ready_ssd,
            )
            kill_pids([p for p in [read_pid(ssd_pid)] if p])
    TARGETS["stop_latency"].series = res["sc"][0]
    rows = [
        [
            "servicectl stop",
            cell(res["sc"][0]) + f" **{TARGETS['stop_latency'].mark()}**",
            cell(res["sc"][1]),
        ]
    ]
    if env.ssd:
        rows.append(
            [
                f"start-stop-daemon --stop --retry {SSD_RETRY}",
                cell(res["ssd"][0]),
                cell(res["ssd"][1]),
            ]
        )
        rows.append(
            [
                "ratio servicectl / s-s-d",
                ratio(res["sc"][0], res["ssd"][0]),
                ratio(res["sc"][1], res["ssd"][1]),
            ]
        )
    else:
        print("start-stop-daemon not found: its row is skipped.\n")
    table(["tool", "exit → stop returns", "whole stop"], rows)
    note_failures("latency servicectl", res["sc"][0])
    note_failures("latency s-s-d", res["ssd"][0])


# ---------------------------------------------------------------- 6. supervision (issue 16)


def supervisors(run_dir: Path) -> list[int]:
    """The supervisor processes of a run dir (python -S -m servicectl.supervisor RUN FD)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        argv = p.info["cmdline"] or []
        if "servicectl.supervisor" in argv and str(run_dir) in argv:
            out.append(p.pid)
    return out


def pss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise ValueError("no Pss line")


def respawned_at(pid_file: Path, old: int, exe: str, timeout: float = 10) -> float:
    """Poll (every 0.2 ms) until the PID file names a new process that runs ``exe`` (past the
    gate): the time.perf_counter() of that sight."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        pid = read_pid(pid_file)
        if pid and pid != old:
            try:
                if os.readlink(f"/proc/{pid}/exe") == exe:
                    return time.perf_counter()
            except OSError:
                pass
        time.sleep(0.0002)
    raise TimeoutError(f"no respawn within {timeout} s")


def bench_supervise(env: Env) -> None:
    reps = env.args.reps
    print("## 6. Supervision (issue 16)\n")
    print(
        "One supervisor per run directory is the parent of every supervised service (see "
        "docs/supervision.md). Respawn latency: SIGKILL to the service (`sleep 100000`), then "
        "the benchmark polls every 0.2 ms until the PID file names a new process that runs "
        "`sleep` (its gate passed), minus `restart_delay`. PSS: `/proc/PID/smaps_rollup` of "
        "the supervisor with N services running under it. Cycles: `start` then `stop` of a "
        "`sleep` with `start_grace: 0`, supervised (`restart: always`, the supervisor already "
        "running) and not.\n"
    )
    sleep_exe = os.path.realpath(SLEEP)
    lat: dict[float, Series] = {}
    for delay in (0.0, 0.2):
        name = f"r{int(delay * 1000)}"
        yaml = f"command: {SLEEP} 100000\nstart_grace: 0\nrestart: always\n"
        yaml += f"restart_delay: {delay}\nstart_limit: {{interval: 0}}\n"
        sc = env.sc_dir(f"respawn-{name}", {"s": yaml})
        pid_file = env.base / f"respawn-{name}" / "run" / "s.pid"
        series = lat[delay] = Series()
        r = run([*sc, "start", "s"])
        if r.rc != 0:
            series.failures.append(f"start: {r.err[-300:]}")
            continue
        log(f"respawn latency, restart_delay {delay}: {reps * 3} respawns")
        for _ in range(reps * 3):
            old = read_pid(pid_file)
            assert old is not None
            time.sleep(0.05)  # the previous respawn's start_grace and confirmation are over
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            try:
                series.values.append(respawned_at(pid_file, old, sleep_exe) - t0 - delay)
            except TimeoutError as e:
                series.failures.append(str(e))
                break
        run([*sc, "stop", "s"])
    TARGETS["respawn"].series = lat[0.0]
    table(
        ["restart_delay", "exit → new process running, minus restart_delay"],
        [
            ["0 s", cell(lat[0.0]) + f" **{TARGETS['respawn'].mark()}**"],
            ["0.2 s", cell(lat[0.2])],
        ],
    )
    _bench_supervise_pss(env)
    _bench_supervise_cycle(env)


def _bench_supervise_pss(env: Env) -> None:
    rows = []
    for n in (1, 10, 100):
        yaml = f"command: {SLEEP} 100000\nstart_grace: 0\nrestart: always\n"
        sc = env.sc_dir(f"pss-{n}", {f"s{i:03d}": yaml for i in range(n)})
        run_dir = env.base / f"pss-{n}" / "run"
        r = run([*sc, "startall"], timeout=300)
        sups = supervisors(run_dir)
        if r.rc != 0 or not sups:
            NOTES.append(f"pss {n}: startall rc={r.rc}, supervisors {sups}: {r.err[-300:]}")
            continue
        time.sleep(0.5)
        pss = sum(pss_mib(p) for p in sups)
        rss = sum(psutil.Process(p).memory_info().rss for p in sups) / 2**20
        threads = sum(psutil.Process(p).num_threads() for p in sups)
        if n == 100:
            TARGETS["pss100"].series = Series([pss])
        mark = f" **{TARGETS['pss100'].mark()}**" if n == 100 else ""
        rows.append(
            [str(n), str(len(sups)), f"{pss:.1f} MiB{mark}", f"{rss:.1f} MiB", str(threads)]
        )
        run([*sc, "stopall"], timeout=300)
        kill_pids(sups)
    py = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], env=CHILD_ENV)
    time.sleep(0.5)
    one = pss_mib(py.pid)
    py.kill()
    py.wait()
    rows.append(
        [
            f"(one `python -c` for comparison: ×100 = {one * 100:.0f} MiB)",
            "—",
            f"{one:.1f} MiB",
            "—",
            "—",
        ]
    )
    table(["services", "supervisors", "PSS", "RSS", "threads"], rows)


def _bench_supervise_cycle(env: Env) -> None:
    reps = env.args.reps
    plain = "command: sleep 100000\nstart_grace: 0\n"
    sup = plain + "restart: always\n"
    sc = env.sc_dir("sup-cycle", {"plain": plain, "sup": sup, "keeper": sup})
    cold = Cycle()
    cold.add(timed_pair([*sc, "start", "sup"], [*sc, "stop", "sup"], "supervised, cold"))
    run([*sc, "start", "keeper"])  # keeps the supervisor up between cycles
    c = {"plain": Cycle(), "sup": Cycle()}
    log(f"supervised cycles: {reps} reps")
    for _ in range(reps):
        for k in ("plain", "sup"):
            c[k].add(timed_pair([*sc, "start", k], [*sc, "stop", k], f"cycle {k}"))
    run([*sc, "stop", "keeper"])
    r = ratio(c["sup"].total, c["plain"].total)
    pl, su = c["plain"].total.median, c["sup"].total.median
    verdict = (
        "not measured"
        if not pl or not su
        else "PASS"
        if su <= SUPERVISED_CYCLE_RATIO * pl
        else "MISS"
    )
    table(
        ["cycle (start_grace 0)", "start+stop", "start / stop"],
        [
            ["unsupervised", cell(c["plain"].total), c["plain"].parts()],
            ["supervised (supervisor running)", cell(c["sup"].total), c["sup"].parts()],
            ["supervised, first start (starts the supervisor)", cell(cold.total), cold.parts()],
            [
                f"ratio supervised / unsupervised (target ≤ {SUPERVISED_CYCLE_RATIO}×)",
                f"{r} **{verdict}**",
                "—",
            ],
        ],
    )
    for k, cy in c.items():
        note_failures(f"supervised cycle {k}", cy.total)


# ---------------------------------------------------------------- 5. the terminal view


def bench_view(env: Env) -> None:
    reps = env.args.reps
    one = env.sc_dir(
        "view-one",
        {"one": "command: sleep 100000\nstart_grace: 0\n", "off": "command: sleep 100000\n"},
    )
    hundred = env.sc_dir("view-100", {f"s{i:03d}": "command: sleep 100000\n" for i in range(100)})
    print("## 5. The terminal view (issue 17)\n")
    print(
        f"`status NAME` of a stopped and of a running service (`sleep`), piped (stdout to "
        f"/dev/null) and on a pseudo-terminal (120x40, TERM=xterm-256color, output drained); "
        f"the board of 100 running services the same two ways; `startall` of 100 services "
        f"(default start_grace 0.5 s) piped and on a pseudo-terminal (the live display), each "
        f"followed by an untimed `stopall`. Median (min–max) of {reps}, the two ways "
        f"alternating. CPU: user + system time of the command (with the children it reaped), "
        f"which a loaded machine inflates less than wall time.\n"
    )
    r = run([*one, "start", "one"])
    if r.rc != 0:
        NOTES.append(f"view: start one failed (rc={r.rc}): {r.err[-300:]}")
    series: dict[str, Series] = {}

    cpu: dict[str, Series] = {}

    def measure(key: str, argv: list[str], ok: tuple[int, ...], pty: bool) -> None:
        s = series.setdefault(key, Series())
        r = run_pty(argv) if pty else run(argv)
        if s.add(r, ok, what=f"{key}"):
            cpu.setdefault(key, Series()).values.append(r.cpu)

    def cpu_cells(key: str) -> str:
        return f"{cell(cpu.get(f'{key} piped'))} / {cell(cpu.get(f'{key} pty'))}"

    log(f"view: status NAME, board: {reps} reps")
    for argv, ok, key in (
        ([*one, "status", "off"], (3,), "stopped"),
        ([*one, "status", "one"], (0,), "running"),
    ):
        run(argv)
        run_pty(argv)  # warm-up
        for _ in range(reps):
            measure(f"{key} piped", argv, ok, False)
            measure(f"{key} pty", argv, ok, True)
    r = run([*hundred, "startall"])
    if r.rc != 0:
        NOTES.append(f"view: startall of 100 failed (rc={r.rc}): {r.err[-300:]}")
    for _ in range(reps):
        measure("board piped", [*hundred, "status"], (0,), False)
        measure("board pty", [*hundred, "status"], (0,), True)
    run([*hundred, "stopall"])
    log(f"view: startall 100 piped and on a pty: {reps} reps")
    for _ in range(reps):
        for pty in (False, True):
            measure(f"startall {'pty' if pty else 'piped'}", [*hundred, "startall"], (0,), pty)
            r = run([*hundred, "stopall"])
            if r.rc != 0:
                NOTES.append(f"view: stopall of 100 failed (rc={r.rc}): {r.err[-300:]}")
    run([*one, "stop", "one"])
    TARGETS["status_pty"].series = series["running pty"]
    live = ratio(series["startall pty"], series["startall piped"])
    a, b = series["startall pty"].median, series["startall piped"].median
    verdict = (
        "not measured" if a is None or not b else "PASS" if a / b <= LIVE_RATIO_LIMIT else "MISS"
    )
    rows = [
        ["`status NAME`, stopped", cell(series["stopped piped"]), cell(series["stopped pty"]),
         ratio(series["stopped pty"], series["stopped piped"]), cpu_cells("stopped")],
        ["`status NAME`, running", cell(series["running piped"]),
         cell(series["running pty"]) + f" **{TARGETS['status_pty'].mark()}**",
         ratio(series["running pty"], series["running piped"]), cpu_cells("running")],
        ["`status` (the board), 100 running", cell(series["board piped"]),
         cell(series["board pty"]), ratio(series["board pty"], series["board piped"]),
         cpu_cells("board")],
        ["`startall`, 100", cell(series["startall piped"]), cell(series["startall pty"]),
         f"{live} **≤ {LIVE_RATIO_LIMIT}×: {verdict}**", cpu_cells("startall")],
    ]  # fmt: skip
    table(["command", "piped", "pseudo-terminal", "pty / piped", "CPU piped / pty"], rows)
    NOTES.append(f"view: startall of 100, live display on a pty / piped: {live} ({verdict})")
    for key, s in series.items():
        note_failures(f"view {key}", s)


# ---------------------------------------------------------------- main


def warm_up(env: Env) -> None:
    """Untimed: run every kind of command once, so bytecode and page cache are warm."""
    log("warm-up")
    sc = env.sc_dir("warmup", {"s": "command: sleep 100000\nstart_grace: 0\n", "f": FORKING_YAML})
    cmds = [
        [PY, "-c", "pass"],
        [*sc, "--help"],
        [*sc, "list"],
        [*sc, "status"],
        [*sc, "start", "s"],
        [*sc, "status", "s"],
        [*sc, "stop", "s"],
        [*sc, "start", "f"],
        [*sc, "stop", "f"],
        [*sc, "startall"],
        [*sc, "status"],
        [*sc, "stopall"],
    ]
    if env.sup:
        cmds += [[*env.sup.ctl, "--help"], [*env.sup.ctl, "status"]]
    for c in cmds:
        r = run(c)
        if r.rc not in (0, 3):
            NOTES.append(f"warm-up `{' '.join(c[-2:])}`: rc={r.rc}: {r.err[-300:]}")


def header(env: Env) -> None:
    git = ["git", "--no-optional-locks", "-C", str(REPO)]
    try:
        sha = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = (
            subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "servicectl"]).returncode != 0
        )
        rev = f"{sha}{' + uncommitted changes in servicectl/' if dirty else ''}"
    except OSError:
        rev = "unknown"
    ssd_ver = "not found"
    if env.ssd:
        v = subprocess.run([env.ssd, "--version"], capture_output=True, text=True).stdout
        ssd_ver = v.splitlines()[0] if v else "present"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    print("# servicectl benchmarks\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- kernel (`uname -r`): {platform.release()}")
    print(f"- CPUs: {os.cpu_count()} (usable: {affinity})")
    print(f"- Python: {platform.python_version()} ({PY})")
    print(f"- servicectl: {rev}, run as `{env.sc_exe}`")
    print(f"- start-stop-daemon: {ssd_ver}")
    print(f"- PID 1: `{Path('/proc/1/comm').read_text().strip()}`")
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if env.args.env_as_is:
        print("- Python bytecode: environment as-is (`--env-as-is`)")
    else:
        unset = (
            "; PYTHONDONTWRITEBYTECODE=1 from this environment is unset for the tools measured "
            "(with it, this editable install would compile servicectl from source on every run)"
            if "PYTHONDONTWRITEBYTECODE" in ORIG_ENV
            else ""
        )
        print(
            f"- Python bytecode: cached in the benchmark's temp dir (PYTHONPYCACHEPREFIX){unset}; "
            f"`--env-as-is` measures with the environment unchanged"
        )
    print(f"- repetitions: {env.args.reps}{' (--quick)' if env.args.quick else ''}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    ap.add_argument(
        "--only",
        choices=["fleet", "cli", "cycle", "view", "supervise"],
        help="cycle = cycles + stop latency; view = status NAME, board, startall on a terminal; "
        "supervise = respawn latency, the supervisor's PSS, supervised cycles",
    )
    ap.add_argument("--reps", type=int, help="repetitions per row (default 7, --quick 3)")
    ap.add_argument(
        "--sdd-max", type=int, default=100, help="compare s-s-d for N ≤ this (default 100)"
    )
    ap.add_argument(
        "--sdd-stop-max",
        type=int,
        default=10,
        help="time the s-s-d stop loop for N ≤ this (default 10)",
    )
    ap.add_argument(
        "--sdd-stop-reps",
        type=int,
        help="repetitions that time the s-s-d stop loop (default 3, --quick 1)",
    )
    ap.add_argument(
        "--env-as-is",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE etc. as set (default: cache bytecode in the temp dir)",
    )
    ap.add_argument(
        "--servicectl", help="servicectl executable (default: this interpreter's script)"
    )
    args = ap.parse_args()
    args.reps = args.reps or (3 if args.quick else 7)
    if args.sdd_stop_reps is None:
        args.sdd_stop_reps = 1 if args.quick else 3

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    env = Env(args)
    if not args.env_as_is:
        CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(env.base / "pycache")
    t0 = time.monotonic()
    try:
        header(env)
        sections = [args.only] if args.only else ["fleet", "cli", "cycle", "view", "supervise"]
        if "cli" in sections or "cycle" in sections:
            ensure_supervisor(env)
        warm_up(env)
        steps = {
            "fleet": [bench_fleet],
            "cli": [bench_cli],
            "cycle": [bench_cycles, bench_latency],
            "view": [bench_view],
            "supervise": [bench_supervise],
        }
        for name in sections:
            for fn in steps[name]:
                try:
                    fn(env)
                except KeyboardInterrupt:
                    raise
                except Exception as e:
                    print(f"**{fn.__name__} aborted: {e!r}**\n")
                    log(f"{fn.__name__} aborted: {e!r}")
                sys.stdout.flush()
        print("## Targets\n")
        for t in TARGETS.values():
            if t.series is not None:
                fig = t.figure()
                print(f"- {t.verdict()}: {t.what}: {fig} (target ≤ {t.limit_text()}, median)")
        if NOTES:
            print("\n## Notes\n")
            for n in NOTES:
                print(f"- {n}")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n_Run time: {time.monotonic() - t0:.0f} s; load average at end: {load}._")
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        env.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
