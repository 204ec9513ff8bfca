"""Attacks on whom root believes when it is told a service is ready (docs/security.md): the
notify socket (R-NOTIFY-1..3), a readiness probe answered by another program (R-READY-1), and a
ready file left by an earlier run (R-READY-2).

The attacker is a real unprivileged user made for the test: they bind the notify address
first, send forged READY=1, MAINPID= and STATUS= messages, or answer the service's port or
socket before it does. The checks: a start is ready only through the service's own processes
(also after they switched user), the failure says who answered or sent, a decoy is never
signalled, nothing hung, no traceback, and the exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import zlib
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from conftest import DAEMONS, PY, Env, alive, assert_ok, free_port, wait_for
from faultkit import USER_PYTHON, Recorder, User, as_user, assert_clear, owned_by, reachable_dir, sc

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)


# -- R-NOTIFY: the notify socket -------------------------------------------------------------------


ADDRESS_SQUATTER = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = sys.argv[1]
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print("bound", flush=True)
s.settimeout(float(sys.argv[2]))
got = []
try:
    while True:
        got.append(s.recv(4096).decode(errors="replace"))
except OSError:
    pass
print("got", repr(got), flush=True)
"""


SENDER = """
import socket, sys
addr = sys.argv[1]
target = "\\0" + addr[1:] if addr.startswith("@") else addr
for msg in sys.argv[2:]:
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(msg.encode(), target)
        print("sent", msg)
    except OSError as e:
        print("refused", msg, e.strerror)
"""


def notify_service(env: Env, name: str, *args: str, **extra: Any) -> None:
    env.write(
        name,
        {"command": [PY, str(DAEMONS / "notify_service.py"), *args], "ready": "notify", **extra},
    )


def old_address(run: Path, name: str) -> str:
    return f"@servicectl/{zlib.crc32(str(run).encode()):08x}/{name}"


def sc_run(env: Env, run: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """servicectl with another run directory (one every user can reach)."""
    return env.sc("--run-dir", str(run), *args, timeout=40)


def squatter(user: User, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [USER_PYTHON, "-c", ADDRESS_SQUATTER, address, "4"],
        user=user.uid,
        group=user.gid,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_R_NOTIFY_1_the_address_cannot_be_taken_first(env: Env, user: User) -> None:
    notify_service(env, "nt", "--delay", "0.2", "--status", "private status")
    with reachable_dir() as run:
        old, new = squatter(user, old_address(run, "nt")), squatter(user, str(run / "nt.notify"))
        assert old.stdout.readline().strip() == "bound"  # type: ignore[union-attr]
        for args in (("start", "nt"), ("reload", "nt")):
            res = sc_run(env, run, *args)
            assert_ok(res)
            assert_clear(res)
        pid = int((run / "nt.pid").read_text())
        assert psutil.Process(pid).environ()["NOTIFY_SOCKET"] == str(run / "nt.notify")
        out, _ = old.communicate(timeout=30)
        assert "READY" not in out and "private" not in out, out
        _, err = new.communicate(timeout=30)
        assert "PermissionError" in err  # only root creates files in the run directory
        # Between start and reload the address is free, but still in root's directory.
        late = squatter(user, str(run / "nt.notify"))
        assert "PermissionError" in late.communicate(timeout=30)[1]
        assert_ok(sc_run(env, run, "reload", "nt"))
        assert_ok(sc_run(env, run, "stop", "nt"))
        assert not (run / "nt.notify").exists()


def test_R_NOTIFY_2_a_long_run_dir_gets_an_unguessable_address(env: Env) -> None:
    notify_service(env, "nt", "--delay", "0.1")
    long_run = env.root / ("r" * 60) / ("u" * 60)
    seen = []
    for _ in range(2):
        assert_ok(sc_run(env, long_run, "start", "nt"))
        pid = int((long_run / "nt.pid").read_text())
        address = psutil.Process(pid).environ()["NOTIFY_SOCKET"]
        assert address.startswith("@servicectl/") and len(address) >= 12 + 32
        seen.append(address)
        assert_ok(sc_run(env, long_run, "stop", "nt"))
    assert seen[0] != seen[1]


def test_R_NOTIFY_3_forged_messages_are_ignored(env: Env, user: User, decoy: Recorder) -> None:
    notify_service(env, "nt", "--never-ready", start_timeout=2)
    with reachable_dir() as run:
        p = subprocess.Popen(
            [*env.base_args(), "--run-dir", str(run), "start", "nt"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        env.commands.append(p)
        wait_for(lambda: (run / "nt.pid").exists(), what="the PID file")
        pid = int((run / "nt.pid").read_text())
        forged = (f"MAINPID={decoy.pid}\nREADY=1", "ERRNO=13", "STATUS=xyzzy-status", "READY=1")
        res = as_user(user, USER_PYTHON, "-c", SENDER, str(run / "nt.notify"), *forged)
        assert res.returncode == 0, res.stderr
        out, err = p.communicate(timeout=30)
        assert p.returncode == 1 and "not ready" in err and "Traceback" not in err, err
        assert "xyzzy" not in out + err and not alive(pid)
    decoy.assert_untouched()


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
        "sys.stdin.read()\n"  # alive (its credentials checkable) until the start has judged
    )
    sender = subprocess.Popen(
        [USER_PYTHON, "-c", code, address],
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        stdin=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        assert sender.stdin is not None
        sender.stdin.close()
        assert sender.wait(30) == 0
    assert proc.returncode == 1, (out, err)
    assert "refused: a notify message from PID" in err and f"(uid {user.uid})" in err, err
    assert "not a process of the service" in err


# -- R-READY: readiness is the service's own, and this start's -------------------------------------


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
