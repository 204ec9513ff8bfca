"""The distribution's daemons run from the conversions in examples/distro/ (nginx, redis,
memcached, PostgreSQL, supervisord), each on private ports and temp dirs: the example file is
loaded and only its machine paths are swapped for the test's. Each test skips, with its
reason, only where its daemon is not installed."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
import yaml
from conftest import ROOT, Env, alive, assert_ok, free_port, kill_pids, system_tool, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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
    for path in sorted(EXAMPLES.glob("*.yaml")) + sorted(EXAMPLES.glob("imported/*.yaml")):
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
    runuser = system_tool("runuser")
    res = subprocess.run([runuser, "-u", "postgres", "--", *initdb], capture_output=True)
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


# ---------------------------------------------------------------------------------------------
# Imported from the packages' own files (apache2, mariadb, mosquitto, chrony, exim4): each test
# runs `servicectl import` on the installed /etc/init.d script or /lib/systemd/system unit,
# swaps only the machine's paths (configuration, ports, PID files, directories) for the test's
# own, and takes the real daemon through its config test, a reload, a restart with a broken
# configuration (refused: the old daemon keeps serving, checked with a real connection), a
# custom verb, and a crash (kill -9: dead; start recovers).


def packaged(env: Env, path: str) -> dict[str, Any]:
    """The definition `servicectl import` makes of the installed file (which must be there)."""
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed here; .ci/run installs its package")
    res = assert_ok(env.sc("import", path))
    assert "Traceback" not in res.stderr
    data: dict[str, Any] = yaml.safe_load(res.stdout)
    return data


def connects(port: int, expect: bytes, send: bytes = b"") -> bool:
    """A real TCP connection to 127.0.0.1:port whose first answer starts with ``expect``
    (False if nothing listens there)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            if send:
                s.sendall(send)
            return s.recv(256).startswith(expect)
    except OSError:
        return False


def crash_and_recover(env: Env, name: str, serving: Callable[[], bool]) -> None:
    """kill -9 the main process: status says dead (1); start cleans up and serves again."""
    pid = env.status_json(name)[name]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), what=f"{name} to die")
    res = env.sc("status", name)
    assert res.returncode == 1 and "dead" in res.stdout, res.stdout + res.stderr
    assert_ok(env.sc("start", name))
    wait_for(serving, timeout=30, what=f"{name} to serve again")
    assert_ok(env.sc("stop", name))
    assert_ok(env.sc("status", name), 3)


def _apache(shared: Path, port: int, root: str, broken: str = "") -> str:
    mods = "/usr/lib/apache2/modules"
    return (
        f"LoadModule mpm_event_module {mods}/mod_mpm_event.so\n"
        f"LoadModule authz_core_module {mods}/mod_authz_core.so\n"
        "PidFile ${APACHE_PID_FILE}\nDefaultRuntimeDir ${APACHE_RUN_DIR}\n"
        "User ${APACHE_RUN_USER}\nGroup ${APACHE_RUN_GROUP}\n"
        f"ErrorLog {shared}/error.log\nServerName localhost\nListen 127.0.0.1:{port}\n"
        f"DocumentRoot {shared / root}\n<Directory {shared}>\n  Require all granted\n</Directory>\n"
        f"{broken}"
    )


def test_apache2_imported_from_its_script(env: Env, shared: Path) -> None:
    """/etc/init.d/apache2: apache2ctl, $APACHE_PID_FILE from envvars, apache2ctl configtest
    (never rm -f ''), graceful as reload, graceful-stop as an action that stops it."""
    need("apache2ctl")
    data = packaged(env, "/etc/init.d/apache2")
    assert data["command"] == "apache2ctl start" and data["type"] == "forking"
    assert data["pid_file"] == "/var/run/apache2/apache2.pid"
    assert data["check_command"] == "apache2ctl configtest"
    assert data["reload_command"] == "apache2ctl graceful"
    assert data["actions"]["graceful-stop"] == {
        "command": "apache2ctl graceful-stop",
        "stops": True,
    }
    port, conf = free_port(), shared / "apache2"
    conf.mkdir()
    for version in ("one", "two"):
        (shared / version).mkdir()
        (shared / version / "index.html").write_text(f"{version}\n")
    (conf / "envvars").write_text(
        f"export APACHE_RUN_USER={'www-data' if account('www-data') else 'root'}\n"
        f"export APACHE_RUN_GROUP={'www-data' if account('www-data') else 'root'}\n"
        f"export APACHE_PID_FILE={shared}/apache2.pid\nexport APACHE_RUN_DIR={shared}/run\n"
        f"export APACHE_LOCK_DIR={shared}/lock\nexport APACHE_LOG_DIR={shared}\nexport LANG=C\n"
    )
    (conf / "apache2.conf").write_text(_apache(shared, port, "one"))
    # The machine's paths swapped: its configuration directory (apache2ctl reads
    # APACHE_CONFDIR), its PID file; apache2ctl runs apache2 itself even under systemd.
    data["environment"].update(APACHE_CONFDIR=str(conf), APACHE_STARTED_BY_SYSTEMD="true")
    data["pid_file"] = str(shared / "apache2.pid")
    data["stop_timeout"] = 3  # workers orphaned by the crash below ignore TERM: KILL them soon
    env.write("apache2", data)

    def page() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as r:
            return str(r.read().decode())

    res = assert_ok(env.sc("check", "--run-checks", "apache2"))
    assert "config test passed" in res.stdout
    assert_ok(env.sc("start", "apache2"))
    master = env.status_json("apache2")["apache2"]["pid"]
    assert page() == "one\n" and int((shared / "apache2.pid").read_text()) == master
    (conf / "apache2.conf").write_text(_apache(shared, port, "two"))
    assert_ok(env.sc("reload", "apache2"))  # apache2ctl graceful
    wait_for(lambda: page() == "two\n", what="apache to serve the new configuration")
    assert env.status_json("apache2")["apache2"]["pid"] == master
    (conf / "apache2.conf").write_text(_apache(shared, port, "two", "NotADirective on\n"))
    res = assert_ok(env.sc("restart", "apache2"), 6)
    assert "config test failed" in res.stderr and "NotADirective" in res.stderr
    assert alive(master) and page() == "two\n"  # the old apache still serves
    (conf / "apache2.conf").write_text(_apache(shared, port, "two"))
    res = assert_ok(env.sc("action", "apache2", "graceful-stop"))
    assert "it has stopped" in res.stdout and not alive(master)
    assert_ok(env.sc("status", "apache2"), 3)  # stopped, not dead
    assert_ok(env.sc("start", "apache2"))
    wait_for(lambda: page() == "two\n", what="apache to serve")
    crash_and_recover(env, "apache2", lambda: page() == "two\n")


def _exim_conf(shared: Path, name: str = "test.invalid", broken: str = "") -> str:
    return (
        f"primary_hostname = {name}\nlocal_interfaces = 127.0.0.1\n"
        f"spool_directory = {shared}/spool\nlog_file_path = {shared}/log/%slog\n"
        "acl_smtp_rcpt = acl_check_rcpt\n" + broken + "begin acl\nacl_check_rcpt:\n  deny\n"
        "begin routers\nbegin transports\nbegin retry\nbegin rewrite\nbegin authenticators\n"
    )


def test_exim4_imported_from_its_script(env: Env, shared: Path) -> None:
    """/etc/init.d/exim4: its defaults file read (QUEUERUNNER decides the start line), the
    guard ``if ! $DAEMON -bV; then exit 1`` as check_command, HUP as reload, /run/exim4 with
    its owner, group and mode."""
    need("exim4")
    if account("Debian-exim") is None:
        pytest.skip("needs root and the Debian-exim user (apt-get install exim4-daemon-light)")
    data = packaged(env, "/etc/init.d/exim4")
    assert data["command"].startswith("/usr/sbin/exim4 -bd -q${QFLAGS}${QUEUEINTERVAL} ")
    assert (data["check_command"], data["reload_signal"]) == ("/usr/sbin/exim4 -bV", "HUP")
    assert data["directories"] == [
        {"path": "/run/exim4", "owner": "Debian-exim", "group": "Debian-exim", "mode": "750"}
    ]
    port, conf, run = free_port(), shared / "exim4.conf", shared / "run" / "exim4"
    for sub in ("spool", "log"):
        (shared / sub).mkdir()
        shutil.chown(shared / sub, "Debian-exim", "Debian-exim")
    conf.write_text(_exim_conf(shared))
    # As /etc/default/exim4 would say it: the test's configuration (-C; exim drops root for
    # a configuration it does not trust, and runs as Debian-exim), port and PID file.
    defaults = shared / "exim4.default"
    defaults.write_text(
        f"QUEUERUNNER='combined'\nQUEUEINTERVAL='30m'\nCOMMONOPTIONS='-C {conf}'\n"
        f"SMTPLISTENEROPTIONS='-oX {port} -oP {run}/exim.pid'\n"
    )
    data = swap(data, {"/etc/default/exim4": str(defaults), "/run/exim4": str(run)})
    data["check_command"] += f" -C {conf}"  # the script tests the machine's configuration
    # A verb of the administrator's (a drop-in): the script's own force-stop is not one
    # servicectl can say (it kills every exim on the machine).
    (env.services / "exim4.d").mkdir()
    (env.services / "exim4.d" / "queue.yaml").write_text(
        f"actions: {{queue: {{command: /usr/sbin/exim4 -C {conf} -bpc}}}}\n"
    )
    env.write("exim4", data)

    def greets(name: str = "test.invalid") -> bool:
        return connects(port, f"220 {name} ESMTP".encode())

    res = assert_ok(env.sc("check", "--run-checks", "exim4"))
    assert "config test passed" in res.stdout
    assert run.is_dir() and (run.stat().st_mode & 0o777, run.owner()) == (0o750, "Debian-exim")
    assert_ok(env.sc("start", "exim4"))
    pid = env.pid("exim4", run / "exim.pid")
    wait_for(greets, what="exim to greet")  # it writes its PID file, then listens
    assert env.status_json("exim4")["exim4"]["pid"] == pid
    conf.write_text(_exim_conf(shared, "two.invalid"))
    assert_ok(env.sc("reload", "exim4"))  # HUP: exim re-executes itself, same PID
    wait_for(lambda: greets("two.invalid"), what="exim to greet with its new name")
    conf.write_text(_exim_conf(shared, "two.invalid", "no_such_option = 1\n"))
    res = assert_ok(env.sc("restart", "exim4"), 6)
    assert "config test failed" in res.stderr and "no_such_option" in res.stderr
    assert alive(pid) and greets("two.invalid")  # the old exim still serves
    conf.write_text(_exim_conf(shared, "two.invalid"))
    res = assert_ok(env.sc("action", "exim4", "queue"))  # exim -bpc: the messages queued
    assert "exim4: queue: done" in res.stdout and res.stdout.split()[-1] == "0"
    crash_and_recover(env, "exim4", lambda: greets("two.invalid"))


MQTT_CONNECT = bytes([0x10, 0x0E, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 2]) + b"t1"


def test_mosquitto_imported_from_its_unit(env: Env, shared: Path) -> None:
    """mosquitto.service: Type=notify, ExecStartPre= mkdir/chown as directories, HUP as reload,
    Restart=on-failure (a crash is respawned). mosquitto 2.0 has no config test: a restart with
    a broken configuration cannot be refused; it fails and says why."""
    need("mosquitto")
    if account("mosquitto") is None:
        pytest.skip("needs root and the mosquitto user (apt-get install mosquitto)")
    data = packaged(env, "/lib/systemd/system/mosquitto.service")
    assert (data["ready"], data["reload_signal"], data["restart"]) == (
        "notify",
        "HUP",
        "on-failure",
    )
    assert data["directories"] == [
        {"path": "/var/log/mosquitto", "owner": "mosquitto", "mode": "740"},
        {"path": "/run/mosquitto", "owner": "mosquitto", "mode": "740"},
    ]
    port, conf, logs = free_port(), shared / "mosquitto.conf", shared / "log" / "mosquitto"
    lib = shared / "lib"
    lib.mkdir()
    shutil.chown(lib, "mosquitto")

    def write_conf(extra: str = "") -> None:
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nuser mosquitto\n"
            f"persistence true\npersistence_location {lib}/\nlog_dest file {logs}/mosquitto.log\n"
            f"log_type all\n{extra}"
        )

    write_conf()
    pairs = {"/etc/mosquitto/mosquitto.conf": str(conf), "/var/log/mosquitto": str(logs)}
    data = swap(data, {**pairs, "/run/mosquitto": str(shared / "run" / "mosquitto")})
    (env.services / "mosquitto.d").mkdir()  # the administrator's verb: save the database now
    (env.services / "mosquitto.d" / "save.yaml").write_text("actions: {save: {signal: USR1}}\n")
    env.write("mosquitto", data)

    def answers() -> bool:
        return connects(port, bytes([0x20, 0x02, 0x00, 0x00]), MQTT_CONNECT)  # CONNACK: ok

    assert_ok(env.sc("check", "--run-checks", "mosquitto"))
    assert (logs.stat().st_mode & 0o777, logs.owner()) == (0o740, "mosquitto")
    assert_ok(env.sc("start", "mosquitto"))  # returns on READY=1
    pid = env.pid("mosquitto")
    assert answers()
    log = logs / "mosquitto.log"
    assert_ok(env.sc("reload", "mosquitto"))
    wait_for(lambda: "Reloading config" in log.read_text(), what="mosquitto to reload")
    assert env.pid("mosquitto") == pid and answers()
    assert_ok(env.sc("action", "mosquitto", "save"))
    wait_for((lib / "mosquitto.db").exists, what="mosquitto to save its database")
    write_conf("no_such_option true\n")
    res = assert_ok(env.sc("restart", "mosquitto"), 1)  # nothing could test it first
    assert "no_such_option" in res.stderr or "Unknown configuration" in log.read_text()
    assert not answers()
    write_conf()
    assert_ok(env.sc("start", "mosquitto"))
    pid = env.pid("mosquitto")
    assert answers()
    os.kill(pid, signal.SIGKILL)  # Restart=on-failure: its supervisor respawns it
    wait_for(lambda: env.status_json("mosquitto")["mosquitto"]["pid"] not in (None, pid), 20)
    wait_for(answers, what="the respawned mosquitto to answer")
    row = env.status_json("mosquitto")["mosquitto"]
    assert (row["state"], row["restarts"], row["last_exit"]["signal"]) == ("running", 1, "KILL")
    assert_ok(env.sc("stop", "mosquitto"))
    assert_ok(env.sc("status", "mosquitto"), 3)


def _ntp_answers(port: int) -> bool:
    """A real NTP exchange: a client request, and a server's 48-byte answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"\x23" + b"\0" * 47, ("127.0.0.1", port))
        try:
            return len(s.recv(128)) == 48
        except OSError:
            return False


def test_chrony_imported_from_its_unit(env: Env, shared: Path) -> None:
    """chrony.service: ExecStart=! (chronyd starts as root and drops to _chrony itself: no
    user:, where User=_chrony made it die "Not superuser"), its *Directory= keys with
    systemd's owners (ConfigurationDirectory stays root's), no reload (force-reload restarts).
    chrony's unit has no config test: ``chronyd -p`` is the administrator's (a drop-in)."""
    need("chronyd")
    if account("_chrony") is None:
        pytest.skip("needs root and the _chrony user (apt-get install chrony)")
    data = packaged(env, "/lib/systemd/system/chrony.service")
    assert "user" not in data and data["command"] == "/usr/sbin/chronyd $DAEMON_OPTS"
    assert (data["type"], data["pid_file"], data["reload"]) == (
        "forking",
        "/run/chrony/chronyd.pid",
        False,
    )
    own = {"owner": "_chrony", "group": "_chrony"}
    assert data["directories"] == [
        "/etc/chrony",
        {"path": "/run/chrony", **own, "mode": "0700"},
        {"path": "/var/lib/chrony", **own, "mode": "0750"},
        {"path": "/var/log/chrony", **own, "mode": "0750"},
    ]
    port, conf, run = free_port(), shared / "chrony.conf", shared / "run" / "chrony"
    sock = run / "chronyd.sock"

    def write_conf(extra: str = "") -> None:
        conf.write_text(
            f"pidfile {run}/chronyd.pid\ndriftfile {shared}/lib/chrony/drift\n"
            f"bindaddress 127.0.0.1\nport {port}\nallow 127.0.0.1\nlocal stratum 10\n"
            f"cmdport 0\nbindcmdaddress {sock}\n{extra}"
        )

    write_conf()
    defaults = shared / "chrony.default"  # as /etc/default/chrony says it; -x: not the clock
    defaults.write_text(f'DAEMON_OPTS="-F 1 -x -f {conf}"\n')
    pairs = {"/etc/default/chrony": str(defaults), "/run/chrony": str(run)}
    for machine in ("/etc/chrony", "/var/lib/chrony", "/var/log/chrony"):
        pairs[machine] = f"{shared}{machine.replace('/var', '')}"
    data = swap(data, pairs)
    (env.services / "chrony.d").mkdir()
    (env.services / "chrony.d" / "admin.yaml").write_text(
        f"check_command: /usr/sbin/chronyd -p -f {conf}\n"
        f"actions: {{tracking: {{command: /usr/bin/chronyc -h {sock} tracking}}}}\n"
    )
    env.write("chrony", data)
    res = assert_ok(env.sc("check", "--run-checks", "chrony"))
    assert "config test passed" in res.stdout
    assert (run.stat().st_mode & 0o777, run.owner()) == (0o700, "_chrony")
    assert (shared / "etc" / "chrony").owner() == "root"
    assert_ok(env.sc("start", "chrony"))
    pid = env.pid("chrony", run / "chronyd.pid")
    assert pwd.getpwuid(psutil.Process(pid).uids().real).pw_name == "_chrony"
    wait_for(lambda: _ntp_answers(port), what="chronyd to answer NTP")
    assert_ok(env.sc("reload", "chrony"), 3)  # no ExecReload=: it cannot be reloaded
    assert_ok(env.sc("force-reload", "chrony"))  # so force-reload restarts it
    pid = env.pid("chrony", run / "chronyd.pid")
    wait_for(lambda: _ntp_answers(port), what="the restarted chronyd to answer")
    write_conf("no_such_directive 1\n")
    res = assert_ok(env.sc("restart", "chrony"), 6)
    assert "config test failed" in res.stderr and "Invalid directive" in res.stderr
    assert alive(pid) and _ntp_answers(port)  # the old chronyd still serves
    write_conf()
    res = assert_ok(env.sc("action", "chrony", "tracking"))
    assert "Stratum" in res.stdout
    crash_and_recover(env, "chrony", lambda: _ntp_answers(port))


def _mariadb_greets(port: int) -> bool:
    """A real connection: MariaDB's handshake packet (protocol 10, then its version)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return b"MariaDB" in s.recv(256)
    except OSError:
        return False


def test_mariadb_imported_from_its_script(env: Env, shared: Path) -> None:
    """/etc/init.d/mariadb: ``mysqld_safe "${@:2}" 2>&1 >/dev/null | $ERR_LOGGER &``, a
    backgrounded pipeline (simple, no arguments at boot), /run/mysqld with its owner, and
    ``$MYADMIN reload`` as reload_command. Its script has no config test: ``mariadbd --help
    --verbose`` (which refuses unknown options) is the administrator's, in a drop-in."""
    need("mysqld_safe")
    if account("mysql") is None:
        pytest.skip("needs root and the mysql user (apt-get install mariadb-server)")
    data = packaged(env, "/etc/init.d/mariadb")
    assert (data["command"], data["type"]) == ("/usr/bin/mysqld_safe", "simple")
    assert data["directories"] == [{"path": "/run/mysqld", "owner": "mysql", "group": "root"}]
    assert data["reload_command"].endswith("--defaults-file=/etc/mysql/debian.cnf reload")
    port, cnf, client = free_port(), shared / "my.cnf", shared / "client.cnf"
    run, datadir = shared / "run" / "mysqld", shared / "data"
    datadir.mkdir()
    shutil.chown(datadir, "mysql")
    install = [
        need("mariadb-install-db"),
        *("--user=mysql", f"--datadir={datadir}", "--auth-root-authentication-method=socket"),
        "--skip-test-db",
    ]
    done = subprocess.run(install, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    def write_cnf(extra: str = "") -> None:
        cnf.write_text(
            f"[mysqld]\nuser=mysql\ndatadir={datadir}\nsocket={run}/mysqld.sock\n"
            f"pid-file={run}/mysqld.pid\nport={port}\nbind-address=127.0.0.1\n"
            f"log-error={datadir}/error.log\n{extra}"
        )

    write_cnf()
    client.write_text(f"[client]\nsocket={run}/mysqld.sock\nuser=root\n")
    data = swap(data, {"/run/mysqld": str(run), "/etc/mysql/debian.cnf": str(client)})
    data["command"] += (
        f" --defaults-file={cnf}"  # its private configuration, as mysqld_safe takes it
    )
    admin = f"/usr/bin/mariadb-admin --defaults-file={client}"
    (env.services / "mariadb.d").mkdir()
    (env.services / "mariadb.d" / "admin.yaml").write_text(
        f"check_command: [/bin/sh, -c, '/usr/sbin/mariadbd --defaults-file={cnf} --help "
        "--verbose >/dev/null']\n"
        f"actions: {{flush-logs: {{command: {admin} flush-logs}}}}\n"
    )
    env.write("mariadb", data)
    res = assert_ok(env.sc("check", "--run-checks", "mariadb"))
    assert "config test passed" in res.stdout and run.owner() == "mysql"
    assert_ok(env.sc("start", "mariadb"))
    safe = env.pid("mariadb")
    wait_for(lambda: _mariadb_greets(port), timeout=60, what="mariadb to accept connections")
    res = assert_ok(env.sc("reload", "mariadb"))  # mariadb-admin reload: flush privileges
    assert "reloaded" in res.stdout and env.pid("mariadb") == safe
    write_cnf("no_such_option=1\n")
    res = assert_ok(env.sc("restart", "mariadb"), 6)
    assert "config test failed" in res.stderr and "no_such_option" in res.stderr
    assert alive(safe) and _mariadb_greets(port)  # the old server still serves
    write_cnf()
    assert_ok(env.sc("action", "mariadb", "flush-logs"))
    crash_and_recover(env, "mariadb", lambda: _mariadb_greets(port))


def test_mariadb_imported_from_its_unit(env: Env, shared: Path) -> None:
    """mariadb.service: Type=notify as user mysql, /run/mysqld from its tmpfiles.d entry (a
    fresh /run has none), Restart=on-abnormal as on-failure, LimitNOFILE=32768: where the
    hard limit is lower and may not be raised, start says which limit and what the hard limit
    is (checked under a lowered hard limit without CAP_SYS_RESOURCE: prlimit, setpriv)."""
    need("mariadbd")
    if account("mysql") is None:
        pytest.skip("needs root and the mysql user (apt-get install mariadb-server)")
    if not Path("/usr/lib/tmpfiles.d/mariadb.conf").exists():
        pytest.skip("mariadb-server's tmpfiles.d entry is not installed here")
    data = packaged(env, "/lib/systemd/system/mariadb.service")
    assert (data["user"], data["ready"], data["restart"]) == ("mysql", "notify", "on-failure")
    assert data["directories"] == [{"path": "/run/mysqld", "group": "root"}]
    assert data["limits"] == {"memlock": 524288, "nofile": 32768}
    port, cnf, run, datadir = free_port(), shared / "my.cnf", shared / "run", shared / "data"
    datadir.mkdir()
    shutil.chown(datadir, "mysql")
    install = [need("mariadb-install-db"), "--user=mysql", f"--datadir={datadir}"]
    done = subprocess.run([*install, "--skip-test-db"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    cnf.write_text(
        f"[mysqld]\ndatadir={datadir}\nsocket={run}/mysqld/mysqld.sock\nport={port}\n"
        f"bind-address=127.0.0.1\nlog-error={datadir}/error.log\n"
    )
    data = swap(data, {"/run/mysqld": f"{run}/mysqld"})
    data["environment"] = {"MYSQLD_OPTS": f"--defaults-file={cnf}"}  # read by its sh -c line
    data["start_timeout"] = 120
    env.write("mariadb", data)
    lowered = [
        need("prlimit"),
        "--nofile=1024:4096",
        need("setpriv"),
        "--bounding-set=-sys_resource",
    ]
    refused = subprocess.run(
        [*lowered, *env.base_args(), "start", "mariadb"], text=True, capture_output=True
    )
    assert refused.returncode == 1, refused.stderr
    assert "cannot set limit nofile to 32768: the hard limit here is 4096" in refused.stderr
    assert env.status_json("mariadb")["mariadb"]["state"] == "failed"  # until the next start
    (env.services / "mariadb.d").mkdir()  # what this machine allows
    (env.services / "mariadb.d" / "limits.yaml").write_text("limits: {nofile: 4096}\n")
    assert_ok(env.sc("start", "mariadb", timeout=180))  # READY=1 from mariadbd, as mysql
    assert (run / "mysqld").owner() == "mysql" and _mariadb_greets(port)
    main = env.status_json("mariadb")["mariadb"]["pid"]
    assert pwd.getpwuid(psutil.Process(main).uids().real).pw_name == "mysql"
    assert_ok(env.sc("stop", "mariadb", timeout=120))
    assert not alive(main)
