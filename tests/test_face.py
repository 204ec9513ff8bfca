"""What a newcomer meets in the first hour, through the real CLI: a failed start stays
``failed``; the progress tells each result the moment it is known; log tails show this run's
lines only; ``check`` finds the program as ``start`` does; permission errors point at root;
help fits each command; ``logs --since``. (``metrics``: tests/test_metrics.py.)"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import pytest
from conftest import DAEMONS, PY, SERVICECTL, Env, alive, assert_ok, wait_for
from test_status_view import Pty

from servicectl.commands.grammar import COMMANDS, SUMMARY_WIDTH

if TYPE_CHECKING:
    from faultkit import User

MARK = re.compile(r"^-- servicectl: starting (\S+) at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} --$")


def crasher(env: Env, name: str, text: str, code: int = 1) -> None:
    """A service that prints ``text`` and exits ``code`` at once."""
    env.write(name, {"command": ["sh", "-c", f'echo "{text}"; exit {code}'], "start_grace": 1})


# -- 1. a failed start stays failed ---------------------------------------------------------------


def test_a_failed_start_is_failed_until_the_next_start_or_stop(env: Env) -> None:
    crasher(env, "broken", "cannot bind")
    res = assert_ok(env.sc("start", "broken"), 1)
    assert "broken: failed to start: the program exited with status 1" in res.stderr
    assert env.files() == []  # guarantee 5: no PID file, no record, no process
    assert (env.run / "broken.failed").is_file()
    res = assert_ok(env.sc("status", "broken"), 1)  # failed: 1, as a supervisor's give-up
    assert re.search(r"^\s+State: failed since ", res.stdout, re.M), res.stdout
    assert re.search(
        r"last start failed at \d\d:\d\d:\d\d: the program exited with status 1", res.stdout
    )
    assert re.search(r"^\s+Last exit: code 1 at ", res.stdout, re.M)
    row = env.status_json("broken")["broken"]
    assert row["state"] == "failed" and row["exit_code"] == 1 and row["pid"] is None
    assert row["last_exit"]["code"] == 1 and abs(row["last_exit"]["at"] - time.time()) < 60
    assert "exited with status 1" in row["last_exit"]["reason"]
    board = assert_ok(env.sc("status"), 1)
    assert re.search(r"^broken\s+failed\s+-", board.stdout, re.M), board.stdout
    # The next start that succeeds clears it.
    env.sleeper("broken")
    assert_ok(env.sc("start", "broken"))
    assert not (env.run / "broken.failed").exists()
    assert env.status_json("broken")["broken"]["state"] == "running"
    assert_ok(env.sc("stop", "broken"))
    assert_ok(env.sc("status", "broken"), 3)
    # A stop clears it too, and says so.
    crasher(env, "broken", "again")
    assert_ok(env.sc("start", "broken"), 1)
    assert_ok(env.sc("status", "broken"), 1)
    res = assert_ok(env.sc("stop", "broken"))
    assert "broken: not running; its failed state is cleared" in res.stdout
    assert_ok(env.sc("status", "broken"), 3)
    assert env.status_json("broken")["broken"]["state"] == "stopped"


def test_startall_failure_is_failed_on_the_board(env: Env) -> None:
    env.sleeper("heartbeat")
    crasher(env, "broken", "oops")
    res = assert_ok(env.sc("startall"), 1)
    assert "broken: failed to start" in res.stderr
    rows = env.status_json()
    assert rows["broken"]["state"] == "failed" and rows["heartbeat"]["state"] == "running"
    board = assert_ok(env.sc("status"), 1)
    assert re.search(r"^broken\s+failed\b", board.stdout, re.M)
    assert "broken: last start failed at" in board.stderr  # the board's notes go to stderr
    assert_ok(env.sc("stopall"))


def test_a_failed_note_of_another_user_or_a_symlink_is_not_trusted(env: Env) -> None:
    """R-RUN-2 for NAME.failed: written atomically, read only when root's (or the reader's)
    and not writable by others, never through a symlink."""
    crasher(env, "broken", "x")
    assert_ok(env.sc("start", "broken"), 1)
    note = env.run / "broken.failed"
    assert note.stat().st_mode & 0o777 == 0o644
    note.chmod(0o666)
    assert_ok(env.sc("status", "broken"), 3)
    note.chmod(0o644)
    assert_ok(env.sc("status", "broken"), 1)
    target = env.root / "elsewhere.failed"
    note.rename(target)
    note.symlink_to(target)
    assert_ok(env.sc("status", "broken"), 3)


# -- 2. progress: each result the moment it is known ----------------------------------------------


def test_startall_piped_prints_each_result_the_moment_it_is_known(env: Env) -> None:
    ready = env.root / "slow.ready"
    env.sleeper("aslow", ready={"file": str(ready)}, start_timeout=60)  # first by name
    env.sleeper("bquick")
    proc = env.popen("startall")
    assert proc.stdout is not None
    first = _line_within(proc.stdout, 30)
    assert first.startswith("bquick: started (pid"), first  # not held behind aslow
    assert proc.poll() is None  # aslow still waits for its file
    ready.touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines()[0].startswith("aslow: started (pid")
    assert_ok(env.sc("stopall"))


def _line_within(stream: object, timeout: float) -> str:
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)  # type: ignore[attr-defined]
    reader.start()
    reader.join(timeout)
    assert got, "no line in time"
    return got[0]


def test_live_progress_lets_a_finished_service_go_and_never_overruns_a_clock(env: Env) -> None:
    """The case to get right: a quick service (start_grace 0.5 s) beside a slow one in the same
    level. Its result comes out when it is known, its line leaves the live area then, and no
    clock ever reads more than its limit."""
    ready = env.root / "slow.ready"
    env.sleeper("aslow", ready={"file": str(ready)}, start_timeout=60)
    env.sleeper("heartbeat", start_grace=0.5)
    term = Pty(env, "startall")
    wait_for(lambda: "heartbeat: started (pid" in term.text, 30, "heartbeat's line")
    wait_for(lambda: "aslow: ready: file" in term.text, 30, "aslow's wait")
    at = term.text.index("heartbeat: started (pid")
    wait_for(lambda: term.text[at:].count("aslow: ready: file") >= 4, 30, "redraws after it")
    assert term.proc.poll() is None
    ready.touch()
    assert term.wait() == 0, term.text
    text = term.text
    after = text[text.index("heartbeat: started (pid") :]
    assert "heartbeat: start_grace" not in after  # left the live area when done
    clocks = re.findall(r"(\d+\.\d) s of (\d+(?:\.\d+)?) s", text)
    assert clocks and all(float(a) <= float(b) for a, b in clocks), clocks
    assert_ok(env.sc("stopall"))


def test_stopall_reports_a_quick_stop_at_once_beside_a_stubborn_one(env: Env) -> None:
    env.write(
        "astub",
        {"command": [PY, str(DAEMONS / "stubborn.py")], "stop_timeout": 3, "start_grace": 0.2},
    )
    env.sleeper("web")
    assert_ok(env.sc("startall"))
    t0 = time.monotonic()
    proc = env.popen("stopall")
    assert proc.stdout is not None
    first = _line_within(proc.stdout, 30)
    assert first.startswith("web: stopped after TERM"), first
    assert time.monotonic() - t0 < 2.5  # long before astub's 3 s are up
    out, err = proc.communicate(timeout=60)
    assert "astub: killed after 3 s" in out


# -- 3. log tails of this run ---------------------------------------------------------------------


def test_the_failure_message_shows_only_this_starts_lines(env: Env) -> None:
    crasher(env, "web", "old crash: port in use")
    assert_ok(env.sc("start", "web"), 1)
    crasher(env, "web", "new problem: bad config")
    res = assert_ok(env.sc("start", "web"), 1)
    assert "new problem: bad config" in res.stderr
    assert "old crash" not in res.stderr  # an earlier run's line is never shown as this one's
    assert re.search(r"written by this start \(2 earlier lines are from previous runs", res.stderr)
    lines = (env.log / "web.log").read_text().splitlines()
    assert [bool(MARK.match(x)) for x in lines] == [True, False, True, False]
    assert all(MARK.match(x).group(1) == "web" for x in lines[::2])  # type: ignore[union-attr]
    block = assert_ok(env.sc("status", "web"), 1).stdout
    assert "new problem" in block and "old crash" not in block
    assert re.search(r"\(its last run: last 1 line, started [\d:]+; 2 earlier lines", block)


def test_the_status_block_shows_only_this_runs_lines(env: Env) -> None:
    env.sleeper("web", "--print", "hello from run one")
    assert_ok(env.sc("start", "web"))
    wait_for(lambda: "run one" in (env.log / "web.log").read_text(), what="run one's line")
    env.sleeper("web", "--print", "hello from run two")
    assert_ok(env.sc("restart", "web"))
    wait_for(lambda: "run two" in (env.log / "web.log").read_text(), what="run two's line")
    out = assert_ok(env.sc("status", "web")).stdout
    assert "hello from run two" in out and "run one" not in out
    assert re.search(
        r"\(this run: last \d lines?, started [\d:]+; \d+ earlier lines? (is|are) ", out
    )
    everything = assert_ok(env.sc("logs", "web")).stdout  # logs shows every run, marks too
    assert "run one" in everything and "run two" in everything
    assert sum(bool(MARK.match(x)) for x in everything.splitlines()) == 2
    assert_ok(env.sc("stop", "web"))


def test_R_LOG_4_marks_go_only_into_regular_files_before_the_program(env: Env) -> None:
    """Output to a terminal (a character device) gets no mark; a mark-like line the service
    prints for another name does not cut its log."""
    master, slave = pty.openpty()
    try:
        tty = os.ttyname(slave)
        env.write(
            "term",
            {
                "command": ["sh", "-c", "echo first words; sleep 300"],
                "stdout": tty,
                "start_grace": 0.2,
            },
        )
        assert_ok(env.sc("start", "term"))
        got = b""
        while b"first words" not in got:
            assert select.select([master], [], [], 10)[0], got
            got += os.read(master, 1024)
        assert b"servicectl" not in got and got.lstrip().startswith(b"first words")
        assert_ok(env.sc("stop", "term"))
    finally:
        os.close(master)
        os.close(slave)
    fake = "-- servicectl: starting other at 2020-01-01 00:00:00 +0000 --"
    command = ["sh", "-c", 'printf "%s\\n" before "$FAKE" after; exit 1']
    env.write("web", {"command": command, "environment": {"FAKE": fake}, "start_grace": 1})
    res = assert_ok(env.sc("start", "web"), 1)
    assert "before" in res.stderr and "after" in res.stderr  # matched by name only


# -- 4. check finds the program as start does -----------------------------------------------------


def test_check_finds_the_program_as_start_does(env: Env) -> None:
    env.write("noprog", {"command": ["noprog-xyz", "--serve"]})
    start = assert_ok(env.sc("start", "noprog"), 5)
    said = "noprog: program 'noprog-xyz' not found in PATH /usr/local/sbin:"
    assert said in start.stderr
    res = assert_ok(env.sc("check", "--run-checks", "noprog"), 5)  # as start would: 5
    assert res.stderr.strip() == start.stderr.strip() and res.stdout == ""  # said the same way
    res = assert_ok(env.sc("check", "noprog"))  # a definition may come before its package
    assert said in res.stderr and "warning only: start would fail (exit 5)" in res.stderr
    script = env.services / "bin" / "tool"
    script.parent.mkdir()
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    env.write("script", {"command": ["./bin/tool"]})
    res = assert_ok(env.sc("check", "--run-checks", "script"), 5)
    assert "interpreter /nonexistent/interpreter (its #! line) does not exist" in res.stderr
    assert_ok(env.sc("start", "script"), 5)
    script.write_text(f"#!{PY}\nimport time; time.sleep(300)\n")
    assert_ok(env.sc("check", "--run-checks", "script"))
    env.write("plain", {"command": ["sleep", "300"]})
    res = assert_ok(env.sc("check", "--run-checks", "plain"))
    assert "plain: ok" in res.stdout and res.stderr == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a service user and a user to check")
def test_check_as_root_tests_that_the_services_user_may_execute(env: Env, user: User) -> None:
    hidden = env.root / "private"  # tmp_path's parents are 0700: the user cannot enter
    hidden.mkdir()
    prog = hidden / "daemon"
    prog.write_text("#!/bin/sh\nsleep 300\n")
    prog.chmod(0o755)
    env.write("svc", {"command": [str(prog)], "user": user.name})
    assert_ok(env.sc("check", "svc"))  # root sees it
    res = assert_ok(env.sc("check", "--run-checks", "svc"), 5)
    assert f"svc: user {user.name} cannot execute {prog}" in res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to check as another user")
def test_check_as_a_user_warns_when_it_cannot_see_roots_program(user: User) -> None:
    from faultkit import USER_PYTHON, as_user, reachable_dir

    with reachable_dir() as top:
        services = top / "services.d"
        services.mkdir()
        (services / "web.yaml").write_text("command: /root/no-such-dir/web --serve\n")
        base = [USER_PYTHON, "-m", "servicectl", "-d", str(services)]
        base += ["--run-dir", str(top / "run"), "--log-dir", str(top / "log")]
        env = {"PATH": os.environ["PATH"], "NO_COLOR": "1"}
        res = as_user(user, *base, "check", "web", env=env, cwd=str(top))
        assert res.returncode == 0, res.stderr
        assert "web: program /root/no-such-dir/web does not exist" in res.stderr
        assert "warning only: servicectl runs as uid" in res.stderr and "root" in res.stderr
        root = subprocess.run(
            [USER_PYTHON, *base[1:], "check", "--run-checks", "web"], capture_output=True, text=True
        )
        assert root.returncode == 5  # root sees what the service would: an error


# -- 5. permission errors point at root -----------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to act as another user")
def test_a_users_stop_of_roots_service_says_it_needs_root(user: User) -> None:
    from faultkit import USER_PYTHON, as_user, reachable_dir

    with reachable_dir() as top:
        services = top / "services.d"
        services.mkdir()
        (services / "web.yaml").write_text("command: sleep 300\nstart_grace: 0.1\n")
        flags = ["-d", str(services), "--run-dir", str(top / "run"), "--log-dir", str(top / "log")]
        assert (
            subprocess.run([USER_PYTHON, "-m", "servicectl", *flags, "start", "web"]).returncode
            == 0
        )
        pid = int((top / "run" / "web.pid").read_text())
        try:
            env = {"PATH": os.environ["PATH"], "NO_COLOR": "1"}
            for action in ("stop", "restart", "start"):
                res = as_user(
                    user,
                    USER_PYTHON,
                    "-m",
                    "servicectl",
                    *flags,
                    action,
                    "web",
                    env=env,
                    cwd=str(top),
                )
                assert res.returncode == 4, (action, res.stderr)
                assert "web: needs root: the service is root's" in res.stderr, res.stderr
                assert "lsattr" not in res.stderr and "read-only" not in res.stderr
            assert alive(pid)
        finally:
            subprocess.run([USER_PYTHON, "-m", "servicectl", *flags, "stop", "web"], check=True)
        dest = top / "init.d"
        dest.mkdir()
        res = as_user(
            user,
            USER_PYTHON,
            "-m",
            "servicectl",
            *flags,
            "initd",
            "--all",
            "--dir",
            str(dest),
            env=env,
            cwd=str(top),
        )
        assert res.returncode == 4, res.stderr
        assert "needs root" in res.stderr and "--stdout" in res.stderr
        assert list(dest.iterdir()) == []


# -- 6. help that fits each command ---------------------------------------------------------------


def _sc_plain(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("_SERVICECTL_COMPLETE")}
    environ.update({"COLUMNS": "80", "NO_COLOR": "1", **(extra or {})})
    return subprocess.run(
        [SERVICECTL, *args],
        capture_output=True,
        text=True,
        env=environ,
        stdin=subprocess.DEVNULL,
    )


def test_help_fits_each_command() -> None:
    main = assert_ok(_sc_plain("--help")).stdout
    listing = main[main.index("Commands:") :]
    for name, cmd in COMMANDS.items():
        assert len(cmd.summary) <= SUMMARY_WIDTH, name
        assert re.search(rf"^  {re.escape(name)}\s+{re.escape(cmd.summary)}$", listing, re.M), name
    assert not re.search(r"\.\.\.$", listing, re.M)  # nothing cut off
    restart = assert_ok(_sc_plain("restart", "--help")).stdout
    assert "try-restart" not in restart and "config test" in restart
    stop = assert_ok(_sc_plain("stop", "--help")).stdout
    assert "config test" not in stop and "check_command" not in stop
    assert "Usage: servicectl stop [OPTIONS] NAME..." in stop and "{" not in stop
    assert "Usage: servicectl status [OPTIONS] [NAME...]" in _sc_plain("status", "-h").stdout
    assert "Usage: servicectl logs [OPTIONS] NAME\n" in _sc_plain("logs", "-h").stdout


def test_the_typo_hint_for_a_boolean_says_yamls_word(env: Env) -> None:
    env.write("web", "command: sleep 300\nenvironment: {DEBUG: yes, VERBOSE: True}\n")
    env.write("db", 'command: sleep 300\nenabled: "yes"\n')
    res = assert_ok(env.sc("check"), 6)
    assert 'environment.DEBUG: found true, expected a string: quote it, as in "true"' in res.stderr
    assert "True" not in res.stderr.replace("True}", "")
    assert "enabled: found 'yes', expected true or false (unquoted: true)" in res.stderr


def test_completion_offers_the_directory_options_after_the_command(env: Env) -> None:
    env.sleeper("web")

    def complete(*words: str) -> list[str]:
        line = ["servicectl", *words]
        res = _sc_plain(
            extra={
                "_SERVICECTL_COMPLETE": "complete_bash",
                "COMP_WORDS": " ".join(line),
                "COMP_CWORD": str(len(line) - 1),
            }
        )
        return res.stdout.split()

    offered = complete("stop", "-")
    for flag in ("-d", "--services-dir", "--run-dir", "--log-dir", "-j"):
        assert flag in offered, offered
    assert complete("status", "--l") == ["--lines", "--log-dir"]
    assert "--run-dir" not in complete("stop", "--run-dir", str(env.run), "--")


# -- 7. logs as people read them ------------------------------------------------------------------


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def test_logs_default_lines_match_status(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    with open(env.log / "web.log", "a") as fh:
        fh.writelines(f"line {i}\n" for i in range(30))
    logs = assert_ok(env.sc("logs", "web")).stdout.splitlines()
    block = assert_ok(env.sc("status", "web")).stdout
    assert logs == [f"line {i}" for i in range(20, 30)]
    assert [line.removeprefix("│ ") for line in block.rstrip().splitlines()[-10:]] == logs
    assert len(assert_ok(env.sc("logs", "-n", "3", "web")).stdout.splitlines()) == 3
    assert_ok(env.sc("stop", "web"))


def test_logs_since_reads_the_times_in_the_log(env: Env) -> None:
    env.write("web", {"command": ["sleep", "300"], "start_grace": 0})
    now = time.time()
    log = env.log / "web.log"
    log.parent.mkdir()
    log.write_text(
        f"{_stamp(now - 7200)} INFO two hours ago\n"
        "  a traceback line without a time\n"
        f"{_stamp(now - 1800)},123 INFO half an hour ago\n"
        "  its continuation\n"
        f"{_stamp(now - 60)} INFO a minute ago\n"
        "no time here either\n"
    )
    # A line without a time may be as new as the next time after it: shown, never hidden.
    out = assert_ok(env.sc("logs", "web", "--since", "10 min ago")).stdout.splitlines()
    assert out == [
        "  its continuation",
        f"{_stamp(now - 60)} INFO a minute ago",
        "no time here either",
    ]
    out = assert_ok(env.sc("logs", "web", "-S", "-45min")).stdout.splitlines()
    assert out[0] == "  a traceback line without a time" and len(out) == 5
    out = assert_ok(env.sc("logs", "web", "--since", _stamp(now - 7300))).stdout.splitlines()
    assert len(out) == 6
    assert assert_ok(env.sc("logs", "web", "--since", "-1h", "-n", "1")).stdout == (
        "no time here either\n"
    )
    os.utime(log, (now - 7000, now - 7000))  # last written long ago: nothing since an hour
    assert assert_ok(env.sc("logs", "web", "--since", "1 hour ago")).stdout == ""
    res = assert_ok(env.sc("logs", "web", "--since", "last tuesday-ish"), 2)
    assert "write a time such as" in res.stderr and "10 min ago" in res.stderr


def test_logs_since_uses_the_start_marks(env: Env) -> None:
    """A program that writes no times: the marks say when each run began."""
    env.write("web", {"command": ["sh", "-c", "echo run output; sleep 300"], "start_grace": 0.1})
    log = env.log / "web.log"
    log.parent.mkdir()
    old = time.time() - 3600
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(old))
    log.write_text(f"-- servicectl: starting web at {stamp} --\nold run output\n")
    os.utime(log, (old, old))
    assert_ok(env.sc("start", "web"))
    wait_for(lambda: "run output\n" in log.read_text().split("old run output\n")[1], what="output")
    # The old run's line may have been written until the new mark: it is shown.
    out = assert_ok(env.sc("logs", "web", "--since", "5 min ago")).stdout.splitlines()
    assert out[0] == "old run output" and MARK.match(out[1]) and out[2:] == ["run output"], out
    out = assert_ok(env.sc("logs", "web", "--since", "2 hours ago")).stdout.splitlines()
    assert len(out) == 4
    os.utime(log, (old + 60, old + 60))  # as if nothing was written since the old run
    assert assert_ok(env.sc("logs", "web", "--since", "5 min ago")).stdout == ""
    assert_ok(env.sc("stop", "web"))
