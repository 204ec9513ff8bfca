"""Output never decides the outcome: the real CLI through real shell pipes (``| true``,
``| head -1``), a pipe nobody reads, a closed stdout (``>&-``), a full disk (``>/dev/full``)
and a closed stderr (``2>&-``). Every action completes for every service named (checked in
/proc), the exit code is the action's, a reader that went away is quiet, and lost output of a
command whose output is its whole job is said on stderr with a non-zero exit."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest
from conftest import Env, alive, assert_ok, wait_for

if TYPE_CHECKING:
    from pathlib import Path

CHAIN = ("db", "web", "fork")  # fork depends on web, web on db


def _environ() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1")
    env.pop("NOTIFY_SOCKET", None)
    return env


def through(env: Env, how: str, *args: str) -> tuple[int, str]:
    """Run servicectl ARGS with its output sent ``how``; (exit code, stderr)."""
    argv = [*env.base_args(), *args]
    if how == "unread pipe":  # a pipe whose reader is gone before anything is written
        r, w = os.pipe()
        os.close(r)
        try:
            res = subprocess.run(
                argv, stdout=w, stderr=subprocess.PIPE, text=True, timeout=120,
                env=_environ(), cwd=env.root, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            os.close(w)
        return res.returncode, res.stderr
    code_file = env.root / "exit-code"
    code_file.unlink(missing_ok=True)
    if how.startswith("|"):  # the shell pipeline's status is the reader's: keep ours aside
        script = f'{{ "$@"; echo $? > "$CODE"; }} {how} >/dev/null'
    else:
        script = f'"$@" {how}; echo $? > "$CODE"'
    res = subprocess.run(
        ["sh", "-c", script, "sh", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(_environ(), CODE=str(code_file)),
        cwd=env.root,
        stdin=subprocess.DEVNULL,
    )
    return int(code_file.read_text()), res.stderr


HOWS = ["| true", "| head -1", "unread pipe", ">&-", ">/dev/full", "2>&-", ">&- 2>&-"]
QUIET = {"| true", "| head -1", "unread pipe", ">&-", ">&- 2>&-"}


def _fleet(env: Env) -> None:
    env.sleeper("db")
    env.sleeper("web", "--hup", depends=["db"])
    env.forking("fork", depends=["web"])


def _running(env: Env) -> dict[str, bool]:
    out = {}
    for name in CHAIN:
        pid_file = env.run / ("fork.daemon.pid" if name == "fork" else f"{name}.pid")
        try:
            out[name] = alive(int(pid_file.read_text()))
        except (OSError, ValueError):
            out[name] = False
    return out


def _check_stderr(how: str, err: str, lost: bool) -> None:
    assert "Traceback" not in err, err
    said = err.count("the output could not be written")
    if how == ">/dev/full" and lost:
        assert said == 1, err
    else:
        assert said == 0, err


@pytest.mark.parametrize("how", HOWS)
def test_actions_complete_whatever_happens_to_the_output(env: Env, how: str) -> None:
    _fleet(env)
    code, err = through(env, how, "startall")
    assert code == 0, err
    assert _running(env) == dict.fromkeys(CHAIN, True)
    _check_stderr(how, err, lost=True)

    # stop of a dependency stops its dependents first, and the dependency itself.
    code, err = through(env, how, "stop", "db")
    assert code == 0, err
    assert _running(env) == dict.fromkeys(CHAIN, False)
    _check_stderr(how, err, lost=True)

    code, err = through(env, how, "start", "fork")  # dependencies first
    assert code == 0, err
    assert _running(env) == dict.fromkeys(CHAIN, True)

    before = int((env.run / "web.pid").read_text())
    code, err = through(env, how, "restart", "web")
    assert code == 0, err
    assert not alive(before) and _running(env)["web"]
    for verb in ("reload", "force-reload", "try-restart"):
        code, err = through(env, how, verb, "web")
        assert code == 0, (verb, err)
    assert _running(env) == dict.fromkeys(CHAIN, True)

    code, err = through(env, how, "stopall")
    assert code == 0, err
    assert _running(env) == dict.fromkeys(CHAIN, False)
    _check_stderr(how, err, lost=True)

    # An error on a closed or full stream is no crash either.
    code, err = through(env, how, "start", "ghost")
    assert code == 5
    assert "Traceback" not in err


OUTPUT_COMMANDS = [
    (("status",), 0, 4),
    (("status", "web"), 0, 4),
    (("status", "--json"), 0, 4),
    (("list",), 0, 1),
    (("list", "--json"), 0, 1),
    (("check",), 0, 1),
    (("logs", "web"), 0, 1),
    (("--help",), 0, 1),
    (("status", "-h"), 0, 1),
    (("initd", "--all", "--stdout"), 0, 1),
    (("unit", "--boot", "--stdout"), 0, 1),
]


@pytest.mark.parametrize("how", HOWS)
def test_commands_whose_output_is_their_job(env: Env, how: str) -> None:
    _fleet(env)
    assert_ok(env.sc("startall"))
    with open(env.log / "web.log", "a") as fh:
        fh.writelines(f"log line {i}\n" for i in range(50))
    for args, code, lost_code in OUTPUT_COMMANDS:
        got, err = through(env, how, *args)
        if how in QUIET or how == "2>&-":
            assert got == code, (args, err)
        else:
            assert got == lost_code, (args, err)
        _check_stderr(how, err, lost=True)
    assert _running(env) == dict.fromkeys(CHAIN, True)
    # A stopped service: status 3 through a closed pipe stays 3 (the caller wants the code).
    assert_ok(env.sc("stop", "db"))
    got, err = through(env, how, "status", "db")
    assert got == (3 if how != ">/dev/full" else 4), err


def test_a_closed_stdout_never_becomes_a_file(env: Env) -> None:
    """With fd 1 closed, the next file servicectl opens would become its stdout; /dev/null
    is put there first, so PID files, state and logs hold only what they should."""
    _fleet(env)
    code, err = through(env, ">&- 2>&- <&-", "startall")
    assert code == 0
    assert _running(env) == dict.fromkeys(CHAIN, True)
    code, err = through(env, ">&- 2>&-", "stop", "db")
    assert code == 0
    assert _running(env) == dict.fromkeys(CHAIN, False)
    assert_ok(env.sc("start", "fork"))
    for path in [*env.run.iterdir(), *env.log.iterdir()]:
        if path.is_file():
            lines = path.read_bytes().split(b"\n")  # start marks aside (servicectl wrote them)
            text = b"\n".join(x for x in lines if not x.startswith(b"-- servicectl: starting "))
            assert b"started (pid" not in text and b"stopped after" not in text, path
            assert b"servicectl:" not in text, path
    assert_ok(env.sc("stopall"))


def test_logs_follow_ends_when_nobody_reads(env: Env, tmp_path: Path) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    log = env.log / "web.log"
    with open(log, "a") as fh:
        fh.write("first\n")
    # head -1 exits after the first line; the follow must notice at its next write and end.
    proc = subprocess.Popen(
        ["sh", "-c", '"$@" | head -1', "sh", *env.base_args(), "logs", "web", "-n0", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environ(),
    )
    env.commands.append(proc)  # type: ignore[arg-type]

    def more() -> bool:
        with open(log, "a") as fh:
            fh.write("more\n")
        return proc.poll() is not None

    wait_for(more, 30, "logs -f to end once head -1 has gone")
    out, err = proc.communicate(timeout=30)
    assert out == "more\n" and "Traceback" not in err  # -n0: only what came after
    assert proc.returncode == 0
