"""Attacks on what root shows (docs/security.md): every text from a service is one escaped line
(R-VIEW-1); a service's processes cost root's status a bounded time and memory (R-VIEW-2); what
/proc says, forged, malformed or vanishing, never crashes nor fools a view (R-VIEW-3); and an
exception servicectl did not expect is one line naming the command and the service (R-VIEW-4).

The attacker is a real unprivileged user made for the test: argv, comm, socket names, STATUS=
and log lines full of controls and forged lines; hundreds of children with megabytes of
arguments, a chain 1,100 processes deep, abstract sockets named to forge lines of
/proc/net/unix. The checks: no raw control character and no forged line in the status block,
the board, the JSON, a failure message and syslog; the time and peak memory of the real
servicectl process, measured; no traceback (but with --debug), and the exit code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PY, Env, assert_ok, free_port, wait_for
from faultkit import USER_PYTHON, User, assert_clear, reachable_dir, sc

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)


# -- R-VIEW-1: every text from outside is one escaped line -----------------------------------------


# What a service's user puts in its argv, comm, socket names, STATUS= and log lines: each
# character must reach root's terminal as a visible escape, never as itself.
CONTROLS = "\n\r\t\x1b[31m\x7f\x85\x9b\u2028\u2029\u202e\u2066\u200f\x00"


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


def _forged_child_runs(where: Path) -> bool:
    """The forger's child (in ``where``) has exec'd sleep under its forged name (it forks
    after binding its socket: a status taken before would not show it)."""
    for entry in os.listdir("/proc"):
        try:
            if (
                entry.isdigit()
                and Path(f"/proc/{entry}/cmdline").read_bytes().startswith(b"sleep\n    State")
                and os.readlink(f"/proc/{entry}/cwd") == str(where)
            ):
                return True
        except OSError:
            pass
    return False


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
        wait_for(lambda: _forged_child_runs(where), what="the child with the forged name")
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


# -- R-VIEW-2, R-VIEW-3: bounded, and never dying of what /proc says -------------------------------


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


# -- R-VIEW-4: no traceback, anywhere: the last net ------------------------------------------------


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


def test_R_VIEW_3_a_unix_table_not_read_to_its_end_names_no_socket() -> None:
    """Under a time or size limit the real line of a socket whose name a made-up line claims
    may be in the part not read: no name from such a unix table is shown; inet lines (no text
    of anyone's) and a table read whole are shown as they are."""
    from servicectl.system.process_tree import Listener, shown_listeners
    from servicectl.system.procnet import Socket

    real = Socket("unix", "@servicectl-real", "stream", 7, True)
    made_up = Socket("unix", "/forged/path", "stream", 7, True)
    for table in ([made_up], [real], [made_up, real]):
        shown = shown_listeners("unix", table, whole=False)
        assert shown == {
            Listener("unix", "(name unknown: /proc/net/unix not read to its end)", "stream")
        }
    assert shown_listeners("unix", [real], whole=True) == {
        Listener("unix", "@servicectl-real", "stream")
    }
    forged = [s._replace(forged=True) for s in (made_up, real)]
    assert {x.address for x in shown_listeners("unix", forged, whole=True)} == {
        "(name unknown: /proc/net/unix has a forged line)"
    }
    tcp = Socket("tcp", "127.0.0.1:80", "", 9, True)
    assert shown_listeners("tcp", [tcp], whole=False) == {Listener("tcp", "127.0.0.1:80", "")}
    assert shown_listeners("unix", [real._replace(listening=False)], whole=True) == set()
