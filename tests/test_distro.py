"""The distribution's daemons run from the conversions in examples/distro/ (nginx, redis,
memcached, PostgreSQL, supervisord), each on private ports and temp dirs: the example file is
loaded and only its machine paths are swapped for the test's. Each test skips, with its
reason, only where its daemon is not installed."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
import yaml
from conftest import ROOT, Env, alive, assert_ok, free_port, kill_pids, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLES = ROOT / "examples" / "distro"
SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def need(program: str) -> str:
    path = shutil.which(program, path=SBIN)
    if path is None:
        pytest.skip(f"{program} is not installed here; .ci/run installs it")
    return path


def account(name: str) -> str | None:
    """The daemon's own user, when running as root and it exists."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name).pw_name
    except KeyError:
        return None


def swap(value: Any, pairs: dict[str, str]) -> Any:
    """``value`` (loaded YAML) with each machine path of ``pairs`` replaced, in every string."""
    if isinstance(value, str):
        for old, new in pairs.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [swap(v, pairs) for v in value]
    if isinstance(value, dict):
        return {k: swap(v, pairs) for k, v in value.items()}
    return value


def example(name: str, pairs: dict[str, str], **override: Any) -> dict[str, Any]:
    """examples/distro/NAME.yaml with its machine paths swapped; ``override`` None drops a key."""
    data = swap(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()), pairs)
    for key, value in override.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.fixture
def shared() -> Iterator[Path]:
    """A scratch directory the daemons' users can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="servicectl-test-distro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_examples_pass_check(env: Env) -> None:
    from servicectl.definitions.schema import KNOWN_KEYS

    empty = env.root / "empty.env"
    empty.write_text("")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if "@" in path.name and "instances" not in KNOWN_KEYS:
            continue  # templates (NAME@.yaml, instances:) are not on this branch yet
        data = yaml.safe_load(path.read_text())
        if "env_file" in data:
            data["env_file"] = str(empty)  # /etc/default/... may be missing on this machine
        env.write(path.stem, data, tag=False)
        res = assert_ok(env.sc("check", path.stem))
        assert "Traceback" not in res.stderr


# ---------------------------------------------------------------------------------------------
# nginx: config test before restart and reload, rotate, upgrade, the QUIT schedule


class Nginx:
    """nginx from examples/distro/nginx.yaml on a private port, its files under the test's
    directories, its DAEMON_OPTS in an env file as /etc/default/nginx would have them."""

    def __init__(self, env: Env, shared: Path) -> None:
        need("nginx")
        self.env, self.port = env, free_port()
        self.pid_file = env.root / "nginx.pid"
        self.access = shared / "access.log"  # the workers (nobody) reopen it by path
        self.conf = env.root / "nginx.conf"
        for version in ("one", "two"):
            (shared / version).mkdir()
            (shared / version / "index.html").write_text(f"{version}\n")
        self.shared = shared
        self.write_conf("one")
        env_file = env.root / "nginx.env"
        env_file.write_text(f'DAEMON_OPTS="-c {self.conf} -e {env.root}/startup.log"\n')
        pairs = {"/run/nginx.pid": str(self.pid_file), "/etc/default/nginx": str(env_file)}
        env.write("nginx", example("nginx", pairs))

    def write_conf(self, root: str, extra: str = "") -> None:
        self.conf.write_text(
            f"pid {self.pid_file};\nerror_log {self.shared}/error.log;\nworker_processes 1;\n"
            "events { worker_connections 64; }\n"
            f"http {{ access_log {self.access}; client_body_temp_path {self.env.root}/tmp;\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {self.shared / root}; }} }}\n{extra}"
        )

    def get(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
            return str(r.read().decode())

    def master(self) -> int:
        return int(self.pid_file.read_text())

    def masters(self) -> list[int]:
        """The nginx master processes running this test's configuration."""
        out = []
        for p in psutil.process_iter(["cmdline"]):
            line = " ".join(p.info["cmdline"] or [])
            if line.startswith("nginx: master process") and str(self.conf) in line:
                out.append(p.pid)
        return out


@pytest.fixture
def nginx(env: Env, shared: Path) -> Iterator[Nginx]:
    n = Nginx(env, shared)
    try:
        yield n
    finally:  # a master made by an upgrade has lost the test's tag (nginx resets environ)
        pids = n.masters()
        for master in list(pids):
            try:
                pids += [c.pid for c in psutil.Process(master).children()]
            except psutil.NoSuchProcess:
                pass
        kill_pids(pids)


def test_nginx_restart_with_a_broken_config_keeps_the_old_master(env: Env, nginx: Nginx) -> None:
    assert_ok(env.sc("start", "nginx"))
    master = nginx.master()
    assert nginx.get() == "one\n"
    nginx.write_conf("one", "this is not nginx;\n")
    res = assert_ok(env.sc("restart", "nginx"), 6)
    assert "config test failed" in res.stderr and "unknown directive" in res.stderr
    assert f"still running (pid {master})" in res.stderr
    assert alive(master) and nginx.master() == master and nginx.masters() == [master]
    assert nginx.get() == "one\n"
    nginx.write_conf("one")
    assert_ok(env.sc("restart", "nginx"))
    assert nginx.master() != master and not alive(master) and nginx.get() == "one\n"
    res = assert_ok(env.sc("stop", "nginx"))
    assert "stopped after QUIT" in res.stdout


def test_nginx_reload_with_a_broken_config_keeps_the_old_config(env: Env, nginx: Nginx) -> None:
    assert_ok(env.sc("start", "nginx"))
    master = nginx.master()
    nginx.write_conf("two", "this is not nginx;\n")
    for action in ("reload", "force-reload"):
        res = assert_ok(env.sc(action, "nginx"), 6)
        assert "config test failed" in res.stderr and "not reloaded" in res.stderr
    assert nginx.get() == "one\n"
    nginx.write_conf("two")
    assert_ok(env.sc("reload", "nginx"))
    wait_for(lambda: nginx.get() == "two\n", what="nginx to serve the new config")
    assert nginx.master() == master
    assert_ok(env.sc("stop", "nginx"))


def test_nginx_rotate_reopens_the_log(env: Env, nginx: Nginx) -> None:
    assert_ok(env.sc("start", "nginx"))
    nginx.get()
    wait_for(lambda: nginx.access.exists() and nginx.access.stat().st_size > 0, what="a line")
    moved = nginx.access.with_suffix(".log.1")
    nginx.access.rename(moved)
    res = assert_ok(env.sc("action", "nginx", "rotate"))
    assert f"SIGUSR1 sent to pid {nginx.master()}" in res.stdout
    wait_for(nginx.access.exists, what="nginx to open a new log")

    def logged_anew() -> bool:  # the worker reopens its log a moment after the master
        nginx.get()
        return nginx.access.stat().st_size > 0

    wait_for(logged_anew, what="a request in the new log")
    assert moved.read_text().count("GET /") >= 1
    res = assert_ok(env.sc("action", "nginx", "configtest"))
    assert "syntax is ok" in res.stdout + res.stderr
    assert_ok(env.sc("stop", "nginx"))


def test_nginx_upgrade_leaves_one_new_master(env: Env, nginx: Nginx) -> None:
    assert_ok(env.sc("start", "nginx"))
    old = nginx.master()
    res = assert_ok(env.sc("action", "nginx", "upgrade"), 0)
    new = nginx.master()
    assert new != old and not alive(old)
    assert f"now runs as pid {new}" in res.stdout
    assert nginx.masters() == [new]
    assert env.status_json("nginx")["nginx"]["pid"] == new
    assert nginx.get() == "one\n"
    workers = [c.pid for c in psutil.Process(new).children()]
    res = assert_ok(env.sc("stop", "nginx"))
    assert "stopped after QUIT" in res.stdout
    assert not alive(new) and not any(alive(w) for w in workers) and nginx.masters() == []
    assert_ok(env.sc("status", "nginx"), 3)


# ---------------------------------------------------------------------------------------------
# redis: directories and sd_notify


def _redis(env: Env, shared: Path, port: int) -> tuple[Path, str | None]:
    need("redis-server")
    user = account("redis")
    data = shared / "data"
    data.mkdir()
    if user:
        shutil.chown(data, user, user)
    run = shared / "run" / "redis"
    conf = shared / "redis.conf"
    conf.write_text(
        f'port {port}\nbind 127.0.0.1\ndir {data}\npidfile {run}/redis-server.pid\nlogfile ""\n'
        'save ""\nappendonly no\n'
    )
    pairs = {"/etc/redis/redis.conf": str(conf), "/run/redis": str(run)}
    # The example's limits: {nofile: 65536} needs a root that may raise the hard limit (a
    # container's root may not: here it is 20000); the script's "ulimit -n || true" ignored it.
    override: dict[str, Any] = {"limits": None}
    if not user:
        override.update(user=None, group=None)
    env.write("redis", example("redis-server", pairs, **override))
    return run, user


def test_redis_gets_its_directory_and_says_ready(env: Env, shared: Path) -> None:
    port = free_port()
    run, user = _redis(env, shared, port)
    assert_ok(env.sc("start", "redis"))
    st = run.stat()
    assert (st.st_mode & 0o7777, st.st_uid) == (0o755, pwd.getpwnam(user or "root").pw_uid)
    assert (run.parent.stat().st_mode & 0o7777, run.parent.stat().st_uid) == (0o755, 0)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(64) == b"+PONG\r\n"
    pid = env.pid("redis")
    wait_for((run / "redis-server.pid").exists, what="redis's own PID file in its directory")
    assert int((run / "redis-server.pid").read_text()) == pid
    assert_ok(env.sc("stop", "redis"))
    assert not alive(pid) and run.is_dir()  # the directory stays


def test_redis_directory_through_a_symlink_is_refused(env: Env, shared: Path) -> None:
    run, _ = _redis(env, shared, free_port())
    target = shared / "elsewhere"
    target.mkdir(mode=0o700)
    run.parent.mkdir()
    run.symlink_to(target)
    res = assert_ok(env.sc("start", "redis"), 6)
    assert f"{run} is a symlink (to {target})" in res.stderr
    st = target.stat()
    assert (st.st_mode & 0o7777, st.st_uid, list(target.iterdir())) == (0o700, 0, [])
    assert env.files() == []


# ---------------------------------------------------------------------------------------------
# memcached: the template, two instances


def _memcached_spec(port: str) -> dict[str, Any]:
    need("memcached")
    text = (EXAMPLES / "memcached@.yaml").read_text().replace("{instance}", port)
    data: dict[str, Any] = yaml.safe_load(text)
    data.pop("instances")
    if not account("memcache"):
        data.pop("user")
    return data


def _memcached_answers(port: str) -> bool:
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        s.sendall(b"version\r\n")
        return s.recv(64).startswith(b"VERSION")


def test_memcached_instances(env: Env) -> None:
    ports = [str(free_port()), str(free_port())]
    for port in ports:  # the template, instantiated by hand
        env.write(f"memcached-{port}", _memcached_spec(port))
    assert_ok(env.sc("start", *[f"memcached-{p}" for p in ports]))
    assert all(_memcached_answers(p) for p in ports)
    pids = [env.pid(f"memcached-{p}") for p in ports]
    assert len(set(pids)) == 2
    assert_ok(env.sc("stop", *[f"memcached-{p}" for p in ports]))
    assert not any(alive(p) for p in pids)


def test_memcached_template(env: Env) -> None:
    from servicectl.definitions.schema import KNOWN_KEYS

    need("memcached")
    if "instances" not in KNOWN_KEYS:
        pytest.skip("templates (NAME@.yaml) are not on this branch; test_memcached_instances")
    ports = [str(free_port()), str(free_port())]
    data = yaml.safe_load((EXAMPLES / "memcached@.yaml").read_text())
    data["instances"] = ports
    if not account("memcache"):
        data.pop("user")
    env.write("memcached@", data)
    assert_ok(env.sc("startall"))
    assert all(_memcached_answers(p) for p in ports)
    assert_ok(env.sc("stopall"))


# ---------------------------------------------------------------------------------------------
# PostgreSQL: directories 2775, pg_isready, INT


def _postgres_bin() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    return Path(found[-1]).parent


def test_postgresql_starts_ready_and_stops_with_int(env: Env, shared: Path) -> None:
    bindir = _postgres_bin()
    if account("postgres") is None:
        pytest.skip("needs root and the postgres user (apt-get install postgresql)")
    data, sock, port = shared / "data", shared / "sock" / "postgresql", str(free_port())
    data.mkdir(mode=0o700)
    shutil.chown(data, "postgres", "postgres")
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-N", "-U", "postgres"]
    res = subprocess.run(["runuser", "-u", "postgres", "--", *initdb], capture_output=True)
    assert res.returncode == 0, res.stderr
    pairs = {
        "/usr/lib/postgresql/15/bin": str(bindir),
        "/usr/bin/pg_isready": str(bindir / "pg_isready"),
        "/etc/postgresql/15/main": str(data),
        "/var/run/postgresql": str(sock),
        "5432": port,
    }
    env.write("postgresql", example("postgresql", pairs, start_timeout=60))
    assert_ok(env.sc("start", "postgresql"))
    st = sock.stat()
    postgres = pwd.getpwnam("postgres")
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o2775, postgres.pw_uid, postgres.pw_gid)
    ready = [str(bindir / "pg_isready"), "-q", "-h", str(sock), "-p", port]
    assert subprocess.run(ready).returncode == 0
    pid = env.pid("postgresql")
    res = assert_ok(env.sc("stop", "postgresql"))
    assert "stopped after INT" in res.stdout
    assert not alive(pid)
    assert "received fast shutdown request" in (env.log / "postgresql.log").read_text()


# ---------------------------------------------------------------------------------------------
# supervisord


def test_supervisord(env: Env, shared: Path) -> None:
    need("supervisord")
    sock, conf = shared / "supervisor.sock", shared / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={sock}\n"
        f"[supervisord]\nlogfile={shared}/supervisord.log\npidfile={shared}/supervisord.pid\n"
        f"childlogdir={shared}\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{sock}\n"
        "[program:napper]\ncommand=/bin/sleep 300\nautostart=true\nstartsecs=0\n"
    )
    env_file = shared / "supervisor.env"
    env_file.write_text('DAEMON_OPTS=""\n')
    pairs = {
        "/etc/supervisor/supervisord.conf": str(conf),
        "/var/run/supervisor.sock": str(sock),
        "/etc/default/supervisor": str(env_file),
    }
    env.write("supervisor", example("supervisor", pairs))
    assert_ok(env.sc("start", "supervisor"))
    ctl = [need("supervisorctl"), "-c", str(conf)]

    def napper() -> int:
        out = subprocess.run([*ctl, "pid", "napper"], capture_output=True, text=True).stdout
        return int(out) if out.strip().isdigit() and int(out) > 0 else 0

    child = wait_for(napper, what="supervisord to start its program")
    assert_ok(env.sc("reload", "supervisor"))  # HUP: supervisord restarts its programs
    wait_for(lambda: napper() not in (0, child), what="the program to be restarted")
    child = napper()
    main = env.pid("supervisor")
    assert_ok(env.sc("stop", "supervisor"))
    assert not alive(main) and not alive(child)
