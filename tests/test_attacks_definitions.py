"""Attacks on the surfaces added after phase 2 (docs/security.md): template instances (R-INST-1,
R-INST-2, R-DIR-5), the supervisor (R-SUP-1..3) and what it respawns (R-EXP-1), ``logs``
(R-LOG-3), a services directory reached through someone's symlink (R-DEF-1), and the writers of
definitions and drop-ins: enable, disable, edit and cat (R-EDIT-1), ``import --write``
(R-IMP-1) and the Ansible module (R-ANS-1). Each rule has its first attack and variants of it.

Same checks as test_attacks.py: root's files unchanged, no traceback, no hang, the exit code;
the attacker is a real unprivileged user made for the test.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import select
import socket
import stat
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
from conftest import (
    PY,
    ROOT,
    SERVICECTL,
    Env,
    alive,
    assert_ok,
    kill_pids,
    supervisor_pids,
    wait_for,
)
from faultkit import USER_PYTHON, User, as_user, assert_clear, owned_by, reachable_dir

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl"
)

SECRET = "root's own file\n"


def snap(path: Path) -> Any:
    """Owner, mode, inode and content of ``path`` and everything under it, links not followed."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        body: Any = {p.name: snap(p) for p in sorted(path.iterdir())}
    elif stat.S_ISLNK(st.st_mode):
        body = os.readlink(path)
    else:
        body = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_ino, body)


def sc(env: Env, *args: str, code: int | None = None, words: tuple[str, ...] = ()) -> Any:
    """Run servicectl (a hang fails the test), check the exit code and that it explains."""
    res = env.sc(*args, timeout=40)
    if code is not None:
        assert_ok(res, code)
    assert_clear(res, *words)
    return res


def plant_link(user: User, link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return owned_by(link, user)


def plant_dir(user: User, path: Path) -> Path:
    path.mkdir()
    return owned_by(path, user)


def root_file(directory: Path, name: str = "secret", text: str = SECRET) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def state_of(env: Env, name: str, *flags: str) -> str:
    res = env.sc(*flags, "status", "--json", name)
    rows = json.loads(res.stdout) if res.stdout.strip() else []
    return str(rows[0]["state"]) if rows else ""


# -- R-INST: instance names ----------------------------------------------------------------------

BAD_INSTANCES = (".", "..", "...", ".hidden", "-x", "--config=x", "a@b", "")


def test_R_INST_1_no_instance_name_reaches_the_parent_directory(env: Env, user: User) -> None:
    """The known hole: ``start t@.`` made /var/lib/x/. and handed /var/lib/x to the service's
    user. Every name that is ., .., hidden, empty or an option is refused, by every command,
    and nothing under the template's directory changes."""
    with reachable_dir() as top:
        lib = top / "lib"
        lib.mkdir()
        root_file(lib, "keep")
        inst = f"{lib}/{{instance}}"
        env.write(
            "t@",
            {
                "command": "sleep 300",
                "user": user.name,
                "start_grace": 0.1,
                "directories": [inst, f"{inst}/sub"],
                "pid_file": f"{inst}/t.pid",
                "stdout": f"{inst}/out.log",
                "working_directory": inst,
            },
        )
        before = snap(top)
        for bad in BAD_INSTANCES:
            sc(env, "start", f"t@{bad}", code=2, words=("t@",))
            assert snap(top) == before, f"t@{bad} changed {top}"
        for bad in (".", "..", ".x"):
            for args in (("check",), ("restart",), ("enable",), ("edit",), ("logs",)):
                sc(env, *args, f"t@{bad}", code=2, words=("not a valid instance name",))
            res = sc(env, "status", f"t@{bad}")
            assert res.returncode in (2, 4)
        assert snap(top) == before
        assert env.files() == [] or all(f.startswith(".definitions-") for f in env.files())
        # listed in the template: a configuration error of the template
        env.write("u@", {"command": "sleep 300", "instances": ["1", ".", "-x"]})
        sc(env, "check", "u@", code=6, words=("instances", "'.'"))
        # a good instance gets its own directory, and the parent stays root's
        sc(env, "start", "t@a:1.b-c_d", code=0)
        assert (lib / "a:1.b-c_d").stat().st_uid == user.uid
        assert (lib / "a:1.b-c_d" / "sub").stat().st_uid == user.uid
        assert snap(lib)[:4] == before[4]["lib"][:4] and (lib / "keep").read_text() == SECRET
        sc(env, "stop", "t@a:1.b-c_d", code=0)


def test_R_INST_2_placeholders_never_add_a_dot_component(env: Env) -> None:
    """The second line: even an instance of . or .. (R-INST-1 keeps them out) could not turn any
    path key into its parent; a written .. stays the writer's own choice."""
    from servicectl.definitions.build import build

    file = env.services / "t@.yaml"
    keys: list[tuple[str, Any]] = [
        ("directories", ["/x/{instance}"]),
        ("directories", [{"path": "/x/{instance}/", "mode": "0700"}]),
        ("pid_file", "/x/{instance}/t.pid"),
        ("stdout", "/x/{instance}/out.log"),
        ("stderr", "/x/{instance}/err.log"),
        ("env_file", "/x/{instance}/t.env"),
        ("working_directory", "/x/{instance}"),
        ("ready", {"file": "/x/{instance}/ready"}),
        ("ready", {"unix": "/x/{instance}/sock"}),
    ]
    for key, value in keys:
        for instance in (".", ".."):
            data = {"command": "sleep 1", key: value}
            got = build(f"t@{instance}", file, data, env.dirs, instance, True)
            assert isinstance(got, list), f"{key} {value} with {instance!r} was accepted"
            assert any(key in str(err) for err in got), got
        ok = build("t@x", file, {"command": "sleep 1", key: value}, env.dirs, "x", True)
        assert not isinstance(ok, list), ok
    # through the real check: {run_dir} after a dot, and a .. the writer put there
    env.write("v", {"command": "sleep 1", "stdout": "/srv/.{run_dir}/v.log"})
    sc(env, "check", "v", code=6, words=("stdout", "no . or .. component"))
    env.write("w", {"command": "sleep 1", "stdout": "{log_dir}/../w.log"})
    sc(env, "check", "w", code=0)


def test_R_DIR_5_a_directory_path_has_no_dot_components(env: Env) -> None:
    for path in ("/srv/x/.", "/srv/./x", "/srv/x/..", "/srv/../x", "//", "/./"):
        env.write("d", {"command": "sleep 1", "directories": [path]})
        sc(env, "check", "d", code=6, words=("directories[0].path",))
    env.write("d", {"command": "sleep 1", "directories": ["/srv/x/", "/srv//y"]})
    sc(env, "check", "d", code=0)


# -- R-SUP: the supervisor ------------------------------------------------------------------------


def supervised(env: Env, name: str = "web", **extra: Any) -> None:
    spec: dict[str, Any] = {"command": "sleep 300", "start_grace": 0.1, "restart": "on-failure"}
    env.write(name, {**spec, **extra})


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


def test_R_EXP_1_a_respawn_runs_what_the_start_ran(env: Env) -> None:
    """The supervisor expanded an already expanded command again: ``$${HOME}`` became
    ``${HOME}`` at the start and /root at the respawn; a variable's value likewise."""
    out = env.root / "argv.log"
    supervised(
        env,
        "e",
        command=["/bin/sh", "-c", 'echo "$0 $1"; sleep 0.3; exit 3', "x$${HOME}", "$A"],
        environment={"A": "${HOME}"},
        restart_delay=0.1,
        start_limit={"burst": 1, "interval": 60},
        stdout=str(out),
    )
    env.sc("start", "e", timeout=40)
    wait_for(lambda: state_of(env, "e") == "failed", 20, "the supervisor to give up")
    lines = [line for line in out.read_text().splitlines() if " servicectl: " not in line]
    assert lines == ["x${HOME} ${HOME}", "x${HOME} ${HOME}"], lines


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
                {"dirs": protocol.encode(dirs._replace(run=top))},
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


# -- R-LOG-3: logs ---------------------------------------------------------------------------------

GROWER = """
import os, sys, time
os.write(1, b"start \\x1b]0;owned\\x07 \\x1b[2J\\xe2\\x80\\xae\\n")
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
os.ftruncate(1, 1 << 34)  # a sparse 16 GiB, in one call
os.write(1, b"the end\\n")
time.sleep(300)
"""


def read_until(fd: int, word: bytes, limit: int, timeout: float = 20) -> bytes:
    """What ``fd`` gives until ``word`` appears (or ``limit`` bytes, or the deadline)."""
    data = b""
    deadline = time.monotonic() + timeout
    while word not in data and len(data) < limit and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            data += chunk
    return data


def test_R_LOG_3_what_a_service_wrote_cannot_drive_the_terminal_nor_flood_it(
    env: Env, user: User
) -> None:
    with reachable_dir() as top:
        go = top / "go"
        env.write(
            "web",
            {
                "command": [USER_PYTHON, "-c", GROWER, str(go)],
                "user": user.name,
                "start_grace": 0.1,
            },
        )
        sc(env, "start", "web", code=0)
        wait_for(lambda: b"start" in (env.log / "web.log").read_bytes(), what="the first line")
        res = sc(env, "logs", "web", code=0)
        assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
        assert "\\x1b]0;owned\\x07" in res.stdout and "\\u202e" in res.stdout
        p = env.popen("logs", "web", "-n", "1", "-f")  # its line, not servicectl's start mark
        assert p.stdout is not None
        fd = p.stdout.fileno()
        first = read_until(fd, b"\n", 1 << 20)
        assert first.startswith(b"start \\x1b") and b"\x1b" not in first, first
        go.touch()
        data = read_until(fd, b"the end", 4 << 20)
        p.kill()
        p.communicate()
        assert b"the end" in data, data[-200:]
        assert len(data) < 1 << 20 and b"bytes skipped" in data, len(data)
        assert b"\x00" not in data and b"\x1b" not in data
        sc(env, "stop", "web", code=0)


# -- R-DEF-1, R-IMP-1, R-ANS-1, R-EDIT-1: who writes definitions, and where -----------------------


def test_R_DEF_1_a_symlink_another_user_made_chooses_nothing(env: Env, user: User) -> None:
    """-d names a symlink another user made (they could point it at any root directory that
    holds definitions, or switch it between commands): refused by every command, nothing
    written; a symlink root made, or root's own in a sticky directory, is followed."""
    env.write("web", {"command": "sleep 300", "start_grace": 0.1})
    before = snap(env.services)
    with reachable_dir(owner=user) as theirs, reachable_dir() as mine:
        sticky = mine / "sticky"
        sticky.mkdir()
        sticky.chmod(0o1777)
        deeper = plant_link(user, theirs / "deeper", env.root)  # a link half-way
        for link in (theirs / "services.d", sticky / "theirs.d", deeper / "services.d"):
            if not link.exists():
                plant_link(user, link, env.services)
            for args in (("list",), ("start", "web"), ("enable", "web"), ("disable", "web")):
                sc(env, "-d", str(link), *args, code=4, words=("symlink",))
        assert snap(env.services) == before
        assert all(f.startswith(".definitions-") for f in env.files())
        for link in (mine / "services.d", sticky / "root.d"):
            link.symlink_to(env.services)
            sc(env, "-d", str(link), "list", code=0, words=("web",))
        sc(env, "-d", str(mine / "services.d"), "start", "web", code=0)
        sc(env, "-d", str(sticky / "root.d"), "stop", "web", code=0)


INIT_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides: imp
### END INIT INFO
DAEMON=/bin/sleep
case "$1" in
  start) start-stop-daemon --start --background --make-pidfile --pidfile /run/imp.pid \\
           --exec $DAEMON -- 300 ;;
esac
"""


def test_R_IMP_1_import_writes_only_where_root_alone_can(env: Env, user: User) -> None:
    script = env.root / "imp"
    script.write_text(INIT_SCRIPT)
    with reachable_dir() as mine, reachable_dir(owner=user) as theirs:
        victim = mine / "victim"
        victim.mkdir()
        root_file(victim, "imp.yaml")
        before = snap(mine)
        link = plant_link(user, theirs / "link", victim)
        owned = plant_dir(user, theirs / "owned")
        below = theirs / "below"
        below.mkdir()  # root's, in a directory the user owns: they can rename it away
        for services in (link, owned, below):
            for force in ((), ("--force",)):
                res = sc(env, "-d", str(services), "import", "--write", *force, str(script))
                assert_ok(res, 4)
                assert "nothing written" in res.stderr
        assert snap(mine) == before
        assert list(owned.iterdir()) == [] and list(below.iterdir()) == []
        good = mine / "services.d"
        good.mkdir()
        sc(env, "-d", str(good), "import", "--write", str(script), code=0)
        assert (good / "imp.yaml").stat().st_uid == 0


def run_module(base: Path, **args: Any) -> dict[str, Any]:
    """The collection's module run as Ansible runs it on a target (an args file)."""
    pytest.importorskip("ansible", reason="ansible-core is not installed")
    coll = base / "coll" / "ansible_collections" / "servicectl"
    if not coll.exists():
        coll.mkdir(parents=True)
        (coll / "servicectl").symlink_to(ROOT / "contrib" / "ansible")
        (base / "tmp").mkdir()
    tmp = str(base / "tmp")
    exe = SERVICECTL  # the installed one
    args.update(_ansible_tmpdir=tmp, _ansible_remote_tmp=tmp, executable=exe)
    (base / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    module = ROOT / "contrib" / "ansible" / "plugins" / "modules" / "servicectl.py"
    res = subprocess.run(
        [PY, str(module), str(base / "args.json")],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(base / "coll")),
    )
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def test_R_ANS_1_the_ansible_module_writes_only_where_servicectl_acts(env: Env, user: User) -> None:
    with reachable_dir() as mine, reachable_dir(owner=user) as theirs:
        victim = mine / "victim"
        victim.mkdir()
        root_file(victim, "web.yaml")
        before = snap(mine)
        link = plant_link(user, theirs / "link", victim)
        owned = plant_dir(user, theirs / "owned")
        common = {"name": "web", "run_dir": str(env.run), "log_dir": str(env.log)}
        definition = {"command": "sleep 300"}
        for services in (link, owned, owned / "new.d"):
            out = run_module(env.root, services_dir=str(services), definition=definition, **common)
            assert out.get("failed") and out.get("rc") == 4, out
            assert "write " + str(services / "web.yaml") not in out.get("actions", [])
        assert snap(mine) == before and list(owned.iterdir()) == []
        good = mine / "services.d"
        out = run_module(env.root, services_dir=str(good), definition=definition, **common)
        assert out.get("changed") and not out.get("failed"), out
        assert (good / "web.yaml").read_text().strip() == "command: sleep 300"


def test_R_EDIT_1_enable_disable_edit_and_cat_never_go_through_links(env: Env) -> None:
    """What root left in a drop-in directory (a symlink to a file of its own, a FIFO, the
    directory itself a symlink): disable replaces a link without following it, a FIFO makes
    the definition invalid without hanging anything, edit refuses a linked override, cat never
    blocks; root's file stays as it was."""
    env.write("web", {"command": "sleep 300", "start_grace": 0.1})
    shared = root_file(env.root, "shared.yaml", "enabled: true\n")
    before = snap(shared)
    drop = env.services / "web.d"
    drop.mkdir()
    enabled = drop / "50-enabled.yaml"
    enabled.symlink_to(shared)
    sc(env, "disable", "web", code=0)
    assert not enabled.is_symlink() and "enabled: false" in enabled.read_text()
    enabled.unlink()
    os.mkfifo(enabled)
    sc(env, "enable", "web", code=6, words=("not a regular file",))
    assert stat.S_ISFIFO(enabled.lstat().st_mode)
    enabled.unlink()
    (drop / "override.yaml").symlink_to(shared)
    res = env.sc("edit", "web", timeout=40, extra_env={"EDITOR": "true", "VISUAL": ""})
    assert_ok(res, 1)
    assert_clear(res, "symlink")
    (drop / "override.yaml").unlink()
    os.mkfifo(drop / "10-fifo.yaml")
    sc(env, "cat", "web", code=1, words=("not a regular file",))
    (drop / "10-fifo.yaml").unlink()
    sc(env, "disable", "web", code=0)
    drop.rename(env.root / "web.d.real")
    (env.services / "web.d").symlink_to(env.root / "web.d.real")
    sc(env, "enable", "web", code=1, words=("symlink",))
    assert "enabled: false" in (env.root / "web.d.real" / "50-enabled.yaml").read_text()
    assert snap(shared) == before
