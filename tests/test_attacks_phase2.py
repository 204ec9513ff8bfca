"""Attacks on rules that docs/security.md decides but the start/stop code does not enforce yet
(phase 2 of the security work): R-PROC-3, R-PROC-4, R-PROC-5 and R-LOG-2.

Each is xfail(strict): it passes as an expected failure while the hole is open, and fails
(XPASS) once phase 2 closes it, as a reminder to drop the marker. Same checks as
test_attacks.py: decoys never signalled, root's files unchanged, no traceback, no hang.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import DAEMONS, PY, TAG_VAR, Env, alive, assert_ok, wait_for
from faultkit import Recorder, assert_clear

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl"
)

PHASE2 = "phase 2 (docs/security.md): "
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


def _spawn_with_pid(pid: int, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` with PID ``pid`` (root: /proc/sys/kernel/ns_last_pid), or skip."""
    for _ in range(200):
        with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
            fh.write(str(pid - 1))
        p = subprocess.Popen(argv, env=env)
        if p.pid == pid:
            return p
        p.kill()
        p.wait()
    pytest.skip(f"could not get PID {pid} back (a busy machine)")


DOUBLE_FORK = """
import os, sys
os.setsid()
if os.fork() == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os._exit(0)
"""


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


def test_R_PROC_3_a_daemon_reusing_a_dead_services_pid_is_no_remnant(env: Env) -> None:
    """A simple service crashed; its PID is reused by an unrelated daemon's double fork (setsid,
    fork, exit): that daemon's pgid = sid = the old PID, same uid, newer start time."""
    env.write("crash", {"command": "sleep 300", "start_grace": 0.1, "kill_mode": "group"})
    with subreaper():
        assert_ok(env.sc("start", "crash"))
        old = env.pid("crash")
        os.kill(old, 9)
        os.waitpid(old, 0)  # the service was re-parented to this process: its PID is free
        _attack_with_pid(env, old)


def _attack_with_pid(env: Env, old: int) -> None:
    marker = env.root / "decoy.signals"
    launcher = _spawn_with_pid(
        old,
        [PY, "-c", DOUBLE_FORK, PY, RECORDER, str(marker)],
        dict(os.environ, **{TAG_VAR: env.tag}),
    )
    launcher.wait()
    wait_for(lambda: marker.exists() and "ready" in marker.read_text(), what="the daemon")
    daemon = int(marker.read_text().split()[1])
    assert os.getpgid(daemon) == old and os.getsid(daemon) == old
    for args in (("status", "crash"), ("start", "crash"), ("stop", "crash")):
        assert_clear(env.sc(*args, timeout=40))
    lines = marker.read_text().splitlines()
    assert lines == [f"ready {daemon}"] and alive(daemon), lines


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
