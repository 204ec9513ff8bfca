"""Supervision with real processes: crashes by exit status and by signal are respawned (the PID
file and record follow), clean exits under on-failure are not, a crash loop ends failed, the
supervisor's death leaves the service running and tracked (and start attaches a new one),
stop wins against respawns, an interrupted stop leaves no respawn loop, stopall of 50
supervised services leaves nothing, restart and reload during a respawn delay.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import socket
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import (
    DAEMONS,
    PY,
    USER_PYTHON,
    Env,
    alive,
    assert_ok,
    supervisor_pids,
    tagged_pids,
    wait_for,
)

if TYPE_CHECKING:
    import subprocess

LONG = os.environ.get("SERVICECTL_LONG") == "1"
CRASHER = str(DAEMONS / "crasher.py")


def crasher(env: Env, name: str, *args: str, **extra: Any) -> Path:
    """A supervised simple service running tests/daemons/crasher.py (on-failure, 0.2 s)."""
    spec: dict[str, Any] = {
        "command": [PY, CRASHER, *args],
        "restart": "on-failure",
        "restart_delay": 0.2,
        "start_grace": 0.1,
        "stop_timeout": 5,
        "environment": {
            "MARKER": str(env.root / f"{name}.marker"),
            "CRASH_FILE": str(env.root / f"{name}.crash"),
        },
    }
    spec.update(extra)
    return env.write(name, spec)


def record(env: Env, name: str) -> dict[str, Any]:
    return dict(json.loads((env.run / f"{name}.state").read_text()))


def started(env: Env, name: str) -> list[int]:
    """The PIDs the service's program said it started as, in order."""
    path = env.root / f"{name}.marker"
    if not path.exists():
        return []
    return [int(line.split()[1]) for line in path.read_text().splitlines()]


def respawned(env: Env, name: str, old: int, timeout: float = 15) -> int:
    """Wait until the PID file names a live process other than ``old``, and status says
    running: its PID."""

    def new() -> int | None:
        try:
            pid = env.pid(name)
        except (OSError, ValueError):
            return None
        if pid == old or not alive(pid):
            return None
        row = env.status_json(name)[name]
        return pid if row["state"] == "running" and row["pid"] == pid else None

    return int(wait_for(new, timeout, f"{name} to be respawned"))


def crash(env: Env, name: str, how: int | str) -> int:
    """End the service's process: an exit status (through SIGUSR1) or a signal; its PID."""
    pid = env.pid(name)
    wait_for(lambda: pid in started(env, name), 10, f"{name} ({pid}) to be under way")
    if isinstance(how, int):
        (env.root / f"{name}.crash").write_text(str(how))
        os.kill(pid, signal.SIGUSR1)
    else:
        os.kill(pid, getattr(signal, how))
    wait_for(lambda: not alive(pid), 10, f"{name} ({pid}) to end")
    return pid


def nothing_appears(env: Env, seconds: float) -> None:
    """No process of this test's services appears (or stays) during ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = tagged_pids(env.tag)
        assert not left, f"processes after stop: {left}"
        time.sleep(0.02)


def service_files(env: Env) -> list[str]:
    """The services' files left in the run dir (locks aside; the supervisor's are hidden)."""
    return [f for f in env.files() if not f.startswith(".")]


def the_supervisor(env: Env) -> int:
    (pid,) = wait_for(lambda: supervisor_pids(env.run), 10, "the supervisor")
    return int(pid)


# ---------------------------------------------------------------------------------------------
# Respawn


@pytest.mark.parametrize("how", [7, "SIGKILL", "SIGSEGV"])
def test_crash_is_respawned_and_pid_file_follows(env: Env, how: int | str) -> None:
    crasher(env, "web", limits={"core": 0})
    assert_ok(env.sc("start", "web"))
    old = crash(env, "web", how)
    new = respawned(env, "web", old)
    assert record(env, "web")["pid"] == new == env.pid("web")
    row = env.status_json("web")["web"]
    assert row["restarts"] == 1
    want = {"code": 7} if how == 7 else {"signal": str(how).removeprefix("SIG")}
    assert {k: v for k, v in row["last_exit"].items() if k != "at"} == want
    assert abs(row["last_exit"]["at"] - time.time()) < 30
    # running once start_grace (0.1 s) passed: its marker may come later on a loaded machine
    wait_for(lambda: started(env, "web") == [old, new], what="the respawned one's marker")
    log = (env.log / "web.log").read_text()
    said = "exited with status 7" if how == 7 else f"was killed by signal {want.get('signal')}"
    assert f"servicectl: {said}; respawn in 0.2 s (1 of 5)" in log
    assert f"servicectl: respawned (pid {new})" in log
    block = env.sc("status", "web")
    assert "Supervision:" in block.stdout and "1 restart" in block.stdout
    assert_ok(env.sc("stop", "web"))
    nothing_appears(env, 0.5)


def test_on_failure_leaves_a_clean_exit_and_a_stop_signal_alone(env: Env) -> None:
    crasher(env, "web")
    assert_ok(env.sc("start", "web"))
    crash(env, "web", 0)
    wait_for(lambda: env.status_json("web")["web"]["state"] == "stopped", 10, "stopped")
    res = env.sc("status", "--json", "web")
    assert res.returncode == 3
    (row,) = json.loads(res.stdout)
    assert row["last_exit"]["code"] == 0 and "not respawned" in " ".join(row["notes"])
    assert not (env.run / "web.pid").exists()
    assert_ok(env.sc("start", "web"))
    crash(env, "web", "SIGTERM")  # its stop signal, sent by someone else: a stop
    wait_for(lambda: env.status_json("web")["web"]["state"] == "stopped", 10, "stopped")
    time.sleep(0.4)
    assert len(started(env, "web")) == 2


def test_always_respawns_a_clean_exit(env: Env) -> None:
    crasher(env, "web", restart="always")
    assert_ok(env.sc("start", "web"))
    old = crash(env, "web", 0)
    respawned(env, "web", old)
    assert env.status_json("web")["web"]["last_exit"]["code"] == 0


def failed_within(env: Env, name: str, seconds: float) -> dict[str, Any]:
    """The service's status row once it says failed; on a timeout, its last row and log."""
    last: dict[str, Any] = {}

    def failed() -> bool:
        last.update(env.status_json(name)[name])
        return last["state"] == "failed"

    try:
        wait_for(failed, seconds, "failed")
    except AssertionError:
        log = (env.log / f"{name}.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"not failed within {seconds} s: {last}; log: {log}") from None
    return last


def test_an_exit_just_after_a_start_is_an_exit_like_any_other(env: Env) -> None:
    """The program exits the moment its record says it runs: after its start (or respawn) was
    confirmed, before its supervisor watches it. That exit is not lost: each is respawned,
    until the start limit says failed (it was left stopped, not respawned, never failed)."""
    crasher(
        env,
        "web",
        "--crash-once-running",
        str(env.run / "web.state"),
        restart="always",
        restart_delay=0.05,
        start_limit={"burst": 3, "interval": 60},
    )
    assert_ok(env.sc("start", "web"))
    last = failed_within(env, "web", 20)
    assert last["restarts"] == 3 and last["last_exit"]["code"] == 3
    assert len(started(env, "web")) == 4  # the start, then 3 respawns, each crashed once running


def test_crash_loop_ends_failed_until_the_next_start(env: Env) -> None:
    flag = env.root / "crash-now"
    crasher(
        env,
        "web",
        "--crash-at-start",
        str(flag),
        restart="always",
        restart_delay=0.05,
        start_limit={"burst": 3, "interval": 60},
    )
    assert_ok(env.sc("start", "web"))
    flag.touch()
    crash(env, "web", 2)
    failed_within(env, "web", 20)
    res = env.sc("status", "--json", "web")
    assert res.returncode == 1
    (row,) = json.loads(res.stdout)
    assert row["restarts"] == 3 and row["last_exit"]["code"] == 3
    assert "gave up" in " ".join(row["notes"])
    assert len(started(env, "web")) == 4  # the start, then 3 respawns that crashed at once
    time.sleep(0.3)
    assert len(started(env, "web")) == 4 and not tagged_pids(env.tag)
    board = env.sc("status")
    assert board.returncode == 1 and "failed" in board.stdout
    flag.unlink()
    assert_ok(env.sc("start", "web"))
    row = env.status_json("web")["web"]
    assert row["state"] == "running" and row["restarts"] == 0


def test_crash_during_readiness_is_a_failed_respawn(env: Env) -> None:
    flag = env.root / "crash-now"
    ready = env.root / "ready"
    crasher(
        env,
        "web",
        "--ready-file",
        str(ready),
        "--ready-after",
        "0.1",
        "--crash-before-ready",
        str(flag),
        ready={"file": str(ready)},
        restart_delay=0.05,
        start_limit={"burst": 2, "interval": 60},
    )
    assert_ok(env.sc("start", "web"))
    flag.touch()
    ready.unlink()
    crash(env, "web", "SIGKILL")
    wait_for(lambda: env.status_json("web")["web"]["state"] == "failed", 20, "failed")
    row = env.status_json("web")["web"]
    assert row["restarts"] == 2 and row["last_exit"]["code"] == 4
    assert "respawn failed" in (env.log / "web.log").read_text()


def test_a_respawn_that_cannot_run_says_why_once(env: Env) -> None:
    """Its program removed under it, the service cannot be respawned: the log and the status
    say why, naming the service once, and it ends failed."""
    program = env.root / "run-crasher"
    program.write_text(f'#!/bin/sh\nexec {shlex.join([PY, CRASHER])} "$@"\n')  # spaces too
    program.chmod(0o755)
    crasher(
        env,
        "web",
        command=[str(program)],
        restart_delay=0.05,
        start_limit={"burst": 1, "interval": 60},
    )
    assert_ok(env.sc("start", "web"))
    program.unlink()
    crash(env, "web", 3)
    wait_for(lambda: env.status_json("web")["web"]["state"] == "failed", 20, "failed")
    log = (env.log / "web.log").read_text()
    assert "does not exist" in log and "failed: web:" not in log, log  # named once
    res = env.sc("status", "web")
    assert "does not exist" in res.stdout and "failed: web:" not in res.stdout


def test_a_failed_supervised_start_leaves_nothing_and_is_not_respawned(env: Env) -> None:
    flag = env.root / "crash-now"
    flag.touch()
    crasher(env, "web", "--crash-at-start", str(flag), start_grace=0.5)
    res = env.sc("start", "web")
    assert res.returncode == 1 and "exited with status 3" in res.stderr
    assert service_files(env) == []
    time.sleep(0.5)
    assert len(started(env, "web")) == 1


def start_never_ready(env: Env, start_timeout: float) -> tuple[subprocess.Popen[str], int]:
    """``start web`` of a supervised service that never becomes ready, under way: the start
    command and the service's PID, once it runs."""
    crasher(
        env,
        "web",
        "--ready-file",
        str(env.root / "never"),
        "--ready-after",
        "999",
        ready={"file": str(env.root / "ready")},
        start_timeout=start_timeout,
    )
    start = env.popen("start", "web")
    wait_for(lambda: started(env, "web"), 20, "the service to run")
    (pid,) = started(env, "web")
    return start, pid


def test_interrupted_supervised_start_leaves_nothing(env: Env) -> None:
    """SIGTERM to a start waiting for readiness: the supervisor kills what it spawned, removes
    its files, and respawns nothing."""
    start, pid = start_never_ready(env, start_timeout=60)
    start.send_signal(signal.SIGTERM)
    _, err = start.communicate(timeout=30)
    assert start.returncode != 0 and "Traceback" not in err
    assert not alive(pid) and service_files(env) == []
    time.sleep(0.5)
    assert tagged_pids(env.tag) == [] and len(started(env, "web")) == 1


def test_supervisor_killed_during_a_start_leaves_nothing(env: Env) -> None:
    """The supervisor dies while a start waits for readiness: the start fails when readiness
    does not come, kills the service itself (a verified handle) and removes its files."""
    start, pid = start_never_ready(env, start_timeout=2)
    os.kill(the_supervisor(env), signal.SIGKILL)
    _, err = start.communicate(timeout=30)
    assert start.returncode == 1 and "not ready after 2 s" in err, err
    assert "Traceback" not in err
    wait_for(lambda: not alive(pid), 10, "the service to be killed")
    assert service_files(env) == [] and tagged_pids(env.tag) == []


def test_forking_service_is_respawned_with_its_exit_status(env: Env) -> None:
    env.forking("fd", restart="on-failure", restart_delay=0.1)
    assert_ok(env.sc("start", "fd"))
    pid_file = env.run / "fd.daemon.pid"
    old = int(pid_file.read_text())
    os.kill(old, signal.SIGKILL)

    def new() -> int | None:
        # Respawned and recorded: between the respawn's launcher exiting and the supervisor
        # recording its daemon, status sees the daemon by its PID file alone (no restarts).
        row = env.status_json("fd")["fd"]
        done = row["state"] == "running" and row["pid"] != old and row.get("restarts")
        return row["pid"] if done else None

    pid = wait_for(new, 15, "the daemon to be respawned")
    assert int(pid_file.read_text()) == pid
    assert env.status_json("fd")["fd"]["last_exit"]["signal"] == "KILL"
    assert_ok(env.sc("stop", "fd"))
    assert not alive(pid)


def test_supervised_notify_start(env: Env) -> None:
    env.write(
        "nt",
        {
            "command": [PY, str(DAEMONS / "notify_service.py"), "--delay", "0.2"],
            "ready": "notify",
            "restart": "on-failure",
            "restart_delay": 0.1,
        },
    )
    assert_ok(env.sc("start", "nt"))
    old = env.pid("nt")
    os.kill(old, signal.SIGKILL)
    respawned(env, "nt", old)


# ---------------------------------------------------------------------------------------------
# The supervisor's death


def test_killed_supervisor_leaves_it_tracked_and_start_attaches(env: Env) -> None:
    crasher(env, "web")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    sup = the_supervisor(env)
    os.kill(sup, signal.SIGKILL)
    wait_for(lambda: not alive(sup), 10, "the supervisor to die")
    res = env.sc("status", "--json", "web")
    assert res.returncode == 0
    (row,) = json.loads(res.stdout)
    assert row["state"] == "running" and row["pid"] == pid
    assert row["supervisor"].startswith("unsupervised")
    res = assert_ok(env.sc("start", "web"))
    assert "supervised again" in res.stdout
    assert env.pid("web") == pid and started(env, "web") == [pid]
    row = env.status_json("web")["web"]
    assert not row["supervisor"].startswith("unsupervised")
    os.kill(pid, signal.SIGKILL)  # not its child now: the exit status is unknown
    new = respawned(env, "web", pid)
    row = env.status_json("web")["web"]
    assert "unknown" in row["last_exit"] and new != pid


def test_start_attaches_a_service_started_without_supervision(env: Env) -> None:
    crasher(env, "web", restart="no")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    crasher(env, "web")
    res = assert_ok(env.sc("start", "web"))
    assert "now supervised" in res.stdout and env.pid("web") == pid
    os.kill(pid, signal.SIGKILL)
    respawned(env, "web", pid)


def test_unsupervised_dead_service_says_its_exit_is_unknown(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 10, "death")
    res = env.sc("status", "--json", "web")
    assert res.returncode == 1
    (row,) = json.loads(res.stdout)
    assert row["state"] == "dead" and "last_exit" not in row
    notes = " ".join(row["notes"])
    assert "exit status unknown: not supervised" in notes
    assert "its PID file was last written at" in notes
    assert not supervisor_pids(env.run)


# ---------------------------------------------------------------------------------------------
# Races: stop, restart, reload against respawns


def test_stop_wins_against_respawns(env: Env) -> None:
    """Crash, then stop at once or a moment later (while the exit is handled, during the delay,
    while the respawn runs); once stop returned 0, nothing of the service ever runs again."""
    crasher(env, "web", restart="always", restart_delay=0.05, start_limit={"interval": 0})
    rounds = int(os.environ.get("SERVICECTL_RACE_ROUNDS", 60 if LONG else 12))
    rng = random.Random(16)
    for i in range(rounds):
        assert_ok(env.sc("start", "web"))
        crash(env, "web", rng.choice([1, "SIGKILL", 0]))
        time.sleep(rng.choice([0, 0.02, 0.05, 0.08, 0.15]))
        res = assert_ok(env.sc("stop", "web"))
        assert "Traceback" not in res.stderr
        nothing_appears(env, 0.25)
        assert service_files(env) == [], (i, env.files())


def test_restart_during_a_respawn_delay_starts_now(env: Env) -> None:
    crasher(env, "web", restart_delay=3, actions={"rotate": {"signal": "USR1"}})
    assert_ok(env.sc("start", "web"))
    old = crash(env, "web", "SIGKILL")
    wait_for(lambda: record(env, "web")["phase"] == "respawning", 10, "the respawn delay")
    res = env.sc("reload", "web")
    assert res.returncode == 7 and "respawn is pending" in res.stderr
    res = env.sc("action", "web", "rotate")
    assert res.returncode == 7 and "respawn is pending" in res.stderr, res.stderr
    res = assert_ok(env.sc("try-restart", "web"))  # as systemctl: not active, not restarted
    assert "respawn is pending" in res.stdout + res.stderr
    t0 = time.monotonic()
    res = assert_ok(env.sc("restart", "web"))
    assert time.monotonic() - t0 < 2.5
    new = env.pid("web")
    assert new != old and alive(new)
    time.sleep(3.3)
    assert started(env, "web") == [old, new] and tagged_pids(env.tag) == [new]


def test_killed_stop_leaves_it_supervised_or_stopped(env: Env) -> None:
    crasher(env, "web", "--ignore-term", stop_timeout=30)
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    stop = env.popen("stop", "web")
    time.sleep(0.5)  # stop holds it and waits for the TERM it sent to work
    assert stop.poll() is None
    stop.kill()
    stop.communicate()
    row = env.status_json("web")["web"]
    assert row["state"] == "running" and row["pid"] == pid
    assert not row["supervisor"].startswith("unsupervised")
    os.kill(pid, signal.SIGKILL)  # supervised again: respawned
    respawned(env, "web", pid)


def test_killed_stop_of_an_exiting_service_leaves_it_stopped(env: Env) -> None:
    """The stop's servicectl dies after the service exited under it, before it let go: the
    service stays stopped (its record says how it exited), nothing respawns it."""
    termed = env.root / "termed"
    env.write(
        "web",
        {
            "command": [
                "/bin/sh",
                "-c",
                f"trap 'touch {termed}; sleep 0.3; exit 0' TERM; while :; do sleep 0.05; done",
            ],
            "restart": "always",
            "restart_delay": 0.1,
            "start_grace": 0.1,
        },
    )
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    stop = env.popen("stop", "web")
    wait_for(termed.exists, 10, "the stop's TERM")
    os.kill(stop.pid, signal.SIGSTOP)  # frozen while the service leaves
    wait_for(lambda: not alive(pid), 10, "the service to leave")
    stop.kill()
    stop.communicate()
    wait_for(lambda: env.status_json("web")["web"]["state"] == "stopped", 10, "stopped")
    # the supervisor records the exit once the requester is gone: a job of its own, which a
    # loaded machine runs after status first says stopped
    row = wait_for(lambda: _with_last_exit(env.status_json("web")["web"]), 10, "its last exit")
    time.sleep(0.5)  # and nothing respawns it meanwhile
    row = env.status_json("web")["web"]
    assert row["state"] == "stopped" and row["last_exit"]["code"] == 0
    assert tagged_pids(env.tag) == []


def _with_last_exit(row: dict[str, Any]) -> dict[str, Any] | None:
    return row if row.get("last_exit") else None


def test_stopall_leaves_nothing_of_50_supervised_services(env: Env) -> None:
    for i in range(50):
        crasher(env, f"s{i:02d}", restart="always", restart_delay=0.05)
    res = env.sc("startall", timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(tagged_pids(env.tag)) == 50
    for i in range(0, 50, 5):  # respawns in flight during the stopall
        os.kill(env.pid(f"s{i:02d}"), signal.SIGKILL)
    res = env.sc("stopall", timeout=120)
    assert res.returncode == 0, res.stderr
    nothing_appears(env, 0.5)
    assert service_files(env) == []


# ---------------------------------------------------------------------------------------------
# The supervisor itself


def test_supervisor_socket_and_idle_exit(env: Env) -> None:
    crasher(env, "web")
    idle = 0.5
    assert_ok(env.sc("start", "web", extra_env={"SERVICECTL_SUPERVISOR_IDLE": str(idle)}))
    sock = env.run / ".supervisor.sock"
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    sup = the_supervisor(env)
    cmdline = Path(f"/proc/{sup}/cmdline").read_bytes().split(b"\0")
    assert b"servicectl.supervisor.daemon" in cmdline
    with socket.socket(socket.AF_UNIX) as s:  # a request it does not know is refused, politely
        s.connect(str(sock))
        s.sendall(b'{"op": "spawn", "name": "web"}\n')
        assert json.loads(s.makefile().readline())["ok"] is False
    assert alive(sup) and alive(env.pid("web"))
    time.sleep(2 * idle)  # twice its idle time: an absence is observed by waiting it out
    assert alive(sup)  # it supervises something: it stays
    assert_ok(env.sc("stop", "web"))
    wait_for(lambda: not alive(sup), 10, "the idle supervisor to leave")
    assert not sock.exists()


def test_outer_supervisor_starts_no_supervisor_of_ours(env: Env) -> None:
    crasher(env, "web")
    assert_ok(env.sc("start", "web", extra_env={"SERVICECTL_SUPERVISED_BY": "systemd"}))
    assert not supervisor_pids(env.run)
    row = env.status_json("web")["web"]
    assert row["supervisor"] == "systemd"


def test_unit_maps_restart_to_systemd(env: Env) -> None:
    crasher(env, "web", restart_delay=2, start_limit={"burst": 4, "interval": 30})
    env.sleeper("plain")
    text = assert_ok(env.sc("unit", "web", "--stdout")).stdout
    for line in (
        "Restart=on-failure",
        "RestartSec=2",
        "StartLimitBurst=5",  # systemd counts the start too
        "StartLimitIntervalSec=30",
        "Environment=SERVICECTL_SUPERVISED_BY=systemd",
    ):
        assert line in text.splitlines(), line
    plain = assert_ok(env.sc("unit", "plain", "--stdout")).stdout
    assert "Restart=" not in plain and "SERVICECTL_SUPERVISED_BY" not in plain
    shim = assert_ok(env.sc("initd", "web", "--stdout")).stdout
    assert "SUPERVISED_BY" not in shim


@pytest.mark.parametrize(
    "key, value, where",
    [
        ("restart", "sometimes", "restart"),
        ("restart", True, "restart"),
        ("restart_delay", -1, "restart_delay"),
        ("start_limit", {"burst": 0}, "start_limit.burst"),
        ("start_limit", {"bursts": 3}, "start_limit.bursts"),
        ("start_limit", 5, "start_limit"),
    ],
)
def test_bad_supervision_keys_are_configuration_errors(
    env: Env, key: str, value: Any, where: str
) -> None:
    env.write("web", {"command": "sleep 1", key: value})
    res = env.sc("check", "web")
    assert res.returncode == 6 and f"{where}:" in res.stderr


def test_bare_no_is_no(env: Env) -> None:
    env.write("web", "command: sleep 1\nrestart: no\n")
    assert_ok(env.sc("check", "web"))


SUBREAPER = r"""
import os, sys
from servicectl.system import proc
proc.become_subreaper()
said_r, said_w = os.pipe()  # the launcher says the daemon's PID
go_r, go_w = os.pipe()  # the daemon waits for its end
child = os.fork()
if child == 0:  # a daemon's launcher: forks the daemon, says its PID, and exits
    daemon = os.fork()
    if daemon == 0:
        os.close(go_w)
        os.read(go_r, 1)  # until its test says so (or is gone)
        os._exit(0)
    os.write(said_w, str(daemon).encode())
    os._exit(0)
os.close(said_w)
daemon = int(os.read(said_r, 16))
os.waitpid(child, 0)
with open(f"/proc/{daemon}/stat") as f:
    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
os.write(go_w, b"x")
os.waitpid(daemon, 0)
print(ppid == os.getpid(), sorted(m for m in sys.modules if "ctypes" in m))
"""


def test_the_supervisor_adopts_orphans_without_the_ctypes_package() -> None:
    """become_subreaper (the supervisor's, a forking launch's): a daemon whose launcher exited
    is re-parented to servicectl, which loads _ctypes for it, not the ctypes package."""
    import subprocess

    res = subprocess.run([USER_PYTHON, "-c", SUBREAPER], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[0] == "True ['_ctypes']", res.stdout


def test_the_supervisors_code_loads_no_module_it_does_without() -> None:
    """What the supervisor is made of (its PSS is counted for each run directory): none of
    pathlib (with fnmatch, urllib.parse, ipaddress), json and re, ctypes, zlib."""
    import subprocess

    code = (
        "import sys\n"
        "import servicectl.supervisor.daemon, servicectl.supervisor.jobs\n"
        "import servicectl.supervisor.adopt, servicectl.supervisor.health\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    argv = [USER_PYTHON, "-I", "-c", code]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    loaded = set(res.stdout.split())
    assert "servicectl.supervisor.daemon" in loaded
    unwanted = {"pathlib", "fnmatch", "urllib.parse", "ipaddress", "json", "re", "ctypes", "zlib"}
    assert loaded.isdisjoint(unwanted), sorted(loaded & unwanted)
