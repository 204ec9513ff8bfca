"""Fixtures: a private services/run/log tree per test, the real CLI run as a subprocess (the
installed wheel: tests/installkit.py), and a teardown that kills, by PID, every process the test
started (tagged through its environment).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import yaml
from installkit import Install

from servicectl.paths import Dirs, resolve_dirs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from faultkit import Recorder, User

ROOT = Path(__file__).resolve().parent.parent
# The run's install, under a directory every user can traverse (built by the session fixture
# ``installed``, removed at the end): what the tests run, as root and as other users.
INSTALL = Install()
# Shared directories the tests make with tempfile (for nobody, for a test user) go where every
# user can reach them, even when TMPDIR is a private directory.
tempfile.tempdir = str(INSTALL.top.parent)
SERVICECTL = INSTALL.servicectl  # the installed console script (never the source tree)
USER_PYTHON = INSTALL.python  # the venv's python: any user can run it, and import servicectl
DAEMONS = INSTALL.copy_helpers()  # copies of tests/daemons/*.py, readable by every user
FORKINGD = DAEMONS / "forkingd.py"  # a copy of the demo's services.d/bin/forkingd.py
PY = sys.executable  # runs the test daemons as root (this venv's python)
TAG_VAR = "SERVICECTL_TEST_TAG"
# A run started in the background of a non-interactive shell (`cmd &`) inherits SIGINT and
# SIGQUIT ignored, and so would every program the tests start (an ignored signal stays ignored
# across exec): the tests of Ctrl-C and of QUIT in stop schedules need them delivered.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
# servicectl tells its actions to /dev/log: never the machine's during tests. A path that does
# not exist (what servicectl meets where no syslog runs); tests of the syslog bind their own.
os.environ["SERVICECTL_SYSLOG_SOCKET"] = "/nonexistent/servicectl-tests/log"


def _byte_compile_servicectl() -> None:
    """Compile servicectl's modules once, before the tests run it hundreds of times: where
    PYTHONDONTWRITEBYTECODE is set (some CI images set it), every servicectl process would
    otherwise compile them from source (a quarter of the suite's time here)."""
    import compileall

    compileall.compile_dir(ROOT / "servicectl", quiet=1)


if INSTALL.owner:
    _byte_compile_servicectl()


def _build_install() -> None:
    try:
        INSTALL.build()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.exit(f"the test install could not be made: {exc}", returncode=1)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A parallel run (pytest-xdist, ``-n``): the controller builds the install once, before
    its workers start; they use it (installkit.SHARED_VAR)."""
    if INSTALL.owner and getattr(session.config.option, "numprocesses", None):
        _build_install()


@pytest.fixture(scope="session", autouse=True)
def installed() -> Install:
    """The sdist and the wheel built from this tree, the wheel installed into a fresh venv:
    once per run, before the first test. Without it no test can run: the run stops, saying
    why."""
    _build_install()
    return INSTALL


def pytest_unconfigure(config: pytest.Config) -> None:
    INSTALL.remove()


# Where system programs live: an ordinary user's PATH (and a clean CI's) lacks the sbin ones.
SYSTEM_DIRS = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_tool(name: str) -> str | None:
    """The absolute path of a system program (useradd, runuser, setpriv, insserv...): on PATH,
    else in the usual sbin and bin directories; None when it is not installed."""
    search = os.pathsep.join(filter(None, (os.environ.get("PATH"), SYSTEM_DIRS)))
    return shutil.which(name, path=search)


def system_tool(name: str) -> str:
    """``find_tool``, or the test skips with the reason."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed (looked on PATH and in {SYSTEM_DIRS})")
    return path


def proc_state(pid: int) -> str | None:
    """The process's state letter, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[0].decode()
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid: int) -> bool:
    """Alive and not a zombie."""
    return proc_state(pid) not in (None, "Z", "X")


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Wait for ``cond()`` to be truthy, with backoff from 2 ms, until ``timeout`` (generous:
    it only costs when something is wrong, and a busy machine is not wrong)."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def catches(pid: int, sig: int = signal.SIGTERM) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (SigCgt): a Python daemon started a
    moment ago dies of SIGTERM until its handler is installed."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    except (OSError, ValueError):
        pass
    return False


class ProcEntry(NamedTuple):
    """One live process seen in /proc: its PID, the fields of its stat after the command name
    (state, ppid, pgrp, session...), and the other /proc/PID files asked for, raw."""

    pid: int
    stat: list[bytes]
    files: dict[str, bytes]


def live_processes(
    *files: str, zombies: bool = False, only: Callable[[int], bool] | None = None
) -> Iterator[ProcEntry]:
    """Every live (not zombie) process, with the contents of ``files`` (``environ``, ``status``,
    ``comm``...); a process that vanishes or cannot be read meanwhile is left out. With
    ``zombies``, the exited but unreaped ones too; with ``only``, the PIDs it accepts."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or (only is not None and not only(int(name))):
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read().rpartition(b")")[2].split()
            contents = {}
            for f in files:
                with open(f"/proc/{name}/{f}", "rb") as fh:
                    contents[f] = fh.read()
        except OSError:
            continue
        if stat and (zombies or stat[0] not in (b"Z", b"X")):
            yield ProcEntry(int(name), stat, contents)


def has_tag(entry: ProcEntry, tag: str) -> bool:
    """Whether the process's environment (read with ``environ``) carries this test's tag."""
    return f"{TAG_VAR}={tag}".encode() in entry.files["environ"].split(b"\0")


def tagged_pids(tag: str, only: Callable[[int], bool] | None = None) -> list[int]:
    """Every live process whose environment carries this test's tag (among ``only``)."""
    return [p.pid for p in live_processes("environ", only=only) if has_tag(p, tag)]


def recorded_pids(run_dir: Path, only: Callable[[int], bool] | None = None) -> list[int]:
    """Processes servicectl recorded in this test's run dir that still run with the recorded
    start time (daemons like nginx overwrite their environment, hiding the tag)."""
    out = []
    for state in run_dir.glob("*.state") if run_dir.is_dir() else []:
        try:
            rec = json.loads(state.read_text())
            with open(f"/proc/{rec['pid']}/stat", "rb") as fh:
                starttime = int(fh.read().rpartition(b")")[2].split()[19])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if starttime == rec["starttime"] and rec["pid"] not in (1, os.getpid()):
            out.append(int(rec["pid"]))
            pgid = int(rec.get("pgid") or 0)
            if pgid > 1 and pgid != os.getpgrp():
                out += group_of(pgid, only)
    return out


def supervisor_pids(run_dir: Path, only: Callable[[int], bool] | None = None) -> list[int]:
    """The supervisor processes of this run dir (servicectl.supervisor.daemon RUN FD)."""
    out = []
    for p in live_processes("cmdline", only=only):
        argv = p.files["cmdline"].split(b"\0")
        if b"servicectl.supervisor.daemon" in argv and str(run_dir).encode() in argv:
            out.append(p.pid)
    return out


def group_of(pgid: int, only: Callable[[int], bool] | None = None) -> list[int]:
    """Live processes of a process group (nginx workers of a recorded master, say)."""
    return [p.pid for p in live_processes(only=only) if int(p.stat[2]) == pgid]


def last_pid() -> int | None:
    """The PID the kernel handed out last (in this PID namespace), or None if unknown."""
    try:
        with open("/proc/sys/kernel/ns_last_pid", "rb") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None


PIDS_REWOUND = [False]  # set by whoever writes ns_last_pid (faultkit.spawn_with_pid)


def born_since(first: int | None) -> Callable[[int], bool] | None:
    """Which PIDs may belong to processes created since ``last_pid()`` was ``first``: PIDs
    are handed out in increasing order, wrapping at pid_max, so only those after ``first``,
    up to the last one now. None (every PID) when that cannot be told: the PID counter was
    unreadable, or a test set it back to get an old PID again."""
    now = last_pid()
    if first is None or now is None or PIDS_REWOUND[0]:
        return None
    if now >= first:
        return lambda pid: first < pid <= now
    return lambda pid: pid > first or pid <= now  # wrapped around pid_max


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_pids(pids: list[int]) -> None:
    """SIGKILL these PIDs and wait for them to be gone (zombies count as gone)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    wait_for(lambda: not any(alive(p) for p in pids), 10, "test processes to die")


def rich_keys(root: Path) -> dict[str, Any]:
    """A definition's keys of every kind (mappings, lists, signals, octal strings, paths,
    nested keys), for tests that a definition survives a round trip unchanged."""
    return {
        "umask": "027",
        "limits": {"nofile": 4096, "core": 0},
        "actions": {"rotate": {"signal": "USR1"}, "test": {"command": ["true"]}},
        "directories": [str(root / "d1"), {"path": str(root / "d2"), "mode": "0750"}],
        "stop_schedule": "TERM/5/KILL/2",
        "ready": {"command": ["true"]},
        "reload_signal": "USR2",
        "restart": "on-failure",
        "start_limit": {"burst": 3, "interval": 30},
        "working_directory": str(root),
    }


@dataclass
class Env:
    """One test's private servicectl world."""

    root: Path
    tag: str
    decoys: list[subprocess.Popen[bytes]] = field(default_factory=list)
    commands: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def services(self) -> Path:
        return self.root / "services.d"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    def write(self, name: str, spec: dict[str, Any] | str, tag: bool = True) -> Path:
        """Write services.d/NAME.yaml; a dict gets this test's tag in its environment."""
        self.services.mkdir(parents=True, exist_ok=True)
        path = self.services / f"{name}.yaml"
        if isinstance(spec, dict):
            spec = dict(spec)
            if tag:
                envmap = dict(spec.get("environment") or {})
                envmap[TAG_VAR] = self.tag
                spec["environment"] = envmap
            path.write_text(yaml.safe_dump(spec))
        else:
            path.write_text(spec)
        return path

    def sleeper(self, name: str, *args: str, **extra: Any) -> Path:
        """A simple service running tests/daemons/sleeper.py."""
        spec: dict[str, Any] = {
            "description": f"test sleeper {name}",
            "command": [PY, str(DAEMONS / "sleeper.py"), *args],
            "start_grace": 0.2,
        }
        spec.update(extra)
        return self.write(name, spec)

    def forking(self, name: str, *args: str, **extra: Any) -> Path:
        """A forking service running services.d/bin/forkingd.py (double fork, own PID file)."""
        pid_file = self.run / f"{name}.daemon.pid"
        spec: dict[str, Any] = {
            "type": "forking",
            "command": [
                PY,
                str(FORKINGD),
                "--pidfile",
                str(pid_file),
                "--logfile",
                str(self.log / f"{name}.daemon.log"),
                *args,
            ],
            "pid_file": str(pid_file),
            "start_grace": 0.1,
            "start_timeout": 5,
        }
        spec.update(extra)
        return self.write(name, spec)

    def dir_args(self) -> list[str]:
        """This test's directories as servicectl's global options."""
        return ["-d", str(self.services), "--run-dir", str(self.run), "--log-dir", str(self.log)]

    def base_args(self) -> list[str]:
        """The installed servicectl with this test's directories."""
        return [SERVICECTL, *self.dir_args()]

    def sc(
        self,
        *args: str,
        timeout: float = 60,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real servicectl command; returns the completed process (text)."""
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env["NO_COLOR"] = "1"
        env.update(extra_env or {})
        return subprocess.run(
            [*self.base_args(), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start servicectl in the background (killed at teardown if still running)."""
        env = dict(os.environ, NO_COLOR="1")
        p = subprocess.Popen(
            [*self.base_args(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.root,
        )
        self.commands.append(p)
        return p

    def pid(self, name: str, path: Path | None = None) -> int:
        return int((path or self.run / f"{name}.pid").read_text())

    def status_json(self, *names: str) -> dict[str, dict[str, Any]]:
        res = self.sc("status", "--json", *names)
        return {row["name"]: row for row in json.loads(res.stdout)}

    def decoy(self) -> subprocess.Popen[bytes]:
        """An unrelated live process (a sleep) that must never be signalled."""
        p = subprocess.Popen(["sleep", "300"], env=dict(os.environ, **{TAG_VAR: self.tag}))
        self.decoys.append(p)
        return p

    @property
    def dirs(self) -> Dirs:
        """The directories as servicectl resolves them from this Env's flags."""
        return resolve_dirs(self.services, self.run, self.log)

    def files(self) -> list[str]:
        """What is left in the run dir, lock files, the notes of failed starts (NAME.failed:
        what status shows as "failed" until the next start or stop) and the definitions cache
        (written once the files are 2 s old, which a slow machine reaches mid-test) aside."""
        if not self.run.exists():
            return []
        return sorted(
            p.name
            for p in self.run.iterdir()
            if not p.name.endswith((".lock", ".failed"))
            and not (p.name.startswith(".definitions-") and p.name.endswith(".cache"))
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    PIDS_REWOUND[0] = False
    first = last_pid()
    e = Env(tmp_path, uuid.uuid4().hex)
    e.services.mkdir()
    try:
        yield e
    finally:
        for d in e.decoys:
            if d.poll() is None:
                # A decoy must have survived the test: it was never signalled.
                d.kill()
            d.wait()
        for c in e.commands:
            if c.poll() is None:
                c.kill()
            c.communicate()
        # Only processes created since the test began can be the test's: when none was, the
        # scans of /proc are skipped; otherwise they read the newcomers alone.
        new = born_since(first)
        if new is None or last_pid() != first:
            pids = supervisor_pids(e.run, new) + tagged_pids(e.tag, new)
            kill_pids(pids + recorded_pids(e.run, new))
        for run in {e.run, *e.root.glob("**/run")}:  # other run dirs of the test's (hosts...)
            remove_cgroups(run)


def tracked_by() -> str:
    """What servicectl tracks services by on this machine, as its messages say it: "cgroup"
    where a cgroup v2 hierarchy is writable, else "process group"."""
    from servicectl.system import cgroup

    return "cgroup" if cgroup.hierarchies().top else "process group"


def remain_note(main: int, pids: list[int], pgid: int) -> str:
    """How status says what is left running after the main process exited: by cgroup, "main
    process M exited; 2 processes remain: A, B"; by group, "2 processes of its process group
    G still running (PID A, B)"."""
    shown = ", ".join(map(str, pids))
    n = f"{len(pids)} process{'es' if len(pids) != 1 else ''}"
    if tracked_by() == "cgroup":
        return f"main process {main} exited; {n} remain: {shown}"
    return f"{n} of its process group {pgid} still running (PID {shown})"


def cgroup_dirs(run_dir: Path) -> list[Path]:
    """The cgroups servicectl made for this run dir on this machine (v2 and v1), deepest
    first."""
    from servicectl.system import cgroup

    found = cgroup.hierarchies()
    out: list[Path] = []
    for top in [found.top, *found.v1.values()]:
        if top:
            base = Path(top) / cgroup.TOP / cgroup.run_id(str(run_dir))
            leaves = [p for p in base.glob("*") if p.is_dir()]
            out += sorted(leaves, reverse=True) + ([base] if base.is_dir() else [])
    return out


def remove_cgroups(run_dir: Path) -> None:
    """End and remove whatever cgroups of this run dir a test left (a killed servicectl, a
    test that kills by PID): the fixture's share of the clean-up."""
    from servicectl.system import cgroup

    for path in cgroup_dirs(run_dir):
        cgroup.kill(str(path))
        cgroup.wait_empty(str(path), 10)
        cgroup.remove(str(path))


def dirs_for(env: Env) -> Dirs:
    return env.dirs


@pytest.fixture
def user() -> Iterator[User]:
    """A real unprivileged user made for the test (root only), removed with its processes."""
    from faultkit import unix_user

    if os.geteuid() != 0:
        pytest.skip("making a user needs root")
    with unix_user() as u:
        yield u


@pytest.fixture
def decoy(env: Env) -> Iterator[Recorder]:
    """A root process with the same interpreter as the test services (faultkit.Recorder), that
    must never be signalled: only servicectl's trust rules stand between it and a signal."""
    from faultkit import Recorder

    rec = Recorder(env.root, env.tag)
    try:
        yield rec
    finally:
        rec.close()


def assert_ok(
    res: subprocess.CompletedProcess[str], code: int = 0
) -> subprocess.CompletedProcess[str]:
    assert res.returncode == code, (
        f"exit {res.returncode}, expected {code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    )
    return res
