"""Templates (NAME@.yaml run as NAME@INSTANCE), through the real CLI: real memcached instances
side by side, instance names, what status, list, startall and stopall see, placeholders, and
dependencies between templates and instances."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
from typing import Any

import pytest
from conftest import DAEMONS, PY, TAG_VAR, Env, alive, assert_ok, free_port, wait_for


def sleeper_template(env: Env, stem: str, **extra: Any) -> None:
    """A template ``stem@.yaml`` running tests/daemons/sleeper.py."""
    spec: dict[str, Any] = {
        "description": "sleeper {instance} of {prefix} ({name})",
        "command": [PY, str(DAEMONS / "sleeper.py")],
        "start_grace": 0.1,
    }
    spec.update(extra)
    env.write(f"{stem}@", spec)


def states(env: Env, *names: str) -> dict[str, str]:
    return {n: row["state"] for n, row in env.status_json(*names).items()}


def no_traceback(res: Any) -> None:
    assert "Traceback" not in res.stdout + res.stderr, res.stderr


def version(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"version\r\n")
        return s.recv(64)


def test_two_memcached_instances_from_one_template(env: Env) -> None:
    """Two real memcached instances of one template run side by side, each with its own PID
    file, state record and log, and stop independently; startall starts the listed ones."""
    memcached = shutil.which("memcached", path="/usr/bin:/usr/sbin:/usr/local/bin")
    if memcached is None:
        pytest.skip("memcached is not installed")
    p1, p2 = free_port(), free_port()
    drop = ""
    if os.geteuid() == 0:  # memcached refuses to run as root without -u
        for user in ("memcache", "nobody"):
            try:
                drop = f" -u {pwd.getpwnam(user).pw_name}"
                break
            except KeyError:
                continue
    env.write(
        "memcached@",
        {
            "description": "memcached on port {instance}",
            "command": f"{memcached} -l 127.0.0.1 -p {{instance}} -U 0 -m 8{drop}",
            "ready": {"tcp": "127.0.0.1:{instance}"},
            "instances": [str(p1), str(p2)],
        },
    )
    assert_ok(env.sc("check"))
    res = assert_ok(env.sc("startall"))
    assert f"memcached@{p1}: started" in res.stdout and f"memcached@{p2}: started" in res.stdout
    one, two = env.pid(f"memcached@{p1}"), env.pid(f"memcached@{p2}")
    assert one != two and alive(one) and alive(two)
    assert version(p1).startswith(b"VERSION") and version(p2).startswith(b"VERSION")
    rows = env.status_json()
    assert set(rows) == {f"memcached@{p1}", f"memcached@{p2}"}
    assert rows[f"memcached@{p1}"]["description"] == f"memcached on port {p1}"
    assert {f"memcached@{p1}.state", f"memcached@{p2}.state"} <= set(env.files())

    assert_ok(env.sc("stop", f"memcached@{p1}"))
    wait_for(lambda: not alive(one), what="the first instance to exit")
    assert alive(two) and version(p2).startswith(b"VERSION")
    assert states(env) == {f"memcached@{p1}": "stopped", f"memcached@{p2}": "running"}
    assert_ok(env.sc("status", f"memcached@{p2}"))
    assert_ok(env.sc("status", f"memcached@{p1}"), 3)
    assert_ok(env.sc("restart", f"memcached@{p2}"))
    assert env.pid(f"memcached@{p2}") != two and not alive(two)
    assert_ok(env.sc("stopall"))
    assert states(env) == {f"memcached@{p1}": "stopped", f"memcached@{p2}": "stopped"}
    assert not [f for f in env.files() if f.endswith((".pid", ".state"))]


def test_instance_names_are_checked(env: Env) -> None:
    """A template without an instance, or an instance name a template cannot have, is a usage
    error (2) that says so; an instance of no template is an unknown service (5)."""
    sleeper_template(env, "t")
    for args in (("start", "t@"), ("stop", "t@"), ("restart", "t@"), ("logs", "t@")):
        res = assert_ok(env.sc(*args), 2)
        assert "t@ is a template" in res.stderr and "t@INSTANCE" in res.stderr, res.stderr
        no_traceback(res)
    for bad in ("t@a/b", "t@a b", "t@a@b", "t@\x1b[31m"):
        res = assert_ok(env.sc("start", bad), 2)
        assert "not a valid instance name" in res.stderr and "\x1b" not in res.stderr
        no_traceback(res)
    res = assert_ok(env.sc("start", "nosuch@x"), 5)
    assert "nosuch@.yaml" in res.stderr
    assert env.status_json("t@")["t@"]["exit_code"] == 4
    long = "t@" + "9" * 80
    res = assert_ok(env.sc("start", long), 6)
    assert "at most 80" in res.stderr and "shorter instance name" in res.stderr
    assert_ok(env.sc("start", "t@a:b.c-d_e"))  # every character an instance may have
    assert states(env, "t@a:b.c-d_e") == {"t@a:b.c-d_e": "running"}
    assert_ok(env.sc("stop", "t@a:b.c-d_e"))


def test_instances_and_instance_placeholders_need_a_template(env: Env) -> None:
    """instances: is a configuration error outside a template, and so is {instance}, which
    would stay as written; in a template, check validates it and each listed instance."""
    web = env.write("web", "command: sleep 100\ninstances: [a]\n")
    res = assert_ok(env.sc("check", "web"), 6)
    assert f"{web}: instances: only a template" in res.stderr
    env.write("web", "command: sleep 100 {instance}\n")
    res = assert_ok(env.sc("start", "web"), 6)
    assert f"{web}: command: {{instance}} and {{prefix}}" in res.stderr
    env.write("web", "command: sleep 100\n")
    sleeper_template(env, "t", instances=["a", "b/c"])
    res = assert_ok(env.sc("check", "t@"), 6)
    assert "instances: 'b/c' is not an instance name" in res.stderr
    sleeper_template(env, "t", instances=["a", 11211])
    res = assert_ok(env.sc("check"))
    assert {"t@: ok", "t@a: ok", "t@11211: ok", "web: ok"} <= {
        line.split(" (")[0] for line in res.stdout.splitlines()
    }


def test_placeholders_of_an_instance(env: Env) -> None:
    """{name} is the whole NAME@INSTANCE, {instance} the instance, {prefix} the template's
    name; the default PID file and log are the instance's own."""
    dump = env.root / "dump-{instance}.json"
    sleeper_template(env, "t", command=[PY, str(DAEMONS / "sleeper.py"), "--env-dump", str(dump)])
    assert_ok(env.sc("start", "t@x1"))
    rows = json.loads(assert_ok(env.sc("list", "--json")).stdout)
    row = next(r for r in rows if r["name"] == "t@x1")
    assert row["description"] == "sleeper x1 of t (t@x1)" and row["template"] == "t@"
    assert (env.run / "t@x1.pid").exists() and (env.log / "t@x1.log").exists()
    environ = json.loads((env.root / "dump-x1.json").read_text().splitlines()[0])
    assert environ[TAG_VAR] == env.tag
    assert_ok(env.sc("stop", "t@x1"))


def test_status_list_startall_and_stopall_see_instances(env: Env) -> None:
    """status and list show the listed instances and those that run; startall starts the
    listed ones only; stopall stops every running instance; an unlisted one runs by name."""
    sleeper_template(env, "t", instances=["a"])
    env.sleeper("plain")
    assert set(env.status_json()) == {"t@a", "plain"}
    assert_ok(env.sc("start", "t@b"))
    assert states(env) == {"t@a": "stopped", "t@b": "running", "plain": "stopped"}
    listed = {r["name"]: r for r in json.loads(assert_ok(env.sc("list", "--json")).stdout)}
    assert listed["t@"]["instances"] == ["a"] and listed["t@b"]["startall"] is False
    assert listed["t@a"]["startall"] is True
    table = assert_ok(env.sc("list")).stdout
    assert "unlisted" in table and "template" in table
    res = assert_ok(env.sc("startall"))
    assert "t@a: started" in res.stdout and "t@b" not in res.stdout
    assert states(env) == {"t@a": "running", "t@b": "running", "plain": "running"}
    b = env.pid("t@b")
    res = assert_ok(env.sc("stopall"))
    assert "t@b: stopped" in res.stdout and not alive(b)
    assert states(env) == {"t@a": "stopped", "plain": "stopped"}  # t@b no longer shown
    assert_ok(env.sc("stop", "t@never"))  # neither listed nor recorded: already stopped


def test_dependencies_between_templates_and_instances(env: Env) -> None:
    """depends works from a plain service to an instance, and from an instance to another
    template's instance of the same name ({instance} in depends)."""
    sleeper_template(env, "db")
    sleeper_template(env, "web", depends=["db@{instance}"])
    env.sleeper("app", depends=["db@main"])
    res = assert_ok(env.sc("start", "web@x"))
    assert res.stdout.index("db@x: started") < res.stdout.index("web@x: started")
    assert_ok(env.sc("start", "app"))
    assert states(env, "db@main", "db@x", "web@x", "app") == dict.fromkeys(
        ("db@main", "db@x", "web@x", "app"), "running"
    )
    res = assert_ok(env.sc("stop", "db@x"))
    assert "web@x: stopped" in res.stdout and "(it depends on db@x)" in res.stdout
    assert states(env, "db@main", "app") == {"db@main": "running", "app": "running"}
    env.sleeper("broken", depends=["db@"])
    res = assert_ok(env.sc("check", "broken"), 6)
    assert "depends: db@: no such service" in res.stderr
    assert_ok(env.sc("stopall"))
