"""Attacks on what root reads to know what to run (docs/security.md): the services directory and
the definitions in it (R-DEF-1..3), the env_file a definition names (R-ENV-1..4), variables
expanded again at a respawn (R-EXP-1), template instance names (R-INST-1, R-INST-2), and what
writes definitions: enable, disable, edit and cat (R-EDIT-1), ``import --write`` (R-IMP-1) and
the Ansible module (R-ANS-1, R-ANS-3).

The attacker is a real unprivileged user made for the test, who can write a directory or a file
on root's way, or plants a symlink or a FIFO there. Each test runs the real CLI as root and
checks: what the attacker could change is refused (and a user's own services run as before),
no root-owned file changed (a snapshot before and after), no message quotes what root read, no
decoy got a signal, nothing hung, no traceback, and the exit code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
from conftest import PY, ROOT, SERVICECTL, Env, assert_ok, wait_for
from faultkit import (
    SECRET,
    Recorder,
    User,
    as_user,
    assert_clear,
    nothing_runs,
    owned_by,
    plant_link,
    plant_python,
    reachable_dir,
    root_file,
    sc,
    snap,
    state_of,
    supervised,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)


# -- R-DEF: who may write the definitions ----------------------------------------------------------


EVERY = (("status",), ("start", "web"), ("stop", "web"), ("startall",), ("list",), ("check",))


def test_R_DEF_1_a_services_dir_others_can_write_is_refused(
    env: Env, user: User, decoy: Recorder
) -> None:
    env.write("web", {"command": ["/bin/kill", "-TERM", str(decoy.pid)]})
    for owner, mode, fix in (
        (0, 0o777, "chmod go-w"),
        (0, 0o775, "chmod go-w"),
        (0, 0o1777, "chmod go-w"),
        (user.uid, 0o755, "chown root"),
    ):
        os.chown(env.services, owner, -1)
        env.services.chmod(mode)
        for args in EVERY:
            sc(env, *args, code=4, words=(str(env.services), fix))
    os.chown(env.services, 0, -1)
    env.services.chmod(0o755)
    with reachable_dir() as top:
        services = top / "services.d"
        services.mkdir()
        (services / "web.yaml").write_bytes((env.services / "web.yaml").read_bytes())
        top.chmod(0o777)  # anyone may rename services.d away and put their own
        res = env.sc("-d", str(services), "start", "web", timeout=40)
        assert_ok(res, 4)
        assert_clear(res, f"lies in {top}", "chmod go-w")
        top.chmod(0o1777)  # sticky, like /tmp: no one else can rename it
        env.write("web", {"command": "sleep 300", "start_grace": 0.1})
        (services / "web.yaml").write_bytes((env.services / "web.yaml").read_bytes())
        assert_ok(env.sc("-d", str(services), "start", "web", timeout=40))
        assert_ok(env.sc("-d", str(services), "stop", "web", timeout=40))
    decoy.assert_untouched()


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


def test_R_DEF_2_a_definition_others_can_write_is_refused(
    env: Env, user: User, decoy: Recorder
) -> None:
    env.sleeper("other")
    web = env.write("web", {"command": ["/bin/kill", "-TERM", str(decoy.pid)], "start_grace": 0})
    for owner, mode, fix in ((user.uid, 0o644, "chown root"), (0, 0o666, "chmod go-w"),
                             (0, 0o664, "chmod go-w")):  # fmt: skip
        os.chown(web, owner, -1)
        web.chmod(mode)
        sc(env, "start", "web", code=4, words=(str(web), fix))
        res = sc(env, "startall", code=1, words=(str(web), fix, "other: started"))
        assert "web" in res.stdout + res.stderr
        assert env.status_json("web")["web"]["state"] == "invalid"
        sc(env, "stop", "other", code=0)
    decoy.assert_untouched()
    # A definition that was trusted, and cached, then given away: refused at once.
    os.chown(web, 0, -1)
    web.chmod(0o644)
    env.sleeper("web")
    changed = web.stat().st_ctime
    wait_for(lambda: time.time() - changed > 2.5, what="the definition to be cacheable")
    sc(env, "list", code=0)
    assert any(p.name.startswith(".definitions-") for p in env.run.iterdir())
    os.chown(web, user.uid, -1)
    sc(env, "start", "web", code=4, words=("chown root",))
    os.chown(web, 0, -1)
    sc(env, "start", "web", code=0)
    sc(env, "stop", "web", code=0)
    nothing_runs(env, decoy)


def test_R_DEF_3_a_user_runs_their_own_services_as_before(user: User) -> None:
    """As an ordinary user, the services directory is the user's own: nothing is refused."""
    with reachable_dir(owner=user) as home:
        services = home / "services.d"
        services.mkdir()
        owned_by(services, user).chmod(0o777)
        (services / "web.yaml").write_text("command: sleep 300\nstart_grace: 0.1\n")
        owned_by(services / "web.yaml", user).chmod(0o666)
        base = [SERVICECTL, "-d", str(services)]  # the installed one, reachable by the user
        base += ["--run-dir", str(home / "run"), "--log-dir", str(home / "log")]
        env = {"PATH": os.environ["PATH"], "NO_COLOR": "1"}
        for action in ("start", "stop"):
            res = as_user(user, *base, action, "web", env=env, cwd=str(home))
            assert res.returncode == 0, res.stderr


# -- R-ENV: env_file -------------------------------------------------------------------------------


def env_service(env: Env, name: str, env_file: Path) -> None:
    env.sleeper(name, env_file=str(env_file))


def test_R_ENV_3_a_broken_env_file_is_a_config_error_of_its_service(env: Env) -> None:
    env.sleeper("good")
    for content, line, what in (
        (b"A=1\nB=caf\xe9\n", 2, "not UTF-8"),
        (b"A=1\n\nB=x\0y\n", 3, "NUL"),
        (b"# hello\nPASSWORD hunter2\n", 2, "KEY=VALUE"),
        (b"1A=hunter2\n", 1, "KEY=VALUE"),
    ):
        env_file = env.root / "bad.env"
        env_file.write_bytes(content)
        env_service(env, "bad", env_file)
        where = f"{env.services / 'bad.yaml'}: env_file: {env_file} line {line}"
        for args, code in ((("start", "bad", "good"), 6), (("startall",), 1)):
            res = sc(env, *args, code=code, words=(where, what, "good: started"))
            assert "hunter2" not in res.stdout + res.stderr
            sc(env, "stop", "good", code=0)
            nothing_runs(env)


def test_R_ENV_3_check_reports_a_broken_env_file(env: Env) -> None:
    env_file = env.root / "bad.env"
    env_file.write_bytes(b"A=\xff\n")
    env_service(env, "bad", env_file)
    sc(env, "check", "bad", code=6, words=("env_file", "line 1", "not UTF-8"))


def test_R_ENV_4_no_message_quotes_an_env_file(env: Env, user: User) -> None:
    with reachable_dir() as roots, reachable_dir(owner=user) as theirs:
        shadow = roots / "shadow"
        shadow.write_text(SECRET)
        shadow.chmod(0o640)
        (roots / "app.env").symlink_to(shadow)  # root's own link: followed, not quoted
        (theirs / "app.env").symlink_to(shadow)  # the user's link: not followed
        owned_by(theirs / "app.env", user)
        before = snap(shadow)
        for env_file, code, words in (
            (roots / "app.env", 6, ("line 1", "KEY=VALUE")),
            (theirs / "app.env", 4, ("symlink", "other users can write")),
        ):
            env_service(env, "web", env_file)
            for args in (("start", "web"), ("restart", "web"), ("startall",)):
                res = sc(env, *args, code=1 if args == ("startall",) else code, words=words)
                assert "SECRETHASH" not in res.stdout + res.stderr and "root:" not in res.stderr
            nothing_runs(env)
        assert snap(shadow) == before


def test_R_ENV_1_an_env_file_others_can_write_is_refused(env: Env, user: User) -> None:
    env_file = env.root / "web.env"
    for owner, mode, fix in ((0, 0o666, "chmod go-w"), (0, 0o620, "chmod go-w"),
                             (user.uid, 0o644, "chown root")):  # fmt: skip
        env_file.write_text("A=1\n")
        os.chown(env_file, owner, -1)
        env_file.chmod(mode)
        env_service(env, "web", env_file)
        sc(env, "start", "web", code=4, words=(str(env_file), fix))
        nothing_runs(env)


def test_R_ENV_2_a_fifo_env_file_never_hangs(env: Env) -> None:
    fifo = env.root / "fifo.env"
    os.mkfifo(fifo)
    env_service(env, "web", fifo)
    env.sleeper("other")
    t0 = time.monotonic()
    sc(env, "start", "web", code=6, words=(str(fifo), "FIFO"))
    res = sc(env, "startall", code=1, words=(str(fifo), "other: started"))
    assert time.monotonic() - t0 < 20, res
    sc(env, "stop", "other", code=0)
    nothing_runs(env)


# -- R-EXP: variables are expanded once ------------------------------------------------------------


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


# -- R-INST: instance names ------------------------------------------------------------------------


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
        lib_before = before[str(top)][-1][str(lib)]  # owner, group, mode, inode: unchanged
        assert snap(lib)[str(lib)][:4] == lib_before[:4] and (lib / "keep").read_text() == SECRET
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


# -- R-EDIT, R-IMP, R-ANS: what writes definitions, and where --------------------------------------


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


def plant_dir(user: User, path: Path) -> Path:
    path.mkdir()
    return owned_by(path, user)


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


if importlib.util.find_spec("ansible") is not None:
    from test_ansible import Book, collections, task  # noqa: F401  (collections: a fixture)


@pytest.mark.skipif(importlib.util.find_spec("ansible") is None, reason="no ansible-core")
def test_R_ANS_3_the_module_runs_servicectl_without_the_tasks_python_variables(
    env: Env, user: User, collections: Path
) -> None:
    """A task whose environment (a login user's, under ``become``) has PYTHONPATH, PYTHONSTARTUP
    and PYTHONUSERBASE pointing at a user's files: the Ansible module's own Python is Ansible's
    affair, but the servicectl it runs as root loads none of them (they are emptied), from "/"."""
    with reachable_dir(owner=user) as where:
        marker = where / "loaded"
        plant_python(where, marker, user)
        book = Book(env, collections)
        planted = {
            "PYTHONPATH": str(where),
            "PYTHONSTARTUP": str(where / "json.py"),
            "PYTHONUSERBASE": str(where / ".local"),
        }
        definition = {"command": "sleep 300", "start_grace": 0.1}
        step = task("web", name="web", definition=definition, state="started")
        step["environment"] = planted
        _, results = book.run([step])
        assert results["web"]["changed"] and results["web"]["status"]["state"] == "running"
        by_servicectl = (
            [
                line
                for line in marker.read_text().splitlines()
                if line.split()[1].startswith("servicectl")
            ]
            if marker.exists()
            else []
        )
        assert by_servicectl == [], marker.read_text()
        assert_ok(env.sc("stop", "web"))
