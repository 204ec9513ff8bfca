"""The lifecycle of one service through the real CLI: start, stop, restart, reload, status, logs,
for simple and forking services, with the process checked from /proc and psutil."""

from __future__ import annotations

import json
import os
import pwd
import select
import shlex
import shutil
import signal
import tempfile
from pathlib import Path

import psutil
import pytest
from conftest import DAEMONS, PY, TAG_VAR, USER_PYTHON, Env, alive, assert_ok, wait_for


def test_start_stop_simple(env: Env) -> None:
    env.sleeper("web", "--print", "hello-log")
    res = assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    assert res.stdout.strip() == f"web: started (pid {pid})"
    assert (env.run / "web.pid").read_text() == f"{pid}\n"
    p = psutil.Process(pid)
    assert p.status() != psutil.STATUS_ZOMBIE
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid  # own session and group
    wait_for(lambda: "hello-log" in (env.log / "web.log").read_text(), what="log output")

    res = assert_ok(env.sc("start", "web"))
    assert res.stdout.strip() == f"web: already running (pid {pid})"

    res = assert_ok(env.sc("stop", "web"))
    assert res.stdout.startswith("web: stopped after TERM (")
    assert not alive(pid)
    assert env.files() == []

    res = assert_ok(env.sc("stop", "web"))
    assert res.stdout.strip() == "web: not running"


def test_status_codes(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("status", "web"), 3)
    assert env.status_json("web")["web"]["state"] == "stopped"
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    row = env.status_json("web")["web"]
    assert row["state"] == "running" and row["pid"] == pid and row["exit_code"] == 0
    assert row["uptime_seconds"] >= 0 and row["memory_bytes"] > 0
    assert_ok(env.sc("status", "web"), 0)
    os.kill(pid, signal.SIGKILL)  # behind servicectl's back
    wait_for(lambda: not alive(pid), what="kill")
    res = assert_ok(env.sc("status", "web"), 1)
    assert "dead" in res.stdout
    assert_ok(env.sc("status", "nosuch"), 4)
    # start cleans the stale PID file and starts again
    res = assert_ok(env.sc("start", "web"))
    assert "removed a stale" in res.stdout
    assert env.pid("web") != pid


def test_status_all_table_and_json(env: Env) -> None:
    env.sleeper("a", description="first one")
    env.sleeper("b")
    env.write("broken", "command: [unclosed\n", tag=False)
    assert_ok(env.sc("start", "a"))
    res = env.sc("status")
    assert res.returncode == 4  # highest: invalid
    lines = res.stdout.splitlines()
    assert lines[0].split()[:6] == ["NAME", "STATE", "PID", "UPTIME", "MEMORY", "CPU"]
    assert any(
        line.startswith("a ") and "running" in line and "first one" in line for line in lines
    )
    assert any(line.startswith("b ") and "stopped" in line for line in lines)
    assert any(line.startswith("broken ") and "invalid" in line for line in lines)
    rows = json.loads(env.sc("status", "--json").stdout)
    assert {r["name"]: r["state"] for r in rows} == {
        "a": "running",
        "b": "stopped",
        "broken": "invalid",
    }
    assert "\x1b[" not in res.stdout  # no colour off a terminal


def test_several_names_highest_code(env: Env) -> None:
    env.sleeper("a")
    env.write("bad", {"command": "sleep 1", "stop_timeout": -1})
    res = env.sc("start", "a", "bad", "ghost")
    assert res.returncode == 6, res.stderr
    assert "a: started" in res.stdout
    assert "servicectl: ghost: no such service" in res.stderr
    assert "stop_timeout" in res.stderr
    assert_ok(env.sc("stop", "ghost"), 5)
    assert_ok(env.sc("stop", "a"))


def test_restart_and_try_restart(env: Env) -> None:
    env.sleeper("web")
    res = assert_ok(env.sc("try-restart", "web"))
    assert "not running" in res.stdout
    assert_ok(env.sc("status", "web"), 3)
    assert_ok(env.sc("restart", "web"))
    first = env.pid("web")
    assert_ok(env.sc("restart", "web"))
    second = env.pid("web")
    assert first != second and not alive(first) and alive(second)
    assert_ok(env.sc("try-restart", "web"))
    assert env.pid("web") not in (first, second)


def test_reload_signal_and_refusals(env: Env) -> None:
    marker = env.root / "marker"
    env.sleeper("hup", "--hup", environment={"MARKER": str(marker)})
    env.sleeper("nohup")
    env.sleeper("noreload", reload=False)
    assert_ok(env.sc("reload", "hup"), 7)  # not running
    assert_ok(env.sc("start", "hup", "nohup", "noreload"))
    pid = env.pid("hup")
    res = assert_ok(env.sc("reload", "hup"))
    assert f"SIGHUP sent to pid {pid}" in res.stdout
    wait_for(lambda: f"reloaded {pid}" in marker.read_text(), what="reload marker")
    # A program that does not handle HUP would die of it: refused, still alive.
    nohup = env.pid("nohup")
    res = assert_ok(env.sc("reload", "nohup"), 1)
    assert "does not handle SIGHUP" in res.stderr and "restart" in res.stderr
    assert alive(nohup)
    assert_ok(env.sc("reload", "noreload"), 3)
    # force-reload: reloads when it can, restarts when it cannot
    old = env.pid("noreload")
    assert_ok(env.sc("force-reload", "noreload"))
    assert env.pid("noreload") != old and not alive(old)
    assert_ok(env.sc("force-reload", "hup"))
    assert env.pid("hup") == pid


def test_reload_command(env: Env) -> None:
    out = env.root / "reloaded"
    env.sleeper("web", reload_command=["sh", "-c", f'echo "$MAINPID" > {out}'])
    assert_ok(env.sc("start", "web"))
    assert_ok(env.sc("reload", "web"))
    assert out.read_text().strip() == str(env.pid("web"))
    env.sleeper("bad", reload_command=["sh", "-c", "echo nope >&2; exit 4"])
    assert_ok(env.sc("start", "bad"))
    res = assert_ok(env.sc("reload", "bad"), 1)
    assert "exited with status 4" in res.stderr and "nope" in res.stderr


def test_reload_command_output_and_leftovers_are_bounded(env: Env) -> None:
    """A reload_command that floods its output, or hangs and leaves a child behind: servicectl
    keeps the end of the output (memory bounded), kills the command's whole group at
    start_timeout, and the service runs on."""
    flood = "yes x | head -c 50000000; echo last-words; exit 3"
    env.sleeper("flood", reload_command=["sh", "-c", flood])
    assert_ok(env.sc("start", "flood"))
    res = assert_ok(env.sc("reload", "flood"), 1)
    assert "last-words" in res.stderr and len(res.stderr) < 70_000, len(res.stderr)
    left = env.root / "left.pid"
    hang = f"sleep 300 & echo $! > {left}; echo waiting; wait"
    env.sleeper("hang", reload_command=["sh", "-c", hang], start_timeout=1)
    assert_ok(env.sc("start", "hang"))
    res = assert_ok(env.sc("reload", "hang"), 1)
    assert "did not finish within 1 s" in res.stderr and "waiting" in res.stderr, res.stderr
    wait_for(lambda: not alive(int(left.read_text())), 30, "the reload command's child killed")
    assert alive(env.pid("flood")) and alive(env.pid("hang"))
    assert "Traceback" not in res.stderr


def test_clean_environment_and_detachment(env: Env) -> None:
    dump = env.root / "dump.json"
    workdir = env.root / "work"
    workdir.mkdir()
    (env.services / "web.env").write_text(
        "# comment\nFROM_FILE=1\nexport QUOTED='a b'\nOVERRIDE=file\n"
    )
    env.sleeper(
        "web",
        "--env-dump",
        str(dump),
        env_file="web.env",
        working_directory=str(workdir),
        umask="027",
        environment={"GREETING": "hi", "OVERRIDE": "yaml"},
    )
    res = env.sc(
        "start", "web", extra_env={"LEAKY": "secret", "NOTIFY_SOCKET": "/tmp/x", "LANG": "C.UTF-8"}
    )
    assert_ok(res)
    wait_for(dump.exists, what="env dump")
    lines = dump.read_text().splitlines()
    envd, facts = json.loads(lines[0]), json.loads(lines[1])
    user = pwd.getpwuid(os.geteuid())
    assert envd.pop(TAG_VAR)
    assert envd == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": user.pw_dir,
        "USER": user.pw_name,
        "LOGNAME": user.pw_name,
        "FROM_FILE": "1",
        "QUOTED": "a b",
        "OVERRIDE": "yaml",
        "GREETING": "hi",
    }
    assert facts["cwd"] == str(workdir)
    assert facts["umask"] == 0o027
    assert facts["fds"] == [0, 1, 2]
    assert facts["sid"] == facts["pid"] == facts["pgid"]
    assert facts["tty"] is False
    assert os.readlink(f"/proc/{facts['pid']}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{facts['pid']}/fd/1") == str(env.log / "web.log")


def test_stdout_stderr_files_and_logs(env: Env) -> None:
    env.sleeper("split", "--print", "LINE", stdout="out/split.out", stderr="out/split.err")
    env.sleeper("quiet", "--print", "LINE", stdout="null")
    assert_ok(env.sc("start", "split", "quiet"))
    out, err = env.services / "out/split.out", env.services / "out/split.err"
    wait_for(lambda: out.exists() and "LINE" in out.read_text() and "LINE" in err.read_text())
    res = assert_ok(env.sc("logs", "split", "-n", "1"))
    assert res.stdout.strip() == "LINE"
    assert_ok(env.sc("logs", "quiet"), 1)
    assert not (env.log / "quiet.log").exists()


def test_nice_and_limits(env: Env) -> None:
    dump = env.root / "dump.json"
    env.sleeper("web", "--env-dump", str(dump), nice=5, limits={"nofile": 512, "core": 0})
    assert_ok(env.sc("start", "web"))
    wait_for(dump.exists, what="env dump")
    facts = json.loads(dump.read_text().splitlines()[1])
    assert facts["nice"] == 5
    assert facts["nofile"] == [512, 512]
    pid = env.pid("web")
    assert psutil.Process(pid).exe() == os.path.realpath(PY)  # the shim exec'd the program
    assert_ok(env.sc("stop", "web"))


def test_limits_the_kernel_refuses_fail_the_start_plainly(env: Env) -> None:
    """A limit above what the kernel allows anyone (nofile above fs.nr_open) fails the start
    with a line naming the limit, in the message's log tail: no traceback, nothing left."""
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    env.sleeper("big", limits={"nofile": nr_open + 1}, start_grace=2)
    env.sleeper("hard", limits={"core": 0, "nofile": [64, nr_open + 1]}, start_grace=2)
    for name in ("big", "hard"):
        res = env.sc("start", name)
        assert res.returncode == 1, res.stderr
        assert "cannot set limit" in res.stderr, res.stderr
        assert "nofile" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr + (env.log / f"{name}.log").read_text()
    assert env.files() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_user_switch(env: Env) -> None:
    # nobody cannot read root's home (where the test interpreter may live), nor a clone under
    # a 0700 directory: the test install's python, a copy of the sleeper in a shared directory.
    shared = Path(tempfile.mkdtemp(prefix="servicectl-test-user-"))
    try:
        shared.chmod(0o777)
        shutil.copy(DAEMONS / "sleeper.py", shared / "sleeper.py")
        dump = shared / "dump.json"
        nobody = pwd.getpwnam("nobody")
        env.write(
            "web",
            {
                "command": [USER_PYTHON, str(shared / "sleeper.py"), "--env-dump", str(dump)],
                "user": "nobody",
                "start_grace": 0.2,
            },
        )
        assert_ok(env.sc("start", "web"))
        pid = env.pid("web")
        assert psutil.Process(pid).uids().real == nobody.pw_uid
        wait_for(dump.exists, what="env dump")
        envd, facts = (json.loads(x) for x in dump.read_text().splitlines())
        assert facts["uid"] == nobody.pw_uid and facts["gid"] == nobody.pw_gid
        assert envd["USER"] == envd["LOGNAME"] == "nobody" and envd["HOME"] == nobody.pw_dir
        assert_ok(env.sc("status", "web"))
        assert_ok(env.sc("stop", "web"))
        assert not alive(pid)
    finally:
        shutil.rmtree(shared)


def test_bad_user_and_group(env: Env) -> None:
    env.sleeper("web", user="no-such-user-xyz")
    res = env.sc("start", "web")
    assert res.returncode in (1, 4)
    assert "no-such-user-xyz" in res.stderr and "does not exist" in res.stderr
    assert env.files() == []


def test_forking_start_stop(env: Env) -> None:
    env.forking("fd")
    res = assert_ok(env.sc("start", "fd"))
    pid = env.pid("fd", env.run / "fd.daemon.pid")
    assert res.stdout.strip() == f"fd: started (pid {pid})"
    p = psutil.Process(pid)
    assert os.getsid(pid) != pid  # a real double-forked daemon, not a session leader
    assert p.ppid() != os.getpid()
    state = json.loads((env.run / "fd.state").read_text())
    assert state["pid"] == pid and state["type"] == "forking"
    assert_ok(env.sc("status", "fd"))
    assert_ok(env.sc("reload", "fd"))
    wait_for(lambda: "reloaded" in (env.log / "fd.daemon.log").read_text(), what="reload")
    res = assert_ok(env.sc("stop", "fd"))
    assert "stopped after TERM" in res.stdout
    assert not alive(pid)
    assert env.files() == []


def test_forking_failures_leave_nothing(env: Env) -> None:
    env.forking("launchfail", "--fail-launch")
    res = assert_ok(env.sc("start", "launchfail"), 1)
    assert "launcher" in res.stderr and "exited with status 1" in res.stderr
    assert "refusing to start" in res.stderr  # the log tail
    env.forking("nopid", "--no-pidfile", start_timeout=0.5)
    res = assert_ok(env.sc("start", "nopid"), 1)
    assert "no live daemon in the PID file" in res.stderr
    env.forking("dies", "--die-after", "0.05", start_grace=1.0)
    res = assert_ok(env.sc("start", "dies"), 1)
    assert "failed to start" in res.stderr
    assert env.files() == []
    # The orphaned daemon of --no-pidfile was killed too: nothing of the test is left.
    from conftest import tagged_pids

    assert tagged_pids(env.tag) == []


def test_start_failures(env: Env) -> None:
    env.write("missing", {"command": "/nonexistent/prog --flag"})
    res = assert_ok(env.sc("start", "missing"), 5)
    assert "/nonexistent/prog does not exist" in res.stderr
    env.write("notinpath", {"command": "no-such-program-xyz"})
    assert_ok(env.sc("start", "notinpath"), 5)
    script = env.services / "noexec.sh"
    script.write_text("#!/bin/sh\nsleep 100\n")
    script.chmod(0o644)
    env.write("noexec", {"command": "./noexec.sh"})
    res = assert_ok(env.sc("start", "noexec"), 5)
    assert "not executable" in res.stderr
    env.sleeper(
        "crash", "--print", "about to crash", "--exit-code", "3", "--after", "0.05", start_grace=2
    )
    res = assert_ok(env.sc("start", "crash"), 1)
    assert "exited with status 3" in res.stderr
    assert "about to crash" in res.stderr  # the log tail
    env.sleeper("nodir", working_directory="/nonexistent-dir-xyz")
    res = assert_ok(env.sc("start", "nodir"), 1)
    assert "working directory" in res.stderr
    assert env.files() == []


def test_relative_paths_from_services_dir(env: Env) -> None:
    bindir = env.services / "bin"
    bindir.mkdir()
    prog = bindir / "svc.sh"
    sleeper = shlex.join([PY, str(DAEMONS / "sleeper.py")])  # the clone's path may hold a space
    prog.write_text(f'#!/bin/sh\necho "cwd=$(pwd)"\nexec {sleeper}\n')
    prog.chmod(0o755)
    (env.services / "data").mkdir()
    env.write(
        "rel",
        {
            "command": "bin/svc.sh",
            "working_directory": "data",
            "start_grace": 0.2,
            "pid_file": "rel.pid",
        },
    )
    assert_ok(env.sc("start", "rel"))
    assert (env.services / "rel.pid").exists()
    wait_for(lambda: f"cwd={env.services / 'data'}" in (env.log / "rel.log").read_text())
    assert_ok(env.sc("stop", "rel"))
    assert not (env.services / "rel.pid").exists()


def test_logs_follow(env: Env) -> None:
    env.sleeper("web", "--print", "first-line")
    assert_ok(env.sc("start", "web"))
    log = env.log / "web.log"
    wait_for(lambda: "first-line" in log.read_text(), what="first line")
    p = env.popen("logs", "web", "-f", "-n", "1")
    assert p.stdout is not None
    ready = select.select([p.stdout], [], [], 10)[0]
    assert ready and "first-line" in p.stdout.readline()
    with open(log, "a") as fh:
        fh.write("appended-line\n")
    assert select.select([p.stdout], [], [], 10)[0], "the appended line never came"
    assert p.stdout.readline() == "appended-line\n"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert p.returncode == 0 and "undoing" not in err


def test_a_record_of_the_previous_version_is_still_read(env: Env) -> None:
    """Records written by servicectl 0.1 carry fields this version dropped (stop_signal,
    stop_timeout) and lack the ones it added: status, stop and start read them as before."""
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    state = env.run / "web.state"
    old = json.loads(state.read_text())
    old.update(stop_signal=15, stop_timeout=30.0)
    old.pop("fingerprint", None)
    state.write_text(json.dumps(old))
    assert env.status_json("web")["web"]["state"] == "running"
    assert env.status_json("web")["web"]["pid"] == pid
    assert_ok(env.sc("stop", "web"))
    assert not alive(pid) and not state.exists()
