"""The guarantees of docs/guarantees.md from the outside: never the wrong process, one instance,
graceful stop, stale state, failures that leave nothing, and interruption — each with real
processes and real signals."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import (
    DAEMONS,
    PY,
    Env,
    alive,
    assert_ok,
    catches,
    proc_state,
    tagged_pids,
    tracked_by,
    wait_for,
)
from faultkit import lock_held

# -- 1. Never the wrong process --------------------------------------------------------------


def test_forged_pid_file_unrelated_process(env: Env) -> None:
    env.sleeper("web")
    decoy = env.decoy()
    env.run.mkdir()
    (env.run / "web.pid").write_text(f"{decoy.pid}\n")
    res = assert_ok(env.sc("status", "web"), 1)
    assert "dead" in res.stdout and "left alone" in res.stdout
    res = assert_ok(env.sc("stop", "web"))
    assert "not running" in res.stdout and "left alone" in res.stdout
    assert decoy.poll() is None and alive(decoy.pid)
    assert not (env.run / "web.pid").exists()  # the forged file is cleaned


def test_pid_file_naming_init_servicectl_or_caller(env: Env) -> None:
    env.sleeper("web")
    env.run.mkdir()
    for pid in (1, os.getpid()):  # init; the test process is servicectl's caller
        (env.run / "web.pid").write_text(f"{pid}\n")
        assert_ok(env.sc("status", "web"), 1)
        res = assert_ok(env.sc("stop", "web"))
        assert "left alone" in res.stdout
    assert alive(1)


def test_reused_pid_is_not_signalled(env: Env) -> None:
    """Same PID, different kernel start time: the recorded process is gone, the PID reused."""
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    state = json.loads((env.run / "web.state").read_text())
    assert_ok(env.sc("stop", "web"))
    decoy = env.decoy()
    # Rewrite what servicectl recorded as if its process had had the decoy's PID.
    state["pid"] = decoy.pid
    (env.run / "web.state").write_text(json.dumps(state))
    (env.run / "web.state").chmod(0o644)
    (env.run / "web.pid").write_text(f"{decoy.pid}\n")
    res = assert_ok(env.sc("status", "web"), 1)
    assert "now belongs to another process" in res.stdout
    assert_ok(env.sc("stop", "web"))
    assert_ok(env.sc("restart", "web"))
    assert alive(decoy.pid) and decoy.poll() is None
    assert env.pid("web") != decoy.pid


def test_same_executable_other_user_or_program_not_adopted(env: Env) -> None:
    """A PID file without a record is trusted only for the service's own executable."""
    env.write("web", {"command": "sleep 300", "start_grace": 0.1})
    decoy = subprocess.Popen([PY, "-c", "import time; time.sleep(300)"])
    env.decoys.append(decoy)  # type: ignore[arg-type]
    env.run.mkdir()
    (env.run / "web.pid").write_text(f"{decoy.pid}\n")
    res = assert_ok(env.sc("stop", "web"))
    assert "not sleep" in res.stdout or "runs" in res.stdout
    assert alive(decoy.pid)
    # The real program with no record (e.g. started by an old init script) is recognised.
    real = subprocess.Popen(["sleep", "300"], start_new_session=True)
    env.decoys.append(real)  # type: ignore[arg-type]
    (env.run / "web.pid").write_text(f"{real.pid}\n")
    assert_ok(env.sc("status", "web"), 0)
    res = assert_ok(env.sc("stop", "web"))
    assert "stopped after TERM" in res.stdout
    assert real.wait(5) == -signal.SIGTERM


def test_zombie_is_not_running(env: Env) -> None:
    env.write("web", {"command": "sleep 300"})
    z = subprocess.Popen(["sleep", "300"])
    env.decoys.append(z)  # type: ignore[arg-type]
    os.kill(z.pid, signal.SIGKILL)
    wait_for(lambda: proc_state(z.pid) == "Z", what="zombie")  # not reaped: we are its parent
    env.run.mkdir()
    (env.run / "web.pid").write_text(f"{z.pid}\n")
    assert_ok(env.sc("status", "web"), 1)
    res = assert_ok(env.sc("stop", "web"))
    assert "zombie" in res.stdout


def test_symlinked_and_non_regular_pid_files(env: Env) -> None:
    env.sleeper("web")
    decoy = env.decoy()
    victim = env.root / "victim"
    victim.write_text(f"{decoy.pid}\n")
    env.run.mkdir()
    (env.run / "web.pid").symlink_to(victim)
    res = assert_ok(env.sc("status", "web"), 1)
    assert "symlink" in res.stdout
    res = assert_ok(env.sc("stop", "web"))
    assert "symlink" in res.stdout and decoy.poll() is None
    # start replaces the link itself; the file it pointed to is untouched
    (env.run / "web.pid").symlink_to(victim)
    assert_ok(env.sc("start", "web"))
    assert not (env.run / "web.pid").is_symlink()
    assert victim.read_text() == f"{decoy.pid}\n"
    assert_ok(env.sc("stop", "web"))
    (env.run / "web.pid").mkdir()
    res = assert_ok(env.sc("status", "web"), 1)
    assert "not a regular file" in res.stdout
    os.mkfifo(env.run / "x.pid")
    env.sleeper("x")
    res = assert_ok(env.sc("stop", "x"))  # a FIFO is never opened for reading (no hang)
    assert "not a regular file" in res.stdout


def test_empty_and_garbage_pid_files_do_not_block_start(env: Env) -> None:
    env.sleeper("web")
    env.run.mkdir()
    for content in ("", "garbage\n", "12 34\n", "-5\n", "99999999999\n"):
        (env.run / "web.pid").write_text(content)
        assert_ok(env.sc("status", "web"), 1)
        assert_ok(env.sc("start", "web"))
        assert alive(env.pid("web"))
        assert_ok(env.sc("stop", "web"))


def test_group_signalled_only_when_it_is_the_services_own(env: Env) -> None:
    """A PID file (no record) naming a process in someone else's group: only that process is
    signalled, never its group (here: the test's own group, with a sibling decoy in it)."""
    env.write("web", {"command": "sleep 300", "kill_mode": "group"})
    member = subprocess.Popen(["sleep", "300"])  # same group as pytest
    sibling = subprocess.Popen(["sleep", "300"])
    env.decoys += [member, sibling]  # type: ignore[list-item]
    assert os.getpgid(member.pid) == os.getpgrp()
    env.run.mkdir()
    (env.run / "web.pid").write_text(f"{member.pid}\n")
    res = assert_ok(env.sc("stop", "web"))
    assert "stopped" in res.stdout
    assert member.wait(5) == -signal.SIGTERM
    assert sibling.poll() is None  # the group was not signalled; pytest is alive too


def test_config_drift_uses_what_was_recorded(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    # Change pid_file, command and user while it runs.
    env.write("web", {"command": "sleep 1000", "pid_file": str(env.root / "elsewhere.pid")})
    assert_ok(env.sc("status", "web"), 0)
    res = assert_ok(env.sc("stop", "web"))
    assert "stopped" in res.stdout and not alive(pid)
    assert env.files() == []


# -- 2. One instance ---------------------------------------------------------------------------


def test_twenty_concurrent_starts_give_one_instance(env: Env) -> None:
    marker = env.root / "marker"
    env.sleeper("web", environment={"MARKER": str(marker)})
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: env.sc("start", "web"), range(20)))
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results]
    started = [r for r in results if "started" in r.stdout]
    assert len(started) == 1
    assert len(tagged_pids(env.tag)) == 1
    assert marker.read_text().count("started") == 1


def test_concurrent_start_and_stop_are_serialized(env: Env) -> None:
    env.sleeper("web")
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: env.sc("start" if i % 2 else "stop", "web"), range(10)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    running = tagged_pids(env.tag)
    code = env.sc("status", "web").returncode
    assert (len(running), code) in ((1, 0), (0, 3))


# -- 3. Graceful stop --------------------------------------------------------------------------


def test_term_ignoring_service_is_killed_after_timeout(env: Env) -> None:
    env.write(
        "stub",
        {"command": [PY, str(DAEMONS / "stubborn.py")], "stop_timeout": 0.3, "start_grace": 0.2},
    )
    assert_ok(env.sc("start", "stub"))
    pid = env.pid("stub")
    t0 = time.monotonic()
    res = assert_ok(env.sc("stop", "stub"))
    elapsed = time.monotonic() - t0
    assert res.stdout.strip() == "stub: killed after 0.3 s"
    assert not alive(pid) and elapsed < 5
    assert env.files() == []


def test_stop_signal_option(env: Env) -> None:
    env.write(
        "stub",
        {
            "command": [PY, str(DAEMONS / "stubborn.py")],
            "stop_signal": "SIGUSR1",
            "start_grace": 0.2,
        },
    )
    assert_ok(env.sc("start", "stub"))
    res = assert_ok(env.sc("stop", "stub"))
    assert "stopped after USR1" in res.stdout


def test_stopped_process_gets_cont(env: Env) -> None:
    env.sleeper("web", stop_timeout=10)
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: proc_state(pid) == "T", what="stopped state")
    t0 = time.monotonic()
    res = assert_ok(env.sc("stop", "web"))
    assert "stopped after TERM" in res.stdout and time.monotonic() - t0 < 5


def test_group_mode_stops_children(env: Env) -> None:
    children = env.root / "children"
    env.write(
        "fam",
        {
            "command": [PY, str(DAEMONS / "parent_with_children.py"), "--children", "3"],
            "environment": {"CHILDREN_FILE": str(children)},
            "start_grace": 0.2,
        },
    )
    assert_ok(env.sc("start", "fam"))
    wait_for(children.exists, what="children file")
    kids = [int(x) for x in children.read_text().split()]
    assert len(kids) == 3 and all(alive(k) for k in kids)
    assert_ok(env.sc("stop", "fam"))
    assert not any(alive(k) for k in kids)
    assert tagged_pids(env.tag) == []


def test_group_mode_kills_term_ignoring_children(env: Env) -> None:
    children = env.root / "children"
    env.write(
        "fam",
        {
            "command": [PY, str(DAEMONS / "parent_with_children.py"), "--children-ignore-term"],
            "stop_timeout": 0.3,
            "environment": {"CHILDREN_FILE": str(children)},
            "start_grace": 0.2,
        },
    )
    assert_ok(env.sc("start", "fam"))
    wait_for(children.exists, what="children file")
    kids = [int(x) for x in children.read_text().split()]
    res = assert_ok(env.sc("stop", "fam"))
    assert "killed after 0.3 s" in res.stdout
    assert not any(alive(k) for k in kids)


def test_process_mode_leaves_children(env: Env) -> None:
    children = env.root / "children"
    env.write(
        "fam",
        {
            "command": [PY, str(DAEMONS / "parent_with_children.py")],
            "kill_mode": "process",
            "environment": {"CHILDREN_FILE": str(children)},
            "start_grace": 0.2,
        },
    )
    assert_ok(env.sc("start", "fam"))
    wait_for(children.exists, what="children file")
    kids = [int(x) for x in children.read_text().split()]
    assert_ok(env.sc("stop", "fam"))
    assert all(alive(k) for k in kids)  # as configured; the fixture kills them


def test_forking_stop_does_not_wait_for_init_to_reap(env: Env) -> None:
    """The daemon's parent is init (or a subreaper) which may reap late: a zombie is gone."""
    env.forking("fd")
    assert_ok(env.sc("start", "fd"))
    pid = env.pid("fd", env.run / "fd.daemon.pid")
    res = assert_ok(env.sc("stop", "fd"))
    assert not alive(pid)
    # The stop's own measure (signal to confirmed exit); init here reaps orphans only every
    # ~1.2 s, so waiting for the reap would show up as a second or more.
    reported = float(re.search(r"after TERM \(([0-9.]+) s\)", res.stdout).group(1))
    assert reported < 1.0, f"stop took {reported:.2f} s: did it wait for the reap?"


# -- 4. Stale state ----------------------------------------------------------------------------


def test_stale_pid_file_reported_and_removed(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid))
    row = env.status_json("web")["web"]
    assert row["state"] == "dead" and row["exit_code"] == 1
    res = assert_ok(env.sc("stop", "web"))
    assert "removed the stale PID file" in res.stdout
    assert env.files() == []
    assert_ok(env.sc("status", "web"), 3)


def test_deleted_pid_file_does_not_lose_the_service(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    (env.run / "web.pid").unlink()
    res = assert_ok(env.sc("status", "web"), 0)
    assert "missing" in res.stdout
    assert_ok(env.sc("stop", "web"))
    assert not alive(pid)


# -- 5. Failures leave nothing -------------------------------------------------------------------


def test_crash_in_grace_leaves_nothing(env: Env) -> None:
    env.sleeper(
        "crash",
        "--print",
        "boom-line",
        "--exit-code",
        "2",
        "--after",
        "0.1",
        start_grace=20,
    )
    t0 = time.monotonic()
    res = assert_ok(env.sc("start", "crash"), 1)
    assert time.monotonic() - t0 < 10  # fails at the death, not at the end of the grace
    assert "exited with status 2" in res.stderr and "boom-line" in res.stderr
    assert env.files() == [] and tagged_pids(env.tag) == []


def test_crash_of_process_with_children_leaves_no_child(env: Env) -> None:
    script = env.services / "fam.sh"
    script.write_text("#!/bin/sh\nsleep 300 &\nsleep 300 &\nsleep 0.1\nexit 4\n")
    script.chmod(0o755)
    env.write("fam", {"command": "./fam.sh", "start_grace": 2})
    assert_ok(env.sc("start", "fam"), 1)
    assert tagged_pids(env.tag) == []


# -- 6. Interrupted safely ----------------------------------------------------------------------


def test_sigterm_during_start_leaves_consistent_state(env: Env) -> None:
    env.sleeper("slow", start_grace=30)
    p = env.popen("start", "slow")
    wait_for(lambda: (env.run / "slow.pid").exists(), what="pid file")
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=10)
    assert p.returncode != 0 and "interrupted" in err
    assert tagged_pids(env.tag) == []
    assert env.files() == []
    assert_ok(env.sc("status", "slow"), 3)


def test_sigint_during_long_stop_then_next_stop_works(env: Env) -> None:
    env.write(
        "stub",
        {"command": [PY, str(DAEMONS / "stubborn.py")], "stop_timeout": 30, "start_grace": 0.2},
    )
    assert_ok(env.sc("start", "stub"))
    pid = env.pid("stub")
    p = env.popen("stop", "stub")
    wait_for(
        lambda: (
            any(c.pid == p.pid for c in psutil.Process().children()) and lock_held(env.run, "stub")
        ),
        what="stop in progress",
    )
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    assert p.returncode == 130
    assert alive(pid)
    assert_ok(env.sc("status", "stub"), 0)  # still running, still tracked
    env.write("stub", {"command": [PY, str(DAEMONS / "stubborn.py")], "stop_timeout": 0.2})
    assert_ok(env.sc("stop", "stub"))
    assert not alive(pid) and env.files() == []


def test_sigkill_of_servicectl_mid_start_then_recovery(env: Env) -> None:
    env.sleeper("slow", start_grace=30)
    p = env.popen("start", "slow")
    wait_for(lambda: (env.run / "slow.pid").exists(), what="pid file")
    pid = env.pid("slow")
    p.kill()
    p.communicate(timeout=10)
    # The service was recorded before the wait: it is tracked, and the lock is free.
    assert_ok(env.sc("status", "slow"), 0)
    assert_ok(env.sc("start", "slow"))  # already running
    assert_ok(env.sc("stop", "slow"))
    assert not alive(pid) and env.files() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a service as user nobody")
def test_user_service_cannot_adopt_root_processes(env: Env) -> None:
    """A forking service running as nobody writes the PID of init, then of a root process,
    into its own PID file: servicectl refuses both and never signals them."""
    shared = Path(tempfile.mkdtemp(prefix="servicectl-test-evil-"))
    try:
        shared.chmod(0o777)
        decoy = env.decoy()  # a root process, not started by servicectl
        for victim, words in (
            (1, "PID 1 (init) is never a service"),
            (decoy.pid, "was not started by this service"),
        ):
            pid_file = shared / "evil.pid"
            env.write(
                "evil",
                {
                    "type": "forking",
                    "user": "nobody",
                    "command": ["/bin/sh", "-c", f"echo {victim} > {pid_file}"],
                    "pid_file": str(pid_file),
                    "start_timeout": 0.5,
                },
            )
            res = assert_ok(env.sc("start", "evil"), 1)
            assert words in res.stderr, res.stderr
            pid_file.write_text(f"{victim}\n")  # and behind servicectl's back
            res = assert_ok(env.sc("stop", "evil"))
            assert "left alone" in res.stdout
            assert alive(victim)
        assert decoy.poll() is None
    finally:
        shutil.rmtree(shared)


# -- added with the model test (tests/test_model.py) ------------------------------------------


def test_interpreter_process_needs_the_services_arguments(env: Env) -> None:
    """Without a record, a python (or sh...) process is the service only if it runs the
    service's script with its arguments: the same interpreter and user prove nothing."""
    env.sleeper("web")
    other = subprocess.Popen([PY, str(DAEMONS / "sleeper.py"), "--hup"])
    env.decoys.append(other)  # type: ignore[arg-type]
    env.run.mkdir()
    (env.run / "web.pid").write_text(f"{other.pid}\n")
    res = assert_ok(env.sc("stop", "web"))
    assert "not the service's program" in res.stdout and "left alone" in res.stdout
    assert alive(other.pid)
    # The service's own command line, started by something else, is recognised.
    own = subprocess.Popen([PY, str(DAEMONS / "sleeper.py")], start_new_session=True)
    env.decoys.append(own)  # type: ignore[arg-type]
    wait_for(lambda: catches(own.pid), what="the sleeper's SIGTERM handler")
    (env.run / "web.pid").write_text(f"{own.pid}\n")
    assert_ok(env.sc("status", "web"), 0)
    assert "stopped after TERM" in assert_ok(env.sc("stop", "web")).stdout
    assert own.wait(5) == 0


def test_killed_main_process_leaves_no_children_behind(env: Env) -> None:
    """kill -9 of the main process behind servicectl's back: its children, still in the
    service's own group, are stopped by the next stop (or start), and said so. (They are
    proven the service's because they ran when servicectl confirmed the start: see
    the R-PROC-3 tests in tests/test_attacks_processes.py for the ones it cannot prove.)"""
    children = env.root / "children"
    env.write(
        "fam",
        {
            "command": [PY, str(DAEMONS / "parent_with_children.py"), "--children", "2"],
            "environment": {"CHILDREN_FILE": str(children)},
            "ready": {"file": str(children)},
        },
    )
    decoy = env.decoy()
    for action in ("stop", "start"):
        children.unlink(missing_ok=True)
        assert_ok(env.sc("start", "fam"))
        main = env.pid("fam")
        kids = [int(x) for x in children.read_text().split()]
        os.kill(main, signal.SIGKILL)
        wait_for(lambda m=main: not alive(m), what="main process to die")
        assert all(alive(k) for k in kids)
        assert_ok(env.sc("status", "fam"), 1)
        res = assert_ok(env.sc(action, "fam"))
        assert f"2 leftover processes of its {tracked_by()}" in res.stdout
        assert not any(alive(k) for k in kids)
    assert_ok(env.sc("stop", "fam"))
    assert tagged_pids(env.tag) == [decoy.pid]


def test_forking_daemon_handover_is_followed_but_not_a_lookalike(env: Env) -> None:
    """A daemon that hands over to a new process of its own session (nginx's binary upgrade)
    and rewrites its PID file is followed; a lookalike started by hand (same program, user and
    arguments, another session) written into the PID file is not."""
    env.forking("fd")
    assert_ok(env.sc("start", "fd"))
    old = env.pid("fd", env.run / "fd.daemon.pid")
    os.kill(old, signal.SIGUSR2)
    wait_for(lambda: env.pid("fd", env.run / "fd.daemon.pid") != old, what="the handover")
    new = env.pid("fd", env.run / "fd.daemon.pid")
    wait_for(lambda: not alive(old), what="the old daemon to exit")
    res = assert_ok(env.sc("status", "--json", "fd"), 0)
    assert json.loads(res.stdout)[0]["pid"] == new
    assert_ok(env.sc("stop", "fd"))
    assert not alive(new)

    # The lookalike: the very same command line, run by hand after the daemon was killed; it
    # writes its PID into the service's PID file itself.
    assert_ok(env.sc("start", "fd"))
    daemon = env.pid("fd", env.run / "fd.daemon.pid")
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not alive(daemon), what="the daemon to die")
    command = yaml.safe_load((env.services / "fd.yaml").read_text())["command"]
    subprocess.run(
        command, env=dict(os.environ, SERVICECTL_TEST_TAG=env.tag), timeout=30, check=True
    )
    lookalike = env.pid("fd", env.run / "fd.daemon.pid")
    assert lookalike != daemon and alive(lookalike)
    res = assert_ok(env.sc("status", "fd"), 1)
    assert "dead" in res.stdout
    assert_ok(env.sc("stop", "fd"))
    assert alive(lookalike)
    os.kill(lookalike, signal.SIGTERM)
    wait_for(lambda: not alive(lookalike), what="the lookalike to exit")


def test_gate_child_never_runs_the_program_without_servicectl(tmp_path: Path) -> None:
    """The gated spawn: if servicectl dies (the gate closes) before recording the child, the
    child exits without ever running the program; once opened, it runs it."""
    from servicectl.definitions.catalog import load_catalog
    from servicectl.paths import resolve_dirs
    from servicectl.system.spawn import GATE_EXIT, Gate, build_environment, resolve_account, spawn

    svc_dir = tmp_path / "svc"
    svc_dir.mkdir()
    marker = tmp_path / "ran"
    (svc_dir / "m.yaml").write_text(
        json.dumps({"command": ["/usr/bin/touch", str(marker)], "stdout": "null"})
    )
    dirs = resolve_dirs(svc_dir, tmp_path / "run", tmp_path / "log")
    svc = load_catalog(dirs, use_cache=False).services["m"]
    account = resolve_account(svc)
    environ = build_environment(svc, account)
    for opened in (False, True):
        gate = Gate()
        child = spawn(svc, account, environ, "/usr/bin/touch", gate=gate)
        if opened:
            gate.open()
        gate.close()
        code = child.wait(10)
        assert (code, marker.exists()) == ((0, True) if opened else (GATE_EXIT, False))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a service as user nobody")
def test_program_the_user_cannot_execute_is_exit_5(env: Env) -> None:
    """Root can reach the program but the service's user cannot: exit 5, the log says why,
    nothing is left."""
    prog = env.root / "private" / "prog.sh"
    prog.parent.mkdir(mode=0o700)
    prog.write_text("#!/bin/sh\nexec sleep 300\n")
    prog.chmod(0o755)
    env.write("priv", {"command": [str(prog)], "user": "nobody", "start_grace": 0.2})
    res = assert_ok(env.sc("start", "priv"), 5)
    assert "cannot execute" in res.stderr and "nobody" in res.stderr
    assert "Permission denied" in res.stderr  # the log tail
    assert env.files() == [] and tagged_pids(env.tag) == []


def test_start_records_a_running_instance_it_had_no_record_of(env: Env) -> None:
    """A daemon identified only by its PID file (servicectl was killed before recording it)
    is recorded by the next start, so losing the PID file afterwards loses nothing."""
    env.forking("fd")
    command = yaml.safe_load((env.services / "fd.yaml").read_text())["command"]
    tagged = dict(os.environ, SERVICECTL_TEST_TAG=env.tag)
    env.run.mkdir()
    env.log.mkdir()
    subprocess.run(command, env=tagged, timeout=30, check=True)  # started by something else
    daemon = env.pid("fd", env.run / "fd.daemon.pid")
    res = assert_ok(env.sc("start", "fd"))
    assert f"already running (pid {daemon}); servicectl had no record of it" in res.stdout
    (env.run / "fd.daemon.pid").unlink()
    (env.run / "fd.daemon.pid").symlink_to("/dev/null")
    assert json.loads(assert_ok(env.sc("status", "--json", "fd")).stdout)[0]["pid"] == daemon
    assert "stopped after TERM" in assert_ok(env.sc("stop", "fd")).stdout
    assert not alive(daemon)


def test_pid_file_naming_a_thread_is_not_trusted(env: Env) -> None:
    """A thread ID is not a process: kill() on it would signal its whole process. A PID file
    naming a thread of a lookalike (same program, arguments and user) is refused."""
    env.write(
        "th",
        {
            "command": [
                PY,
                "-c",
                "import threading, time; "
                "threading.Thread(target=time.sleep, args=(300,)).start(); time.sleep(300)",
            ],
            "start_grace": 0.1,
        },
    )
    command = yaml.safe_load((env.services / "th.yaml").read_text())["command"]
    look = subprocess.Popen(command, env=dict(os.environ, SERVICECTL_TEST_TAG=env.tag))
    env.decoys.append(look)  # type: ignore[arg-type]
    tids = wait_for(
        lambda: [int(t) for t in os.listdir(f"/proc/{look.pid}/task") if int(t) != look.pid]
    )
    env.run.mkdir()
    (env.run / "th.pid").write_text(f"{tids[0]}\n")
    res = assert_ok(env.sc("status", "th"), 1)
    assert f"is a thread of process {look.pid}" in res.stdout
    assert_ok(env.sc("stop", "th"))
    assert look.poll() is None and alive(look.pid)
    # The lookalike itself (no record) is recognised: same program, arguments and user.
    (env.run / "th.pid").write_text(f"{look.pid}\n")
    assert_ok(env.sc("status", "th"), 0)


def test_sigkill_mid_forking_launch_then_start_gives_one_daemon(env: Env) -> None:
    """servicectl killed while a forking launcher waits for its daemon's (late) PID file: the
    next start waits for that launch instead of launching a second daemon, and records it."""
    env.forking("fd", "--pidfile-delay", "1.0")
    p = env.popen("start", "fd")
    state = env.run / "fd.state"
    wait_for(lambda: state.exists() and '"launching"' in state.read_text(), what="the launch")
    p.kill()
    p.communicate()
    res = assert_ok(env.sc("status", "fd"), 0)
    assert "starting" in res.stdout and "the launcher still runs" in res.stdout
    res = assert_ok(env.sc("start", "fd"))
    daemon = env.pid("fd", env.run / "fd.daemon.pid")
    assert f"already running (pid {daemon}); servicectl had no record of it" in res.stdout
    daemons = [
        p for p in tagged_pids(env.tag) if "forkingd" in " ".join(psutil.Process(p).cmdline())
    ]
    assert daemons == [daemon]
    assert "stopped after TERM" in assert_ok(env.sc("stop", "fd")).stdout
    assert tagged_pids(env.tag) == []
