"""Every process of a service, for its whole life: the cgroup servicectl gives each service
(docs/design.md "Tracking"; docs/security.md R-CG-1..3), with real processes that try to leave
it (setsid and a double fork, a re-parented daemon, a master's workers in sessions of their
own, a process that moves itself), and services that outgrow their limits (a memory hog at
memory_max, a fork bomb at pids_max).

Everything is checked from the outside: /proc, the cgroup's own files, the real CLI's output
and exit codes. Tests that need a cgroup v2 hierarchy servicectl can write, or a v1 memory or
pids hierarchy, skip with the reason where the kernel lacks it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from pathlib import Path
from shutil import which as shutil_which
from typing import Any

import pytest
import yaml
from conftest import DAEMONS, PY, ROOT, Env, alive, assert_ok, cgroup_dirs, wait_for
from faultkit import reachable_copy, reachable_dir

from servicectl.system import cgroup, cgroup_limits

ESCAPER = DAEMONS / "escaper.py"
FOUND = cgroup.hierarchies()
needs_v2 = pytest.mark.skipif(not FOUND.top, reason=f"no writable cgroup v2: {FOUND.why}")
NO_CGROUPS = {"SERVICECTL_CGROUP_V2": "none", "SERVICECTL_CGROUP_V1": "none"}


def limit_available(controller: str) -> bool:
    top = FOUND.top
    return bool(top and cgroup_limits.v2_offers(top, controller)) or controller in FOUND.v1


def escaper(env: Env, name: str, *args: str, **extra: Any) -> Path:
    """A service running tests/daemons/escaper.py ARGS; ready once $PIDS_FILE is written.
    Returns that file."""
    pids = env.root / f"{name}.pids"
    spec: dict[str, Any] = {
        "command": [PY, str(ESCAPER), *args],
        "environment": {"PIDS_FILE": str(pids)},
        "ready": {"file": str(pids)},
        "start_timeout": 10,
        "stop_timeout": 5,
    }
    if "--forking" in args:
        pid_file = env.root / f"{name}.daemon.pid"
        spec.update(type="forking", pid_file=str(pid_file))
        spec["environment"]["PID_FILE"] = str(pid_file)
    environment = {**spec["environment"], **extra.pop("environment", {})}
    spec.update(extra, environment=environment)
    env.write(name, spec)
    return pids


def pids_in(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()]


def record(env: Env, name: str) -> dict[str, Any]:
    return dict(json.loads((env.run / f"{name}.state").read_text()))


def members(path: str) -> list[int]:
    return cgroup.members(path)


def main_pid(env: Env, name: str) -> int:
    return int(record(env, name)["pid"])


def own_cgroups(env: Env) -> list[Path]:
    """What is left of this run dir's cgroups (v2 and v1)."""
    return cgroup_dirs(env.run)


# -- Tracking: every process, wherever it goes ------------------------------------------------


@needs_v2
@pytest.mark.parametrize("how", ["setsid", "reparent"])
def test_escapers_are_listed_and_stopped(env: Env, how: str) -> None:
    """A grandchild in a session of its own (setsid and a double fork), or re-parented away
    from the service: status lists it, stop ends it, and the cgroup is removed."""
    pids = escaper(env, "esc", how)
    assert_ok(env.sc("start", "esc"))
    main, (grandchild,) = main_pid(env, "esc"), pids_in(pids)
    rec = record(env, "esc")
    path = rec["cgroup"]
    assert path.endswith(f"/servicectl/{cgroup.run_id(str(env.run))}/esc.service")
    assert {main, grandchild} <= set(members(path))
    if how == "setsid":
        assert os.getsid(grandchild) != os.getsid(main)  # no process group reaches it
    res = assert_ok(env.sc("status", "esc"))
    assert f"Tracking: cgroup {path}" in res.stdout
    assert f"{grandchild} {PY}" in res.stdout or f"{grandchild} " in res.stdout
    res = assert_ok(env.sc("stop", "esc"))
    assert "stopped after TERM" in res.stdout
    assert not alive(main) and not alive(grandchild)
    assert not os.path.exists(path) and own_cgroups(env) == []


@needs_v2
def test_status_follows_a_worker_moved_out_of_the_cgroup(env: Env) -> None:
    """status of a service in its cgroup reads its cgroup's members and their descendants
    alone (not every process on the machine): a worker root moved to another cgroup is still
    the master's child, and still listed."""
    pids = escaper(env, "mw", "workers", "2")
    assert_ok(env.sc("start", "mw"))
    main, workers = main_pid(env, "mw"), pids_in(pids)
    elsewhere = Path(FOUND.top) / f"servicectl-test-{env.tag[:8]}"
    elsewhere.mkdir()
    try:
        cgroup.join(str(elsewhere), workers[0])
        assert workers[0] not in members(record(env, "mw")["cgroup"])
        res = assert_ok(env.sc("status", "mw"))
        for pid in (main, *workers):
            assert f"{pid} " in res.stdout.split("Processes:", 1)[1], res.stdout
        assert "3 processes" in res.stdout, res.stdout
    finally:
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: not alive(workers[0]), what="the moved worker to end")
        assert_ok(env.sc("stop", "mw"))
        elsewhere.rmdir()


@needs_v2
def test_a_program_is_in_its_cgroup_before_it_runs(env: Env) -> None:
    """Joined at the gate, before exec: the program's first look at /proc/self/cgroup already
    shows its service's cgroup (simple and forking alike)."""
    seen = env.root / "seen"
    script = f"import shutil; shutil.copyfile('/proc/self/cgroup', {str(seen)!r})\n"
    script += "import signal\nwhile True: signal.pause()\n"
    env.write("first", {"command": [PY, "-c", script], "ready": {"file": str(seen)}})
    assert_ok(env.sc("start", "first"))
    rel = record(env, "first")["cgroup"].split("/servicectl/", 1)[1]
    assert f"0::/servicectl/{rel}" in seen.read_text() or seen.read_text().rstrip().endswith(rel)
    assert_ok(env.sc("stop", "first"))


@needs_v2
def test_master_with_workers_killed_with_9(env: Env) -> None:
    """apache's case: a forking master whose workers run in sessions of their own. kill -9 of
    the master: status says dead (1), never stopped, names the workers and lists them; start
    ends them first and says so; after another kill -9, stop ends them and says so."""
    decoy = env.decoy()
    pids = escaper(env, "apache", "--forking", "workers", "2")
    for action in ("start", "stop"):
        pids.unlink(missing_ok=True)
        assert_ok(env.sc("start", "apache"))
        master, workers = main_pid(env, "apache"), pids_in(pids)
        assert all(os.getsid(w) == w for w in workers)  # no process group reaches them
        os.kill(master, signal.SIGKILL)
        wait_for(lambda m=master: not alive(m), what="the master to die")
        res = assert_ok(env.sc("status", "apache"), 1)
        said = f"main process {master} exited; 2 processes remain: {workers[0]}, {workers[1]}"
        assert said in res.stdout and "State: dead" in res.stdout
        assert all(f"{w} " in res.stdout.split("Remaining:", 1)[1] for w in workers)
        row = env.status_json("apache")["apache"]
        assert row["state"] == "dead" and row["exit_code"] == 1
        assert row["remaining"] == sorted(workers)
        pids.unlink()
        res = assert_ok(env.sc(action, "apache"))
        assert "2 leftover processes of its cgroup" in res.stdout, res.stdout
        assert not any(alive(w) for w in workers)
        if action == "start":
            assert_ok(env.sc("stop", "apache"))
    assert own_cgroups(env) == []
    assert alive(decoy.pid)


@needs_v2
def test_respawn_first_ends_what_the_crashed_run_left(env: Env) -> None:
    """A supervised service whose main process is killed: what it left in its cgroup (a worker
    in a session of its own) is ended before the respawn runs."""
    pids = escaper(env, "sup", "workers", "1", restart="on-failure", restart_delay=0.1)
    assert_ok(env.sc("start", "sup"))
    main, (worker,) = main_pid(env, "sup"), pids_in(pids)
    pids.unlink()
    os.kill(main, signal.SIGKILL)
    wait_for(lambda: pids.exists() and main_pid(env, "sup") != main, what="the respawn")
    assert not alive(worker)
    path = record(env, "sup")["cgroup"]
    assert set(members(path)) == {main_pid(env, "sup"), *pids_in(pids)}
    assert_ok(env.sc("stop", "sup"))
    assert own_cgroups(env) == []


@needs_v2
def test_kill_mode_process_leaves_the_rest_in_its_cgroup(env: Env) -> None:
    """kill_mode: process, as systemd's KillMode=process: stop ends the main process only, the
    rest stays (still in the cgroup, still listed); the next start keeps them and says so."""
    pids = escaper(env, "kmp", "workers", "1", kill_mode="process")
    assert_ok(env.sc("start", "kmp"))
    (worker,) = pids_in(pids)
    assert_ok(env.sc("stop", "kmp"))
    assert alive(worker)
    res = assert_ok(env.sc("status", "kmp"), 3)  # stopped, as asked, and what runs on is said
    assert "kill_mode: process): " + str(worker) in res.stdout
    pids.unlink()
    res = assert_ok(env.sc("start", "kmp"))
    assert f"its previous run left stay in its cgroup (kill_mode: process): PID {worker}" in (
        res.stdout
    )
    assert worker in members(record(env, "kmp")["cgroup"])


# -- What a service cannot do to its cgroup (R-CG-1), and what a root one can (detected) -----


@needs_v2
def test_R_CG_1_a_service_user_cannot_leave_nor_write_its_cgroup(env: Env, user: Any) -> None:
    """A service of an unprivileged user tries to move itself to the root of the hierarchy:
    the kernel refuses (its cgroup's files are root's), it stays in its cgroup, and cannot
    make a cgroup beneath it either."""
    with reachable_dir() as d:
        script = reachable_copy(ESCAPER, d)
        out = d / "pids"
        os.chmod(d, 0o777)
        env.write(
            "mover",
            {
                "command": ["/usr/bin/python3", str(script), "moveto", FOUND.top],
                "user": user.name,
                "environment": {"PIDS_FILE": str(out)},
                "ready": {"file": str(out)},
            },
        )
        assert_ok(env.sc("start", "mover"))
        assert out.read_text().startswith("refused: Permission denied")
        path = record(env, "mover")["cgroup"]
        assert main_pid(env, "mover") in members(path)
        st = os.stat(path)
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o755)
        for name in ("cgroup.procs", "cgroup.kill", "cgroup.subtree_control"):
            assert os.stat(os.path.join(path, name)).st_uid == 0
        probe = subprocess.run(
            [
                "setpriv",
                f"--reuid={user.uid}",
                f"--regid={user.gid}",
                "--clear-groups",
                "mkdir",
                os.path.join(path, "sub"),
            ],
            capture_output=True,
            text=True,
        )
        assert probe.returncode != 0 and not os.path.exists(os.path.join(path, "sub"))
        assert_ok(env.sc("stop", "mover"))
    assert own_cgroups(env) == []


@needs_v2
def test_a_root_service_that_moves_itself_out_is_detected_and_stopped(env: Env) -> None:
    """Root can move anything anywhere: a root service that moves itself to the root of the
    hierarchy is reported by status (where it went) and still stopped by its PID."""
    pids = escaper(env, "rootmover", "moveto", FOUND.top)
    assert_ok(env.sc("start", "rootmover"))
    assert pids.read_text().strip() == "moved"
    main = main_pid(env, "rootmover")
    res = assert_ok(env.sc("status", "rootmover"))
    assert f"process {main} has left its cgroup" in res.stdout
    assert_ok(env.sc("stop", "rootmover"))
    assert not alive(main) and own_cgroups(env) == []


@needs_v2
def test_R_CG_2_a_record_naming_another_cgroup_is_never_killed(env: Env) -> None:
    """A record whose cgroup is not servicectl/<run id>/<NAME>.service (a corrupt or hostile
    record naming a cgroup of others) is not used: nothing in that cgroup gets a signal."""
    decoy = env.decoy()
    other = Path(FOUND.top) / f"servicectl-test-{env.tag[:8]}"
    other.mkdir()
    try:
        cgroup.join(str(other), decoy.pid)
        pids = escaper(env, "rec", "workers", "1")
        assert_ok(env.sc("start", "rec"))
        state = env.run / "rec.state"
        rec = json.loads(state.read_text())
        os.kill(rec["pid"], signal.SIGKILL)
        wait_for(lambda: not alive(rec["pid"]), what="the main process to die")
        worker = pids_in(pids)[0]
        rec["cgroup"] = str(other)
        state.write_text(json.dumps(rec))
        row = env.status_json("rec")["rec"]
        assert "remaining" not in row and row["state"] == "dead"
        assert_ok(env.sc("stop", "rec"))
        assert alive(decoy.pid) and decoy.pid in members(str(other))
        os.kill(worker, signal.SIGKILL)
    finally:
        decoy.kill()
        decoy.wait()
        cgroup.wait_empty(str(other), 5)
        other.rmdir()


# -- Limits ------------------------------------------------------------------------------------


@pytest.mark.skipif(not limit_available("memory"), reason="no cgroup memory controller here")
@pytest.mark.parametrize("restart", ["no", "on-failure"])
def test_a_memory_hog_is_ended_at_memory_max_and_said(env: Env, restart: str) -> None:
    """A program that allocates without end is killed by the kernel at memory_max; status (and
    the supervisor's record) say why it ended."""
    env.write(
        "hog",
        {
            "command": [PY, str(ESCAPER), "hog"],
            "memory_max": "48M",
            "start_grace": 0,
            "restart": restart,
            "start_limit": {"burst": 1, "interval": 60},
            "restart_delay": 30,
        },
    )
    assert_ok(env.sc("start", "hog"))
    main = main_pid(env, "hog")
    wait_for(lambda: not alive(main), 30, "the hog to be killed")
    said = "killed by the kernel: out of memory at memory_max 48M"
    wait_for(lambda: said in env.sc("status", "hog").stdout, 10, "status to say the OOM kill")
    res = env.sc("status", "hog")
    assert res.returncode == 1
    if restart != "no":
        last = env.status_json("hog")["hog"].get("last_exit") or {}
        assert last.get("signal") == "KILL" and last.get("oom") == "48M", last
    assert said in assert_ok(env.sc("stop", "hog")).stdout
    assert own_cgroups(env) == []


@pytest.mark.skipif(not limit_available("pids"), reason="no cgroup pids controller here")
def test_a_fork_bomb_is_held_at_pids_max(env: Env) -> None:
    """A program that forks without end gets at most pids_max processes (itself included);
    stop ends them all."""
    pids = escaper(env, "bomb", "forkbomb", pids_max=12)
    assert_ok(env.sc("start", "bomb"))
    made = pids_in(pids)[0]
    assert made <= 11, made
    rec = record(env, "bomb")
    every = set(members(rec["cgroup"])) if rec["cgroup"] else set()
    assert len(every) <= 12 and main_pid(env, "bomb") in every | {main_pid(env, "bomb")}
    assert_ok(env.sc("stop", "bomb"))
    assert not any(alive(p) for p in every)
    assert own_cgroups(env) == []


def test_a_limit_without_its_controller_is_refused(env: Env) -> None:
    """Where no hierarchy offers a key's controller (here: no v1 hierarchies, and a v2 one
    without the controller, or none), check and start exit 6 naming the key and the
    controller; nothing is started. Simulated with the tests-only variables (R-CG-3)."""
    only_v2 = {"SERVICECTL_CGROUP_V1": "none"}
    env.sleeper("lim", memory_max="64M", pids_max=10, cpu_weight=50)
    for extra in (NO_CGROUPS, only_v2):
        if extra is only_v2 and (not FOUND.top or cgroup_limits.v2_offers(FOUND.top, "memory")):
            continue  # this machine's v2 hierarchy offers memory: nothing to simulate
        res = assert_ok(env.sc("check", "lim", extra_env=extra), 6)
        assert "lim.yaml: memory_max: cannot be applied" in res.stdout + res.stderr
        assert "no cgroup memory controller" in res.stdout + res.stderr
        res = assert_ok(env.sc("start", "lim", extra_env=extra), 6)
        assert "memory_max" in res.stderr and "memory controller" in res.stderr
        assert not (env.run / "lim.state").exists()
    assert own_cgroups(env) == []


@pytest.mark.skipif(
    not all(limit_available(c) for c in ("memory", "pids", "cpu")), reason="a controller lacks"
)
def test_limits_are_written_where_they_go(env: Env) -> None:
    """memory_max, pids_max and cpu_weight in the service's cgroups (v2 files, or v1
    memory.limit_in_bytes, pids.max, cpu.shares = weight * 1024 / 100); status shows the
    memory of all its processes beside the limit."""
    env.sleeper("lim", memory_max="64M", pids_max=10, cpu_weight=50)
    assert_ok(env.sc("start", "lim"))
    rec = record(env, "lim")
    paths = [rec["cgroup"], *rec["cgroups_v1"]]
    values = {}
    for path in paths:
        for name in ("memory.max", "memory.limit_in_bytes", "pids.max", "cpu.weight", "cpu.shares"):
            text = cgroup.read(os.path.join(path, name))
            if text is not None and text.strip() not in ("max",):
                values.setdefault(name, text.strip())
    assert values.get("memory.max", values.get("memory.limit_in_bytes")) == str(64 << 20)
    assert values["pids.max"] == "10"
    assert values.get("cpu.weight", values.get("cpu.shares")) in ("50", "512")
    res = assert_ok(env.sc("status", "lim"))
    assert "of memory_max 64.0M (its cgroup" in res.stdout
    assert_ok(env.sc("stop", "lim"))
    assert own_cgroups(env) == []


# -- Short commands in their own cgroup ---------------------------------------------------------


@needs_v2
def test_check_and_readiness_commands_run_in_a_cgroup_of_their_own(env: Env) -> None:
    """The config test and a readiness command run in a cgroup of their own, joined before they
    run; what they leave (a setsid'd grandchild) is killed when they end, and the cgroup is
    removed."""
    left = env.root / "left"
    seen = env.root / "seen"
    leave = (
        "import os, shutil, sys\n"
        f"shutil.copyfile('/proc/self/cgroup', {str(seen)!r} + sys.argv[1])\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        open({str(left)!r} + sys.argv[1], 'w').write(str(os.getpid()))\n"
        "        import signal\n"
        "        while True: signal.pause()\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        f"while not os.path.exists({str(left)!r} + sys.argv[1]): pass\n"
    )
    env.sleeper(
        "chk",
        check_command=[PY, "-c", leave, "check"],
        ready={"command": [PY, "-c", leave, "ready"]},
    )
    assert_ok(env.sc("start", "chk"))
    for what in ("check", "ready"):
        assert "/servicectl/checks/chk." in Path(f"{seen}{what}").read_text()
        pid = int(Path(f"{left}{what}").read_text())
        wait_for(lambda p=pid: not alive(p), 5, f"the {what} command's leftover to be killed")
    checks = Path(FOUND.top) / "servicectl" / "checks"
    assert not [p for p in checks.glob("chk.*")] if checks.is_dir() else True
    assert_ok(env.sc("stop", "chk"))


# -- Clean-up: no cgroup piles up ---------------------------------------------------------------


@needs_v2
def test_no_cgroup_is_left_after_stopall_a_failed_start_or_a_crash(env: Env) -> None:
    """stopall of services with limits; a start that fails (its program dies in start_grace,
    leaving a setsid'd grandchild); a crash then stop: none leaves a cgroup or a process."""
    for i in range(4):
        env.sleeper(f"s{i}", pids_max=50)
    assert_ok(env.sc("startall"))
    assert len([p for p in own_cgroups(env) if p.name.endswith(".service")]) >= 4
    assert_ok(env.sc("stopall"))
    assert own_cgroups(env) == []

    left = env.root / "left"
    crash = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        open({str(left)!r}, 'w').write(str(os.getpid()))\n"
        "        import signal\n"
        "        while True: signal.pause()\n"
        "    os._exit(0)\n"
        f"while not os.path.exists({str(left)!r}): pass\n"
        "sys.exit(3)\n"
    )
    env.write("bad", {"command": [PY, "-c", crash], "start_grace": 2})
    res = assert_ok(env.sc("start", "bad"), 1)
    assert "exited with status 3" in res.stderr
    assert not alive(int(left.read_text()))
    assert own_cgroups(env) == []

    env.sleeper("crashy")
    assert_ok(env.sc("start", "crashy"))
    pid = main_pid(env, "crashy")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), what="the crash")
    assert_ok(env.sc("status", "crashy"), 1)
    assert_ok(env.sc("stop", "crashy"))
    assert own_cgroups(env) == []


# -- Where no cgroup can be written, and records from before --------------------------------


def test_without_cgroups_status_says_process_group_and_session(env: Env) -> None:
    """Where no cgroup can be written, the service is tracked as before, and status says so."""
    env.sleeper("pg")
    assert_ok(env.sc("start", "pg", extra_env=NO_CGROUPS))
    assert record(env, "pg")["cgroup"] == ""
    res = assert_ok(env.sc("status", "pg", extra_env=NO_CGROUPS))
    assert "Tracking: process group and session (no writable cgroup)" in res.stdout
    assert env.status_json("pg")["pg"]["tracking"].startswith("process group and session")
    assert_ok(env.sc("stop", "pg"))
    assert own_cgroups(env) == []


def test_a_record_written_before_cgroups_still_reads(env: Env) -> None:
    """A state record without the cgroup fields (written by an older servicectl) is read as
    one without a cgroup: status running, stop stops it by its process group."""
    env.sleeper("old")
    assert_ok(env.sc("start", "old", extra_env=NO_CGROUPS))
    state = env.run / "old.state"
    rec = json.loads(state.read_text())
    for key in ("cgroup", "cgroups_v1", "memory_max"):
        del rec[key]
    state.write_text(json.dumps(rec))
    row = env.status_json("old")["old"]
    assert row["state"] == "running" and row["pid"] == rec["pid"]
    assert_ok(env.sc("stop", "old"))
    assert not alive(rec["pid"])


# -- In a container: the same tracking inside its own cgroup namespace --------------------------


@needs_v2
def test_container_entrypoint_tracks_inside_its_cgroup_namespace(env: Env) -> None:
    """contrib/container-entrypoint.sh as PID 1 of a container made here with unshare: its
    own cgroup namespace (rooted at a cgroup made for the test) with cgroup2 mounted at
    /sys/fs/cgroup, its own PID namespace. servicectl inside finds that hierarchy writable,
    the entrypoint moves itself out of the namespace's root into init/, each service gets a
    cgroup beneath the container's (seen from outside: CONTAINER/servicectl/<id>/NAME.service)
    with its setsid'd grandchild in it, and docker stop's SIGTERM ends them all, cgroups too."""
    import psutil

    from servicectl.commands import shims

    if not shutil_which("unshare"):
        pytest.skip("no unshare(1) here")
    ctr = Path(FOUND.top) / f"servicectl-ctr-{env.tag[:8]}"
    ctr.mkdir()
    pids = escaper(env, "esc", "setsid")
    inner = (
        "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && "
        f"exec sh {ROOT / 'contrib' / 'container-entrypoint.sh'}"
    )
    unshare = "unshare --cgroup --mount --propagation private --pid --fork --mount-proc"
    outer = f"echo $$ > {ctr}/cgroup.procs && exec {unshare} sh -c {shlex.quote(inner)}"
    environ = dict(
        os.environ,
        SERVICECTL=shims.exe_argv(shims.servicectl_executable())[0],
        SERVICECTL_SERVICES_DIR=str(env.services),
        SERVICECTL_RUN_DIR=str(env.run),
        SERVICECTL_LOG_DIR=str(env.log),
    )
    proc = subprocess.Popen(
        ["sh", "-c", outer], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(pids.exists, 30, "startall inside the container")
        leaf = ctr / "servicectl" / cgroup.run_id(str(env.run)) / "esc.service"
        inside = members(str(leaf))  # PIDs as seen from outside (the file has the inner ones)
        assert len(inside) == 2 and len({os.getsid(p) for p in inside}) == 2, inside
        init = psutil.Process(proc.pid).children()[0].pid  # the container's PID 1
        assert init in members(str(ctr / "init"))
        assert record(env, "esc")["cgroup"].startswith("/sys/fs/cgroup/servicectl/")
        os.kill(init, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        assert not any(alive(p) for p in inside)
        assert not leaf.exists() and not leaf.parent.exists()
    finally:
        cgroup.set_value(str(ctr), "cgroup.kill", "1")  # the whole container, if still there
        cgroup.wait_empty(str(ctr), 10)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        for path in sorted(ctr.rglob("*"), reverse=True):
            if path.is_dir():
                path.rmdir()
        ctr.rmdir()


# -- import and the generated files say the limits ----------------------------------------------


def test_import_maps_the_units_limits_and_the_unit_says_them(env: Env) -> None:
    """MemoryMax=, TasksMax=, CPUWeight= (and CPUShares=), KillMode= become memory_max,
    pids_max, cpu_weight, kill_mode; `servicectl unit` writes them back as systemd directives
    (the unit's cgroup holding the service), the init.d shim names them."""
    unit = env.root / "lim.service"
    unit.write_text(
        "[Service]\nExecStart=/bin/sleep 100\nMemoryMax=512M\nTasksMax=64\nCPUWeight=200\n"
        "KillMode=mixed\n"
    )
    draft = yaml.safe_load(assert_ok(env.sc("import", str(unit))).stdout)
    assert (draft["memory_max"], draft["pids_max"], draft["cpu_weight"]) == ("512M", 64, 200)
    assert draft["kill_mode"] == "group"
    unit.write_text(
        "[Service]\nExecStart=/bin/sleep 100\nCPUShares=2048\nKillMode=none\n"
        "MemoryMax=infinity\nTasksMax=10%\n"
    )
    res = assert_ok(env.sc("import", str(unit)))
    other = yaml.safe_load(res.stdout)
    assert (other["cpu_weight"], other["kill_mode"]) == (200, "process")
    assert "memory_max" not in other and "pids_max" not in other
    assert "TasksMax=10%" in res.stdout + res.stderr  # said, not dropped silently
    env.write(
        "lim",
        {
            "command": ["/bin/sleep", "100"],
            **{k: draft[k] for k in ("memory_max", "pids_max", "cpu_weight")},
        },
    )
    text = assert_ok(env.sc("unit", "--stdout", "lim")).stdout
    for line in (
        "MemoryMax=536870912",
        "TasksMax=64",
        "CPUWeight=200",
        "Environment=SERVICECTL_TRACKED_BY=systemd",
    ):
        assert line in text.splitlines()
    shim = assert_ok(env.sc("initd", "--stdout", "lim")).stdout
    assert "memory_max 512M, pids_max 64, cpu_weight 200" in shim


def test_under_its_systemd_unit_servicectl_makes_no_cgroup(env: Env) -> None:
    """Run as a generated unit runs it (SERVICECTL_TRACKED_BY=systemd): the service stays in
    the cgroup servicectl is in, no cgroup is made, limits are left to the unit, and status
    says who tracks it."""
    env.sleeper("unit", memory_max="64M")
    unit_env = {"SERVICECTL_TRACKED_BY": "systemd"}
    assert_ok(env.sc("start", "unit", extra_env=unit_env))
    rec = record(env, "unit")
    assert (rec["cgroup"], rec["cgroups_v1"], rec["tracked_by"]) == ("", [], "systemd")
    assert cgroup.where(rec["pid"]) == cgroup.where(os.getpid())
    assert own_cgroups(env) == []
    row = env.status_json("unit")["unit"]
    assert row["tracking"].startswith("the cgroup of its systemd unit")
    assert_ok(env.sc("stop", "unit", extra_env=unit_env))
