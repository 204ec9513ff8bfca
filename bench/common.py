"""Shared by every benchmark section: paths and constants, running a command and timing it
(piped or on a pseudo-terminal), waiting on conditions, and killing only what we started."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import psutil

REPO = Path(__file__).resolve().parent.parent
FORKINGD = REPO / "services.d" / "bin" / "forkingd.py"
SLEEP = "/usr/bin/sleep"
SYS_PY3 = "/usr/bin/python3"  # what forkingd.py's `#!/usr/bin/env python3` finds in the clean PATH
PY = os.path.realpath(sys.executable)
VENV = Path("/tmp/servicectl-bench-venv")
T_START = time.time()
ORIG_ENV = dict(os.environ)
CHILD_ENV = dict(os.environ)  # bench.py's main() adjusts bytecode caching unless --env-as-is
SSD_RETRY = "TERM/30/KILL/5"
FORKING_YAML = (
    f"type: forking\ncommand: {json.dumps([str(FORKINGD), '--pidfile', '{run_dir}/f.pid'])}\n"
    'pid_file: "{run_dir}/f.pid"\nstart_grace: 0\n'
)


class Children:
    """The children this benchmark waits for itself (``run``, ``run_pty``, ``popen``/``reap``),
    so that the subreaper thread of the side-by-side section (procwatch.Reaper) reaps every
    other child it inherits and leaves these alone."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.own: set[int] = set()
        self.spawned = 0

    def popen(self, cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        with self.cond:
            p = subprocess.Popen(cmd, **kw)
            self.own.add(p.pid)
            self.spawned += 1
            self.cond.notify_all()
        return p

    def reap(self, p: subprocess.Popen[bytes]) -> tuple[int, Any]:
        """wait4 on p (which has exited or will): its wait status and rusage."""
        try:
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        finally:
            self.forget(p.pid)

    def forget(self, pid: int) -> None:
        with self.cond:
            self.own.discard(pid)
            self.cond.notify_all()

    def reap_orphan(self, pid: int) -> None:
        """Reap pid unless it is one of ours: then wait until its owner has reaped it."""
        with self.cond:
            if pid in self.own:
                while pid in self.own:
                    self.cond.wait()
                return
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


CHILDREN = Children()


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
        p = CHILDREN.popen(
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
            status, usage = CHILDREN.reap(p)
            secs = time.perf_counter() - t0
            ended = time.time()
        except BaseException:  # interrupted: let the tool undo its half-done action, then reap
            if p.returncode is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                CHILDREN.forget(p.pid)
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
        p = CHILDREN.popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    finally:
        os.close(slave)
    fd = os.pidfd_open(p.pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        timed_out = not poller.poll(timeout * 1000)
        if timed_out:
            p.kill()
        status, usage = CHILDREN.reap(p)
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


def supervisors(run_dir: Path) -> list[int]:
    """The supervisor processes of a run dir (python -S -m servicectl.supervisor.daemon RUN FD)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        argv = p.info["cmdline"] or []
        if "servicectl.supervisor.daemon" in argv and str(run_dir) in argv:
            out.append(p.pid)
    return out


def pss_mib(pid: int) -> float:
    """The proportional set size of a process, in MiB (0.0 if it cannot be read)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
