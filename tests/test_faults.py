"""Fault injection: unusable log, run and services directories, a program or user removed under
a running service, servicectl killed or interrupted mid-operation: explained, state left right."""

from __future__ import annotations

import os

import pytest
from conftest import Env, alive, assert_ok, tagged_pids
from faultkit import (
    assert_clear,
    chattr,
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
    assert_ok(env.sc("status", "web"), 3)
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
        assert_ok(env.sc("status", "web"), 3)
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
        assert_clear(res, "web: cannot remove its PID file")
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
