"""R-EXEC-4 (docs/security.md): a start's process is the same whether servicectl spawned it
itself (system/child.py: a service that runs as servicectl's user, one thread) or through
subprocess.Popen (a user switch): its own session, only descriptors 0-2, SIGPIPE and SIGXFSZ
back to their defaults, the caller's mask, the service's umask, its working directory, in its
cgroup; and an exec that fails is an error in the parent, as Popen's."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import USER_PYTHON, Env, alive, assert_ok, tagged_pids, wait_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _ignored_by_test_but(*numbers: int) -> int:
    """The signals this test process ignores (which servicectl and its program inherit) but
    ``numbers`` (servicectl resets SIGPIPE and SIGXFSZ for the program, handles SIGTERM)."""
    mask = int(_status(os.getpid())["SigIgn"], 16)
    for number in numbers:
        mask &= ~(1 << (number - 1))
    return mask


def _start_from_a_messy_caller(env: Env, name: str) -> subprocess.CompletedProcess[str]:
    """``servicectl start NAME`` from a caller that leaves an inheritable descriptor open,
    SIGPIPE ignored and SIGUSR1 blocked (as a careless script or a CI runner can)."""
    keep_r, keep_w = os.pipe()
    os.set_inheritable(keep_r, True)
    try:
        return subprocess.run(
            [*env.base_args(), "start", name],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=env.root,
            stdin=subprocess.DEVNULL,
            pass_fds=(keep_r,),
            preexec_fn=_messy_signals,  # the test's own child: single-threaded here
        )
    finally:
        os.close(keep_r)
        os.close(keep_w)


def _messy_signals() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A working directory every user can enter (the test's own tree is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="servicectl-work-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("user", [None, "nobody"], ids=["own-spawn", "popen"])
def test_R_EXEC_4_the_program_gets_what_popen_gives(
    env: Env, user: str | None, workdir: Path
) -> None:
    spec = {
        "command": ["/bin/sleep", "300"],
        "start_grace": 0,
        "umask": "027",
        "working_directory": str(workdir),
    }
    if user:
        spec["user"] = user
    env.write("s", spec)
    assert_ok(_start_from_a_messy_caller(env, "s"))
    pid = env.pid("s")
    wait_for(lambda: Path(f"/proc/{pid}/exe").resolve().name == "sleep", what="the exec")
    status = _status(pid)
    assert sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert status["Umask"] == "0027"
    # SIGPIPE (which servicectl ignores) back to default; what the caller ignores otherwise
    # stays ignored, as Popen leaves it; its blocked SIGUSR1 blocked, as Popen leaves the mask
    assert int(status["SigIgn"], 16) == _ignored_by_test_but(
        signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM
    )
    assert int(status["SigBlk"], 16) == 1 << (signal.SIGUSR1 - 1)
    assert int(status["SigCgt"], 16) == 0
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid
    assert os.readlink(f"/proc/{pid}/cwd") == str(workdir)
    row = env.status_json("s")["s"]
    if row.get("cgroup"):
        procs = Path(row["cgroup"], "cgroup.procs").read_text().split()
        assert str(pid) in procs
    assert "stopped" in assert_ok(env.sc("stop", "s")).stdout
    assert not alive(pid) and tagged_pids(env.tag) == []


def test_R_EXEC_4_the_program_ignores_nothing_servicectl_does_not(env: Env) -> None:
    """A caller that ignores nothing: the program ignores nothing (no signal of the C
    library's own left ignored, as os.posix_spawn would leave 32 and 33)."""
    env.write("s", {"command": ["/bin/sleep", "300"], "start_grace": 0})
    assert_ok(env.sc("start", "s"))
    pid = env.pid("s")
    wait_for(lambda: Path(f"/proc/{pid}/exe").resolve().name == "sleep", what="the exec")
    assert int(_status(pid)["SigIgn"], 16) == _ignored_by_test_but(
        signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM
    )
    assert_ok(env.sc("stop", "s"))


KIDS = r"""
import os


def kids():
    out = []
    for p in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{p}/stat").read() if p.isdigit() else ") X 0"
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == str(os.getpid()):
            out.append(p)
    return out
"""

CHILD_CODE = (
    KIDS
    + r"""
import os, sys
from servicectl.system import child
r, w = os.pipe()
out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
fds = (os.dup(r), os.dup(out), os.dup(out))
assert child.usable(fds)
try:
    child.spawn_gate(["/nonexistent/dash", "-c", "true"], {}, fds, 0o022)
except OSError as exc:
    print("refused", exc.errno, exc.filename)
# no child left behind, reaped or not
print("children", kids())
c = child.spawn_gate(["/bin/sh", "-c", "read -r x; exit 3"], {}, fds, 0o022)
assert c.poll() is None and c.returncode is None
import subprocess
try:
    c.wait(timeout=0.05)
except subprocess.TimeoutExpired:
    print("timeout")
os.write(w, b"go\n")
print("code", c.wait(), c.poll())
seen = []
k = child.spawn_gate(["/bin/sleep", "30"], {}, fds, 0o022, lambda *a: seen.append(a))
print("meanwhile", seen == [(k.pid, "")])
os.kill(k.pid, 9)
print("killed", k.wait())
"""
)


def test_R_EXEC_4_own_spawn_reports_like_popen() -> None:
    """An exec that fails is an OSError in the parent (ENOENT, the program named), nothing
    left; a Child polls, times out, waits and reports a signal as Popen does."""
    res = subprocess.run(
        [USER_PYTHON, "-c", CHILD_CODE], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "refused 2 /nonexistent/dash"
    assert lines[1] == "children []"
    assert lines[2:] == ["timeout", "code 3 3", "meanwhile True", "killed -9"]


def test_R_EXEC_4_threads_take_popen(env: Env) -> None:
    """With more than one thread the command does not fork by itself (child.usable)."""
    code = (
        "import threading, os; from servicectl.system import child; "
        "e = threading.Event(); t = threading.Thread(target=e.wait); t.start(); "
        "print(child.usable((5, 6, 7)), child.usable((0, 6, 7))); e.set(); t.join(); "
        "print(child.usable((5, 6, 7)))"
    )
    res = subprocess.run([USER_PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["False", "False", "True"], res.stderr
    assert sys.executable  # the test's own interpreter is not the one under test


JOIN_CODE = (
    KIDS
    + r"""
import os, sys, tempfile
from servicectl.definitions.schema import Service
from servicectl.service import launch
from servicectl.service.outcome import StartFailed
from servicectl.system.cgroup_limits import Plan
from servicectl.system.spawn import Gate, build_environment, resolve_account
logs = tempfile.mkdtemp()
svc = Service(name="j", file=os.path.join(logs, "j.yaml"), command=("/bin/sleep", "30"),
              stdout=os.path.join(logs, "j.log"), stderr=os.path.join(logs, "j.log"))
if sys.argv[1] == "popen":
    import threading
    hold = threading.Event(); t = threading.Thread(target=hold.wait); t.start()  # two threads
account = resolve_account(svc)
env = build_environment(svc, account)
missing = Plan("/sys/fs/cgroup/unified/servicectl-no-such-cgroup/j.service", "", "",
               frozenset(), (), (), 0)
gate = Gate()
try:
    launch.spawn_simple(svc, account, env, "/bin/sleep", gate, missing)
except StartFailed as exc:
    print("refused:", "cannot move it into its cgroup" in exc.message)
print("left", kids(), launch._SPAWNED)
if sys.argv[1] == "popen":
    hold.set(); t.join()
"""
)


@pytest.mark.parametrize("way", ["own-spawn", "popen"])
def test_a_failed_join_lets_the_gated_child_go_without_running_anything(way: str) -> None:
    """The gate's cgroup cannot be joined (it is gone): the start fails saying so, the
    child (held at its gate) exits without running the program and is reaped, whether the
    join ran during the fork's exec (child.py) or after Popen (two threads)."""
    res = subprocess.run(
        [USER_PYTHON, "-c", JOIN_CODE, "popen" if way == "popen" else "fork"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["refused: True", "left [] set()"], res.stdout


BORN_CODE = r"""
import os, sys
from servicectl.system import child
into = sys.argv[1]
out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
r, w = os.pipe()
fds = (os.dup(r), os.dup(out), os.dup(out))
seen = []


def meanwhile(pid, born_in):
    # before any join could be written: where the kernel put the child
    with open(f"/proc/{pid}/cgroup") as f:
        v2 = [line.split("::", 1)[1].strip() for line in f if line.startswith("0::")]
    seen.append((born_in, v2[0] if v2 else "?"))


k = child.spawn_gate(["/bin/sh", "-c", "read -r x; exec cat /proc/self/cgroup"], {}, fds,
                     0o022, meanwhile, into)
os.write(w, b"go\n")
print("born_in", seen[0][0] == into, "in", seen[0][1], "code", k.wait())
"""


def _own_v2() -> str:
    with open("/proc/self/cgroup") as f:
        return next(line.split("::", 1)[1].strip() for line in f if line.startswith("0::"))


@pytest.fixture
def test_cgroup() -> Iterator[Path]:
    """A cgroup v2 of this test's own, beside servicectl's, removed after (its processes
    killed first)."""
    from servicectl.system import cgroup

    top = cgroup.hierarchies().top
    assert top, "a writable cgroup v2 hierarchy: this machine has one"
    path = Path(tempfile.mkdtemp(prefix="servicectl-born-", dir=top))
    yield path
    for sub in sorted(path.glob("*"), reverse=True):
        if sub.is_dir():
            cgroup.kill(str(sub))
            cgroup.wait_empty(str(sub), 10)
            sub.rmdir()
    cgroup.kill(str(path))
    cgroup.wait_empty(str(path), 10)
    path.rmdir()


def _born(into: str, user: str | None = None) -> list[str]:
    res = subprocess.run(
        [USER_PYTHON, "-c", BORN_CODE, into],
        capture_output=True,
        text=True,
        timeout=60,
        user=user,
        cwd="/",
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_a_forked_gate_is_born_in_its_cgroup(test_cgroup: Path) -> None:
    """Given its cgroup v2, a gate spawned here is in it before anything is written to
    cgroup.procs (clone3 with CLONE_INTO_CGROUP: no join, so none of the grace period a
    join waits for on a default mount), and the program it execs runs there. A gate born
    there whose exec fails is an OSError here, as a forked one's, and leaves nothing: no
    child, an empty cgroup."""
    from servicectl.system import cgroup

    rel = "/" + os.path.relpath(test_cgroup, cgroup.hierarchies().top)
    words = _born(str(test_cgroup))
    assert words[:4] == ["born_in", "True", "in", rel], words
    assert words[-2:] == ["code", "0"]
    code = (
        KIDS
        + "import os, sys\nfrom servicectl.system import child\n"
        + "out = os.open(os.devnull, os.O_WRONLY)\nseen = []\n"
        + "try:\n"
        + "    child.spawn_gate(['/nonexistent/dash'], {}, (os.dup(out),) * 3, 0o022,\n"
        + "                     lambda *a: seen.append(a), sys.argv[1])\n"
        + "except OSError as exc:\n"
        + "    print('refused', exc.errno, seen[0][1] == sys.argv[1], kids())\n"
    )
    res = subprocess.run(
        [USER_PYTHON, "-c", code, str(test_cgroup)], capture_output=True, text=True, timeout=60
    )
    assert res.stdout.split() == ["refused", "2", "True", "[]"], res.stdout + res.stderr
    assert (test_cgroup / "cgroup.procs").read_text() == ""


@pytest.mark.parametrize("where", ["not-a-cgroup", "not-permitted", "gone"])
def test_a_gate_the_kernel_will_not_bear_in_a_cgroup_is_forked(
    test_cgroup: Path, where: str, workdir: Path
) -> None:
    """Where clone3 cannot put the child in the cgroup (a plain directory, root's cgroup for
    a spawner that is not root, a cgroup that is gone) the gate is forked all the same, where
    its parent is, and says so (born_in ""): the caller's join decides."""
    into = {"not-a-cgroup": str(workdir), "gone": str(test_cgroup / "gone")}
    words = _born(into.get(where, str(test_cgroup)), "nobody" if where == "not-permitted" else None)
    assert words[:4] == ["born_in", "False", "in", _own_v2()], words
    assert words[-2:] == ["code", "0"]
