"""Fault injection: unusable log, run and services directories, a program or user removed under
a running service, servicectl killed or interrupted mid-operation: explained, state left right."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat

import psutil
import pytest
from conftest import (
    DAEMONS,
    PY,
    Env,
    alive,
    assert_ok,
    remain_note,
    tagged_pids,
    tracked_by,
    wait_for,
)
from faultkit import (
    User,
    assert_clear,
    chattr,
    delete_user,
    lock_held,
    pids_of_uid,
)

ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root (chattr +i, useradd, services run as another user)"
)


def _nothing_left(env: Env) -> None:
    assert tagged_pids(env.tag) == [], "a process of the test is still running"
    left = [f for f in env.files() if not f.startswith(".definitions-")]  # the config cache
    assert left == [], f"left in the run directory: {left}"


# -- the log directory -------------------------------------------------------------------------


def test_log_dir_is_a_file(env: Env) -> None:
    env.sleeper("web")
    env.log.write_text("a file where the log directory should be\n")
    res = assert_ok(env.sc("start", "web"), 1)
    assert_clear(res, "web: cannot open the log file", f"{env.log} is not a directory", "stdout:")
    _nothing_left(env)
    assert_ok(env.sc("status", "web"), 1)  # failed: its start failed
    env.sleeper("quiet", stdout="null")  # a service whose output is discarded needs no log
    assert_ok(env.sc("start", "quiet"))
    assert_ok(env.sc("stop", "quiet"))
    _nothing_left(env)


@ROOT_ONLY
def test_log_dir_immutable(env: Env) -> None:
    """As root every directory is writable, except an immutable one (chattr +i)."""
    env.sleeper("web")
    env.log.mkdir()
    if not chattr(env.log, "+i"):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        res = assert_ok(env.sc("start", "web"), 1)
        assert_clear(res, "web: cannot open the log file", "Operation not permitted", "log dir")
        _nothing_left(env)
        assert_ok(env.sc("status", "web"), 1)  # failed: its start failed
    finally:
        chattr(env.log, "-i")
    assert_ok(env.sc("start", "web"))
    assert_ok(env.sc("stop", "web"))


# -- the run directory -------------------------------------------------------------------------


def test_run_dir_is_a_file_or_below_one(env: Env) -> None:
    env.sleeper("web")
    env.run.write_text("")
    for args in (("start", "web"), ("stop", "web"), ("restart", "web")):
        res = assert_ok(env.sc(*args), 1)
        assert_clear(res, "web: the run directory", "exists but is not a directory")
    res = assert_ok(env.sc("status", "web"), 4)  # status unknown
    assert_clear(res, "unknown", "is not a directory", "status of services is unknown")
    below = env.run / "sub"
    res = assert_ok(env.sc("--run-dir", str(below), "start", "web"), 1)
    assert_clear(res, f"web: the run directory {below}", f"{env.run} is not a directory")
    assert tagged_pids(env.tag) == []
    assert env.run.read_text() == ""


@ROOT_ONLY
def test_run_dir_immutable(env: Env) -> None:
    """No lock file can be created; with the lock there, no record; with the service running,
    its files cannot be removed after the stop. Each is said, and nothing runs on untracked."""
    env.sleeper("web")
    env.run.mkdir()
    if not chattr(env.run, "+i"):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        res = assert_ok(env.sc("start", "web"), 4)
        assert_clear(res, "web: cannot create the lock file", "read-only or immutable")
        _nothing_left(env)
        assert_ok(env.sc("status", "web"), 3)
    finally:
        chattr(env.run, "-i")

    assert_ok(env.sc("stop", "web"))  # leaves the lock file
    chattr(env.run, "+i")
    try:
        res = assert_ok(env.sc("start", "web"), 4)
        assert_clear(res, "web: failed to start: cannot write its PID file or state record")
        assert_clear(res, "the process was stopped")
        _nothing_left(env)
    finally:
        chattr(env.run, "-i")

    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    chattr(env.run, "+i")
    try:
        res = assert_ok(env.sc("stop", "web"), 4)
        assert_clear(res, "web: stopped after TERM, but cannot remove its PID file")
        assert_clear(res, "status reports the service dead")
        assert not alive(pid)
        assert_ok(env.sc("status", "web"), 1)
    finally:
        chattr(env.run, "-i")
    res = assert_ok(env.sc("stop", "web"))
    assert "removed the stale PID file and state record" in res.stdout
    _nothing_left(env)


# -- the services directory --------------------------------------------------------------------

EVERY_COMMAND = [
    (("start", "web"), 5),
    (("stop", "web"), 5),
    (("restart", "web"), 5),
    (("try-restart", "web"), 5),
    (("reload", "web"), 5),
    (("force-reload", "web"), 5),
    (("logs", "web"), 5),
    (("check", "web"), 5),
    (("initd", "web", "--stdout"), 5),
    (("status", "web"), 4),
    (("status",), 4),
    (("status", "--json"), 4),
    (("list",), 6),
    (("list", "--json"), 6),
    (("check",), 6),
    (("startall",), 6),
    (("stopall",), 6),
    (("initd", "--all", "--stdout"), 6),
    (("unit", "--all", "--stdout"), 6),
]


def test_services_dir_missing_every_command_says_so(env: Env) -> None:
    missing = env.root / "nonexistent"
    for args, code in EVERY_COMMAND:
        res = env.sc("-d", str(missing), *args)
        assert res.returncode == code, (args, res.returncode, res.stdout, res.stderr)
        assert_clear(res, f"the services directory {missing} does not exist")
    not_a_dir = env.root / "services.yaml"
    not_a_dir.write_text("command: sleep 1\n")
    for args, code in ((("status",), 4), (("start", "web"), 5), (("startall",), 6)):
        res = env.sc("-d", str(not_a_dir), *args)
        assert res.returncode == code, (args, res.stdout, res.stderr)
        assert_clear(res, f"the services directory {not_a_dir} is not a directory")
    assert not env.run.exists()  # nothing was created for nothing


# -- the program or the user removed under a running service ------------------------------------


def test_program_removed_after_start(env: Env) -> None:
    prog = env.root / "bin" / "mysleep"
    prog.parent.mkdir()
    shutil.copy2("/bin/sleep", prog)
    env.write("web", {"command": [str(prog), "300"], "start_grace": 0.1})
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    prog.unlink()
    assert os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")

    row = env.status_json("web")["web"]
    assert (row["state"], row["pid"], row["exit_code"]) == ("running", pid, 0)
    for action in ("restart", "try-restart"):
        res = assert_ok(env.sc(action, "web"), 5)
        assert_clear(res, f"web: program {prog} does not exist", f"still running (pid {pid})")
        assert alive(pid) and env.pid("web") == pid  # not stopped for a start that cannot be

    # Without servicectl's record the PID file still identifies it: same path, same user.
    state = env.run / "web.state"
    saved = state.read_bytes()
    state.unlink()
    res = assert_ok(env.sc("status", "web"), 0)
    assert "identified by user and executable" in res.stdout
    state.write_bytes(saved)

    res = assert_ok(env.sc("stop", "web"))
    assert res.stdout.startswith("web: stopped after TERM")
    assert not alive(pid)
    _nothing_left(env)
    res = assert_ok(env.sc("start", "web"), 5)
    assert_clear(res, f"web: program {prog} does not exist")
    _nothing_left(env)


@ROOT_ONLY
def test_user_deleted_after_start(env: Env, user: User) -> None:
    env.write(
        "u",
        {
            "command": ["/bin/sh", "-c", "echo hello from $USER; exec sleep 300"],
            "user": user.name,
            "start_grace": 0.2,
        },
    )
    assert_ok(env.sc("start", "u"))
    pid = env.pid("u")
    # The log directory is root's (0750): servicectl opens the log and hands it to the service.
    log = env.log / "u.log"
    wait_for(lambda: f"hello from {user.name}" in log.read_text(), what="the service's output")
    assert os.stat(env.log).st_uid == 0 and stat.S_IMODE(os.stat(env.log).st_mode) == 0o750
    assert os.stat(log).st_uid == user.uid

    delete_user(user.name)
    with pytest.raises(KeyError):
        pwd.getpwnam(user.name)
    assert psutil.Process(pid).uids().real == user.uid

    row = env.status_json("u")["u"]
    assert (row["state"], row["pid"]) == ("running", pid)
    res = assert_ok(env.sc("restart", "u"), 1)
    assert_clear(res, f"u: user {user.name!r} does not exist", f"still running (pid {pid})")
    assert alive(pid)
    res = assert_ok(env.sc("stop", "u"))
    assert res.stdout.startswith("u: stopped after TERM")
    assert not alive(pid)
    res = assert_ok(env.sc("start", "u"), 1)
    assert_clear(res, f"u: user {user.name!r} does not exist", "user:")
    _nothing_left(env)
    assert pids_of_uid(user.uid) == []


# -- servicectl killed (SIGKILL) in the middle of an operation ----------------------------------


def _runs_program(pid: int) -> bool:
    """Whether the process runs a test daemon (not servicectl's gate shell any more)."""
    try:
        return any(a.endswith(".py") for a in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def test_sigkill_mid_start_while_waiting_for_readiness(env: Env) -> None:
    """Killed while waiting for readiness (simple and forking): the service was recorded before
    the wait, the kernel dropped the lock, and status says the start was never confirmed."""
    never = env.root / "never-ready"
    env.sleeper("simple", ready={"file": str(never)}, start_timeout=30)
    env.forking("forked", ready={"file": str(never)}, start_timeout=30)
    for name in ("simple", "forked"):
        state = env.run / f"{name}.state"
        p = env.popen("start", name)
        wait_for(
            # The record of the process itself (a forking launch is recorded "launching"),
            # once it runs the program: killed before, the gate lets nothing run.
            lambda s=state, n=name: (
                s.exists()
                and '"starting"' in s.read_text()
                and lock_held(env.run, n)
                and _runs_program(json.loads(s.read_text())["pid"])
            ),
            what="start to be waiting",
        )
        pid = json.loads(state.read_text())["pid"]
        p.kill()
        p.communicate(timeout=10)
        # A child forked just before the kill holds the lock until it has closed its
        # inherited descriptors (before its exec): a moment, not a leak.
        wait_for(lambda n=name: not lock_held(env.run, n), what="the lock to be released")
        res = assert_ok(env.sc("status", name), 0)
        assert "interrupted before it was confirmed" in res.stdout
        assert env.status_json(name)[name]["pid"] == pid and alive(pid)
        res = assert_ok(env.sc("start", name))
        assert res.stdout.strip() == f"{name}: already running (pid {pid})"
        res = assert_ok(env.sc("stop", name))
        assert "stopped after TERM" in res.stdout
        assert not alive(pid)
        _nothing_left(env)


def test_sigkill_mid_forking_launch_daemon_recognised_later(env: Env) -> None:
    """Killed before the forking daemon wrote its PID file: nothing was recorded yet, so the
    daemon is found later by its PID file, user and executable, and stopped normally."""
    env.forking("late", "--pidfile-delay", "1", start_timeout=10)
    p = env.popen("start", "late")

    def launcher() -> int | None:
        # Past its gate: until servicectl has recorded the launch, the child is the gate
        # (dash -c 'read ...'), which exits without running anything when servicectl dies.
        try:
            kids = psutil.Process(p.pid).children()
            return next((k.pid for k in kids if "forkingd" in " ".join(k.cmdline()[:3])), None)
        except psutil.NoSuchProcess:
            return None

    launcher_pid = wait_for(launcher, what="the launcher to run the daemon's program")
    p.kill()
    p.communicate(timeout=10)
    wait_for(lambda: not lock_held(env.run, "late"), what="the lock to be released")
    pid_file = env.run / "late.daemon.pid"
    wait_for(pid_file.exists, what="the daemon's PID file")
    # The launcher exits once its daemon says it is ready, just after the PID file: until
    # then the service is "starting" (an interrupted start whose launcher still runs).
    wait_for(lambda: not alive(launcher_pid), what="the launcher to exit")
    daemon = env.pid("late", pid_file)
    res = assert_ok(env.sc("status", "late"), 0)
    assert "no servicectl record; identified by user and executable" in res.stdout
    res = assert_ok(env.sc("stop", "late"))
    assert "stopped after TERM" in res.stdout and not alive(daemon)
    _nothing_left(env)


def _recorder_service(env: Env, name: str, marker: str, timeout: float) -> None:
    """A simple service that records its signals and ignores TERM (stubborn)."""
    env.write(
        name,
        {
            "command": [PY, str(DAEMONS / "signal_recorder.py"), marker, "--stubborn"],
            "stop_timeout": timeout,
            "start_grace": 0.1,
        },
    )


def _family_service(env: Env, name: str, timeout: float) -> None:
    """A parent that exits on TERM with two children that ignore it (kill_mode: group)."""
    env.write(
        name,
        {
            "command": [PY, str(DAEMONS / "parent_with_children.py"), "--children-ignore-term"],
            "environment": {"CHILDREN_FILE": str(env.root / f"{name}.children")},
            "stop_timeout": timeout,
            "start_grace": 0.2,
        },
    )


def _start_family(env: Env, name: str) -> tuple[int, list[int]]:
    assert_ok(env.sc("start", name))
    children = env.root / f"{name}.children"
    wait_for(children.exists, what="the children")
    return env.pid(name), [int(x) for x in children.read_text().split()]


def test_sigkill_mid_stop_then_recovery(env: Env) -> None:
    marker = env.root / "stub.signals"
    _recorder_service(env, "stub", str(marker), 30)
    assert_ok(env.sc("start", "stub"))
    pid = env.pid("stub")
    p = env.popen("stop", "stub")
    wait_for(lambda: "SIGTERM" in marker.read_text(), what="TERM to arrive")
    p.kill()
    p.communicate(timeout=10)
    wait_for(lambda: not lock_held(env.run, "stub"), what="the lock to be released")
    row = env.status_json("stub")["stub"]
    assert (row["state"], row["pid"]) == ("running", pid)
    _recorder_service(env, "stub", str(marker), 0.2)
    res = assert_ok(env.sc("stop", "stub"))
    assert res.stdout.strip() == "stub: killed after 0.2 s"
    assert not alive(pid)

    # Group stop killed after the main process exited, its TERM-ignoring children still there.
    _family_service(env, "fam", 30)
    main, kids = _start_family(env, "fam")
    p = env.popen("stop", "fam")
    wait_for(lambda: not alive(main) and lock_held(env.run, "fam"), what="main to exit")
    p.kill()
    p.communicate(timeout=10)
    assert all(alive(k) for k in kids)
    res = assert_ok(env.sc("status", "fam"), 1)
    assert "dead" in res.stdout
    assert remain_note(main, kids, main) in res.stdout
    _family_service(env, "fam", 0.2)
    res = assert_ok(env.sc("stop", "fam"))
    assert f"2 leftover processes of its {tracked_by()} killed after 0.2 s" in res.stdout
    assert f"its main process {main} had already exited" in res.stdout
    assert not any(alive(k) for k in kids)
    _nothing_left(env)


def test_temp_files_of_a_killed_writer_are_cleaned(env: Env) -> None:
    """servicectl killed between writing a temp file and renaming it (atomic_write) leaves
    `.NAME.pid.PID.tmp`; the next command that cleans the service's files removes it."""
    env.sleeper("web")
    env.run.mkdir()
    for stale in (".web.pid.4242.tmp", ".web.state.4242.tmp"):
        (env.run / stale).write_text("12")
    (env.run / ".other.pid.4242.tmp").write_text("12")  # another service's: not touched
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    assert_ok(env.sc("stop", "web"))
    assert not alive(pid)
    assert [f for f in env.files() if not f.startswith(".definitions-")] == [".other.pid.4242.tmp"]


# -- servicectl interrupted (SIGINT) during a long stop -----------------------------------------


def test_sigint_mid_stop_of_group_service(env: Env) -> None:
    _family_service(env, "fam", 30)
    main, kids = _start_family(env, "fam")
    p = env.popen("stop", "fam")
    wait_for(lambda: not alive(main) and lock_held(env.run, "fam"), what="main to exit")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130
    pids = ", ".join(map(str, kids))
    assert f"fam: stop interrupted: its main process {main} has exited, but PID {pids}" in err
    assert "Traceback" not in err and all(alive(k) for k in kids)
    res = assert_ok(env.sc("status", "fam"), 1)
    assert remain_note(main, kids, main) in res.stdout
    # start ends what is left of the previous instance before starting a new one
    _family_service(env, "fam", 0.2)
    res = assert_ok(env.sc("start", "fam"))
    assert f"; first 2 leftover processes of its {tracked_by()} killed after 0.2 s" in res.stdout
    assert not any(alive(k) for k in kids)
    assert_ok(env.sc("stop", "fam"))
    _nothing_left(env)


def test_sigint_mid_stop_of_forking_service(env: Env) -> None:
    marker = env.root / "lf.marker"
    pid_file = env.run / "lf.daemon.pid"
    spec = {
        "type": "forking",
        "command": [
            PY,
            str(DAEMONS / "liar_forking.py"),
            "--pidfile",
            str(pid_file),
            "--stubborn",
            "--marker",
            str(marker),
        ],
        "pid_file": str(pid_file),
        "stop_timeout": 30,
    }
    env.write("lf", spec)
    assert_ok(env.sc("start", "lf"))
    daemon = env.pid("lf", pid_file)
    p = env.popen("stop", "lf")
    wait_for(lambda: marker.exists() and "SIGTERM" in marker.read_text(), what="TERM to arrive")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130
    assert f"lf: stop interrupted: it is still running (PID {daemon}) and still tracked" in err
    assert "run stop again" in err and alive(daemon)
    row = env.status_json("lf")["lf"]
    assert (row["state"], row["pid"]) == ("running", daemon)
    env.write("lf", dict(spec, stop_timeout=0.2))
    res = assert_ok(env.sc("stop", "lf"))
    assert res.stdout.strip() == "lf: killed after 0.2 s"
    assert not alive(daemon)
    _nothing_left(env)


def test_sigint_mid_stop_of_several_services_names_each(env: Env) -> None:
    """Stopped in parallel: each worker leaves its service tracked and says so."""
    markers = {name: env.root / f"{name}.signals" for name in ("s1", "s2")}
    for name, marker in markers.items():
        _recorder_service(env, name, str(marker), 30)
    assert_ok(env.sc("start", "s1", "s2"))
    pids = {name: env.pid(name) for name in markers}
    p = env.popen("stop", "s1", "s2")
    wait_for(
        lambda: all(m.exists() and "SIGTERM" in m.read_text() for m in markers.values()),
        what="TERM to arrive",
    )
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "Traceback" not in err
    for name, pid in pids.items():
        assert f"{name}: stop interrupted: it is still running (PID {pid})" in err
        assert alive(pid)
    for name, marker in markers.items():
        _recorder_service(env, name, str(marker), 0.2)
    assert_ok(env.sc("stop", "s1", "s2"))
    assert not any(alive(pid) for pid in pids.values())
    _nothing_left(env)
