"""The benchmark's environment: temp dirs with services, the servicectl executable, a private
supervisord to compare with, start-stop-daemon's command lines, and the clean-up."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import psutil
from common import PY, SLEEP, SSD_RETRY, VENV, kill_pids, log, read_pid, run, supervisors, wait_for

from servicectl.definitions.cache import RACY_NS

if TYPE_CHECKING:
    import argparse


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
        # servicectl caches a validated definition only once its file is older than the cache's
        # window for coarse file times (cache.RACY_NS): measure what a machine whose
        # definitions were written earlier sees, not a YAML parse on every run.
        time.sleep(RACY_NS / 1e9 + 0.1)
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
