"""Attacks on the rules that phase 2 of the security work enforced in the start/stop code
(docs/security.md): R-PROC-3 (remnants of a group are proven, never guessed), R-PROC-4 (a process
recorded by another service is never adopted), R-PROC-5 (a failed start kills the whole tree of
the launch) and R-LOG-2. Each rule has its first attack and variants of it.

Same checks as test_attacks.py: decoys never signalled, root's files unchanged, no traceback,
no hang.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import DAEMONS, PY, TAG_VAR, Env, alive, assert_ok, wait_for
from faultkit import (
    USER_PYTHON,
    Recorder,
    User,
    assert_clear,
    reachable_dir,
    spawn_with_pid,
    subreaper,
    unix_user,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl"
)

PHASE2 = "phase 2 (docs/security.md): "


# R-PROC-3 is the rule of the process-group tracking, where no cgroup can be written: its tests
# run in both modes. With a cgroup (R-CG-1) membership needs no proof: a daemon that took a
# dead service's PID is not in its cgroup, so it is neither reported nor signalled.
@pytest.fixture
def tracking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    from servicectl.system import cgroup

    mode = str(request.param)
    if mode == "process group":
        monkeypatch.setenv("SERVICECTL_CGROUP_V2", "none")  # tests only (R-CG-3)
        monkeypatch.setenv("SERVICECTL_CGROUP_V1", "none")
    elif not cgroup.hierarchies().top:
        pytest.skip(f"no writable cgroup v2: {cgroup.hierarchies().why}")
    return mode


RECORDER = str(DAEMONS / "signal_recorder.py")
SECRET = "root:$6$SECRETHASH$abc:19000:0:99999:7:::\n"


@pytest.fixture
def decoy(env: Env) -> Iterator[Recorder]:
    rec = Recorder(env.root, env.tag)
    try:
        yield rec
    finally:
        rec.close()


def test_R_PROC_4_a_process_recorded_by_another_service_is_never_adopted(env: Env) -> None:
    """A stale b.pid (no record of b) names service a's process: same program, same user."""
    for name in ("a", "b"):
        env.write(name, {"command": "sleep 300", "start_grace": 0.1})
    assert_ok(env.sc("start", "a"))
    a_pid = env.pid("a")
    (env.run / "b.pid").write_text(f"{a_pid}\n")
    for args in (("start", "b"), ("stop", "b"), ("restart", "b")):
        res = env.sc(*args, timeout=40)
        assert_clear(res)
        assert alive(a_pid), f"{args}: service a's process was killed"
    assert f"pid {a_pid}" not in env.sc("status", "b").stdout


def test_R_PROC_4_variants_forking_explicit_pid_files_and_the_fleet(env: Env) -> None:
    """The same lie through a forking service's own PID file, and through stop of several
    services and stopall: service a is stopped once, by its own name, and never as b."""
    env.forking("a")
    env.forking("b")
    assert_ok(env.sc("start", "a"))
    a_pid = env.pid("a", env.run / "a.daemon.pid")
    (env.run / "b.daemon.pid").write_text(f"{a_pid}\n")
    res = assert_ok(env.sc("status", "b"), 1)
    assert_clear(res, "service a's process")
    for args in (("stop", "b"), ("start", "b"), ("stop", "b"), ("restart", "b"), ("stop", "b")):
        assert_clear(env.sc(*args, timeout=40))
        assert alive(a_pid), f"{args}: service a's process was killed"
    (env.run / "b.daemon.pid").write_text(f"{a_pid}\n")
    res = assert_ok(env.sc("stop", "b", "a", timeout=40))
    assert res.stdout.count(f"pid {a_pid}") <= 1 and not alive(a_pid)
    # stopall with the lie in place: a stops once, b is not running.
    assert_ok(env.sc("start", "a"))
    a_pid = env.pid("a", env.run / "a.daemon.pid")
    (env.run / "b.daemon.pid").write_text(f"{a_pid}\n")
    res = assert_ok(env.sc("stopall", timeout=40))
    assert "a: stopped" in res.stdout and "b: stopped" not in res.stdout, res.stdout


DOUBLE_FORK = """
import os, sys
os.setsid()
if os.fork() == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os._exit(0)
"""


@pytest.mark.parametrize("tracking", ["process group", "cgroup"], indirect=True)
def test_R_PROC_3_a_daemon_reusing_a_dead_services_pid_is_no_remnant(
    env: Env, tracking: str
) -> None:
    """A simple service crashed; its PID is reused by an unrelated daemon's double fork (setsid,
    fork, exit): that daemon's pgid = sid = the old PID, same uid, newer start time."""
    env.write("crash", {"command": "sleep 300", "start_grace": 0.1, "kill_mode": "group"})
    with subreaper():
        assert_ok(env.sc("start", "crash"))
        old = env.pid("crash")
        os.kill(old, 9)
        os.waitpid(old, 0)  # the service was re-parented to this process: its PID is free
        _attack_with_pid(env, old, said=_unproven(tracking))


def _unproven(tracking: str) -> tuple[str, ...]:
    """What status says of processes in a reused group: by process group, that it cannot prove
    them the service's; by cgroup, nothing (they are not in it)."""
    return ("cannot prove", "leaves them alone") if tracking == "process group" else ()


def _attack_with_pid(
    env: Env,
    old: int,
    name: str = "crash",
    user: User | None = None,
    where: Path | None = None,
    script: str = DOUBLE_FORK,
    daemons: int = 1,
    said: tuple[str, ...] = ("cannot prove", "leaves them alone"),
) -> None:
    """Take PID ``old`` (as ``user``, or root), double-fork ``daemons`` signal recorders out of
    it, then run the commands that look at and end remnants: none of them is signalled."""
    marker = (where or env.root) / "decoy.signals"
    kw: dict[str, Any] = {"user": user.uid, "group": user.gid} if user else {}
    py = USER_PYTHON if user else PY
    launcher = spawn_with_pid(
        old,
        [py, "-c", script, py, RECORDER, str(marker)],
        dict(os.environ, **{TAG_VAR: env.tag}),
        **kw,
    )
    launcher.wait()

    def readies() -> list[int]:
        text = marker.read_text() if marker.exists() else ""
        return [int(line.split()[1]) for line in text.splitlines() if line.startswith("ready")]

    wait_for(lambda: len(readies()) == daemons, what="the daemons")
    for daemon in readies():
        assert os.getpgid(daemon) == old and os.getsid(daemon) == old
    res = env.sc("status", name)
    assert_ok(res, 1)
    assert_clear(res, *said)
    for args in (("start", name), ("stop", name), ("restart", name), ("stop", name)):
        assert_clear(env.sc(*args, timeout=40))
    lines = marker.read_text().splitlines()
    assert sorted(lines) == sorted(f"ready {d}" for d in readies()), lines
    assert all(alive(d) for d in readies())


DOUBLE_FORK_FAMILY = """
import os, sys
os.setsid()
if os.fork() == 0:
    if os.fork() == 0:
        os.execv(sys.argv[1], sys.argv[1:])  # a second member of the reused group
    os.execv(sys.argv[1], sys.argv[1:])
os._exit(0)
"""


@pytest.mark.parametrize("tracking", ["process group", "cgroup"], indirect=True)
def test_R_PROC_3_variants_a_users_service_and_a_whole_family(env: Env, tracking: str) -> None:
    """The same reuse by the service's own user (a ``user:`` service and an attacker of that
    uid), with two processes in the reused group; and by root against a root service."""
    with unix_user() as user, reachable_dir(owner=user) as theirs:
        env.write("crash", {"command": "sleep 300", "start_grace": 0.1, "user": user.name})
        with subreaper():
            assert_ok(env.sc("start", "crash"))
            old = env.pid("crash")
            os.kill(old, 9)
            os.waitpid(old, 0)
            _attack_with_pid(env, old, user=user, where=theirs, script=DOUBLE_FORK_FAMILY,
                             daemons=2, said=_unproven(tracking))  # fmt: skip


@pytest.mark.parametrize("tracking", ["process group", "cgroup"], indirect=True)
def test_R_PROC_3_remnants_seen_alive_are_still_ended(env: Env, tracking: str) -> None:
    """The control: children that ran when servicectl last saw the service (at the start it
    confirmed) are proven, and stop ends them after a crash; a decoy is never touched."""
    children = env.root / "children"
    env.write(
        "fam",
        {
            "command": [PY, str(DAEMONS / "parent_with_children.py"), "--children", "3"],
            "environment": {"CHILDREN_FILE": str(children)},
            "ready": {"file": str(children)},
        },
    )
    rec = Recorder(env.root, env.tag)
    try:
        with subreaper():
            assert_ok(env.sc("start", "fam"))
            main = env.pid("fam")
            kids = [int(x) for x in children.read_text().split()]
            os.kill(main, 9)
            os.waitpid(main, 0)
            res = assert_ok(env.sc("status", "fam"), 1)
            remain = (
                "3 processes of its process group"
                if tracking == "process group"
                else (f"main process {main} exited; 3 processes remain")
            )
            assert_clear(res, remain, "stop or start ends them")
            res = assert_ok(env.sc("stop", "fam"))
            assert_clear(res, "3 leftover processes")
            assert not any(alive(k) for k in kids)
        rec.assert_untouched()
    finally:
        rec.close()


LEAVES_A_SETSID_CHILD = """
import os, sys, time
if os.fork():
    os._exit(0)          # the launcher exits 0
os.setsid()
if os.fork():
    os._exit(0)          # the daemon, orphaned to servicectl
if os.fork() == 0:
    os.setsid()          # a child in a session of its own
    os.execv(sys.argv[1], sys.argv[1:])
time.sleep(300)          # the daemon never writes its PID file
"""


def test_R_PROC_5_a_failed_forking_launch_leaves_no_setsid_child(env: Env) -> None:
    marker = env.root / "child.signals"
    env.write(
        "fd",
        {
            "type": "forking",
            "command": [PY, "-c", LEAVES_A_SETSID_CHILD, PY, RECORDER, str(marker)],
            "pid_file": str(env.run / "fd.daemon.pid"),
            "start_timeout": 2,
        },
    )
    res = env.sc("start", "fd", timeout=40)
    assert_ok(res, 1)
    assert_clear(res)
    wait_for(lambda: marker.exists(), what="the child to have run")
    child = int(marker.read_text().split()[1])
    assert not alive(child), "the setsid child of the failed launch still runs"


FORKS_A_SETSID_CHILD_THEN = """
import os, sys, time
how, marker = sys.argv[1], sys.argv[-1]
if os.fork() == 0:
    os.setsid()
    os.execv(sys.argv[2], sys.argv[2:])  # a child in a session of its own
while not (os.path.exists(marker) and "ready" in open(marker).read()):
    time.sleep(0.01)                     # (until it runs)
if how == "exit1":
    os._exit(1)                          # a launcher that fails
if how == "daemon":
    if os.fork():
        os._exit(0)                      # the launcher exits 0...
    os.setsid()
    with open(os.environ["PIDFILE"], "w") as fh:
        fh.write(f"{os.getpid()}\\n")      # ...its daemon is found, but never ready
time.sleep(300)                          # (simple: the main process, never ready)
"""


@pytest.mark.parametrize("how", ["exit1", "daemon", "simple"])
def test_R_PROC_5_variants_every_failed_start_kills_the_launchs_tree(env: Env, how: str) -> None:
    """A launcher that exits 1, a forking daemon that never gets ready, a simple service that
    never gets ready: each leaves a setsid child, and the failed start kills it."""
    marker = env.root / "child.signals"
    never = env.root / "never"
    spec: dict[str, Any] = {
        "command": [PY, "-c", FORKS_A_SETSID_CHILD_THEN, how, PY, RECORDER, str(marker)],
        "start_timeout": 2,
        "ready": {"file": str(never)},
    }
    if how != "simple":
        pid_file = env.run / "fd.daemon.pid"
        spec.update(type="forking", pid_file=str(pid_file), environment={"PIDFILE": str(pid_file)})
    env.write("fd", spec)
    res = env.sc("start", "fd", timeout=40)
    assert_ok(res, 1)
    assert_clear(res)
    wait_for(lambda: marker.exists() and "ready" in marker.read_text(), what="the child")
    child = int(marker.read_text().split()[1])
    wait_for(lambda: not alive(child), what="the setsid child to be gone", timeout=5)
    assert [f for f in env.files()] == []


def test_R_LOG_2_logs_follow_never_reopens_through_a_symlink(env: Env) -> None:
    secret = env.root / "shadow"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    env.sleeper("web")
    env.log.mkdir()
    log = env.log / "web.log"
    log.write_text("first line\n")
    p = env.popen("logs", "web", "-f")
    try:
        assert p.stdout is not None and p.stdout.readline() == "first line\n"
        log.rename(env.log / "web.log.1")
        log.symlink_to(secret)
        time.sleep(1.5)  # several polls of the follower (it polls every 0.2 s)
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert "99999" not in out + err  # any part of it (a reopen may start mid-file)
    assert secret.read_text() == SECRET
    assert Path(secret).stat().st_mode & 0o777 == 0o600
