"""Security, as root: untrusted PID files and run directories, symlinks planted in the run and log
directories, and a service running as a real unprivileged user that names root's processes."""

from __future__ import annotations

import json
import os
import signal
from typing import TYPE_CHECKING

import pytest
from conftest import DAEMONS, PY, Env, alive, assert_ok, tagged_pids, wait_for
from faultkit import (
    USER_PYTHON,
    Recorder,
    User,
    assert_clear,
    pids_of_uid,
    reachable_copy,
    reachable_dir,
    starttime,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: other users' files and processes, chown, useradd",
)

NOBODY = 65534
RECORDER = str(DAEMONS / "signal_recorder.py")


def _left(env: Env) -> list[str]:
    return [f for f in env.files() if not f.startswith(".definitions-")]


# -- PID files and run directories that cannot be trusted ---------------------------------------


def test_pid_file_others_can_write_names_nothing(env: Env, decoy: Recorder) -> None:
    env.write(
        "web",
        {"command": [PY, RECORDER, str(decoy.marker)], "start_grace": 0.1},
    )
    env.run.mkdir()
    pid_file = env.run / "web.pid"
    # Control: written by root, mode 0644, the decoy would pass for the service (same program,
    # arguments and user); only the file's owner and mode below make the difference.
    pid_file.write_text(f"{decoy.pid}\n")
    pid_file.chmod(0o644)
    res = assert_ok(env.sc("status", "web"), 0)
    assert "identified by user and executable" in res.stdout

    for mode, owner, why in (
        (0o666, 0, f"the PID file {pid_file} is writable by every user"),
        (0o644, NOBODY, f"the PID file {pid_file} belongs to uid {NOBODY}, not to the service"),
    ):
        pid_file.write_text(f"{decoy.pid}\n")
        os.chown(pid_file, owner, -1)
        pid_file.chmod(mode)
        res = assert_ok(env.sc("status", "web"), 1)
        assert why in res.stdout and "left alone" in res.stdout
        res = assert_ok(env.sc("stop", "web"))
        assert why in res.stdout and "left alone" in res.stdout
        decoy.assert_untouched()
    pid_file.write_text(f"{decoy.pid}\n")
    pid_file.chmod(0o666)
    res = assert_ok(env.sc("start", "web"))
    assert env.pid("web") != decoy.pid and pid_file.stat().st_mode & 0o777 == 0o644
    assert_ok(env.sc("stop", "web"))
    decoy.assert_untouched()
    assert _left(env) == []


def test_unsafe_run_dir_is_refused(env: Env) -> None:
    env.sleeper("web")
    env.run.mkdir()
    for mode, owner, why in (
        (0o777, 0, "can be written by other users"),
        (0o1777, 0, "can be written by other users"),
        (0o775, 0, "can be written by other users"),
        (0o755, NOBODY, f"belongs to another user (owner uid {NOBODY}"),
    ):
        os.chown(env.run, owner, -1)
        env.run.chmod(mode)
        for args in (("start", "web"), ("stop", "web"), ("restart", "web"), ("status", "web")):
            res = assert_ok(env.sc(*args), 4)
            assert_clear(res, f"the run directory {env.run} {why}", "cannot be trusted")
        assert list(env.run.iterdir()) == [] and tagged_pids(env.tag) == []
    # A service started before the directory became unsafe is not signalled through it.
    os.chown(env.run, 0, -1)
    env.run.chmod(0o755)
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    env.run.chmod(0o777)
    assert_ok(env.sc("stop", "web"), 4)
    assert alive(pid)
    env.run.chmod(0o755)
    assert_ok(env.sc("stop", "web"))
    assert not alive(pid)


# -- symlinks in the run and log directories ----------------------------------------------------


def test_symlinked_state_file_is_not_followed(env: Env, decoy: Recorder) -> None:
    """A state record that would be trusted if it were read (the decoy's PID and start time)
    is not read through a symlink; start replaces the link, not its target."""
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    genuine = json.loads((env.run / "web.state").read_text())
    assert_ok(env.sc("stop", "web"))
    forged = dict(genuine, pid=decoy.pid, starttime=starttime(decoy.pid), pgid=decoy.pid)
    elsewhere = env.root / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "web.state"
    target.write_text(json.dumps(forged))
    target.chmod(0o644)
    before = target.read_bytes()

    state = env.run / "web.state"
    state.write_bytes(before)  # control: as a regular file, this record is trusted
    state.chmod(0o644)
    assert env.status_json("web")["web"]["pid"] == decoy.pid
    state.unlink()

    state.symlink_to(target)
    res = assert_ok(env.sc("status", "web"), 3)
    assert f"the state file {state} is a symlink" in res.stdout
    res = assert_ok(env.sc("stop", "web"))
    assert "not running" in res.stdout
    assert_ok(env.sc("start", "web"))
    assert not state.is_symlink() and env.pid("web") != decoy.pid
    assert_ok(env.sc("stop", "web"))
    assert target.read_bytes() == before
    decoy.assert_untouched()


def test_symlinked_lock_and_pid_files(env: Env, decoy: Recorder) -> None:
    env.sleeper("web")
    elsewhere = env.root / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "precious"
    target.write_text("root:x:0:0:root:/root:/bin/sh\n")
    target.chmod(0o644)
    st = target.stat()
    env.run.mkdir()
    lock = env.run / "web.lock"
    lock.symlink_to(target)
    for args in (("start", "web"), ("stop", "web"), ("restart", "web")):
        res = assert_ok(env.sc(*args), 4)
        assert_clear(res, f"web: the lock file {lock} is a symlink (to {target})", "remove")
    assert set(tagged_pids(env.tag)) == {decoy.pid} and lock.is_symlink()
    assert (target.read_text(), target.stat().st_mode, target.stat().st_mtime_ns) == (
        "root:x:0:0:root:/root:/bin/sh\n",
        st.st_mode,
        st.st_mtime_ns,
    )
    lock.unlink()

    # The PID file of a running service replaced by a link to a file naming the decoy: the
    # recorded process is stopped, the link removed, its target untouched.
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    victim = elsewhere / "victim.pid"
    victim.write_text(f"{decoy.pid}\n")
    pid_file = env.run / "web.pid"
    pid_file.unlink()
    pid_file.symlink_to(victim)
    res = assert_ok(env.sc("status", "web"), 0)
    assert f"the PID file {pid_file} is a symlink" in res.stdout
    res = assert_ok(env.sc("stop", "web"))
    assert "stopped after TERM" in res.stdout and not alive(pid)
    assert not pid_file.exists() and not pid_file.is_symlink()
    assert victim.read_text() == f"{decoy.pid}\n"
    decoy.assert_untouched()
    assert _left(env) == []


def test_symlinked_log_file(env: Env) -> None:
    env.sleeper("web")
    target = env.root / "precious"
    target.write_text("root:x:0:0:root:/root:/bin/sh\n")
    env.log.mkdir()
    log = env.log / "web.log"
    log.symlink_to(target)
    res = assert_ok(env.sc("start", "web"), 4)
    assert_clear(res, f"web: the log file {log} is a symlink (to {target})", "stdout:")
    assert tagged_pids(env.tag) == [] and _left(env) == []
    res = assert_ok(env.sc("logs", "web"), 4)  # a refused symlink: privilege, as for start
    assert_clear(res, f"the log file {log} is a symlink")
    assert "root:x:0:0" not in res.stdout + res.stderr
    assert target.read_text() == "root:x:0:0:root:/root:/bin/sh\n"


# -- a service running as an unprivileged user names root's processes --------------------------


def _liar(env: Env, user: User, pid_file: Path, *args: str) -> None:
    """A forking daemon run as ``user`` by the test install's Python, from a copy beside its
    PID file (both reachable by that user)."""
    script = reachable_copy(DAEMONS / "liar_forking.py", pid_file.parent)
    env.write(
        "liar",
        {
            "type": "forking",
            "user": user.name,
            "command": [USER_PYTHON, str(script), "--pidfile", str(pid_file)] + list(args),
            "pid_file": str(pid_file),
            "start_timeout": 1,
        },
    )


def test_user_daemon_naming_a_root_process_at_start(env: Env, user: User) -> None:
    with reachable_dir(owner=user) as home:
        decoy = Recorder(home, env.tag, python=USER_PYTHON)  # same program as the daemon
        try:
            pid_file = home / "liar.pid"
            _liar(env, user, pid_file, "--claim", str(decoy.pid))
            res = assert_ok(env.sc("start", "liar"), 1)
            assert_clear(
                res,
                f"liar: failed to start: no live daemon in the PID file {pid_file}",
                f"it names {decoy.pid}, which was not trusted",
            )
            assert pids_of_uid(user.uid) == [], "the lying daemon was left running"
            assert not pid_file.exists() and _left(env) == []
            # Written again behind servicectl's back, by the user (the file is the user's).
            pid_file.write_text(f"{decoy.pid}\n")
            os.chown(pid_file, user.uid, user.gid)
            why = f"PID {decoy.pid} belongs to uid 0, not to the service's uid {user.uid}"
            res = assert_ok(env.sc("status", "liar"), 1)
            assert why in res.stdout and "left alone" in res.stdout
            res = assert_ok(env.sc("stop", "liar"))
            assert why in res.stdout and "left alone" in res.stdout
            decoy.assert_untouched()
        finally:
            decoy.close()


def test_user_daemon_rewriting_its_pid_file_later(env: Env, user: User) -> None:
    """After a good start, the daemon rewrites its PID file (as its user) to a root PID, and
    stays, or exits as if it had re-executed itself: the root process is never signalled."""
    with reachable_dir(owner=user) as home:
        decoy = Recorder(home, env.tag, python=USER_PYTHON)
        try:
            for then_exit in (False, True):
                pid_file = home / "liar.pid"
                marker = home / f"liar-{then_exit}.marker"
                extra = ["--later", str(decoy.pid), "--marker", str(marker)]
                _liar(env, user, pid_file, *extra, *(["--then-exit"] if then_exit else []))
                assert_ok(env.sc("start", "liar"))
                daemon = env.pid("liar", pid_file)
                assert os.stat(f"/proc/{daemon}").st_uid == user.uid
                os.kill(daemon, signal.SIGUSR1)  # "rewrite your PID file now"
                wait_for(lambda: marker.exists(), what="the daemon to rewrite its PID file")  # noqa: B023
                assert env.pid("liar", pid_file) == decoy.pid
                assert pid_file.stat().st_uid == user.uid
                if not then_exit:
                    res = assert_ok(env.sc("status", "liar"), 0)
                    assert f"the PID file names {decoy.pid}, but the service runs as {daemon}" in (
                        res.stdout
                    )
                    res = assert_ok(env.sc("start", "liar"))
                    assert res.stdout.strip() == f"liar: already running (pid {daemon})"
                    res = assert_ok(env.sc("stop", "liar"))
                    assert "stopped after TERM" in res.stdout and not alive(daemon)
                else:
                    wait_for(lambda: not alive(daemon), what="the daemon to exit")  # noqa: B023
                    # Refused for not being of the daemon's session (checked before the user).
                    why = f"names {decoy.pid}, which is not the service: it is not in the daemon's"
                    res = assert_ok(env.sc("status", "liar"), 1)
                    assert why in res.stdout and "left alone" in res.stdout
                    res = assert_ok(env.sc("stop", "liar"))
                    assert why in res.stdout and "left alone" in res.stdout
                assert not pid_file.exists() and _left(env) == []
                assert pids_of_uid(user.uid) == []
                decoy.assert_untouched()
        finally:
            decoy.close()
