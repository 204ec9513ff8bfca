"""Attacks on which processes root signals as a service's (docs/security.md): the remnants of a
process group, proven and never guessed (R-PROC-3), a process another service recorded
(R-PROC-4), the whole tree of a failed launch (R-PROC-5); and the supervisor, root's long-lived
process: its log (R-SUP-1), what a respawn removes and checks (R-SUP-2), its control socket
(R-SUP-3).

The attacker takes a dead service's PID again (placed with /proc/sys/kernel/ns_last_pid),
forges PID files, leaves setsid children, swaps a directory for a symlink between a start and a
respawn, or talks to the supervisor as another user or with a request that is no definition.
The checks: a decoy (a process that records every signal it gets) is never signalled, root's
files are unchanged, the service's own processes are still ended, nothing hung, no traceback,
and the exit code. R-PROC-3 runs both by process group and by cgroup.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import socket
import stat
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
from conftest import (
    DAEMONS,
    PY,
    TAG_VAR,
    Env,
    alive,
    assert_ok,
    kill_pids,
    supervisor_pids,
    wait_for,
)
from faultkit import (
    SECRET,
    USER_PYTHON,
    Recorder,
    User,
    as_user,
    assert_clear,
    owned_by,
    plant_link,
    reachable_dir,
    root_file,
    sc,
    snap,
    spawn_with_pid,
    state_of,
    subreaper,
    supervised,
    unix_user,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)


# -- R-PROC: which processes are the service's -----------------------------------------------------


# R-PROC-3 is the rule of the process-group tracking, where no cgroup can be written: its tests
# run in both modes. With a cgroup (R-CG-1) membership needs no proof: a daemon that took a
# dead service's PID is not in its cgroup, so it is neither reported nor signalled.
@pytest.fixture
def tracking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    from servicectl.system import cgroup

    mode = str(request.param)
    if mode == "process group":
        monkeypatch.setenv("SERVICECTL_CGROUP_V2", "none")  # tests only (R-CG-3)
        monkeypatch.setenv("SERVICECTL_CGROUP_V1", "none")
    elif not cgroup.hierarchies().top:
        pytest.skip(f"no writable cgroup v2: {cgroup.hierarchies().why}")
    return mode


RECORDER = str(DAEMONS / "signal_recorder.py")


def test_R_PROC_4_a_process_recorded_by_another_service_is_never_adopted(env: Env) -> None:
    """A stale b.pid (no record of b) names service a's process: same program, same user."""
    for name in ("a", "b"):
        env.write(name, {"command": "sleep 300", "start_grace": 0.1})
    assert_ok(env.sc("start", "a"))
    a_pid = env.pid("a")
    (env.run / "b.pid").write_text(f"{a_pid}\n")
    for args in (("start", "b"), ("stop", "b"), ("restart", "b")):
        res = env.sc(*args, timeout=40)
        assert_clear(res)
        assert alive(a_pid), f"{args}: service a's process was killed"
    assert f"pid {a_pid}" not in env.sc("status", "b").stdout


def test_R_PROC_4_variants_forking_explicit_pid_files_and_the_fleet(env: Env) -> None:
    """The same lie through a forking service's own PID file, and through stop of several
    services and stopall: service a is stopped once, by its own name, and never as b."""
    env.forking("a")
    env.forking("b")
    assert_ok(env.sc("start", "a"))
    a_pid = env.pid("a", env.run / "a.daemon.pid")
    (env.run / "b.daemon.pid").write_text(f"{a_pid}\n")
    res = assert_ok(env.sc("status", "b"), 1)
    assert_clear(res, "service a's process")
    for args in (("stop", "b"), ("start", "b"), ("stop", "b"), ("restart", "b"), ("stop", "b")):
        assert_clear(env.sc(*args, timeout=40))
        assert alive(a_pid), f"{args}: service a's process was killed"
    (env.run / "b.daemon.pid").write_text(f"{a_pid}\n")
    res = assert_ok(env.sc("stop", "b", "a", timeout=40))
    assert res.stdout.count(f"pid {a_pid}") <= 1 and not alive(a_pid)
    # stopall with the lie in place: a stops once, b is not running.
    assert_ok(env.sc("start", "a"))
    a_pid = env.pid("a", env.run / "a.daemon.pid")
    (env.run / "b.daemon.pid").write_text(f"{a_pid}\n")
    res = assert_ok(env.sc("stopall", timeout=40))
    assert "a: stopped" in res.stdout and "b: stopped" not in res.stdout, res.stdout


DOUBLE_FORK = """
import os, sys
os.setsid()
if os.fork() == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os._exit(0)
"""


@pytest.mark.parametrize("tracking", ["process group", "cgroup"], indirect=True)
def test_R_PROC_3_a_daemon_reusing_a_dead_services_pid_is_no_remnant(
    env: Env, tracking: str
) -> None:
    """A simple service crashed; its PID is reused by an unrelated daemon's double fork (setsid,
    fork, exit): that daemon's pgid = sid = the old PID, same uid, newer start time."""
    env.write("crash", {"command": "sleep 300", "start_grace": 0.1, "kill_mode": "group"})
    with subreaper():
        assert_ok(env.sc("start", "crash"))
        old = env.pid("crash")
        os.kill(old, 9)
        os.waitpid(old, 0)  # the service was re-parented to this process: its PID is free
        _attack_with_pid(env, old, said=_unproven(tracking))


def _unproven(tracking: str) -> tuple[str, ...]:
    """What status says of processes in a reused group: by process group, that it cannot prove
    them the service's; by cgroup, nothing (they are not in it)."""
    return ("cannot prove", "leaves them alone") if tracking == "process group" else ()


def _attack_with_pid(
    env: Env,
    old: int,
    name: str = "crash",
    user: User | None = None,
    where: Path | None = None,
    script: str = DOUBLE_FORK,
    daemons: int = 1,
    said: tuple[str, ...] = ("cannot prove", "leaves them alone"),
) -> None:
    """Take PID ``old`` (as ``user``, or root), double-fork ``daemons`` signal recorders out of
    it, then run the commands that look at and end remnants: none of them is signalled."""
    marker = (where or env.root) / "decoy.signals"
    kw: dict[str, Any] = {"user": user.uid, "group": user.gid} if user else {}
    py = USER_PYTHON if user else PY
    launcher = spawn_with_pid(
        old,
        [py, "-c", script, py, RECORDER, str(marker)],
        dict(os.environ, **{TAG_VAR: env.tag}),
        **kw,
    )
    launcher.wait()

    def readies() -> list[int]:
        text = marker.read_text() if marker.exists() else ""
        return [int(line.split()[1]) for line in text.splitlines() if line.startswith("ready")]

    wait_for(lambda: len(readies()) == daemons, what="the daemons")
    for daemon in readies():
        assert os.getpgid(daemon) == old and os.getsid(daemon) == old
    res = env.sc("status", name)
    assert_ok(res, 1)
    assert_clear(res, *said)
    for args in (("start", name), ("stop", name), ("restart", name), ("stop", name)):
        assert_clear(env.sc(*args, timeout=40))
    lines = marker.read_text().splitlines()
    assert sorted(lines) == sorted(f"ready {d}" for d in readies()), lines
    assert all(alive(d) for d in readies())


DOUBLE_FORK_FAMILY = """
import os, sys
os.setsid()
if os.fork() == 0:
    if os.fork() == 0:
        os.execv(sys.argv[1], sys.argv[1:])  # a second member of the reused group
    os.execv(sys.argv[1], sys.argv[1:])
os._exit(0)
"""


@pytest.mark.parametrize("tracking", ["process group", "cgroup"], indirect=True)
def test_R_PROC_3_variants_a_users_service_and_a_whole_family(env: Env, tracking: str) -> None:
    """The same reuse by the service's own user (a ``user:`` service and an attacker of that
    uid), with two processes in the reused group; and by root against a root service."""
    with unix_user() as user, reachable_dir(owner=user) as theirs:
        env.write("crash", {"command": "sleep 300", "start_grace": 0.1, "user": user.name})
        with subreaper():
            assert_ok(env.sc("start", "crash"))
            old = env.pid("crash")
            os.kill(old, 9)
            os.waitpid(old, 0)
            _attack_with_pid(env, old, user=user, where=theirs, script=DOUBLE_FORK_FAMILY,
                             daemons=2, said=_unproven(tracking))  # fmt: skip


@pytest.mark.parametrize("tracking", ["process group", "cgroup"], indirect=True)
def test_R_PROC_3_remnants_seen_alive_are_still_ended(env: Env, tracking: str) -> None:
    """The control: children that ran when servicectl last saw the service (at the start it
    confirmed) are proven, and stop ends them after a crash; a decoy is never touched."""
    children = env.root / "children"
    env.write(
        "fam",
        {
            "command": [PY, str(DAEMONS / "parent_with_children.py"), "--children", "3"],
            "environment": {"CHILDREN_FILE": str(children)},
            "ready": {"file": str(children)},
        },
    )
    rec = Recorder(env.root, env.tag)
    try:
        with subreaper():
            assert_ok(env.sc("start", "fam"))
            main = env.pid("fam")
            kids = [int(x) for x in children.read_text().split()]
            os.kill(main, 9)
            os.waitpid(main, 0)
            res = assert_ok(env.sc("status", "fam"), 1)
            remain = (
                "3 processes of its process group"
                if tracking == "process group"
                else (f"main process {main} exited; 3 processes remain")
            )
            assert_clear(res, remain, "stop or start ends them")
            res = assert_ok(env.sc("stop", "fam"))
            assert_clear(res, "3 leftover processes")
            assert not any(alive(k) for k in kids)
        rec.assert_untouched()
    finally:
        rec.close()


LEAVES_A_SETSID_CHILD = """
import os, sys, time
if os.fork():
    os._exit(0)          # the launcher exits 0
os.setsid()
if os.fork():
    os._exit(0)          # the daemon, orphaned to servicectl
if os.fork() == 0:
    os.setsid()          # a child in a session of its own
    os.execv(sys.argv[1], sys.argv[1:])
time.sleep(300)          # the daemon never writes its PID file
"""


def test_R_PROC_5_a_failed_forking_launch_leaves_no_setsid_child(env: Env) -> None:
    marker = env.root / "child.signals"
    env.write(
        "fd",
        {
            "type": "forking",
            "command": [PY, "-c", LEAVES_A_SETSID_CHILD, PY, RECORDER, str(marker)],
            "pid_file": str(env.run / "fd.daemon.pid"),
            "start_timeout": 2,
        },
    )
    res = env.sc("start", "fd", timeout=40)
    assert_ok(res, 1)
    assert_clear(res)
    wait_for(lambda: marker.exists(), what="the child to have run")
    child = int(marker.read_text().split()[1])
    assert not alive(child), "the setsid child of the failed launch still runs"


FORKS_A_SETSID_CHILD_THEN = """
import os, sys, time
how, marker = sys.argv[1], sys.argv[-1]
if os.fork() == 0:
    os.setsid()
    os.execv(sys.argv[2], sys.argv[2:])  # a child in a session of its own
while not (os.path.exists(marker) and "ready" in open(marker).read()):
    time.sleep(0.01)                     # (until it runs)
if how == "exit1":
    os._exit(1)                          # a launcher that fails
if how == "daemon":
    if os.fork():
        os._exit(0)                      # the launcher exits 0...
    os.setsid()
    with open(os.environ["PIDFILE"], "w") as fh:
        fh.write(f"{os.getpid()}\\n")      # ...its daemon is found, but never ready
time.sleep(300)                          # (simple: the main process, never ready)
"""


@pytest.mark.parametrize("how", ["exit1", "daemon", "simple"])
def test_R_PROC_5_variants_every_failed_start_kills_the_launchs_tree(env: Env, how: str) -> None:
    """A launcher that exits 1, a forking daemon that never gets ready, a simple service that
    never gets ready: each leaves a setsid child, and the failed start kills it."""
    marker = env.root / "child.signals"
    never = env.root / "never"
    spec: dict[str, Any] = {
        "command": [PY, "-c", FORKS_A_SETSID_CHILD_THEN, how, PY, RECORDER, str(marker)],
        "start_timeout": 2,
        "ready": {"file": str(never)},
    }
    if how != "simple":
        pid_file = env.run / "fd.daemon.pid"
        spec.update(type="forking", pid_file=str(pid_file), environment={"PIDFILE": str(pid_file)})
    env.write("fd", spec)
    res = env.sc("start", "fd", timeout=40)
    assert_ok(res, 1)
    assert_clear(res)
    wait_for(lambda: marker.exists() and "ready" in marker.read_text(), what="the child")
    child = int(marker.read_text().split()[1])
    wait_for(lambda: not alive(child), what="the setsid child to be gone", timeout=5)
    assert [f for f in env.files()] == []


# -- R-SUP: the supervisor -------------------------------------------------------------------------


def test_R_SUP_1_the_supervisors_log_is_an_output_file(env: Env, user: User) -> None:
    """A log directory another user owns (given with --log-dir): what they put at
    .supervisor.log neither hangs the start nor steers root's write."""
    supervised(env)
    env.log.mkdir(mode=0o755)
    owned_by(env.log, user)
    secret = root_file(env.root)
    log = env.log / ".supervisor.log"
    attacks = (
        (lambda: os.mkfifo(log), 1, "FIFO"),
        (lambda: log.symlink_to(secret), 4, "symlink"),
        (lambda: log.write_text("theirs\n"), 4, "belongs to uid"),
    )
    for plant, code, word in attacks:
        plant()
        owned_by(log, user)
        started = time.monotonic()
        sc(env, "start", "web", code=code, words=(".supervisor.log", word))
        assert time.monotonic() - started < 20
        # Nothing runs; the start that failed is remembered (failed, until the next start).
        assert supervisor_pids(env.run) == [] and state_of(env, "web") == "failed"
        assert secret.read_text() == SECRET
        log.unlink()
    sc(env, "start", "web", code=0)
    assert log.stat().st_uid == 0 and stat.S_IMODE(log.stat().st_mode) == 0o640
    sc(env, "stop", "web", code=0)


ATTACK_PIDFILE_DIR = """
import os, sys
pd, pid = sys.argv[1], int(sys.argv[2])
os.rename(os.path.join(pd, "sub"), os.path.join(pd, "sub.old"))
os.symlink(sys.argv[3], os.path.join(pd, "sub"))
os.kill(pid, 9)
"""


def test_R_SUP_2_a_respawn_removes_no_file_through_a_planted_symlink(env: Env, user: User) -> None:
    """pid_file in a directory of the service's user: the user swaps the PID file's directory
    for a symlink to root's directory holding a file of the same text, and kills the service.
    The supervisor recorded the exit and removed the PID file by path: root's file went."""
    with reachable_dir(owner=user) as theirs, reachable_dir() as mine:
        supervised(env, "p", user=user.name, restart_delay=60, pid_file=f"{theirs}/sub/p.pid")
        sc(env, "start", "p", code=0)
        pid = int((theirs / "sub" / "p.pid").read_text())
        victim = root_file(mine, "p.pid", f"{pid}\n")
        before = snap(mine)
        attack = (ATTACK_PIDFILE_DIR, str(theirs), str(pid), str(mine))
        res = as_user(user, USER_PYTHON, "-c", *attack)
        assert res.returncode == 0, res.stderr
        wait_for(lambda: not alive(pid), what="the killed service to be gone")
        wait_for(lambda: "respawn is pending" in env.sc("status", "p").stdout, 20, "the exit")
        assert snap(mine) == before and victim.read_text() == f"{pid}\n"
        sc(env, "stop", "p", code=0, words=("symlink",))
        assert snap(mine) == before


def test_R_SUP_2_variants_the_pid_file_itself_a_symlink(env: Env, user: User) -> None:
    """The final component swapped: the link goes, never its target."""
    with reachable_dir(owner=user) as theirs, reachable_dir() as mine:
        supervised(env, "p", user=user.name, restart_delay=60, pid_file=f"{theirs}/p.pid")
        sc(env, "start", "p", code=0)
        pid = int((theirs / "p.pid").read_text())
        victim = root_file(mine, "p.pid", f"{pid}\n")
        (theirs / "p.pid").unlink()
        plant_link(user, theirs / "p.pid", victim)
        as_user(user, USER_PYTHON, "-c", f"import os; os.kill({pid}, 9)")
        wait_for(lambda: "respawn is pending" in env.sc("status", "p").stdout, 20, "the exit")
        assert victim.read_text() == f"{pid}\n"
        sc(env, "stop", "p", code=0)
        assert victim.read_text() == f"{pid}\n"


def test_R_SUP_2_a_respawn_checks_what_start_checks(env: Env, user: User) -> None:
    """Between the start and a respawn the output file becomes a symlink to root's file, or
    the env_file becomes the user's: the respawn fails under R-OUT and R-ENV, as a start would,
    and the service ends failed; root's file is untouched."""
    with reachable_dir(owner=user) as theirs, reachable_dir() as mine:
        secret = root_file(mine)
        env_file = mine / "p.env"
        env_file.write_text("A=1\n")
        out = theirs / "p.log"
        supervised(
            env,
            "p",
            user=user.name,
            restart_delay=0.1,
            start_limit={"burst": 1, "interval": 60},
            stdout=str(out),
            env_file=str(env_file),
        )

        def attack(swap: Any, word: str) -> None:
            sc(env, "start", "p", code=0)
            pid = env.pid("p")
            swap()
            as_user(user, USER_PYTHON, "-c", f"import os; os.kill({pid}, 9)")
            wait_for(lambda: state_of(env, "p") == "failed", 20, "the supervisor to give up")
            assert word in env.sc("status", "p").stdout
            assert secret.read_text() == SECRET and stat.S_IMODE(secret.stat().st_mode) == 0o600
            sc(env, "stop", "p")

        def link_log() -> None:
            out.unlink()
            plant_link(user, out, secret)

        attack(link_log, "symlink")
        out.unlink()
        attack(lambda: owned_by(env_file, user), "env_file")


def load_service(env: Env, name: str, run: Path) -> Any:
    """The valid Service of ``name`` as servicectl loads it for this run directory."""
    from servicectl.definitions.catalog import load_catalog
    from servicectl.paths import resolve_dirs

    return load_catalog(resolve_dirs(env.services, run, env.log), [name]).services[name]


class Evil:
    """A pickle that would run a command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def ask(path: Path, *requests: dict[str, Any]) -> list[Any]:
    """Send requests to a supervisor (as root) and read one answer a request (None: closed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(path))
        answers: list[Any] = []
        buf = b""
        for req in requests:
            s.sendall(json.dumps(req).encode() + b"\n")
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return [*answers, None]
                buf += chunk
            line, _, buf = buf.partition(b"\n")
            answers.append(json.loads(line))
        return answers


CONNECT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("refused", exc.errno)
    sys.exit(0)
try:
    s.sendall(json.dumps({"op": "info"}).encode() + b"\\n")
    print("answered" if s.recv(65536) else "closed")
except OSError:
    print("closed")
"""


INSTALLED_HELLO = (
    "import json; from servicectl.supervisor import protocol; print(json.dumps(protocol.hello()))"
)


def test_R_SUP_3_the_control_socket_answers_root_alone(env: Env, user: User) -> None:
    """Another user cannot reach the socket (0600); with the socket opened to all by mistake,
    the supervisor still refuses them (SO_PEERCRED). Root's own requests with a definition that
    is no definition (a pickle that would run a command; a type that is not the schema's; a
    field of the wrong type; another run directory) are refused, and change nothing: the
    service stays supervised, the supervisor carries on."""
    from servicectl.paths import resolve_dirs
    from servicectl.supervisor import protocol

    with reachable_dir() as top:
        run, flags = top / "run", ("--run-dir", str(top / "run"))
        try:
            supervised(env)
            sc(env, *flags, "start", "web", code=0)
            sock = run / ".supervisor.sock"
            assert stat.S_IMODE(sock.stat().st_mode) == 0o600
            res = as_user(user, USER_PYTHON, "-c", CONNECT, str(sock))
            assert res.stdout.split() == ["refused", "13"], res.stdout + res.stderr
            sock.chmod(0o666)
            res = as_user(user, USER_PYTHON, "-c", CONNECT, str(sock))
            assert res.stdout.strip() == "closed", res.stdout + res.stderr
            marker = top / "pwned"
            dirs = resolve_dirs(env.services, run, env.log)
            good = protocol.definition(load_service(env, "web", run), dirs)
            payloads: list[dict[str, Any]] = [
                {"definition": base64.b64encode(pickle.dumps((Evil(marker), dirs))).decode()},
                {"definition": {"$type": "Evil", "command": ["touch", str(marker)]}},
                {"definition": {**good["definition"], "stop_timeout": "never"}},
                {"definition": {**good["definition"], "command": [1, 2]}},
                {"dirs": protocol.encode(dirs._replace(run=str(top)))},
                {"definition": "not a definition"},
            ]
            # the installed servicectl's hello (its schema hash is its files'), as a command's
            said = subprocess.run(
                [USER_PYTHON, "-I", "-c", INSTALLED_HELLO],
                capture_output=True,
                text=True,
                check=True,
            )
            hello = {"op": "hello", **json.loads(said.stdout)}
            for name in ("web", "ghost"):
                for bad in payloads:
                    request = {"op": "start", "name": name, **good, **bad}
                    greeting, answer = ask(sock, hello, request)
                    assert greeting["ok"] is True, greeting
                    assert answer["ok"] is False and "could not be read" in answer["message"]
            assert not marker.exists()
            (info,) = ask(sock, {"op": "info"})
            assert list(info["units"]) == ["web"] and info["units"]["web"]["pid"] == env.pid(
                "web", run / "web.pid"
            )
            log = (env.log / ".supervisor.log").read_text()
            assert f"refused a connection from uid {user.uid}" in log
            sc(env, *flags, "stop", "web", code=0)
        finally:
            kill_pids(supervisor_pids(run))
