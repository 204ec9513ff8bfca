"""Attacks on what root runs for a service (docs/security.md): no interpreter root starts (the
exec shim, config tests, reload and action commands, readiness commands, the supervisor) loads
code the service's user wrote (R-EXEC-1); the working directory is entered as the user
(R-EXEC-2); commands run with the user's groups, never root's (R-EXEC-3); and the program's #!
line is read from a regular file only (R-PROG-1).

The attacker is the service's own ``user:``, who plants json.py, sitecustomize, a .pth file, a
user site and an LD_PRELOAD library where the service runs, or a FIFO or device where its
program should be. The checks: a marker file says which uid loaded each planted module (never
0), the groups and the current directory of what ran are read back from the processes, nothing
hung, no traceback, and the exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Env, assert_ok, supervisor_pids, wait_for
from faultkit import PLANT, USER_PYTHON, User, as_user, plant_python, reachable_dir, sc

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)


# -- R-EXEC: nothing root runs loads what another user wrote, or runs with more than theirs --------


def root_loads(marker: Path) -> list[str]:
    """The lines of the marker written by root (uid 0): code root ran from the plant."""
    try:
        lines = marker.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [line for line in lines if line.split()[0] == "0"]


def preload_library(where: Path, marker: Path) -> Path | None:
    """A shared library that appends the uid that loaded it to ``marker`` (None without cc)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    source = where / "hook.c"
    source.write_text(
        "#include <stdio.h>\n#include <unistd.h>\n"
        "__attribute__((constructor)) static void hook(void) {\n"
        f'  FILE *f = fopen("{marker}", "a");\n'
        '  if (f) { fprintf(f, "%d preload\\n", (int)getuid()); fclose(f); }\n}\n'
    )
    lib = where / "hook.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    lib.chmod(0o755)
    return lib


def exec_service(env: Env, user: User, where: Path, **extra: Any) -> None:
    """A service of ``user`` started through the exec shim (nice:), in the attacker's directory,
    with the attacker's variables in its environment (the administrator meant them for the
    service, which may load what its user wrote)."""
    spec: dict[str, Any] = {
        "command": ["/bin/sleep", "300"],
        "user": user.name,
        "nice": 5,
        "limits": {"nofile": 512},
        "working_directory": str(where),
        "start_grace": 0.2,
        "environment": {
            "PYTHONPATH": str(where),
            "PYTHONSTARTUP": str(where / "json.py"),
            "PYTHONHOME": str(where),
            "PYTHONUSERBASE": str(where / ".local"),
            "HOME": str(where),
        },
    }
    spec.update(extra)
    env.write("web", spec)


def test_R_EXEC_1_the_exec_shim_loads_nothing_the_services_user_wrote(env: Env, user: User) -> None:
    """The known hole: with nice: or limits:, root ran ``python -S -E -c SHIM`` in the
    service's working directory, so the json.py its user wrote there ran as uid 0 at every start
    and respawn. Now the shim is isolated (-I -S) and starts in "/": none of the plants loads as
    root, at a start, a restart or a respawn the attacker triggers by killing its process."""
    with reachable_dir(owner=user) as where:
        marker = where / "loaded"
        plant_python(where, marker, user)
        lib = preload_library(where, marker)
        extra: dict[str, Any] = {"restart": "on-failure", "restart_delay": 0.1}
        exec_service(env, user, where, **extra)
        if lib is not None:
            spec = json.loads(json.dumps(extra))
            exec_service(env, user, where, **spec)
            text = (env.services / "web.yaml").read_text()
            text = text.replace("environment:\n", f"environment:\n  LD_PRELOAD: {lib}\n")
            (env.services / "web.yaml").write_text(text)
        sc(env, "start", "web", code=0)
        pid = env.pid("web")
        assert os.readlink(f"/proc/{pid}/cwd") == str(where)
        sc(env, "restart", "web", code=0)
        pid = env.pid("web")
        assert as_user(user, "kill", "-KILL", str(pid)).returncode == 0
        wait_for(
            lambda: (env.run / "web.pid").exists() and env.pid("web") != pid,
            20,
            "the respawn",
        )
        assert root_loads(marker) == [], marker.read_text()
        if lib is not None:  # the service itself loaded it, as its user: the admin's choice
            loads = marker.read_text().split()
            assert f"{user.uid}" in loads and "preload" in loads, loads
        sc(env, "stop", "web", code=0)


@pytest.mark.parametrize("key", ["check_command", "reload_command", "action", "ready"])
def test_R_EXEC_1_commands_run_for_the_service_load_nothing_as_root(
    env: Env, user: User, key: str
) -> None:
    """check_command, reload_command, a command action and a readiness command: each runs as
    the service's user, entering its directory after the switch; no interpreter root runs for
    them loads the plants (the command's own Python, as the user, may: it is the user's)."""
    with reachable_dir(owner=user) as where:
        marker = where / "loaded"
        plant_python(where, marker, user)
        probe = [USER_PYTHON, "-c", "import json, resource"]
        extra: dict[str, Any] = {"start_grace": 0.1}
        if key == "check_command":
            extra["check_command"] = probe
        elif key == "reload_command":
            extra["reload_command"] = probe
        elif key == "action":
            extra["actions"] = {"poke": {"command": probe}}
        else:
            extra["ready"] = {"command": probe}
        exec_service(env, user, where, **extra)
        spec = env.services / "web.yaml"  # a PYTHONHOME would stop the command's own Python
        spec.write_text("\n".join(x for x in spec.read_text().split("\n") if "PYTHONHOME" not in x))
        sc(env, "start", "web", code=0)
        if key == "reload_command":
            sc(env, "reload", "web", code=0)
        if key == "action":
            sc(env, "action", "web", "poke", code=0)
        users = {line.split()[0] for line in marker.read_text().splitlines()}
        assert users == {str(user.uid)}, marker.read_text()  # it ran, as the user only
        sc(env, "stop", "web", code=0)


def test_R_EXEC_1_the_supervisor_loads_nothing_from_cwd_pythonpath_or_home(
    env: Env, user: User
) -> None:
    """The supervisor is root's long-lived interpreter: started -I in "/", with no PYTHON*
    variable, it loads servicectl from the package that started it and nothing from the
    command's directory, PYTHONPATH, PYTHONSTARTUP or HOME."""
    with reachable_dir(owner=user) as where:
        marker = where / "loaded"
        plant_python(where, marker, user)
        (where / "servicectl").mkdir()
        (where / "servicectl" / "__init__.py").write_text(PLANT.format(marker=str(marker)))
        env.write("web", {"command": "sleep 300", "restart": "always", "start_grace": 0.1})
        planted = {
            "PYTHONPATH": str(where),
            "PYTHONSTARTUP": str(where / "json.py"),
            "PYTHONUSERBASE": str(where / ".local"),
            "HOME": str(where),
        }
        res = subprocess.run(
            [
                USER_PYTHON,
                "-I",
                "-m",
                "servicectl",
                *env.base_args()[1:],
                "start",
                "web",
            ],  # isolated
            capture_output=True,
            text=True,
            timeout=60,
            cwd=where,
            env={**os.environ, **planted, "NO_COLOR": "1"},
        )
        assert_ok(res)
        (sup,) = supervisor_pids(env.run)
        argv = Path(f"/proc/{sup}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{sup}/environ").read_bytes().split(b"\0")
        assert argv[1] == b"-I" and os.readlink(f"/proc/{sup}/cwd") == "/"
        assert not [v for v in environ if v.startswith(b"PYTHON")], environ
        assert root_loads(marker) == [], marker.read_text()
        sc(env, "stop", "web", code=0)


def test_R_EXEC_2_the_working_directory_is_entered_as_the_user(env: Env, user: User) -> None:
    """root used to enter the working directory before the user switch: a directory behind a
    root-only parent (0700) became the service's current directory, whatever its parents
    said. Now the service's user enters it itself, or the start fails and says why; the same
    for the exec shim, a config test and a readiness command."""
    with reachable_dir() as top:
        closed = top / "closed"
        closed.mkdir(mode=0o700)
        inside = closed / "pub"
        inside.mkdir(mode=0o755)
        (inside / "secret").write_text("root's\n")
        base = {"command": ["/bin/sleep", "300"], "user": user.name, "start_grace": 0.1}
        # start_grace 0 with the shim: no grace hides a watch that took the shim (which
        # enters the directory itself, tens of ms after its exec) for the program
        variants = ({}, {"nice": 3}, {"nice": 3, "start_grace": 0}, {"limits": {"nofile": 512}})
        for extra in (*variants, {"check_command": ["/bin/true"]}):
            env.write("web", {**base, **extra, "working_directory": str(inside)})
            res = sc(env, "start", "web", words=(str(inside),))
            assert res.returncode in (1, 6), res
            assert "cannot enter" in res.stderr or "working directory" in res.stderr
            assert not (env.run / "web.pid").exists()
        env.write("web", {**base, "working_directory": str(top)})
        sc(env, "start", "web", code=0)
        assert os.readlink(f"/proc/{env.pid('web')}/cwd") == str(top)
        environ = Path(f"/proc/{env.pid('web')}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith((b"PWD=", b"OLDPWD="))], environ
        sc(env, "stop", "web", code=0)


GROUPS = "import os, sys; open(sys.argv[1], 'a').write(' '.join(map(str, os.getgroups())) + '\\n')"


def test_R_EXEC_3_commands_run_with_the_users_groups_not_roots(env: Env, user: User) -> None:
    """The known hole: the readiness command switched uid and gid but kept root's supplementary
    groups (gid 0 among them: every group-root file open to it). Now the program, its config
    test, its readiness command and its actions all carry the user's groups alone."""
    with reachable_dir(owner=user) as where:
        out = where / "groups"
        run = [USER_PYTHON, "-c", GROUPS, str(out)]
        env.write(
            "web",
            {
                "command": [
                    USER_PYTHON,
                    "-c",
                    GROUPS + "; import time; time.sleep(300)",
                    str(out),
                ],
                "user": user.name,
                "check_command": run,
                "ready": {"command": run},
                "actions": {"poke": {"command": run}},
                "start_timeout": 10,
            },
        )
        sc(env, "start", "web", code=0)
        sc(env, "action", "web", "poke", code=0)
        wait_for(lambda: len(out.read_text().splitlines()) >= 4, 10, "four runs")
        seen = set(out.read_text().split())
        assert seen <= {str(user.gid)}, seen  # never 0, never another of root's groups
        sc(env, "stop", "web", code=0)


# -- R-PROG-1: the program's #! line is read only from a regular file, without blocking ------------


def _plant(path: Path, kind: str) -> None:
    """A FIFO or a character device (a copy of /dev/null's) at ``path``, mode 0755."""
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.mknod(path, stat.S_IFCHR | 0o755, os.makedev(1, 3))
    path.chmod(0o755)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_R_PROG_1_a_fifo_or_device_as_the_program_hangs_nothing(env: Env, kind: str) -> None:
    """A FIFO (or a device) where the program should be, from the start or swapped in under a
    running service, hangs neither check, start, nor root's status: reading a script's #! line
    never opens it. A script whose interpreter is missing is exit 5 before the fork."""
    odd = env.root / "odd-program"
    _plant(odd, kind)
    env.write("odd", {"command": [str(odd)], "start_timeout": 5})
    sc(env, "check", "--run-checks", "odd", code=5, words=("odd",))
    sc(env, "start", "odd", code=5, words=("odd",))
    script = env.root / "swapped"
    script.write_text("#!/bin/sh\nexec sleep 300\n")
    script.chmod(0o755)
    env.write("swap", {"command": [str(script)]})
    sc(env, "start", "swap", code=0)
    script.unlink()
    _plant(script, kind)
    res = sc(env, "status", "swap")
    assert res.returncode in (0, 4), res  # judged without reading the FIFO, whatever it says
    sc(env, "stop", "swap", code=0)
    script.unlink()
    script.write_text("#!/nonexistent/sh\nexec sleep 300\n")
    script.chmod(0o755)
    res = sc(env, "start", "swap", code=5, words=("/nonexistent/sh", "#! line"))
    assert "status 127" not in res.stderr
