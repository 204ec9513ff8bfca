"""Helpers for the fault-injection and security tests: a real unprivileged user made for the test,
a directory that user can reach, a decoy that records every signal it gets, and output checks;
and what the attack tests share: root's secret file, a snapshot of root's files to compare, the
CLI run with its checks, planted links and Python modules.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conftest import (
    DAEMONS,
    INSTALL,
    PIDS_REWOUND,
    PY,
    TAG_VAR,
    ProcEntry,
    alive,
    assert_ok,
    find_tool,
    kill_pids,
    live_processes,
    remove_cgroups,
    system_tool,
    tagged_pids,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Env

from conftest import USER_PYTHON as USER_PYTHON  # another user's python: the test install's


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


def real_uid(entry: ProcEntry) -> int | None:
    """The real uid of a process read with ``status``."""
    for line in entry.files["status"].splitlines():
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    return None


def pids_of_uid(uid: int) -> list[int]:
    """Live processes whose real uid is ``uid``."""
    return [p.pid for p in live_processes("status") if real_uid(p) == uid]


def delete_user(name: str) -> None:
    """``userdel -f``: removes the account even while its processes run (they keep the uid)."""
    for argv in (["userdel", "-f", name], ["groupdel", name]):
        tool = find_tool(argv[0])
        if tool is not None:
            subprocess.run([tool, *argv[1:]], capture_output=True, check=False)


@contextmanager
def unix_user() -> Iterator[User]:
    """A new system user with a unique name and no home; at the end, every process of its uid is
    killed (by PID) and the account removed, whatever the test did."""
    name = f"sct{uuid.uuid4().hex[:10]}"
    useradd = system_tool("useradd")
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--user-group", "--shell", "/bin/false", name],
        check=True,
        capture_output=True,
    )
    pw = pwd.getpwnam(name)
    try:
        yield User(name, pw.pw_uid, pw.pw_gid)
    finally:
        kill_pids(pids_of_uid(pw.pw_uid))
        delete_user(name)


@contextmanager
def reachable_dir(owner: User | None = None) -> Iterator[Path]:
    """A directory in the run's install directory, whose parents every user can traverse
    (pytest's tmp_path has 0700 parents, and so may the clone), mode 0755, owned by ``owner``
    if given; removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="reachable-", dir=INSTALL.top))
    try:
        path.chmod(0o755)
        if owner is not None:
            os.chown(path, owner.uid, owner.gid)
        yield path
    finally:
        for where, _, _ in os.walk(path):  # a run dir here: the env fixture looks under tmp_path
            remove_cgroups(Path(where))
        shutil.rmtree(path, ignore_errors=True)


def reachable_copy(script: Path, directory: Path) -> Path:
    """A world-readable copy of ``script`` (a test daemon) in ``directory`` (a ``reachable_dir``):
    a program run as another user must be readable by that user, and the clone may live under
    a directory only root can traverse (/root, or one made by ``mktemp -d``)."""
    copy = directory / script.name
    shutil.copyfile(script, copy)
    copy.chmod(0o644)
    return copy


class Recorder:
    """A root process (tests/daemons/signal_recorder.py) that must never be signalled: each
    signal it gets is written to its marker file, and it is killed by PID at the end."""

    def __init__(self, directory: Path, tag: str, python: str = PY) -> None:
        self.marker = directory / f"recorder-{uuid.uuid4().hex[:8]}.signals"
        args = [python, str(DAEMONS / "signal_recorder.py"), str(self.marker)]
        self.proc = subprocess.Popen(
            args,
            env=dict(os.environ, **{TAG_VAR: tag}),
            start_new_session=True,
        )
        self.pid = self.proc.pid
        wait_for(lambda: self.lines()[:1] == [f"ready {self.pid}"], what="the decoy to be ready")

    def lines(self) -> list[str]:
        try:
            return self.marker.read_text().splitlines()
        except FileNotFoundError:
            return []

    def signals(self) -> list[str]:
        """The signals this process got (others running the same command line may share the
        file)."""
        mine = f" {self.pid}"
        return [
            line[: -len(mine)]
            for line in self.lines()
            if line.endswith(mine) and not line.startswith("ready ")
        ]

    def assert_untouched(self) -> None:
        assert self.signals() == [], f"the decoy {self.pid} got {self.signals()}"
        assert self.proc.poll() is None and alive(self.pid), f"the decoy {self.pid} died"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def starttime(pid: int) -> int:
    """The kernel start time of ``pid`` (/proc/PID/stat field 22), as servicectl records it."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return int(fh.read().rpartition(b")")[2].split()[19])


def lock_held(run_dir: Path, name: str) -> bool:
    """Whether some process holds the service's lock now."""
    try:
        fd = os.open(run_dir / f"{name}.lock", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def assert_clear(res: subprocess.CompletedProcess[str], *words: str) -> None:
    """A message for people: no traceback, and every word in stdout or stderr."""
    text = res.stdout + res.stderr
    assert "Traceback" not in text, text
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"


def chattr(path: Path, flag: str) -> bool:
    """``chattr +i``/``-i``; False where the file system does not support it."""
    chattr = find_tool("chattr")
    if chattr is None:
        return False
    return subprocess.run([chattr, flag, str(path)], capture_output=True).returncode == 0


def spawn_with_pid(
    pid: int, argv: list[str], env: dict[str, str], **kw: Any
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with PID ``pid`` (root: /proc/sys/kernel/ns_last_pid), or skip: how an
    attacker who waited for the PID's reuse would get it, without the wait."""
    import pytest

    PIDS_REWOUND[0] = True  # the teardown then looks at every process, not the newer ones
    for _ in range(200):
        with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
            fh.write(str(pid - 1))
        p = subprocess.Popen(argv, env=env, **kw)
        if p.pid == pid:
            return p
        p.kill()
        p.wait()
        _kill_session(p.pid)  # what it forked before the kill came (a loaded machine)
    pytest.skip(f"could not get PID {pid} back (a busy machine)")


def _kill_session(sid: int) -> None:
    """SIGKILL what is left of the session ``sid`` (its leader gone): a double-forking
    launcher killed too late has a daemon there already, which would act as the next try's."""
    from conftest import kill_pids, live_processes

    kill_pids([entry.pid for entry in live_processes() if int(entry.stat[3]) == sid])


@contextmanager
def subreaper() -> Iterator[None]:
    """Make this test process the reaper of orphans (so that a PID can be freed at once), and
    reap what it adopted at the end."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    try:
        yield
    finally:
        libc.prctl(36, 0, 0, 0, 0)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


def reap_adopted(keep: set[int]) -> None:
    """Reap this process's exited children but ``keep`` (the ones a Popen waits for): what it
    adopted as a subreaper."""
    me = os.getpid()
    for proc in live_processes(zombies=True):
        if proc.pid in keep or int(proc.stat[1]) != me or proc.stat[0] not in (b"Z", b"X"):
            continue
        try:
            os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            pass


def as_user(user: User, *argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the attacker ``user`` (no supplementary groups), output captured."""
    return subprocess.run(
        list(argv),
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        **kw,
    )


def owned_by(path: Path, user: User) -> Path:
    """Make ``path`` the attacker's (lchown: a symlink itself becomes theirs)."""
    os.chown(path, user.uid, user.gid, follow_symlinks=False)
    return path


def plant_link(user: User, link: Path, target: Path) -> Path:
    """A symlink ``link`` -> ``target`` that the attacker made (it is theirs)."""
    link.symlink_to(target)
    return owned_by(link, user)


# -- What the attack tests (tests/test_attacks_*.py) share -------------------------------------

# What root keeps from everyone: a line of /etc/shadow. No message may quote any part of it.
SECRET = "root:$6$SECRETHASH$abc:19000:0:99999:7:::\n"


def root_file(directory: Path, name: str = "secret", text: str = SECRET) -> Path:
    """A file of root's (0600) that no attack may change."""
    path = directory / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def snap(*paths: Path | str) -> dict[str, Any]:
    """Owner, mode, inode, links and content (regular files) of each path, not following links;
    for a directory, the same for each entry: equal before and after, or root's file changed."""
    out: dict[str, Any] = {}
    for p in map(Path, paths):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            out[str(p)] = None
            continue
        body: Any = None
        if stat.S_ISREG(st.st_mode):
            body = p.read_bytes()
        elif stat.S_ISDIR(st.st_mode):
            body = snap(*sorted(p.iterdir()))
        elif stat.S_ISLNK(st.st_mode):
            body = os.readlink(p)
        out[str(p)] = (st.st_uid, st.st_gid, st.st_mode, st.st_ino, st.st_nlink, body)
    return out


def sc(env: Env, *args: str, code: int | None = None, words: tuple[str, ...] = ()) -> Any:
    """Run servicectl (a hang fails the test), check the exit code and that it explains."""
    res = env.sc(*args, timeout=60)
    if code is not None:
        assert_ok(res, code)
    assert_clear(res, *words)
    return res


def nothing_runs(env: Env, decoy: Recorder | None = None) -> None:
    """No process of the test's runs (but the decoy), and the run directory holds no record."""
    others = {decoy.pid} if decoy else set()
    assert set(tagged_pids(env.tag)) <= others, tagged_pids(env.tag)
    assert [f for f in env.files() if not f.startswith(".definitions-")] == []


def state_of(env: Env, name: str, *flags: str) -> str:
    """The state ``status --json`` gives ``name`` ("" when it prints nothing)."""
    res = env.sc(*flags, "status", "--json", name)
    rows = json.loads(res.stdout) if res.stdout.strip() else []
    return str(rows[0]["state"]) if rows else ""


def supervised(env: Env, name: str = "web", **extra: Any) -> None:
    """A ``sleep 300`` service that the supervisor respawns on failure."""
    spec: dict[str, Any] = {"command": "sleep 300", "start_grace": 0.1, "restart": "on-failure"}
    env.write(name, {**spec, **extra})


# Planted code: appends "UID PROGRAM" to the marker each time it is loaded, and then behaves
# as the real module would (so that a shim that loaded it would still run, unnoticed).
PLANT = """
import os, sys
with open({marker!r}, "a") as fh:
    fh.write("%d %s\\n" % (os.getuid(), os.path.basename(sys.argv[0] or "?")))
"""
REAL = """
sys.path = [p for p in sys.path if p not in ("", os.getcwd(), {where!r})]
del sys.modules[__name__]
import importlib
sys.modules[__name__] = importlib.import_module(__name__)
globals().update(vars(sys.modules[__name__]))
"""


def plant_python(where: Path, marker: Path, user: User) -> None:
    """Every way a Python module can be made to load from ``where``: json.py and resource.py
    (what the exec shim imports), a json package, sitecustomize, usercustomize, a .pth file,
    and a user site under where/.local; all the attacker's."""
    code = PLANT.format(marker=str(marker))
    real = REAL.format(where=str(where))
    (where / "json.py").write_text(code + real)
    (where / "resource.py").write_text(code + real)
    (where / "sitecustomize.py").write_text(code)
    (where / "usercustomize.py").write_text(code)
    (where / "zz-servicectl-test.pth").write_text("import os; " + code.strip().replace("\n", "; "))
    site = where / ".local" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = site / "site-packages"
    site.mkdir(parents=True)
    (site / "usercustomize.py").write_text(code)
    (site / "json.py").write_text(code + real)
    for path in [where, *where.rglob("*")]:
        owned_by(path, user)
