"""The tools compared side by side (bench/peers.py), each running N trivial services plus one
stopped service, ``x``: how each is set up, brought up, asked for status, made to start and stop
``x``, and torn down. Every service runs ``/usr/bin/sleep KEY`` (KEY = procwatch's marker), so
the kernel's exec/exit events say when each one ran and ended."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Optional

import psutil
from common import SLEEP, SSD_RETRY, Run, run, supervisors, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from procwatch import ProcWatch

X = 99999  # the index of the stopped service, x


class Tool:
    """One tool with N services (+ x) under ``base``: subclasses fill in the commands."""

    label = ""
    digit = ""
    supervises = True
    # how the figures of this tool's bring-up and tear-down are taken
    up_how = ""
    down_how = ""

    def __init__(self, base: Path, n: int, watch: ProcWatch, env: dict[str, str]) -> None:
        self.base, self.n, self.watch, self.env = base, n, watch, env
        self.base.mkdir(parents=True, exist_ok=True)
        self.prefix = "9" + self.digit

    def key(self, i: int) -> str:
        return f"{self.prefix}{i:05d}.{self.watch.mark}"

    def run(self, argv: list[str], timeout: float = 300) -> Run:
        return run(argv, timeout=timeout, env=self.env)

    # ---- set-up, bring-up, tear-down
    def prepare(self) -> None:
        raise NotImplementedError

    def bring_up(self) -> tuple[Optional[float], str]:
        """Bring all N up: (seconds, error)."""
        raise NotImplementedError

    def tear_down(self) -> tuple[Optional[float], str]:
        raise NotImplementedError

    def close(self) -> None:
        """Whatever outlives a tear-down (a supervisord, a namespace): stop it."""

    def settle(self) -> None:
        """After a bring-up, untimed: wait until x's supervisor answers too."""

    # ---- per-command rows: argv and the exit codes that are correct (None: not offered)
    def status_running(self) -> Optional[tuple[list[str], tuple[int, ...]]]:
        return None

    def status_stopped(self) -> Optional[tuple[list[str], tuple[int, ...]]]:
        return None

    def board(self) -> Optional[tuple[list[str], tuple[int, ...]]]:
        return None

    def start_stop(self) -> Optional[tuple[list[str], list[str]]]:
        return None

    def supervising(self) -> list[int]:
        return []

    # ---- helpers
    def live(self) -> int:
        return sum(1 for s in self.watch.live(self.prefix) if s.key != self.key(X))

    def wait_all_up(self, t0_ns: Optional[int], timeout: float) -> Optional[float]:
        """Wait for N live services; the seconds from t0_ns to the last one's exec."""
        self.watch.wait(lambda: self.live() >= self.n, timeout, f"{self.label}: {self.n} up")
        self.watch.barrier()
        if t0_ns is None:
            return None
        last = max(s.exec_ns for s in self.watch.live(self.prefix))
        return (last - t0_ns) / 1e9

    def wait_all_down(self, t0_ns: Optional[int], timeout: float) -> Optional[float]:
        gone = [s for s in self.watch.live(self.prefix) if s.key != self.key(X)]
        self.watch.wait(
            lambda: all(s.exit_ns is not None for s in gone), timeout, f"{self.label}: all down"
        )
        if t0_ns is None or not gone:
            return None
        return (max(s.exit_ns or 0 for s in gone) - t0_ns) / 1e9


def _pss_tree(root: int, names: tuple[str, ...]) -> list[int]:
    try:
        p = psutil.Process(root)
        return [root] + [c.pid for c in p.children() if c.name() in names]
    except psutil.Error:
        return []


def _wait_pidfd_exit(pid: int, timeout: float) -> None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        import select

        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- servicectl


class Servicectl(Tool):
    label = "servicectl"
    digit = "1"
    supervises = False
    up_how = "`servicectl startall`, wall time (it returns once every service has started)"
    down_how = "`servicectl stopall`, wall time (it returns once every service has exited)"
    extra = ""

    def __init__(self, exe: str, *a: object) -> None:
        super().__init__(*a)  # type: ignore[arg-type]
        self.exe = exe
        self.svc, self.rundir, self.logdir = (self.base / d for d in ("svc", "run", "log"))
        self.cmd = [
            exe, "-d", str(self.svc), "--run-dir", str(self.rundir), "--log-dir", str(self.logdir)
        ]  # fmt: skip

    def prepare(self) -> None:
        for d in (self.svc, self.rundir, self.logdir):
            d.mkdir(parents=True, exist_ok=True)
        body = "start_grace: 0\n" + self.extra
        for i in range(self.n):
            (self.svc / f"s{i:05d}.yaml").write_text(f"command: {SLEEP} {self.key(i)}\n{body}")
        (self.svc / "x.yaml").write_text(f"command: {SLEEP} {self.key(X)}\n{body}enabled: false\n")

    def warm(self) -> None:
        """Once the definitions are older than the cache's window, fill the cache (untimed)."""
        from servicectl.definitions.cache import RACY_NS

        time.sleep(RACY_NS / 1e9 + 0.1)
        self.run([*self.cmd, "list"])

    def bring_up(self) -> tuple[Optional[float], str]:
        r = self.run([*self.cmd, "startall"])
        if r.rc != 0:
            return None, f"startall rc={r.rc}: {r.err[-300:]}"
        self.wait_all_up(None, 60)
        return r.secs, ""

    def tear_down(self) -> tuple[Optional[float], str]:
        r = self.run([*self.cmd, "stopall"])
        self.wait_all_down(None, 60)
        if r.rc != 0:
            return None, f"stopall rc={r.rc}: {r.err[-300:]}"
        return r.secs, ""

    def status_running(self) -> tuple[list[str], tuple[int, ...]]:
        return [*self.cmd, "status", "s00000"], (0,)

    def status_stopped(self) -> tuple[list[str], tuple[int, ...]]:
        return [*self.cmd, "status", "x"], (3,)

    def board(self) -> tuple[list[str], tuple[int, ...]]:
        return [*self.cmd, "status"], (0, 3)

    def start_stop(self) -> tuple[list[str], list[str]]:
        return [*self.cmd, "start", "x"], [*self.cmd, "stop", "x"]

    def close(self) -> None:
        self.run([*self.cmd, "stopall"])
        for pid in supervisors(self.rundir):
            os.kill(pid, signal.SIGTERM)


class ServicectlSupervised(Servicectl):
    label = "servicectl (supervised)"
    digit = "2"
    supervises = True
    extra = "restart: always\nrestart_delay: 0\nstart_limit: {interval: 0}\n"

    def supervising(self) -> list[int]:
        return supervisors(self.rundir)


# ---------------------------------------------------------------- s6


RUN_SH = "#!/bin/sh\nexec {sleep} {key}\n"


class S6(Tool):
    label = "s6"
    digit = "3"
    up_how = "`s6-svscan -c N+100 SCANDIR` spawned → the last service's exec (kernel event time)"
    down_how = "`s6-svscanctl -t SCANDIR` → the last service's exit (kernel event time)"

    def prepare(self) -> None:
        self.scan = self.base / "scan"
        for i in [*range(self.n), X]:
            d = self.scan / (f"s{i:05d}" if i != X else "x")
            d.mkdir(parents=True, exist_ok=True)
            (d / "run").write_text(RUN_SH.format(sleep=SLEEP, key=self.key(i)))
            (d / "run").chmod(0o755)
        (self.scan / "x" / "down").touch()
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def bring_up(self) -> tuple[Optional[float], str]:
        t0 = time.monotonic_ns()
        self.proc = subprocess.Popen(
            ["s6-svscan", "-c", str(self.n + 100), str(self.scan)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=self.env,
        )  # fmt: skip
        return self.wait_all_up(t0, 120), ""

    def tear_down(self) -> tuple[Optional[float], str]:
        t0 = time.monotonic_ns()
        r = self.run(["s6-svscanctl", "-t", str(self.scan)])
        if r.rc != 0:
            return None, f"s6-svscanctl rc={r.rc}: {r.err[-300:]}"
        secs = self.wait_all_down(t0, 120)
        if self.proc is not None:
            _wait_pidfd_exit(self.proc.pid, 30)
        return secs, ""

    def supervising(self) -> list[int]:
        return _pss_tree(self.proc.pid, ("s6-supervise",)) if self.proc else []

    def settle(self) -> None:
        wait_for((self.scan / "x" / "supervise" / "status").exists, 30, "s6-supervise of x")

    def status_running(self) -> tuple[list[str], tuple[int, ...]]:
        return ["s6-svstat", str(self.scan / "s00000")], (0,)

    def status_stopped(self) -> tuple[list[str], tuple[int, ...]]:
        return ["s6-svstat", str(self.scan / "x")], (0,)

    def board(self) -> tuple[list[str], tuple[int, ...]]:
        loop = 'for d in "$1"/*/; do printf "%s " "$d"; s6-svstat "$d"; done'
        return ["/bin/sh", "-c", loop, "sh", str(self.scan)], (0,)

    def start_stop(self) -> tuple[list[str], list[str]]:
        x = str(self.scan / "x")
        return ["s6-svc", "-wu", "-u", x], ["s6-svc", "-wD", "-d", x]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.run(["s6-svscanctl", "-t", str(self.scan)])
            _wait_pidfd_exit(self.proc.pid, 30)


# ---------------------------------------------------------------- runit


class Runit(Tool):
    """runsvdir supervises at most 1,000 service dirs (compiled in): x lives outside the scan
    dir, under a runsv of its own, started before the timed bring-up."""

    label = "runit"
    digit = "4"
    up_how = (
        "`runsvdir -P DIR` spawned → the last service's exec (kernel event time); x has its own "
        "`runsv`, started untimed before (runsvdir takes at most 1,000 service dirs)"
    )
    down_how = (
        "SIGHUP to runsvdir (it TERMs every runsv, which stops its service and exits) → the "
        "last service's exit (kernel event time)"
    )

    def prepare(self) -> None:
        self.dir = self.base / "sv"
        self.xdir = self.base / "x"
        for i in [*range(self.n), X]:
            d = self.dir / f"s{i:05d}" if i != X else self.xdir
            d.mkdir(parents=True, exist_ok=True)
            (d / "run").write_text(RUN_SH.format(sleep=SLEEP, key=self.key(i)))
            (d / "run").chmod(0o755)
        (self.xdir / "down").touch()
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.xproc: Optional[subprocess.Popen[bytes]] = None

    def bring_up(self) -> tuple[Optional[float], str]:
        self.xproc = subprocess.Popen(
            ["runsv", str(self.xdir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=self.env,
        )  # fmt: skip
        t0 = time.monotonic_ns()
        self.proc = subprocess.Popen(
            ["runsvdir", "-P", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=self.env,
        )  # fmt: skip
        return self.wait_all_up(t0, 120), ""

    def tear_down(self) -> tuple[Optional[float], str]:
        assert self.proc is not None
        t0 = time.monotonic_ns()
        kids = _pss_tree(self.proc.pid, ("runsv",))[1:]
        self.proc.send_signal(signal.SIGHUP)
        secs = self.wait_all_down(t0, 120)
        for pid in [self.proc.pid, *kids]:
            _wait_pidfd_exit(pid, 30)
        self._stop_x()
        return secs, ""

    def _stop_x(self) -> None:
        if self.xproc is not None and self.xproc.poll() is None:
            self.xproc.send_signal(signal.SIGTERM)
            _wait_pidfd_exit(self.xproc.pid, 30)

    def supervising(self) -> list[int]:
        sups = _pss_tree(self.proc.pid, ("runsv",)) if self.proc else []
        return sups + ([self.xproc.pid] if self.xproc else [])

    def settle(self) -> None:
        x = str(self.xdir)
        wait_for(lambda: self.run(["sv", "status", x]).rc == 0, 30, "runsv of x")

    def status_running(self) -> tuple[list[str], tuple[int, ...]]:
        return ["sv", "status", str(self.dir / "s00000")], (0,)

    def status_stopped(self) -> tuple[list[str], tuple[int, ...]]:
        return ["sv", "status", str(self.xdir)], (0,)

    def board(self) -> tuple[list[str], tuple[int, ...]]:
        dirs = sorted(str(p) for p in self.dir.iterdir())
        return ["sv", "status", *dirs, str(self.xdir)], (0,)

    def start_stop(self) -> tuple[list[str], list[str]]:
        x = str(self.xdir)
        return ["sv", "-w", "30", "up", x], ["sv", "-w", "30", "down", x]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
            _wait_pidfd_exit(self.proc.pid, 30)
        self._stop_x()


# ---------------------------------------------------------------- supervisord


class Supervisord(Tool):
    label = "supervisord"
    digit = "5"
    up_how = (
        "`supervisorctl start f:*` (all but x), wall time; supervisord launched (untimed) just "
        "before"
    )
    down_how = "`supervisorctl stop f:*`, wall time"

    def __init__(self, venv: Path, *a: object) -> None:
        super().__init__(*a)  # type: ignore[arg-type]
        self.venv = venv

    def prepare(self) -> None:
        d = self.base
        self.conf, self.sock = d / "supervisord.conf", d / "supervisor.sock"
        names = [f"p{i:05d}" for i in range(self.n)]
        text = (
            f"[unix_http_server]\nfile={self.sock}\n\n"
            f"[supervisord]\npidfile={d}/supervisord.pid\nlogfile={d}/supervisord.log\n"
            f"childlogdir={d}/log\nminfds={4 * self.n + 1024}\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{self.sock}\n\n"
            f"[group:f]\nprograms={','.join(names)}\n\n"
        )
        for i, name in enumerate([*names, "x"]):
            key = self.key(i if name != "x" else X)
            text += (
                f"[program:{name}]\ncommand={SLEEP} {key}\nautostart=false\nstartsecs=0\n"
                "autorestart=true\n\n"
            )
        (d / "log").mkdir(exist_ok=True)
        self.conf.write_text(text)
        self.ctl = [str(self.venv / "bin" / "supervisorctl"), "-c", str(self.conf)]
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def _launch(self) -> None:
        """supervisord itself, untimed: it runs only during this tool's round."""
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "supervisord"), "-n", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=self.env,
        )  # fmt: skip
        wait_for(self._connectable, 60, "supervisord's socket")

    def _connectable(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"supervisord exited with {self.proc.returncode}")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.sock))
                return True
            except OSError:
                return False

    def bring_up(self) -> tuple[Optional[float], str]:
        self._launch()
        r = self.run([*self.ctl, "start", "f:*"])
        if r.rc != 0:
            return None, f"start f:* rc={r.rc}: {r.err[-300:]}"
        self.wait_all_up(None, 120)
        return r.secs, ""

    def tear_down(self) -> tuple[Optional[float], str]:
        r = self.run([*self.ctl, "stop", "f:*"])
        self.wait_all_down(None, 120)
        self.close()
        if r.rc != 0:
            return None, f"stop f:* rc={r.rc}: {r.err[-300:]}"
        return r.secs, ""

    def supervising(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def status_running(self) -> tuple[list[str], tuple[int, ...]]:
        return [*self.ctl, "status", "f:p00000"], (0,)

    def status_stopped(self) -> tuple[list[str], tuple[int, ...]]:
        return [*self.ctl, "status", "x"], (3,)

    def board(self) -> tuple[list[str], tuple[int, ...]]:
        return [*self.ctl, "status"], (0, 3)

    def start_stop(self) -> tuple[list[str], list[str]]:
        return [*self.ctl, "start", "x"], [*self.ctl, "stop", "x"]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            _wait_pidfd_exit(self.proc.pid, 60)
            if self.proc.poll() is None:
                self.proc.kill()
        self.proc = None


# ---------------------------------------------------------------- OpenRC's supervise-daemon


class SuperviseDaemon(Tool):
    """supervise-daemon keeps its state in /run/openrc (compiled in): every command runs in a
    private mount namespace with a tmpfs on /run, held open by a holder process."""

    label = "supervise-daemon"
    digit = "6"
    up_how = (
        "one `sh` running `supervise-daemon sNNNNN --start` for each service in turn → the last "
        "service's exec (kernel event time)"
    )
    down_how = "one `sh` running `supervise-daemon sNNNNN --stop` for each → the last exit"

    def __init__(self, sd: str, *a: object) -> None:
        super().__init__(*a)  # type: ignore[arg-type]
        self.sd = sd

    def prepare(self) -> None:
        holder = "mount -t tmpfs tmpfs /run && mkdir /run/openrc && exec sleep infinity"
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", holder],
            stdin=subprocess.DEVNULL, env=self.env,
        )  # fmt: skip
        wait_for(self._ns_ready, 10, "supervise-daemon's namespace")
        self.ns = ["nsenter", "-t", str(self.holder.pid), "-m"]
        self.pids = self.base / "pids"
        self.pids.mkdir(exist_ok=True)
        up, down = ["set -e"], []
        for i in range(self.n):
            s = f"s{i:05d}"
            up.append(" ".join(self._start(s, self.key(i))))
            down.append(" ".join(self._stop(s)))
        (self.base / "up.sh").write_text("\n".join(up) + "\n")
        (self.base / "down.sh").write_text("\n".join(down) + "\n")

    def _ns_ready(self) -> bool:
        try:
            return os.path.isdir(f"/proc/{self.holder.pid}/root/run/openrc")
        except OSError:
            return False

    def _start(self, name: str, key: str) -> list[str]:
        pidfile = str(self.pids / f"{name}.pid")
        return ["env", f"RC_SVCNAME={name}", self.sd, name, "--start", "--pidfile", pidfile,
                "--respawn-max", "0", "--", SLEEP, key]  # fmt: skip

    def _stop(self, name: str) -> list[str]:
        pidfile = str(self.pids / f"{name}.pid")
        return ["env", f"RC_SVCNAME={name}", self.sd, name, "--stop", "--pidfile", pidfile]

    def bring_up(self) -> tuple[Optional[float], str]:
        t0 = time.monotonic_ns()
        r = self.run([*self.ns, "sh", str(self.base / "up.sh")])
        if r.rc != 0:
            return None, f"up.sh rc={r.rc}: {r.err[-300:]}"
        return self.wait_all_up(t0, 120), ""

    def tear_down(self) -> tuple[Optional[float], str]:
        t0 = time.monotonic_ns()
        sups = self.supervising()
        r = self.run([*self.ns, "sh", str(self.base / "down.sh")])
        secs = self.wait_all_down(t0, 120)
        for pid in sups:
            _wait_pidfd_exit(pid, 30)
        if r.rc != 0:
            return None, f"down.sh rc={r.rc}: {r.err[-300:]}"
        return max(secs or 0, r.secs), ""

    def supervising(self) -> list[int]:
        out = []
        for f in self.pids.glob("s*.pid"):
            try:
                pid = int(f.read_text().strip())
                if psutil.Process(pid).name() == "supervise-daemon":
                    out.append(pid)
            except (OSError, ValueError, psutil.Error):
                pass
        return out

    def start_stop(self) -> tuple[list[str], list[str]]:
        return [*self.ns, *self._start("x", self.key(X))], [*self.ns, *self._stop("x")]

    def close(self) -> None:
        for pid in self.supervising():
            os.kill(pid, signal.SIGTERM)
        self.holder.kill()
        self.holder.wait()


# ---------------------------------------------------------------- start-stop-daemon


class Ssd(Tool):
    """dpkg's start-stop-daemon: a PID file per service, nothing supervises."""

    label = "start-stop-daemon"
    digit = "7"
    supervises = False

    def __init__(self, ssd: str, *a: object) -> None:
        super().__init__(*a)  # type: ignore[arg-type]
        self.ssd = ssd

    def prepare(self) -> None:
        self.running = self.base / "s00000.pid"
        self.x = self.base / "x.pid"
        r = self.run(self._start(self.running, self.key(0)))
        if r.rc != 0:
            raise RuntimeError(f"start-stop-daemon --start: {r.err[-300:]}")
        self.wait_all_up(None, 30)

    def _start(self, pidfile: Path, key: str) -> list[str]:
        return [self.ssd, "--start", "--background", "--make-pidfile", "--pidfile", str(pidfile),
                "--exec", SLEEP, "--", key]  # fmt: skip

    def _stop(self, pidfile: Path) -> list[str]:
        return [self.ssd, "--stop", "--pidfile", str(pidfile), "--retry", SSD_RETRY,
                "--remove-pidfile"]  # fmt: skip

    def status_running(self) -> tuple[list[str], tuple[int, ...]]:
        return [self.ssd, "--status", "--pidfile", str(self.running)], (0,)

    def status_stopped(self) -> tuple[list[str], tuple[int, ...]]:
        return [self.ssd, "--status", "--pidfile", str(self.x)], (3,)

    def start_stop(self) -> tuple[list[str], list[str]]:
        return self._start(self.x, self.key(X)), self._stop(self.x)

    def close(self) -> None:
        self.run(self._stop(self.running))
