"""Real daemons users run (nginx forking and foreground, redis-server with sd_notify and forking,
memcached), driven through the real CLI; each test skips with its reason where one is missing."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Env, alive, assert_ok, free_port, proc_state, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def shared() -> Iterator[Path]:
    """A scratch directory other users can enter: daemons drop privileges, and pytest's
    tmp_path is private (0700)."""
    path = Path(tempfile.mkdtemp(prefix="servicectl-test-daemons-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def need(program: str) -> str:
    path = shutil.which(program, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin")
    if path is None:
        pytest.skip(f"{program} is not installed (apt-get install {program}); .ci/run installs it")
    return path


def user_or_none(name: str) -> str | None:
    """The daemon's own user when running as root and it exists (they refuse to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        return None
    return name


def nginx_conf(env: Env, port: int, shared: Path) -> Path:
    www = shared / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text("hello from nginx\n")
    conf = env.services / f"nginx-{port}.conf"
    conf.write_text(
        "worker_processes 2;\n"
        f"error_log {env.root}/nginx-{port}.err;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {env.root}/tmp; "
        f"server {{ listen 127.0.0.1:{port}; root {www}; }} }}\n"
    )
    return conf


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        return r.read().decode()


def started_at(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat): with the PID, its identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[19].decode()
    except OSError:
        return None


def worker_pids(master: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(master).children()]


def start_nginx(env: Env, shared: Path) -> int:
    """nginx as the forking service ``web`` (a master and two workers), started and answering;
    its port."""
    need("nginx")
    port = free_port()
    conf = nginx_conf(env, port, shared)
    env.write(
        "web",
        {
            "type": "forking",
            "command": f'nginx -c {conf} -g "pid {{run_dir}}/web-nginx.pid;"',
            "pid_file": "{run_dir}/web-nginx.pid",
            "ready": {"http": f"http://127.0.0.1:{port}/"},
        },
    )
    assert_ok(env.sc("start", "web"))
    assert get(port) == "hello from nginx\n"
    return port


def test_nginx_forking(env: Env, shared: Path) -> None:
    start_nginx(env, shared)
    master = env.pid("web", env.run / "web-nginx.pid")
    workers = worker_pids(master)
    assert len(workers) == 2
    assert_ok(env.sc("status", "web"))
    assert_ok(env.sc("reload", "web"))  # nginx handles HUP: new workers, same master
    wait_for(lambda: set(worker_pids(master)).isdisjoint(workers), what="new nginx workers")
    assert env.pid("web", env.run / "web-nginx.pid") == master
    res = assert_ok(env.sc("stop", "web"))
    assert "stopped after TERM" in res.stdout
    assert not alive(master) and not any(alive(w) for w in workers)
    assert_ok(env.sc("status", "web"), 3)


def test_nginx_foreground(env: Env, shared: Path) -> None:
    need("nginx")
    port = free_port()
    conf = nginx_conf(env, port, shared)
    env.write(
        "web",
        {
            "command": f'nginx -c {conf} -g "daemon off; pid {env.root}/fg.nginxpid;"',
            "ready": {"tcp": f"127.0.0.1:{port}"},
        },
    )
    assert_ok(env.sc("start", "web"))
    assert get(port) == "hello from nginx\n"
    master = env.pid("web")
    workers = {w: started_at(w) for w in worker_pids(master)}
    assert_ok(env.sc("stop", "web"))
    # the same processes (not a PID handed out again since, on a busy machine)
    left = {w: proc_state(w) for w, t in workers.items() if alive(w) and started_at(w) == t}
    assert not alive(master) and not left, left


def test_redis_notify(env: Env, shared: Path) -> None:
    need("redis-server")
    port = free_port()
    user = user_or_none("redis")
    data = shared / "redis"
    data.mkdir()
    if user:
        shutil.chown(data, user)
    spec = {
        "command": f'redis-server --port {port} --bind 127.0.0.1 --save "" --appendonly no '
        f"--supervised systemd --dir {data}",
        "ready": "notify",
        "start_timeout": 20,
    }
    if user:
        spec["user"] = user
    env.write("redis", spec)
    assert_ok(env.sc("start", "redis"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(64) == b"+PONG\r\n"
    row = env.status_json("redis")["redis"]
    assert row["state"] == "running" and row["status_text"]  # redis sends STATUS=
    pid = row["pid"]
    assert_ok(env.sc("stop", "redis"))
    assert not alive(pid)


def test_redis_forking(env: Env) -> None:
    need("redis-server")
    port = free_port()
    env.write(
        "redis",
        {
            "type": "forking",
            "command": f'redis-server --port {port} --bind 127.0.0.1 --save "" --daemonize yes '
            f"--pidfile {{run_dir}}/redis-d.pid --dir {env.root} "
            f"--logfile {env.root}/redis.log",
            "pid_file": "{run_dir}/redis-d.pid",
            "ready": {"tcp": f"127.0.0.1:{port}"},
        },
    )
    assert_ok(env.sc("start", "redis"))
    pid = env.pid("redis", env.run / "redis-d.pid")
    assert_ok(env.sc("status", "redis"))
    assert_ok(env.sc("stop", "redis"))
    assert not alive(pid)


def test_memcached(env: Env) -> None:
    need("memcached")
    port = free_port()
    user = user_or_none("memcache") or user_or_none("nobody")
    cmd = f"memcached -p {port} -l 127.0.0.1 -U 0" + (f" -u {user}" if user else "")
    env.write("mc", {"command": cmd, "ready": {"tcp": f"127.0.0.1:{port}"}})
    assert_ok(env.sc("start", "mc"))
    pid = env.pid("mc")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"version\r\n")
        assert s.recv(64).startswith(b"VERSION")
    assert_ok(env.sc("restart", "mc"))
    assert env.pid("mc") != pid and not alive(pid)
    assert_ok(env.sc("stop", "mc"))
