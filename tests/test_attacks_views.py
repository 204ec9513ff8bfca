"""Attacks on what root runs and shows (docs/security.md R-EXEC, R-VIEW, R-READY, R-NOTIFY,
R-DIR-6, R-ANS-3): root runs nothing a service's user can shape, and no view a local user can
forge, blow up or crash. Each known hole is attacked through the CLI, then its variants.

The attacker is a real unprivileged user made for the test (the service's own ``user:``, or an
unrelated one); the checks are the house's: no traceback, the exit code, nothing root ran from
the attacker's files, and the bounds measured on the real servicectl process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PY, Env, assert_ok, free_port, supervisor_pids, wait_for
from faultkit import USER_PYTHON, User, as_user, assert_clear, owned_by, reachable_dir

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl"
)


def sc(env: Env, *args: str, code: int | None = None, words: tuple[str, ...] = ()) -> Any:
    """Run servicectl (a hang fails the test), check the exit code and that it explains."""
    res = env.sc(*args, timeout=60)
    if code is not None:
        assert_ok(res, code)
    assert_clear(res, *words)
    return res


# ---------------------------------------------------------------------------------------------
# R-EXEC-1: nothing servicectl runs as root resolves code from where another user can write

# Planted code: appends "UID PROGRAM" to the marker each time it is loaded, and then behaves
# as the real module would (so that a shim that loaded it would still run, unnoticed).
PLANT = """
import os, sys
with open({marker!r}, "a") as fh:
    fh.write("%d %s\\n" % (os.getuid(), os.path.basename(sys.argv[0] or "?")))
"""
REAL = """
sys.path = [p for p in sys.path if p not in ("", os.getcwd(), {where!r})]
del sys.modules[__name__]
import importlib
sys.modules[__name__] = importlib.import_module(__name__)
globals().update(vars(sys.modules[__name__]))
"""


def plant_python(where: Path, marker: Path, user: User) -> None:
    """Every way a Python module can be made to load from ``where``: json.py and resource.py
    (what the exec shim imports), a json package, sitecustomize, usercustomize, a .pth file,
    and a user site under where/.local; all the attacker's."""
    code = PLANT.format(marker=str(marker))
    real = REAL.format(where=str(where))
    (where / "json.py").write_text(code + real)
    (where / "resource.py").write_text(code + real)
    (where / "sitecustomize.py").write_text(code)
    (where / "usercustomize.py").write_text(code)
    (where / "zz-servicectl-test.pth").write_text("import os; " + code.strip().replace("\n", "; "))
    site = where / ".local" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = site / "site-packages"
    site.mkdir(parents=True)
    (site / "usercustomize.py").write_text(code)
    (site / "json.py").write_text(code + real)
    for path in [where, *where.rglob("*")]:
        owned_by(path, user)


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
        for extra in ({}, {"nice": 3}, {"check_command": ["/bin/true"]}):
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


# ---------------------------------------------------------------------------------------------
# R-VIEW-1: every text from outside is one escaped line

# What a service's user puts in its argv, comm, socket names, STATUS= and log lines: each
# character must reach root's terminal as a visible escape, never as itself.
CONTROLS = "\n\r\t\x1b[31m\x7f\x85\x9b\u2028\u2029\u202e\u2066\u200f\x00"
FORGED = "\n    State: running\n  Listening: tcp 0.0.0.0:22\n  Processes: 1 /sbin/init"

FORGER = r"""
import os, socket, sys, time
where, kind = sys.argv[1], sys.argv[2]
forged = "\n    State: running\n  Listening: tcp 0.0.0.0:22\n  Processes: 1 /sbin/init"
controls = "\r\t\x1b[31m\x7f\x85\x9b\u2028\u2029\u202e\u2066\u200f"
print("log" + forged + controls, flush=True)
if kind == "notify":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = os.environ["NOTIFY_SOCKET"]
    addr = "\0" + addr[1:] if addr.startswith("@") else addr
    s.sendto(("READY=1\nSTATUS=up" + controls + "\n").encode(), addr)
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind(os.path.join(where, "sock\n  Listening: tcp 0.0.0.0:22\x1b[2J\u202e"))
u.listen()
name = "sleep" + forged + controls
link = os.path.join(where, "x\nState: forged")  # comm: the name of the file executed
if not os.path.lexists(link):
    os.symlink("/bin/sleep", link)
if os.fork() == 0:
    os.execv(link, [name, "300"])
time.sleep(300)
"""


def no_raw_controls(text: str) -> None:
    """Only newlines between lines; every other control is shown as an escape."""
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0]
    bad += [c for c in text if c in "\u2028\u2029\u202e\u2066\u200f"]
    assert bad == [], (bad, text)


def single_lines(out: str) -> None:
    """No line servicectl did not write: one State, one Listening, one Processes line."""
    for label in ("State", "Listening", "Processes"):
        lines = [line for line in out.splitlines() if re.match(rf"\s*{label}:", line)]
        assert len(lines) <= 1, (label, out)
    assert "/sbin/init" not in "\n".join(
        line for line in out.splitlines() if re.match(r"\s*(├─|└─|\|-|`-)?\d+ /sbin", line)
    )


@pytest.mark.parametrize("kind", ["simple", "notify"])
def test_R_VIEW_1_a_service_cannot_forge_lines_in_roots_status(
    env: Env, user: User, kind: str
) -> None:
    """The known hole: ``exec -a $'sleep\\n    State: running'`` printed whole lines of the
    service's choosing. argv, comm, a socket path, STATUS= and log lines, with newlines and every
    other kind of control (C0, DEL, C1, line separators, bidi): all escaped, in the block, the
    board, the JSON and the failure of a start."""
    with reachable_dir(owner=user) as where:
        script = where / "forger.py"
        script.write_text(FORGER)
        extra: dict[str, Any] = {"ready": "notify"} if kind == "notify" else {}
        env.write(
            "web",
            {
                "command": [USER_PYTHON, str(script), str(where), kind],
                "user": user.name,
                "working_directory": str(where),
                "start_grace": 0.5,
                **extra,
            },
        )
        sc(env, "start", "web", code=0)
        wait_for(lambda: len(list(where.glob("sock*"))) == 1, what="the socket")
        block = sc(env, "status", "web", code=0)
        assert "\\n    State: running" in block.stdout and "\\x1b[31m" in block.stdout
        assert "\\u202e" in block.stdout and "\\x85" in block.stdout and "\\t" in block.stdout
        for out in (block.stdout, block.stderr, sc(env, "status").stdout):
            no_raw_controls(out)
            single_lines(out)
        rows = json.loads(sc(env, "status", "--json", "web").stdout)
        assert rows[0]["state"] == "running"
        if kind == "notify":
            assert rows[0]["status_text"].startswith("up\r\t\x1b")  # JSON escapes it itself
        logs = sc(env, "logs", "web", code=0)
        no_raw_controls(logs.stdout)
        sc(env, "stop", "web", code=0)


def test_R_VIEW_1_a_failed_start_and_syslog_escape_what_the_service_said(
    env: Env, user: User
) -> None:
    """A notify service that says STATUS=... with controls (a newline would end the STATUS:
    sd_notify's lines are newline-separated), then dies: the failure message on stderr and the
    line sent to syslog are one line each, escaped."""
    log = env.root / "syslog.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(log))
    listener.settimeout(10)
    said = (
        "import os, socket\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "a = os.environ['NOTIFY_SOCKET']\n"
        "a = '\\0' + a[1:] if a.startswith('@') else a\n"
        f"s.sendto({('STATUS=dying' + CONTROLS.replace(chr(0), '')[1:]).encode()!r}, a)\n"
        "raise SystemExit(3)\n"
    )
    env.write(
        "web",
        {"command": [USER_PYTHON, "-c", said], "user": user.name, "ready": "notify"},
    )
    res = env.sc("start", "web", extra_env={"SERVICECTL_SYSLOG_SOCKET": str(log)})
    assert_ok(res, 1)
    assert_clear(res, "its last status: dying")
    no_raw_controls(res.stderr)
    assert len([x for x in res.stderr.splitlines() if x.startswith("servicectl:")]) == 1
    lines = []
    try:
        while True:
            lines.append(listener.recv(4096).decode("utf-8", "replace"))
            if "dying" in lines[-1]:
                break
    finally:
        listener.close()
    line = lines[-1].split(": ", 1)[1]
    no_raw_controls(line)
    assert "\n" not in line and "dying\\r\\t\\x1b[31m" in line and "\\u202e" in line


# ---------------------------------------------------------------------------------------------
# R-VIEW-2, R-VIEW-3: bounded, and never dying of what /proc says

FORK_AND_EXEC = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\nPEAK-KIB %d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def measured(env: Env, *args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run the CLI through a small forking wrapper; (result, seconds, peak RSS in MiB of the
    servicectl process alone: wait4 reports that child's own high-water mark)."""
    t0 = time.monotonic()
    res = subprocess.run(
        [PY, "-S", "-c", FORK_AND_EXEC, *env.base_args(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, NO_COLOR="1"),
        cwd=env.root,
    )
    elapsed = time.monotonic() - t0
    stderr, _, peak = res.stderr.rpartition("\nPEAK-KIB ")
    return (
        subprocess.CompletedProcess(args, res.returncode, res.stdout, stderr),
        elapsed,
        (int(peak) / 1024),
    )


def best_of(env: Env, *args: str, runs: int = 3) -> tuple[Any, float, float]:
    """``measured`` a few times: (the last result, the least time, the largest peak). The
    least time is the command's own cost on a machine other test runs share."""
    times, peaks = [], []
    for _ in range(runs):
        res, seconds, peak = measured(env, *args)
        assert res.returncode == 0 and "Traceback" not in res.stdout + res.stderr, res
        times.append(seconds)
        peaks.append(peak)
    return res, min(times), max(peaks)


SPRAWL = r"""
import os, resource, sys, time
children, megabytes = int(sys.argv[1]), float(sys.argv[2])
resource.setrlimit(resource.RLIMIT_STACK, (256 << 20, 256 << 20))
words = ["0" * 100_000] * max(1, int(megabytes * 10))  # sleep reads each "000..." as 0 s
for _ in range(children):
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "300", *words])
print("forked", flush=True)
time.sleep(300)
"""

CHAIN = r"""
import os, signal, sys
depth = int(sys.argv[1])
for level in range(depth):
    if os.fork() != 0:
        signal.pause()  # every level waits for ever: a chain depth processes long
print("deepest", os.getpid(), flush=True)
signal.pause()
"""


def exec_count(pid: int, head: bytes) -> int:
    """How many children of ``pid`` run a program whose arguments begin with ``head``."""
    count = 0
    for child in proc_children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                count += fh.read(len(head)) == head
        except OSError:
            continue
    return count


def test_R_VIEW_2_a_sprawling_service_costs_root_under_a_second_and_64_mib(
    env: Env, user: User
) -> None:
    """The known hole: 300 children with 6 MB of argv each made ``status NAME`` take 36 s and
    5.2 GB and print 1.8 GB. Here 300 children with 2 MB each (the bound does not depend on the
    size): under a second, under 64 MiB, a few KiB of output, the rest counted."""
    with reachable_dir(owner=user) as where:
        script = where / "sprawl.py"
        script.write_text(SPRAWL)
        env.write(
            "web",
            {
                "command": [USER_PYTHON, str(script), "300", "2"],
                "user": user.name,
                "start_grace": 0.1,
            },
        )
        sc(env, "start", "web", code=0)
        main = env.pid("web")
        wait_for(lambda: exec_count(main, b"sleep\0") >= 300, 60, "300 children")
        argv = Path(f"/proc/{max(proc_children(main))}/cmdline").read_bytes()
        assert len(argv) > 2_000_000
        for args in (("status", "web"), ("status",), ("status", "--json", "web")):
            res, seconds, peak = best_of(env, *args)
            assert seconds < 1.0 and peak < 64, (args, seconds, peak)
            assert len(res.stdout) < 200_000, len(res.stdout)
        block = measured(env, "status", "web")[0].stdout
        assert ", 301 processes)" in block and "and 251 more processes" in block
        assert max(len(line) for line in block.splitlines()) < 2200
        sc(env, "stop", "web", code=0)


def proc_children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return out


CHAIN_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int depth = atoi(argv[1]);
    for (int i = 0; i < depth; i++)
        if (fork() != 0)
            for (;;) pause();
    printf("deepest %d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
"""


def chain_command(where: Path, depth: int) -> list[str]:
    """A program that makes a chain ``depth`` processes deep: in C where a compiler is (a fork
    costs the least there), else in Python."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        script = where / "chain.py"
        script.write_text(CHAIN)
        return [USER_PYTHON, str(script), str(depth)]
    (where / "chain.c").write_text(CHAIN_C)
    subprocess.run([cc, "-O2", "-o", str(where / "chain"), str(where / "chain.c")], check=True)
    return [str(where / "chain"), str(depth)]


def test_R_VIEW_3_a_chain_of_1100_processes_is_drawn_without_recursion(
    env: Env, user: User
) -> None:
    """The known hole: a chain about 1,100 deep crashed ``status NAME`` (RecursionError). Now
    drawn iteratively, its depth bounded, the rest counted, in under a second."""
    with reachable_dir(owner=user) as where:
        command = chain_command(where, 1100)
        env.write(
            "web",
            {
                "command": command,
                "user": user.name,
                "start_grace": 0.1,
                "stop_timeout": 20,
            },
        )
        sc(env, "start", "web", code=0)
        log = env.log / "web.log"
        wait_for(lambda: log.exists() and "deepest" in log.read_text(), 300, "the chain")
        res, seconds, peak = best_of(env, "status", "web")
        assert ", 1101 processes)" in res.stdout and "1051 more processes" in res.stdout
        assert seconds < 1.0 and peak < 64, (seconds, peak)
        tree = [x for x in res.stdout.splitlines() if re.search(r"\d+ \S*chain\S* ", x)]
        tree = [x for x in tree if "Command:" not in x]
        assert len(tree) == 50 and max(len(line) for line in tree) < 300
        # Found with it: stop holds a pidfd per member, and under the usual soft limit of 1024
        # descriptors the thousandth left none for /proc (EMFILE). servicectl makes room.
        res = subprocess.run(
            [*env.base_args(), "stop", "web"],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=soft_descriptor_limit,  # noqa: PLW1509 - a test's own child
        )
        assert_ok(res)
        assert_clear(res, "stopped")


def soft_descriptor_limit() -> None:
    """The usual soft limit of a root shell: 1024 descriptors."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


def abstract_forger(user: User, text: str) -> subprocess.Popen[bytes]:
    """Another local user binds an abstract unix socket named ``text`` (newlines and all) and
    keeps it: a line of /proc/net/unix becomes what it says."""
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "s.bind(b'\\0' + sys.argv[1].encode())\n"
        "s.listen()\n"
        "print('bound', flush=True)\n"
        "time.sleep(300)\n"
    )
    p = subprocess.Popen(
        [USER_PYTHON, "-c", code, text],
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        stdout=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdout.readline() == b"bound\n"
    return p


def test_R_VIEW_3_any_user_cannot_crash_or_forge_the_socket_view(env: Env, user: User) -> None:
    """The known hole: an abstract socket name with a newline made psutil raise RuntimeError for
    every service holding a socket. Now the tables are parsed line by line: the malformed line is
    skipped, and a forged line that claims the service's socket is seen for what it is."""
    port = free_port()
    listener = (
        "import socket, time\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen()\n"
        f"u = socket.socket(socket.AF_UNIX); u.bind('\\0servicectl-real-{port}'); u.listen()\n"
        "time.sleep(300)\n"
    )
    env.write("web", {"command": [PY, "-c", listener], "start_grace": 0.3})
    sc(env, "start", "web", code=0)
    inode = next(
        line.split()[6]
        for line in Path("/proc/net/unix").read_text().splitlines()
        if f"servicectl-real-{port}" in line
    )
    forgers = [
        abstract_forger(user, "x\nState: running\n0000: 00000002 00000000 00010000"),
        abstract_forger(
            user,
            f"y\n0000000000000000: 00000002 00000000 00010000 0001 01 {inode} /forged/path",
        ),
    ]
    try:
        for _ in range(3):
            res = sc(env, "status", "web", code=0)
            assert f"tcp 127.0.0.1:{port}" in res.stdout
            assert "/forged/path" not in res.stdout and "forged line" in res.stdout
            no_raw_controls(res.stdout)
            single_lines(res.stdout)
    finally:
        for p in forgers:
            p.kill()
            p.wait()
    res = sc(env, "status", "web", code=0)
    assert f"unix @servicectl-real-{port} (stream)" in res.stdout
    sc(env, "stop", "web", code=0)


CHURN = r"""
import os, sys, time
# children that exit at once, all the time: every /proc read may find its process gone
while True:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_R_VIEW_3_processes_vanishing_mid_read_and_many_descriptors(env: Env, user: User) -> None:
    """Variants: a service forking and reaping children as fast as it can (each /proc read may
    find its process gone), and one holding 17,500 descriptors (the fd walk is bounded)."""
    with reachable_dir(owner=user) as where:
        script = where / "churn.py"
        script.write_text(CHURN)
        many = (
            "import os, socket, time\n"
            "keep = [socket.socket() for _ in range(2500)]\n"
            "keep += [os.open('/dev/null', os.O_RDONLY) for _ in range(15000)]\n"
            "print('open', flush=True)\n"
            "time.sleep(300)\n"
        )
        env.write(
            "churn",
            {"command": [USER_PYTHON, str(script)], "user": user.name, "start_grace": 0.1},
        )
        env.write(
            "many",
            {
                "command": [USER_PYTHON, "-c", many],
                "user": user.name,
                "limits": {"nofile": 19000},
                "start_grace": 0.1,
            },
        )
        sc(env, "start", "churn", "many", code=0)
        wait_for(lambda: "open" in (env.log / "many.log").read_text(), 30, "17,500 fds")
        res, seconds, peak = best_of(env, "status", "churn", "many", runs=5)
        assert seconds < 1.5 and peak < 64, (seconds, peak)
        sc(env, "stop", "churn", "many", code=0)


# ---------------------------------------------------------------------------------------------
# R-READY-1: readiness is the service's own

SQUATTER = r"""
import http.server, os, socket, sys, time
kind, where = sys.argv[1], sys.argv[2]
if kind == "unix":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(where)
    s.listen()
    print("listening", flush=True)
    while True:
        s.accept()[0].close()
host, port = where.rsplit(":", 1)
family = socket.AF_INET6 if ":" in host else socket.AF_INET
class Server(http.server.HTTPServer):
    address_family = family
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"not the service\n")
    def log_message(self, *args):
        pass
server = Server((host.strip("[]"), int(port)), Ok)
print("listening", flush=True)
server.serve_forever()
"""

# The service: binds the address (or fails, as http.server does with EADDRINUSE); with
# "stay", it lives on after a failed bind (a daemon that logs the error and carries on).
SERVICE = r"""
import http.server, os, socket, sys, time
kind, where, after = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(where)
        s.listen()
    else:
        host, port = where.rsplit(":", 1)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        class Server(http.server.HTTPServer):
            address_family = family
        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers()
            def log_message(self, *args):
                pass
        if after != "child" or os.fork() == 0:  # "child": a worker of the main process holds it
            Server((host.strip("[]"), int(port)), Ok).serve_forever()
except OSError as exc:
    print("bind failed:", exc, flush=True)
    if after != "stay":
        raise SystemExit(1)
time.sleep(300)
"""


def squat(user: User, kind: str, where: str) -> subprocess.Popen[bytes]:
    """Another user's program that answers the address first."""
    p = subprocess.Popen(
        [USER_PYTHON, "-c", SQUATTER, kind, where],
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        stdout=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdout.readline() == b"listening\n"
    return p


def ready_of(kind: str, where: str) -> dict[str, str]:
    if kind == "http":
        return {"http": f"http://{where}/"}
    return {kind: where}


@pytest.mark.parametrize(
    ("kind", "host"), [("http", "127.0.0.1"), ("tcp", "127.0.0.1"), ("tcp", "[::1]"), ("unix", "")]
)
@pytest.mark.parametrize("after", ["die", "stay"])
def test_R_READY_1_a_probe_answered_by_another_program_is_not_readiness(
    env: Env, user: User, kind: str, host: str, after: str
) -> None:
    """The known hole: another program already on 127.0.0.1:PORT answered the probe of a service
    whose own bind had failed, and start said "started" (exit 0) while it died. Now a probe
    counts only if the socket that answered is one of the service's processes'; a service that
    died is never ready; one that lives on without its socket times out, saying who answered."""
    with reachable_dir(owner=user) as where:
        address = str(where / "sock") if kind == "unix" else f"{host}:{free_port()}"
        try:
            squatter = squat(user, "unix" if kind == "unix" else "http", address)
        except OSError:
            pytest.skip("no IPv6 on this machine")
        try:
            env.write(
                "web",
                {
                    "command": [PY, "-c", SERVICE, kind, address, after],
                    "ready": ready_of(kind, address),
                    "start_timeout": 3,
                },
            )
            res = sc(env, "start", "web", code=1)
            if after == "stay":
                assert "none of the service's processes" in res.stderr, res.stderr
            else:
                assert "failed to start" in res.stderr, res.stderr
            assert not (env.run / "web.pid").exists()
            assert squatter.poll() is None  # the other program was left alone
        finally:
            squatter.kill()
            squatter.wait()


@pytest.mark.parametrize(("kind", "after"), [("http", "child"), ("tcp", "main"), ("unix", "main")])
def test_R_READY_1_the_services_own_socket_is_readiness(
    env: Env, user: User, kind: str, after: str
) -> None:
    """The service's own listener, in its main process or a child of it, as its user: ready."""
    with reachable_dir(owner=user) as where:
        address = str(where / "sock") if kind == "unix" else f"127.0.0.1:{free_port()}"
        script = where / "service.py"
        script.write_text(SERVICE)
        env.write(
            "web",
            {
                "command": [USER_PYTHON, str(script), kind, address, after],
                "user": user.name,
                "ready": ready_of(kind, address),
                "start_timeout": 10,
            },
        )
        res = sc(env, "start", "web", code=0)
        assert "readiness:" not in res.stdout  # it could tell
        sc(env, "stop", "web", code=0)


def test_R_READY_1_where_it_cannot_tell_it_says_so(env: Env) -> None:
    """A service in a network namespace of its own (unshare -n): what answered in servicectl's
    namespace cannot be told to be its or not; the start goes on and says so, and so does
    status."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    port = free_port()
    other = subprocess.Popen(
        [PY, "-c", SQUATTER, "http", f"127.0.0.1:{port}"], stdout=subprocess.PIPE
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == b"listening\n"
        env.write(
            "web",
            {
                "command": ["unshare", "-n", PY, "-c", SERVICE, "tcp", f"127.0.0.1:{port}", "x"],
                "ready": {"tcp": f"127.0.0.1:{port}"},
                "start_timeout": 5,
            },
        )
        res = env.sc("start", "web")
        if res.returncode != 0 and "unshare" in res.stderr:
            pytest.skip(f"unshare -n is not allowed here: {res.stderr[-200:]}")
        assert_ok(res)
        assert "readiness: the service is in another network namespace" in res.stdout
        assert "another network namespace" in sc(env, "status", "web", code=0).stdout
        sc(env, "stop", "web", code=0)
    finally:
        other.kill()
        other.wait()


# ---------------------------------------------------------------------------------------------
# R-READY-2: a ready file is this start's


TOUCHER = r"""
import os, sys, time
path, how = sys.argv[1], sys.argv[2]
time.sleep(0.2)
if how == "touch":
    os.utime(path)  # an existing file, written again
elif how == "recreate":
    os.unlink(path)
    open(path, "w").close()
time.sleep(300)
"""


@pytest.mark.parametrize("how", ["nothing", "touch", "recreate"])
def test_R_READY_2_a_ready_file_from_an_earlier_run_does_not_count(
    env: Env, user: User, how: str
) -> None:
    """The known hole: a ready file left by an earlier run made the next start ready at once (and
    its dependents start too early). A file whose change time predates this start does not
    count; one the service writes or touches during the start does."""
    with reachable_dir(owner=user) as where:
        ready = where / "ready"
        ready.write_text("from the last run\n")
        owned_by(ready, user)
        old = time.time() - 3600
        os.utime(ready, (old, old))
        time.sleep(0.02)  # its ctime (now) is before the start's clock
        script = where / "toucher.py"
        script.write_text(TOUCHER)
        env.write(
            "web",
            {
                "command": [USER_PYTHON, str(script), str(ready), how],
                "user": user.name,
                "ready": {"file": str(ready)},
                "start_timeout": 2,
            },
        )
        env.write("dep", {"command": "sleep 300", "depends": ["web"], "start_grace": 0.1})
        if how == "nothing":
            res = sc(env, "start", "dep", code=1, words=("is from before this start",))
            assert "dep" in res.stderr and not (env.run / "dep.pid").exists()
        else:
            sc(env, "start", "dep", code=0)
            sc(env, "stop", "dep", "web", code=0)


# ---------------------------------------------------------------------------------------------
# R-NOTIFY: READY=1 from the service's processes, whatever user they switched to; no one else's

DROPPER = r"""
import os, socket, sys, time
uid = int(sys.argv[1])
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
os.setgroups([])
os.setgid(uid)
os.setuid(uid)  # mosquitto drops privileges first, then says it is ready
if len(sys.argv) > 2:  # a worker says it: a child in a session of its own, still a descendant
    if os.fork() != 0:
        time.sleep(300)
    os.setsid()
    time.sleep(0.2)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1\nSTATUS=up", addr)
time.sleep(300)
"""


@pytest.mark.parametrize("who", ["main", "worker"])
def test_R_NOTIFY_1_a_root_service_that_drops_privileges_can_say_ready(
    env: Env, user: User, who: str
) -> None:
    """The known hole: without ``user:``, the notify socket was root's and 0600, so a daemon that
    switched user before READY=1 never became ready (30 s, and no hint). A service that runs as
    root gets a socket every user may write to; the sender is checked instead (R-NOTIFY-3)."""
    argv = [PY, "-c", DROPPER, str(user.uid), *(["worker"] if who == "worker" else [])]
    env.write("web", {"command": argv, "ready": "notify", "start_timeout": 5})
    t0 = time.monotonic()
    sc(env, "start", "web", code=0)
    assert time.monotonic() - t0 < 4
    assert "up" in sc(env, "status", "web", code=0).stdout
    sc(env, "stop", "web", code=0)


def test_R_NOTIFY_3_another_users_ready_is_refused_and_said(env: Env, user: User) -> None:
    """The open socket of a root service: another local user who sends READY=1 to it is
    refused (not a process of the service), and the failure says so."""
    env.write("web", {"command": "sleep 300", "ready": "notify", "start_timeout": 3})
    proc = env.popen("start", "web")
    state = env.run / "web.state"
    wait_for(state.exists, 10, "the start's record")
    address = json.loads(state.read_text())["notify_socket"]  # world-readable: no secret
    code = (
        "import socket, sys\n"
        "a = sys.argv[1]\n"
        "a = '\\0' + a[1:] if a.startswith('@') else a\n"
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', a)\n"
        "import time; time.sleep(1)\n"
    )
    sent = as_user(user, USER_PYTHON, "-c", code, address)
    assert sent.returncode == 0, sent.stderr
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, (out, err)
    assert "refused: a notify message from PID" in err and f"(uid {user.uid})" in err, err
    assert "not a process of the service" in err


# ---------------------------------------------------------------------------------------------
# R-VIEW-4: no traceback, anywhere: the last net

# An exception servicectl does not expect, injected into the real CLI process (what a bug would
# raise): the injected function raises for the services named in INJECT only.
INJECT = r"""
import os, sys
from servicectl.service import lifecycle, status_row
names = set(os.environ["INJECT"].split())
def broken(real):
    def call(svc, *args, **kwargs):
        if svc.name in names:
            raise RuntimeError("injected\n    State: forged \x1b[2J")
        return real(svc, *args, **kwargs)
    return call
status_row.status = broken(status_row.status)
lifecycle.start = broken(lifecycle.start)
if os.environ.get("INJECT_ALL"):
    import servicectl.commands.control as control
    import servicectl.commands.views as views
    def boom(*args, **kwargs):
        raise KeyError("everything")
    views.status = boom
    control.start = boom
from servicectl.cli.main import main
sys.argv[0] = "servicectl"
main()
"""


def injected(env: Env, names: str, *args: str, everything: bool = False) -> Any:
    environ = dict(os.environ, NO_COLOR="1", INJECT=names)
    if everything:
        environ["INJECT_ALL"] = "1"
    return subprocess.run(
        [USER_PYTHON, "-I", "-c", INJECT, *env.base_args()[1:], *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        cwd=env.root,
    )


def test_R_VIEW_4_an_unexpected_exception_is_one_line_naming_command_and_service(
    env: Env,
) -> None:
    """An internal error in one service's status or start: that service's line says "internal
    error", its type and message (escaped); the other services are shown and started; exit 4
    for status, 1 for start; a traceback only with --debug."""
    env.sleeper("a")
    env.sleeper("b")
    res = injected(env, "a", "status")
    assert res.returncode == 4 and "Traceback" not in res.stdout + res.stderr, res
    assert "internal error in status: RuntimeError: injected\\n    State: forged" in res.stdout
    assert re.search(r"^b\s+stopped", res.stdout, re.M), res.stdout
    no_raw_controls(res.stdout + res.stderr)
    res = injected(env, "a", "start", "a", "b")
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr, res
    assert "servicectl: a: internal error in start: RuntimeError: injected\\n" in res.stderr
    assert "b: started" in res.stdout
    debug = injected(env, "a", "--debug", "start", "a")
    assert "Traceback (most recent call last)" in debug.stderr and debug.returncode == 1
    assert_ok(env.sc("stop", "b"))


def test_R_VIEW_4_the_last_net_of_the_command_itself(env: Env) -> None:
    """An exception out of the command body: one line ``servicectl: COMMAND NAME: internal
    error: TypeName: message``, exit 4 for status and 1 for the others; --debug (before or
    after the command) adds the traceback."""
    env.sleeper("web")
    res = injected(env, "", "status", "web", everything=True)
    assert res.returncode == 4, res
    assert res.stderr == "servicectl: status web: internal error: KeyError: 'everything'\n"
    res = injected(env, "", "start", "web", everything=True)
    assert res.returncode == 1
    assert res.stderr == "servicectl: start web: internal error: KeyError: 'everything'\n"
    for args in (("--debug", "status", "web"), ("status", "web", "--debug")):
        res = injected(env, "", *args, everything=True)
        assert res.returncode == 4 and "Traceback (most recent call last)" in res.stderr, res
        assert res.stderr.startswith("servicectl: status web: internal error: KeyError")


def test_R_VIEW_4_the_supervisor_logs_what_it_did_not_expect(env: Env) -> None:
    """The supervisor's last net: an unexpected exception is a line "internal error" and its
    traceback in its own log (its stderr), exit 1; never a silent death."""
    code = "import sys\nfrom servicectl.supervisor.daemon import run\nsys.exit(run(sys.argv[1:]))\n"
    env.run.mkdir(mode=0o755)
    res = subprocess.run(
        [USER_PYTHON, "-I", "-c", code, str(env.run), "not-a-descriptor"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1, res
    first = next(line for line in res.stderr.splitlines() if "internal error" in line)
    assert "servicectl-supervisor" in first and "internal error: ValueError" in first, first
    assert "Traceback" in res.stderr  # in the log, where it belongs


# ---------------------------------------------------------------------------------------------
# R-DIR-6: configuration directories stay root's


CHRONY = """[Unit]
Description=chrony, an NTP client/server

[Service]
Type=simple
ExecStart=/bin/sleep 300
User={user}
ConfigurationDirectory={name}
StateDirectory={name}
"""


def test_R_DIR_6_import_and_start_never_hand_a_configuration_directory_over(
    env: Env, user: User
) -> None:
    """The known hole: ``import`` of chrony.service made /etc/chrony the daemon's user's, and the
    first start chowned it. The import now keeps it root's (as systemd does: ConfigurationDirectory
    is never chowned), and ``directories:`` refuses to hand over an existing directory outside
    the state, runtime, log and cache trees unless the entry names its owner."""
    unit = env.root / "chronyd.service"
    unit.write_text(CHRONY.format(user=user.name, name="chrony"))
    res = sc(env, "import", str(unit), code=0)
    assert "path: /etc/chrony\n  owner: root\n  group: root" in res.stdout, res.stdout
    assert "- /var/lib/chrony" in res.stdout
    with reachable_dir() as etc:
        conf = etc / "chrony"
        conf.mkdir(mode=0o750)
        (conf / "chrony.conf").write_text("server pool.example\n")
        base = {"command": "sleep 300", "user": user.name, "start_grace": 0.1}
        for entry in (
            [str(conf)],
            [{"path": str(conf), "mode": "0750"}],
            [{"path": str(conf), "group": user.name}],
        ):
            env.write("chrony", {**base, "directories": entry})
            res = sc(env, "start", "chrony", code=6, words=("R-DIR-6", str(conf), "owner:"))
            st = conf.stat()
            assert (st.st_uid, st.st_gid) == (0, 0)
        env.write(
            "chrony",
            {**base, "directories": [{"path": str(conf), "owner": "root", "mode": "0750"}]},
        )
        sc(env, "start", "chrony", code=0)
        assert conf.stat().st_uid == 0
        sc(env, "stop", "chrony", code=0)
        env.write("chrony", {**base, "directories": [{"path": str(conf), "owner": user.name}]})
        sc(env, "start", "chrony", code=0)  # named: the administrator's explicit choice
        assert conf.stat().st_uid == user.uid
        sc(env, "stop", "chrony", code=0)
        fresh = etc / "fresh"
        env.write("chrony", {**base, "directories": [str(fresh)]})
        sc(env, "start", "chrony", code=0)  # made now: the service's, as always
        assert fresh.stat().st_uid == user.uid
        sc(env, "stop", "chrony", code=0)


# ---------------------------------------------------------------------------------------------
# R-ANS-3: the Ansible module runs servicectl from its installation alone

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


# ---------------------------------------------------------------------------------------------
# R-EXEC-3: what runs for a service runs with its user's credentials, and no more

GROUPS = "import os, sys; open(sys.argv[1], 'a').write(' '.join(map(str, os.getgroups())) + '\\n')"


def test_R_EXEC_3_commands_run_with_the_users_groups_not_roots(env: Env, user: User) -> None:
    """Found in this round: the readiness command switched uid and gid but kept root's
    supplementary groups (gid 0 among them: every group-root file open to it). Now the program,
    its config test, its readiness command and its actions all carry the user's groups alone."""
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


# ---------------------------------------------------------------------------------------------
# R-PROG-1: the program's #! line is read only from a regular file, without blocking


def _plant(path: Path, kind: str) -> None:
    """A FIFO or a character device (a copy of /dev/null's) at ``path``, mode 0755."""
    import stat

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
