"""Readiness through the real CLI: start returns when the service is ready (tcp, unix, file,
http, command, notify), fails fast when it dies first, and stops it when it never gets ready."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import TYPE_CHECKING

import psutil
from conftest import DAEMONS, PY, Env, alive, assert_ok, free_port, tagged_pids, wait_for

if TYPE_CHECKING:
    from pathlib import Path


def listener(env: Env, name: str, *args: str, **extra: object) -> Path:
    """A port_listener service; returns the file it touches once it listens."""
    touch = env.root / f"{name}.ready"
    env.write(
        name,
        {
            "command": [PY, str(DAEMONS / "port_listener.py"), "--touch", str(touch), *args],
            "start_timeout": 10,
            **extra,
        },
    )
    return touch


def test_tcp_ready_after_delay(env: Env) -> None:
    port = free_port()
    touch = listener(
        env, "web", "--port", str(port), "--delay", "0.4", ready={"tcp": f"127.0.0.1:{port}"}
    )
    t0 = time.monotonic()
    res = assert_ok(env.sc("start", "web"))
    elapsed = time.monotonic() - t0
    assert touch.exists()  # ready when start returned
    assert 0.4 <= elapsed < 3, elapsed
    assert "started" in res.stdout
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_unix_file_http_and_command_probes(env: Env) -> None:
    sock = env.root / "web.sock"
    listener(env, "unix", "--unix", str(sock), "--delay", "0.2", ready={"unix": str(sock)})
    port = free_port()
    listener(
        env,
        "http",
        "--port",
        str(port),
        "--delay",
        "0.2",
        ready={"http": f"http://127.0.0.1:{port}/health"},
    )
    port2 = free_port()
    flag = env.root / "file.flag"
    listener(
        env,
        "file",
        "--port",
        str(port2),
        "--delay",
        "0.2",
        "--touch",
        str(flag),
        ready={"file": str(flag)},
    )
    port3 = free_port()
    probe = [PY, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port3}))"]
    listener(env, "cmd", "--port", str(port3), "--delay", "0.2", ready={"command": probe})
    for name in ("unix", "http", "file", "cmd"):
        res = assert_ok(env.sc("start", name))
        assert "started" in res.stdout
    assert sock.exists() and flag.exists()


def test_never_ready_is_stopped_and_exit_1(env: Env) -> None:
    port = free_port()
    listener(
        env,
        "web",
        "--port",
        str(port),
        "--delay",
        "600",
        ready={"tcp": f"127.0.0.1:{port}"},
        start_timeout=0.5,
    )
    t0 = time.monotonic()
    res = assert_ok(env.sc("start", "web"), 1)
    assert time.monotonic() - t0 < 5
    assert "was not ready after 0.5 s" in res.stderr and "it was stopped" in res.stderr
    assert tagged_pids(env.tag) == [] and env.files() == []


def test_death_before_ready_fails_fast(env: Env) -> None:
    port = free_port()
    env.sleeper(
        "web",
        "--print",
        "dying now",
        "--exit-code",
        "3",
        "--after",
        "0.2",
        ready={"tcp": f"127.0.0.1:{port}"},
        start_timeout=30,
    )
    t0 = time.monotonic()
    res = assert_ok(env.sc("start", "web"), 1)
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"took {elapsed:.2f} s: it waited for the timeout"
    assert "exited with status 3" in res.stderr and "dying now" in res.stderr
    assert tagged_pids(env.tag) == [] and env.files() == []


def notify(env: Env, name: str, *args: str, **extra: object) -> None:
    env.write(
        name,
        {
            "command": [PY, str(DAEMONS / "notify_service.py"), *args],
            "ready": "notify",
            "start_timeout": 10,
            **extra,
        },
    )


def test_notify_ready_status_and_reload(env: Env) -> None:
    notify(env, "nt", "--delay", "0.3", "--status", "warming up done")
    t0 = time.monotonic()
    assert_ok(env.sc("start", "nt"))
    assert time.monotonic() - t0 >= 0.3
    row = env.status_json("nt")["nt"]
    assert row["state"] == "running" and row["status_text"] == "warming up done"
    assert "warming up done" in env.sc("status", "nt").stdout
    pid = env.pid("nt")
    assert "NOTIFY_SOCKET" in psutil.Process(pid).environ()
    res = assert_ok(env.sc("reload", "nt"))  # waits for RELOADING=1 ... READY=1
    assert f"sent to pid {pid}" in res.stdout and alive(pid)
    assert_ok(env.sc("stop", "nt"))


def test_notify_errno_and_never_ready(env: Env) -> None:
    notify(env, "err", "--errno", "13")
    res = assert_ok(env.sc("start", "err"), 1)
    assert "ERRNO=13" in res.stderr and "Permission denied" in res.stderr
    notify(env, "never", "--never-ready", start_timeout=0.4)
    res = assert_ok(env.sc("start", "never"), 1)
    assert "was not ready after 0.4 s" in res.stderr
    assert tagged_pids(env.tag) == [] and env.files() == []


def test_notify_extend_timeout(env: Env) -> None:
    notify(env, "slow", "--extend-usec", "3000000", "--delay", "0.8", start_timeout=0.3)
    assert_ok(env.sc("start", "slow"))


def test_notify_mainpid_of_child(env: Env) -> None:
    notify(env, "mp", "--mainpid-child")
    res = assert_ok(env.sc("start", "mp"))
    pid = env.pid("mp")
    assert f"(pid {pid})" in res.stdout
    state = json.loads((env.run / "mp.state").read_text())
    assert state["pid"] == pid
    wait_for(lambda: psutil.Process(pid).ppid() != 0)
    assert_ok(env.sc("status", "mp"))
    assert_ok(env.sc("stop", "mp"))
    assert not alive(pid)


def test_notify_from_a_stranger_is_ignored(env: Env) -> None:
    """Only the service's own processes may declare it ready."""
    notify(env, "nt", "--never-ready", start_timeout=1.5)
    p = env.popen("start", "nt")
    wait_for(lambda: (env.run / "nt.pid").exists(), what="pid file")
    pid = env.pid("nt")
    address = psutil.Process(pid).environ()["NOTIFY_SOCKET"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1", "\0" + address[1:] if address.startswith("@") else address)
    p.communicate(timeout=10)
    assert p.returncode == 1


def test_status_shows_starting(env: Env) -> None:
    port = free_port()
    listener(env, "web", "--port", str(port), "--delay", "1.5", ready={"tcp": f"127.0.0.1:{port}"})
    p = env.popen("start", "web")
    row = wait_for(
        lambda: (
            env.status_json("web")["web"]["state"] == "starting" and env.status_json("web")["web"]
        ),
        what="starting state",
    )
    assert row["exit_code"] == 0 and row["pid"]
    p.communicate(timeout=10)
    assert p.returncode == 0
    assert env.status_json("web")["web"]["state"] == "running"


def test_startall_waits_for_readiness_before_dependents(env: Env) -> None:
    port = free_port()
    touch = listener(
        env, "db", "--port", str(port), "--delay", "0.5", ready={"tcp": f"127.0.0.1:{port}"}
    )
    marks = env.root / "web.marks"
    env.sleeper("web", depends=["db"], environment={"MARKER": str(marks)})
    assert_ok(env.sc("startall"))
    # web writes its marker once running (start_grace 0.2 s is no promise on a busy machine)
    wait_for(marks.exists, what="web's marker")
    assert os.stat(touch).st_mtime <= os.stat(marks).st_mtime
