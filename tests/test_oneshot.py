"""``type: oneshot``: a task run to its end (sysctl at boot, the clock saved at shutdown). Real
commands through the real CLI: start runs it to completion (exited, status 0) or to its failure
(failed, status 1, with why and when), bounded by start_timeout; stop runs stop_command
(stopped, status 3); startall starts its dependents after it; check refuses what a oneshot
cannot have. And actions with ``stops: true``, which leave a service stopped, not dead."""

from __future__ import annotations

import signal
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from conftest import PY, Env, alive, assert_ok, wait_for

if TYPE_CHECKING:
    from pathlib import Path


def oneshot(env: Env, name: str, script: str, **extra: Any) -> Path:
    """A oneshot running ``script`` (sh); it may write to MARK, the test's marker file."""
    mark = env.root / f"{name}.mark"
    spec: dict[str, Any] = {
        "type": "oneshot",
        "command": ["/bin/sh", "-c", script],
        "environment": {"MARK": str(mark)},
    }
    spec.update(extra)
    env.write(name, spec)
    return mark


def runs(mark: Path, word: str = "ran") -> int:
    return mark.read_text().split().count(word) if mark.exists() else 0


def test_start_runs_it_to_completion_and_it_stays_exited(env: Env) -> None:
    mark = oneshot(env, "task", 'echo ran >> "$MARK"; echo hello from the task')
    res = assert_ok(env.sc("start", "task"))
    assert "task: ran to completion (exit 0" in res.stdout and runs(mark) == 1
    row = env.status_json("task")["task"]
    assert (row["state"], row["exit_code"], row["pid"]) == ("exited", 0, None)
    assert row["last_exit"]["code"] == 0 and row["last_exit"]["at"] > 0
    assert_ok(env.sc("status", "task"), 0)
    assert "hello from the task" in (env.log / "task.log").read_text()
    res = assert_ok(env.sc("start", "task"))  # already done: not run again
    assert "already exited" in res.stdout and runs(mark) == 1
    board = assert_ok(env.sc("status")).stdout
    assert any(line.split()[:2] == ["task", "exited"] for line in board.splitlines())


def test_a_failed_run_is_failed_with_why_and_when(env: Env) -> None:
    mark = oneshot(env, "bad", 'echo ran >> "$MARK"; echo "no such table" >&2; exit 3')
    res = assert_ok(env.sc("start", "bad"), 1)
    assert "bad: failed: its command exited with status 3" in res.stderr
    assert "no such table" in res.stderr  # the log's last lines
    res = assert_ok(env.sc("status", "bad"), 1)
    assert "failed since" in res.stdout and "exited with status 3" in res.stdout + res.stderr
    row = env.status_json("bad")["bad"]
    assert (row["state"], row["exit_code"], row["last_exit"]["code"]) == ("failed", 1, 3)
    assert_ok(env.sc("start", "bad"), 1)  # a failed oneshot is run again by start
    assert runs(mark) == 2
    assert_ok(env.sc("stop", "bad"))
    assert env.status_json("bad")["bad"]["state"] == "stopped"


def test_a_run_past_start_timeout_is_killed_with_what_it_started(env: Env) -> None:
    script = 'sleep 300 & echo $$! > "$MARK"; echo $$$$ >> "$MARK"; wait'  # $$ is servicectl's $
    mark = oneshot(env, "slow", script, start_timeout=0.5)
    res = assert_ok(env.sc("start", "slow"), 1)
    assert "did not end within 0.5 s (it was killed)" in res.stderr
    pids = [int(p) for p in mark.read_text().split()]
    assert len(pids) == 2 and not any(alive(p) for p in pids)
    assert env.status_json("slow")["slow"]["state"] == "failed"


def test_stop_runs_stop_command_then_it_is_stopped(env: Env) -> None:
    mark = oneshot(
        env, "clock", 'echo ran >> "$MARK"', stop_command=["/bin/sh", "-c", 'echo saved >> "$MARK"']
    )
    assert_ok(env.sc("status", "clock"), 3)
    assert "not running" in assert_ok(env.sc("stop", "clock")).stdout  # never ran: no stop work
    assert runs(mark, "saved") == 0
    assert_ok(env.sc("start", "clock"))
    res = assert_ok(env.sc("stop", "clock"))
    assert "clock: stopped (ran /bin/sh" in res.stdout and runs(mark, "saved") == 1
    assert_ok(env.sc("status", "clock"), 3)
    assert [f for f in env.files() if f.startswith("clock.")] == []  # no run record


def test_a_failing_stop_command_leaves_it_failed(env: Env) -> None:
    oneshot(env, "t", "true", stop_command="/bin/sh -c 'exit 4'")
    assert_ok(env.sc("start", "t"))
    res = assert_ok(env.sc("stop", "t"), 1)
    assert "stop_command /bin/sh -c exit 4 exited with status 4" in res.stderr
    assert env.status_json("t")["t"]["state"] == "failed"


def test_restart_runs_stop_command_and_the_task_again_reload_is_refused(env: Env) -> None:
    mark = oneshot(
        env, "t", 'echo ran >> "$MARK"', stop_command=["/bin/sh", "-c", 'echo saved >> "$MARK"']
    )
    assert_ok(env.sc("start", "t"))
    res = assert_ok(env.sc("restart", "t"))
    assert "ran again to completion" in res.stdout
    assert (runs(mark), runs(mark, "saved")) == (2, 1)
    res = assert_ok(env.sc("reload", "t"), 3)
    assert "a type: oneshot service has no process" in res.stderr
    assert_ok(env.sc("force-reload", "t"))  # no reload: run again, as restart
    assert runs(mark) == 3
    assert_ok(env.sc("try-restart", "t"))
    assert runs(mark) == 4


def test_a_config_test_that_fails_refuses_the_run(env: Env) -> None:
    mark = oneshot(
        env, "t", 'echo ran >> "$MARK"', check_command="/bin/sh -c 'echo broken; exit 1'"
    )
    res = assert_ok(env.sc("start", "t"), 6)
    assert "broken" in res.stderr and runs(mark) == 0
    assert env.status_json("t")["t"]["state"] == "stopped"


def test_startall_starts_dependents_after_it_and_skips_them_when_it_fails(env: Env) -> None:
    # The dependent's program exits at once unless the oneshot's work is done.
    mark = oneshot(env, "prepare", 'sleep 0.3; echo ran >> "$MARK"')
    env.write(
        "web",
        {
            "command": [
                "/bin/sh",
                "-c",
                f'test -s {mark} && exec {PY} -c "import time; time.sleep(300)"',
            ],
            "depends": ["prepare"],
            "start_grace": 0.3,
        },
    )
    res = assert_ok(env.sc("startall"))
    assert res.stdout.index("prepare: ran to completion") < res.stdout.index("web: started")
    rows = env.status_json()
    assert (rows["prepare"]["state"], rows["web"]["state"]) == ("exited", "running")
    res = assert_ok(env.sc("stopall"))  # the oneshot's stop too (it has no stop_command)
    assert "prepare: stopped" in res.stdout
    assert env.status_json("prepare")["prepare"]["state"] == "stopped"
    oneshot(env, "prepare", "exit 1")
    res = assert_ok(env.sc("startall"), 1)
    assert "web: skipped: dependency prepare failed to start" in res.stderr


def test_status_shows_a_run_under_way(env: Env) -> None:
    gate = env.root / "go"
    oneshot(env, "t", f'while [ ! -e {gate} ]; do sleep 0.02; done; echo ran >> "$MARK"')
    starting = env.popen("start", "t")

    def under_way() -> dict[str, Any] | None:
        row = env.status_json("t")["t"]
        return row if row["state"] == "starting" else None

    row = wait_for(under_way, what="the run to be recorded")
    assert row["exit_code"] == 0 and row["pid"] is not None and alive(row["pid"])
    gate.touch()
    out, _ = starting.communicate(timeout=30)
    assert starting.returncode == 0 and "ran to completion" in out
    assert env.status_json("t")["t"]["state"] == "exited"


def test_a_start_killed_mid_run_leaves_it_failed(env: Env) -> None:
    gate = env.root / "go"
    oneshot(env, "t", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    starting = env.popen("start", "t")
    row = wait_for(lambda: env.status_json("t")["t"]["pid"], what="the run to be recorded")
    starting.send_signal(signal.SIGKILL)
    starting.communicate()
    res = env.sc("status", "t")
    assert res.returncode == 0 and "interrupted" in res.stdout + res.stderr  # it still runs
    gate.touch()
    wait_for(lambda: not alive(row), what="the command to end")
    row = env.status_json("t")["t"]
    assert row["state"] == "failed" and "interrupted" in " ".join(row["notes"])


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("restart: on-failure\n", "restart", "not respawned"),
        ("ready: {file: /tmp/x}\n", "ready", "not for a type: oneshot"),
        ("pid_file: /run/x.pid\n", "pid_file", "not for a type: oneshot"),
        ("reload_signal: USR1\n", "reload_signal", "not for a type: oneshot"),
        ("reload: true\n", "reload", "cannot be reloaded"),
    ],
)
def test_check_refuses_what_a_oneshot_cannot_have(
    env: Env, extra: str, key: str, words: str
) -> None:
    env.write("t", f"type: oneshot\ncommand: /bin/true\n{extra}")
    res = assert_ok(env.sc("check", "t"), 6)
    assert f"t.yaml: {key}:" in res.stderr and words in res.stderr


def test_check_refuses_stop_command_outside_a_oneshot(env: Env) -> None:
    env.write("t", "command: /bin/sleep 10\nstop_command: /bin/true\n")
    res = assert_ok(env.sc("check", "t"), 6)
    assert "stop_command: only a type: oneshot service has one" in res.stderr


def test_unit_and_shim_of_a_oneshot(env: Env, tmp_path: Path) -> None:
    oneshot(env, "t", "true", stop_command="/bin/true")
    unit = assert_ok(env.sc("unit", "t", "--stdout")).stdout
    assert "Type=oneshot\nRemainAfterExit=yes\n" in unit and "PIDFile=" not in unit
    assert " start t\n" in unit and " stop t\n" in unit and "\nExecReload=" not in unit
    initd = tmp_path / "initd"
    initd.mkdir()
    assert_ok(env.sc("initd", "t", "--dir", str(initd)))
    run = subprocess.run([str(initd / "t"), "start"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert env.status_json("t")["t"]["state"] == "exited"
    assert subprocess.run([str(initd / "t"), "status"], capture_output=True).returncode == 0
    assert subprocess.run([str(initd / "t"), "stop"], capture_output=True).returncode == 0
    assert subprocess.run([str(initd / "t"), "status"], capture_output=True).returncode == 3


def test_a_shim_never_replaces_the_script_the_service_runs(env: Env, tmp_path: Path) -> None:
    """An imported oneshot may run its old init.d script (kmod's loop): a shim in its place
    would call itself, so it is refused even with --force."""
    initd = tmp_path / "initd"
    initd.mkdir()
    script = initd / "kmod"
    script.write_text("#!/bin/sh\necho loading\n")
    script.chmod(0o755)
    env.write("kmod", {"type": "oneshot", "command": [str(script), "start"]})
    res = assert_ok(env.sc("initd", "kmod", "--dir", str(initd), "--force"), 1)
    assert "is what the service itself runs" in res.stderr
    assert script.read_text() == "#!/bin/sh\necho loading\n"


# ---------------------------------------------------------------------------------------------
# Actions that stop the service (stops: true): graceful-stop, abort


QUITS_ON_USR1 = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGUSR1, lambda *a: (time.sleep(0.2), sys.exit(0)))\n"
    "time.sleep(300)\n"
)


def test_an_action_that_stops_leaves_it_stopped_not_dead(env: Env) -> None:
    env.write(
        "svc",
        {
            "command": [PY, "-c", QUITS_ON_USR1],
            "start_grace": 0.3,
            "actions": {
                "graceful-stop": {"signal": "USR1", "stops": True},
                "abort": {"command": ["/bin/kill", "-TERM", "$MAINPID"], "stops": True},
            },
        },
    )
    for verb in ("graceful-stop", "abort"):
        assert_ok(env.sc("start", "svc"))
        pid = env.pid("svc")
        res = assert_ok(env.sc("action", "svc", verb))
        assert "it has stopped" in res.stdout and not alive(pid)
        assert_ok(env.sc("status", "svc"), 3)
        assert [f for f in env.files() if f.startswith("svc.")] == []  # no PID file, record


def test_an_action_that_should_stop_but_does_not_says_so(env: Env) -> None:
    env.sleeper("svc", stop_timeout=0.5, actions={"nudge": {"signal": "CONT", "stops": True}})
    assert_ok(env.sc("start", "svc"))
    res = assert_ok(env.sc("action", "svc", "nudge"), 1)
    assert "it still runs after 5.5 s (stop ends it)" in res.stderr
    assert env.status_json("svc")["svc"]["state"] == "running"


def test_stops_must_be_true_or_false(env: Env) -> None:
    env.sleeper("svc", actions={"quit": {"signal": "QUIT", "stops": "yes"}})
    res = assert_ok(env.sc("check", "svc"), 6)
    assert "actions.quit.stops" in res.stderr and "true or false" in res.stderr
