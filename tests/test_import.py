"""`servicectl import`: real init.d scripts and systemd units (tests/data/import, copied from
Debian packages and upstream tarballs, with their licences) read into definitions that pass
`servicectl check`; the intermediate result checked key by key; hostile input; and nginx,
redis and memcached started, queried and stopped from what was imported."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TAG_VAR, Env, alive, assert_ok
from test_real_daemons import free_port, need, nginx_conf, user_or_none
from test_real_daemons import shared as shared  # noqa: F401  (a fixture)

from servicectl.commands.importer import emit
from servicectl.commands.importer.main import draft_for
from servicectl.commands.importer.sysfiles import System
from servicectl.definitions import schema

DATA = Path(__file__).resolve().parent / "data" / "import"
# Beside the scripts and units: the files they source or read (apache2's envvars, a defaults
# file saved as NAME.default, tmpfiles.d's NAME.conf), imported with them, not alone.
FILES = sorted(
    p
    for p in DATA.rglob("*")
    if p.is_file()
    and p.name not in ("copyright", "README.md", "envvars")
    and p.suffix not in (".default", ".conf")
)
# Files with no long-running program servicectl can find: postgresql's script drives
# pg_ctlcluster through a sourced library; dnsmasq sets DAEMON in a sourced file.
NO_PROGRAM = {"postgresql-common/postgresql", "dnsmasq/dnsmasq"}
NEW_KEYS = {
    "check_command",
    "stop_schedule",
    "directories",
    "actions",
    "restart",
    "restart_delay",
    "start_limit",
    "instances",
}


def rel(p: Path) -> str:
    return str(p.relative_to(DATA))


def system(exists: bool = True, files: dict[str, Path] | None = None, tmpfiles: str = "") -> System:
    """The machine as an import sees it: ``files`` (path on the machine: its copy here) are
    there and readable, anything else is there (``exists``) but unreadable; tmpfiles.d is the
    directory ``tmpfiles`` here (none by default)."""
    known = {k: v.read_text() for k, v in (files or {}).items()}

    def read(path: str) -> str | None:
        if tmpfiles and path.startswith(tmpfiles + "/"):
            return Path(path).read_text()
        return known.get(path)

    return System(
        exists=lambda p: p in known or exists,
        read=read,
        tmpfiles_dirs=(tmpfiles,) if tmpfiles else (),
        listdir=lambda d: sorted(p.name for p in Path(d).glob("*.conf")),
    )


def draft(
    relpath: str,
    names: dict[str, str] | None = None,
    exists: bool = True,
    files: dict[str, Path] | None = None,
    tmpfiles: str = "",
) -> Any:
    path = DATA / relpath
    return draft_for(str(path), path.read_text(), names, system=system(exists, files, tmpfiles))


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_every_real_file_imports_and_passes_check(env: Env, path: Path) -> None:
    res = env.sc("import", str(path))
    assert "Traceback" not in res.stderr
    if rel(path) in NO_PROGRAM:
        assert_ok(res, 6)
        assert "nothing imported" in res.stderr
        return
    assert_ok(res)
    text = res.stdout
    assert text.startswith("# ") and f"from {path}" in text
    data = yaml.safe_load(text)
    assert data["command"]
    name = text.split(".yaml:", 1)[0][2:]
    (env.services / f"{name}.yaml").write_text(text)
    assert_ok(env.sc("check", name))
    # What stderr lists as not converted is listed at the top of the definition too.
    prefix = f"servicectl: {name}: not converted: "
    for line in res.stderr.splitlines():
        assert line.startswith(prefix)
        assert f"#   {emit.comment(line[len(prefix) :])}" in text


def test_nginx_initd_intermediate() -> None:
    d = draft("nginx/nginx")
    v = d.values
    assert v["command"] == ["/usr/sbin/nginx", "$DAEMON_OPTS"]
    assert v["type"] == "forking" and v["pid_file"] == "/run/nginx.pid"
    assert v["env_file"] == "/etc/default/nginx"
    assert v["stop_schedule"] == "QUIT/5/TERM/5/KILL/5"
    assert v["check_command"] == ["/usr/sbin/nginx", "-t", "$DAEMON_OPTS"]
    assert v["reload_signal"] == "HUP"
    assert v["actions"]["rotate"] == {"signal": "USR1"}
    assert v["actions"]["configtest"] == {"command": ["/usr/sbin/nginx", "-t", "$DAEMON_OPTS"]}
    assert "upgrade" not in v["actions"]
    assert any("upgrade" in s for s in d.skipped)
    assert any("PID is computed by a command" in s for s in d.skipped)
    assert d.origins["command"].startswith("line 50: start-stop-daemon --start")


def test_redis_initd_intermediate() -> None:
    d = draft("redis-server/redis-server")
    v = d.values
    assert v["command"] == ["/usr/bin/redis-server", "/etc/redis/redis.conf"]
    assert (v["type"], v["pid_file"]) == ("forking", "/run/redis/redis-server.pid")
    assert (v["user"], v["group"], v["umask"]) == ("redis", "redis", "007")
    assert v["directories"] == [{"path": "/run/redis"}] or v["directories"] == ["/run/redis"]
    assert any("forever" in s for s in d.skipped)
    assert any("ULIMIT" in s for s in d.skipped)


def test_memcached_debian_and_red_hat_scripts() -> None:
    d = draft("memcached/memcached")
    assert d.values["command"] == [
        "/usr/share/memcached/scripts/start-memcached",
        "/etc/memcached.conf",
        "/var/run/memcached.pid",
    ]
    assert d.values["stop_schedule"] == "TERM/5/KILL/5"  # --retry 5
    rh = draft("memcached-upstream/memcached.sysv", exists=False)
    assert rh.name == "memcached"
    assert rh.values["command"][:5] == ["memcached", "-d", "-p", "11211", "-u"]
    assert rh.values["pid_file"] == "/var/run/memcached/memcached.pid"
    assert rh.values["enabled"] is False  # chkconfig: -
    assert rh.values["directories"] == [{"path": "/var/run/memcached", "owner": "nobody"}]
    assert rh.values["reload"] is False  # restart|reload)
    assert "$OPTIONS" not in rh.values["command"]  # no /etc/sysconfig/memcached here


def test_ssh_cron_rsync_haproxy_scripts() -> None:
    ssh = draft("openssh-server/ssh", exists=False).values
    assert ssh["command"] == ["/usr/sbin/sshd"] and ssh["pid_file"] == "/run/sshd.pid"
    assert ssh["check_command"] == ["/usr/sbin/sshd", "-t"]
    assert ssh["reload_signal"] == "HUP" and ssh["umask"] == "022"
    assert ssh["directories"] == ["/run/sshd"]
    assert ssh["stop_schedule"] == "TERM/30/KILL/30"  # --retry 30, from restart
    cron = draft("cron/cron", exists=False).values
    assert (cron["command"], cron["pid_file"]) == (["/usr/sbin/cron"], "/var/run/crond.pid")
    rsync = draft("rsync/rsync", exists=False).values
    assert rsync["type"] == "simple"  # --background --make-pidfile
    assert rsync["command"][:3] == ["/usr/bin/rsync", "--no-detach", "--daemon"]
    hap = draft("haproxy/haproxy", exists=False).values
    assert hap["check_command"][:2] == ["/usr/sbin/haproxy", "-c"]
    assert hap["directories"] == [
        {"path": "/run/haproxy", "owner": "haproxy", "group": "haproxy", "mode": "2775"}
    ]
    assert hap["stop_schedule"] == "TERM/5/KILL/5"


def test_units_intermediate() -> None:
    ng = draft("nginx/nginx.service").values
    assert ng["command"] == ["/usr/sbin/nginx", "-g", "daemon on; master_process on;"]
    assert (ng["type"], ng["pid_file"], ng["kill_mode"]) == ("forking", "/run/nginx.pid", "group")
    assert ng["check_command"][:3] == ["/usr/sbin/nginx", "-t", "-q"]
    assert ng["stop_schedule"] == "QUIT/5/TERM/5/KILL/5"
    assert ng["enabled"] is True
    d = draft("redis-server/redis-server.service")
    rd = d.values
    assert rd["ready"] == "notify" and rd["type"] == "simple"
    assert (rd["user"], rd["group"], rd["umask"]) == ("redis", "redis", "007")
    assert rd["limits"] == {"nofile": 65535}
    assert rd["directories"] == [{"path": "/run/redis", "mode": "2755"}]
    assert rd["restart"] == "always"
    assert any("TimeoutStopSec=0" in s for s in d.skipped)
    assert any("ProtectSystem=strict" in s and "sandboxing" in s for s in d.skipped)
    tpl = draft("redis-server/redis-server@.service")
    assert tpl.name == "redis-server@"
    assert tpl.values["command"][1] == "/etc/redis/redis-{instance}.conf"
    assert tpl.values["description"] == "Advanced key-value store ({instance})"
    sup = draft("supervisor/supervisor.service").values
    assert (sup["kill_mode"], sup["restart"], sup["restart_delay"]) == ("process", "on-failure", 50)
    hap = draft("haproxy/haproxy.service", names={"rsyslog": "rsyslog"}).values
    assert hap["reload_signal"] == "USR2" and hap["check_command"][0] == "/usr/sbin/haproxy"
    assert hap["environment"]["CONFIG"] == "/etc/haproxy/haproxy.cfg"
    assert hap["depends"] == ["rsyslog"]
    pg = draft("postgresql-common/postgresql@.service").values
    assert pg["command"][-2:] == ["{instance}", "start"]
    assert pg["pid_file"] == "/run/postgresql/{instance}.pid"
    assert pg["stop_timeout"] == 3600


def test_new_keys_are_written_once_the_schema_has_them(tmp_path: Path) -> None:
    d = draft("nginx/nginx")
    today = emit.fit(d, set(schema.KNOWN_KEYS))
    for key in NEW_KEYS & set(d.values) - set(schema.KNOWN_KEYS):
        assert key not in today
        assert any(f"needs key {key}" in s for s in d.skipped)
    later = emit.fit(draft("nginx/nginx"), set(schema.KNOWN_KEYS) | NEW_KEYS)
    assert later["stop_schedule"] == "QUIT/5/TERM/5/KILL/5"
    assert later["actions"]["rotate"] == {"signal": "USR1"}
    assert later["check_command"] == ["/usr/sbin/nginx", "-t", "$DAEMON_OPTS"]
    # A schedule servicectl can say today is written as stop_signal + stop_timeout.
    mc = emit.fit(draft("memcached/memcached"), set(schema.KNOWN_KEYS))
    assert (mc["stop_signal"], mc["stop_timeout"]) == ("TERM", 5)


def test_depends_on_an_existing_definition(env: Env) -> None:
    env.sleeper("rsyslog")
    res = assert_ok(env.sc("import", str(DATA / "haproxy/haproxy.service")))
    assert yaml.safe_load(res.stdout)["depends"] == ["rsyslog"]
    (env.services / "haproxy.yaml").write_text(res.stdout)
    assert_ok(env.sc("check", "haproxy"))


def test_write_force_and_symlinks(env: Env, tmp_path: Path) -> None:
    script = str(DATA / "cron/cron")
    res = assert_ok(env.sc("import", "--write", script))
    target = env.services / "cron.yaml"
    assert "written to" in res.stdout and target.is_file()
    assert_ok(env.sc("check", "cron"))
    first = target.read_text()
    res = assert_ok(env.sc("import", "--write", script), 1)
    assert "already exists" in res.stderr and target.read_text() == first
    assert_ok(env.sc("import", "--write", "--force", script))
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    target.unlink()
    target.symlink_to(victim)
    assert_ok(env.sc("import", "--write", script), 1)
    assert_ok(env.sc("import", "--write", "--force", script))
    assert victim.read_text() == "keep me\n" and not target.is_symlink()
    assert not [p for p in env.services.iterdir() if p.name.startswith(".")]


def test_missing_and_hostile_files(env: Env, tmp_path: Path) -> None:
    assert_ok(env.sc("import", str(tmp_path / "nope")), 5)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    res = assert_ok(env.sc("import", str(fifo)), 6)
    assert "not read" in res.stderr and time.monotonic() - start < 20
    assert_ok(env.sc("import", "/bin/true"), 6)  # a binary
    assert_ok(env.sc("import", str(tmp_path)), 6)  # a directory
    noprog = tmp_path / "noprog"
    noprog.write_text('#!/bin/sh\ncase "$1" in\n start) echo hello ;;\nesac\n')
    res = assert_ok(env.sc("import", str(noprog)), 6)
    assert "no program" in res.stderr or "runs no program" in res.stderr
    link = tmp_path / "nginx-link"
    link.symlink_to(DATA / "nginx/nginx")
    assert_ok(env.sc("import", str(link)))
    for res in [env.sc("import", str(p)) for p in _hostile(tmp_path)]:
        assert res.returncode in (0, 6), res.stderr
        assert "Traceback" not in res.stderr + res.stdout


def _hostile(tmp: Path) -> list[Path]:
    out = []
    big = tmp / "big"
    body = (
        b'DAEMON=/usr/sbin/foo\ncase "$1" in\n'
        b" start) start-stop-daemon --start --exec $DAEMON ;;\nesac\n"
    )
    big.write_bytes(body + b"# padding padding padding\n" * 400_000)  # 10 MB
    out.append(big)
    nul = tmp / "nul"
    nul.write_bytes(b"#!/bin/sh\nDAEMON=/usr/sbin/fo\0o\ncase $1 in start) $DAEMON & ;; esac\n")
    out.append(nul)
    latin = tmp / "latin1"
    latin.write_bytes(
        "#!/bin/sh\n# Caf\xe9\nDAEMON=/usr/sbin/caf\xe9\n"
        "case $1 in start) nohup $DAEMON & ;; esac\n".encode("latin-1")
    )
    out.append(latin)
    deep = tmp / "deep"
    deep.write_text("#!/bin/sh\n" + "if true; then\n" * 3000 + "x\n" + "fi\n" * 3000)
    out.append(deep)
    unclosed = tmp / "unclosed"
    unclosed.write_text('#!/bin/sh\ncase "$1" in\n start) echo "$( ${ `\'\n')
    out.append(unclosed)
    weird = tmp / "weird.service"
    weird.write_text(
        "[Unit]\nDescription=x\x1b[31m\n[Bogus]\nFoo=bar\n"
        "[Service]\nExecStart=/bin/sleep 100\nFrob=1\n"
    )
    out.append(weird)
    garbage = tmp / "garbage.service"
    garbage.write_bytes(os.urandom(5000).replace(b"\0", b"x"))
    out.append(garbage)
    return out


def test_big_script_is_truncated_and_said(env: Env, tmp_path: Path) -> None:
    big = _hostile(tmp_path)[0]
    start = time.monotonic()
    res = assert_ok(env.sc("import", str(big)))
    assert time.monotonic() - start < 30
    assert "only its first" in res.stderr
    assert yaml.safe_load(res.stdout)["command"] == "/usr/sbin/foo"


def test_unit_with_unknown_sections_is_listed(env: Env, tmp_path: Path) -> None:
    weird = _hostile(tmp_path)[5]
    res = assert_ok(env.sc("import", str(weird)))
    assert "[Bogus] Foo=bar" in res.stderr and "Frob=1" in res.stderr
    assert "\x1b" not in res.stdout and "\x1b" not in res.stderr
    (env.services / "weird.yaml").write_text(res.stdout)
    assert_ok(env.sc("check", "weird"))


def test_plain_script_background_and_pid(env: Env, tmp_path: Path) -> None:
    # The common hand-written form: program in the background, $! into a PID file.
    script = tmp_path / "myapp"
    script.write_text(
        "#!/bin/sh\nAPP=/usr/bin/python3\nPIDFILE=/var/run/myapp.pid\nLOG=/var/log/myapp.log\n"
        'case "$1" in\n  start)\n    nohup $APP -m http.server 8000 > $LOG 2>&1 &\n'
        "    echo $! > $PIDFILE\n    ;;\n  stop)\n    kill -INT `cat $PIDFILE`\n    ;;\nesac\n"
    )
    d = draft_for(str(script), script.read_text())
    assert d.values["command"] == ["/usr/bin/python3", "-m", "http.server", "8000"]
    assert d.values["type"] == "simple" and d.values["stdout"] == "/var/log/myapp.log"
    assert d.values["stop_signal"] == "INT"


# ---------------------------------------------------------------------------------------------
# Debian's apache2, mariadb, mosquitto, chrony, exim4 and postfix: each gap closed by
# a general rule, checked on the packaged files.

APACHE_ENVVARS = {"/etc/apache2/envvars": DATA / "apache2/envvars"}


def test_apache2_script_its_control_tool_envvars_and_a_real_config_test() -> None:
    d = draft("apache2/apache2", exists=False, files=APACHE_ENVVARS)
    v = d.values
    assert v["command"] == ["apache2ctl", "start"] and v["type"] == "forking"
    assert v["pid_file"] == "/var/run/apache2/apache2.pid"  # $APACHE_PID_FILE, from envvars
    assert v["environment"] == {"LANG": "C"}  # $ENV: env -i LANG=C PATH=... (PATH: the same)
    assert v["check_command"] == ["apache2ctl", "configtest"]  # not the test's rm -f
    assert v["reload_command"] == ["apache2ctl", "graceful"]
    assert v["actions"] == {
        "graceful-stop": {"command": ["apache2ctl", "graceful-stop"], "stops": True}
    }
    assert any("graceful does what reload does" in s for s in d.skipped)
    unread = draft("apache2/apache2", exists=False)  # envvars not readable: said, guessed
    assert any("PID file is computed when it runs" in s for s in unread.skipped)


def test_a_check_command_is_a_config_test_or_nothing(tmp_path: Path) -> None:
    """Housekeeping around a config test (mktemp, rm -f) never becomes check_command."""
    script = tmp_path / "web"
    script.write_text(
        "#!/bin/sh\nDAEMON=/usr/sbin/webd\nOUT=\n"
        'conftest() {\n  [ -z "$OUT" ] || rm -f "$OUT"\n  OUT=$(mktemp)\n'
        '  if ! $DAEMON --check-config > "$OUT" 2>&1; then\n    return 1\n  fi\n'
        '  rm -f "$OUT"\n}\n'
        'case "$1" in\n'
        "  start) conftest && start-stop-daemon --start --background --exec $DAEMON ;;\n"
        "  reload) conftest; start-stop-daemon --stop --signal HUP --exec $DAEMON ;;\nesac\n"
    )
    v = draft_for(str(script), script.read_text(), system=system(False)).values
    assert v["check_command"] == ["/usr/sbin/webd", "--check-config"]
    assert v["reload_signal"] == "HUP"
    housekeeping = script.read_text().replace("$DAEMON --check-config", "cat /etc/hosts")
    script.write_text(housekeeping)
    v = draft_for(str(script), script.read_text(), system=system(False)).values
    assert "check_command" not in v  # nothing that tests the daemon's configuration


def test_apache2_unit() -> None:
    d = draft("apache2/apache2.service")
    v = d.values
    assert v["command"] == ["/usr/sbin/apachectl", "start"]
    assert v["reload_command"] == ["/usr/sbin/apachectl", "graceful"]
    assert v["restart"] == "on-failure"  # Restart=on-abort, with the difference said
    assert any("Restart=on-abort" in n for n in d.notes)
    assert any("no PIDFile=" in s for s in d.skipped)  # the unit does not say it


def test_mariadb_script_a_backgrounded_pipeline() -> None:
    d = draft("mariadb/mariadb", exists=False)
    v = d.values
    assert v["command"] == ["/usr/bin/mysqld_safe"]  # "${@:2}": no extra arguments at boot
    assert v["type"] == "simple"  # mysqld_safe ... | logger &
    assert any("its output went to" in n and "logger" in n for n in d.notes)
    assert v["directories"] == [{"path": "/run/mysqld", "owner": "mysql", "group": "root"}]
    assert v["reload_command"][-1] == "reload" and v["environment"] == {"HOME": "/etc/mysql/"}
    assert (v["umask"], v["working_directory"]) == ("077", "/")


def test_mariadb_unit_tmpfiles_restart_and_limits() -> None:
    d = draft("mariadb/mariadb.service", tmpfiles=str(DATA / "mariadb"))
    v = d.values
    assert v["directories"] == [{"path": "/run/mysqld", "group": "root"}]  # mysql owns it
    assert (v["restart"], v["restart_delay"]) == ("on-failure", 5)  # Restart=on-abnormal
    assert v["limits"] == {"nofile": 32768, "memlock": 524288}
    assert any("ExecStartPost=!/etc/mysql/debian-start" in s for s in d.skipped)
    without = draft("mariadb/mariadb.service")
    assert "directories" not in without.values  # no tmpfiles.d here: nothing invented


def test_mosquitto_unit_exec_start_pre_directories_and_script_pid_file() -> None:
    v = draft("mosquitto/mosquitto.service").values
    assert v["directories"] == [
        {"path": "/var/log/mosquitto", "owner": "mosquitto", "mode": "740"},
        {"path": "/run/mosquitto", "owner": "mosquitto", "mode": "740"},
    ]
    assert v["ready"] == "notify" and v["reload_signal"] == "HUP"
    s = draft("mosquitto/mosquitto", exists=False).values
    assert (s["type"], s["pid_file"]) == ("simple", "/run/mosquitto/mosquitto.pid")
    assert s["stop_schedule"] == "TERM/30/KILL/30" and s["reload_signal"] == "HUP"


def test_chrony_unit_full_privileges_and_directory_owners() -> None:
    d = draft("chrony/chrony.service")
    v = d.values
    assert "user" not in v and "group" not in v  # ExecStart=!: chronyd runs as root
    assert any("full privileges" in n and "User=_chrony" in n for n in d.notes)
    dirs = {x["path"] if isinstance(x, dict) else x: x for x in v["directories"]}
    assert dirs["/etc/chrony"] == "/etc/chrony"  # ConfigurationDirectory=: root's
    assert dirs["/run/chrony"]["owner"] == "_chrony" and dirs["/run/chrony"]["mode"] == "0700"
    assert dirs["/var/lib/chrony"]["mode"] == "0750"
    assert (v["type"], v["pid_file"]) == ("forking", "/run/chrony/chronyd.pid")
    assert v["command"] == ["/usr/sbin/chronyd", "$DAEMON_OPTS"]


def test_configuration_directory_stays_roots(tmp_path: Path) -> None:
    unit = tmp_path / "svc.service"
    unit.write_text(
        "[Service]\nExecStart=/usr/sbin/svcd\nUser=svc\nConfigurationDirectory=svc\n"
        "StateDirectory=svc\n"
    )
    v = draft_for(str(unit), unit.read_text(), system=system(False)).values
    assert v["user"] == "svc"
    assert v["directories"] == [
        {"path": "/etc/svc", "owner": "root", "group": "root"},
        "/var/lib/svc",
    ]


def test_chrony_script_defaults_file_read() -> None:
    files = {"/etc/default/chrony": DATA / "chrony/chrony.default"}
    d = draft("chrony/chrony", exists=False, files=files)
    assert d.values["env_file"] == "/etc/default/chrony"
    assert d.values["command"] == ["/usr/sbin/chronyd", "$DAEMON_OPTS"]  # expanded at start
    assert not any("may set them differently" in n for n in d.notes)  # it was read


def test_exim4_script_defaults_decide_guard_test_and_hup() -> None:
    files = {"/etc/default/exim4": DATA / "exim4/exim4.default"}
    d = draft("exim4/exim4", exists=False, files=files)
    v = d.values
    assert v["command"][:3] == ["/usr/sbin/exim4", "-bd", "-q${QFLAGS}${QUEUEINTERVAL}"]
    assert v["env_file"] == "/etc/default/exim4"
    assert v["check_command"] == ["/usr/sbin/exim4", "-bV"]  # if ! $DAEMON -bV; then exit 1
    assert v["reload_signal"] == "HUP"  # QUEUERUNNER=combined decides the case
    assert v["directories"] == [
        {"path": "/run/exim4", "owner": "Debian-exim", "group": "Debian-exim", "mode": "750"}
    ]
    assert v["pid_file"] == "/run/exim4/exim.pid"
    assert any("update-exim4.conf" in s or "UPEX4CONF" in s for s in d.skipped)


def test_postfix_script_a_template_its_actions_and_check() -> None:
    d = draft("postfix/postfix", exists=False)
    v = d.values
    assert d.name == "postfix@"  # one daemon per $INSTANCE: a template, never lost
    assert v["command"] == [
        "/usr/sbin/postmulti",
        *("-i", "{instance}", "-x", "/usr/sbin/postfix", "start"),  # "--" was start-stop-daemon's
    ]
    assert v["check_command"] == ["/usr/sbin/postfix", "check"]
    assert v["reload_command"] == ["/usr/sbin/postfix", "reload"]
    assert v["actions"] == {
        "flush": {"command": ["/usr/sbin/postfix", "flush"]},
        "check": {"command": ["/usr/sbin/postfix", "check"]},
        "abort": {"command": ["/usr/sbin/postfix", "abort"], "stops": True},
    }
    assert any("for each value of $INSTANCE" in n for n in d.notes)
    tpl = draft("postfix/postfix@.service")
    assert tpl.name == "postfix@" and tpl.values["command"][2] == "{instance}"


def test_unset_variables_are_never_lost_silently(tmp_path: Path) -> None:
    script = tmp_path / "svc"
    script.write_text(
        '#!/bin/sh\ncase "$1" in\n start)\n  for INSTANCE in one two; do\n'
        "   start-stop-daemon --start --background --exec /usr/sbin/svcd -- -i $INSTANCE\n"
        "  done ;;\nesac\n"
    )
    d = draft_for(str(script), script.read_text(), system=system(False))
    assert d.name == "svc@" and d.values["instances"] == ["one", "two"]
    assert d.values["command"] == ["/usr/sbin/svcd", "-i", "{instance}"]


def test_postfix_default_instance_dash(env: Env) -> None:
    res = assert_ok(env.sc("import", str(DATA / "postfix/postfix@.service")))
    (env.services / "postfix@.yaml").write_text(res.stdout)
    assert_ok(env.sc("check", "postfix@-"))  # Debian's default instance: "-" alone


def test_one_shot_scripts_are_oneshots() -> None:
    procps = draft("procps/procps", exists=False).values
    assert (procps["type"], procps["command"]) == ("oneshot", ["/sbin/sysctl", "-q", "--system"])
    assert "pid_file" not in procps and "stop_command" not in procps
    hw = draft("hwclock/hwclock.sh", exists=False)
    assert hw.name == "hwclock" and hw.values["type"] == "oneshot"
    assert hw.values["command"] == ["/bin/true"]  # its start does nothing: udev does it
    assert hw.values["stop_command"] == ["/sbin/hwclock", "--rtc=/dev/rtc0", "--systohc"]
    assert hw.values["actions"] == {
        "show": {"command": ["/sbin/hwclock", "--rtc=/dev/rtc0", "--show"]}
    }
    kmod = draft("kmod/kmod", exists=False)
    assert kmod.values["type"] == "oneshot"  # a loop over modules read when it runs:
    assert kmod.values["command"] == [str(DATA / "kmod/kmod"), "start"]  # the script itself
    assert any("keep that script" in n for n in kmod.notes)


def test_oneshot_units() -> None:
    d = draft("postfix/postfix.service")
    assert (d.values["type"], d.values["command"]) == ("oneshot", ["/bin/true"])
    assert "reload" not in d.values and any("not reloaded" in s for s in d.skipped)


def test_oneshot_unit_several_exec_start_and_exec_stop(tmp_path: Path) -> None:
    unit = tmp_path / "setup.service"
    unit.write_text(
        "[Service]\nType=oneshot\nExecStart=/sbin/sysctl -p\nExecStart=/bin/echo 'a b'\n"
        "ExecStop=/sbin/hwclock --systohc\n"
    )
    d = draft_for(str(unit), unit.read_text(), system=system(False))
    assert d.values["command"] == ["/bin/sh", "-c", "/sbin/sysctl -p && /bin/echo 'a b'"]
    assert d.values["stop_command"] == ["/sbin/hwclock", "--systohc"]
    assert any("RemainAfterExit" in n for n in d.notes)


def test_redis_unit_keeps_its_pid_file() -> None:
    v = draft("redis-server/redis-server.service").values
    assert v["pid_file"] == "/run/redis/redis-server.pid" and v["type"] == "simple"


@pytest.mark.parametrize(
    ("value", "policy"),
    [("on-abnormal", "on-failure"), ("on-abort", "on-failure"), ("on-watchdog", "on-failure")],
)
def test_restart_values_servicectl_has_no_word_for(tmp_path: Path, value: str, policy: str) -> None:
    unit = tmp_path / "x.service"
    unit.write_text(f"[Service]\nExecStart=/usr/sbin/x\nRestart={value}\n")
    d = draft_for(str(unit), unit.read_text(), system=system(False))
    assert d.values["restart"] == policy and any(f"Restart={value}" in n for n in d.notes)


# ---------------------------------------------------------------------------------------------
# The real daemons, started from what was imported (private ports, dirs and PID files).


def _imported(env: Env, relpath: str) -> dict[str, Any]:
    res = assert_ok(env.sc("import", str(DATA / relpath)))
    data: dict[str, Any] = yaml.safe_load(res.stdout)
    data.pop("directories", None)  # under /run: not in a test
    env_map = dict(data.get("environment") or {})
    env_map[TAG_VAR] = env.tag
    data["environment"] = env_map
    return data


def test_imported_nginx_runs(env: Env, shared: Path) -> None:
    need("nginx")
    port = free_port()
    conf = nginx_conf(env, port, shared)
    pid = env.run / "nginx-imported.pid"
    conf.write_text(
        conf.read_text().replace("worker_processes 2;", f"worker_processes 1;\npid {pid};")
    )
    data = _imported(env, "nginx/nginx")
    assert data["type"] == "forking" and data["command"] == "/usr/sbin/nginx $DAEMON_OPTS"
    (env.root / "nginx.env").write_text(f"DAEMON_OPTS=-c {conf}\n")
    data["env_file"] = str(env.root / "nginx.env")
    data["command"] = data["command"].replace("$DAEMON_OPTS", f"-c {conf}")
    if "check_command" in data:
        data["check_command"] = data["check_command"].replace("$DAEMON_OPTS", f"-c {conf}")
    data["pid_file"] = str(pid)
    env.write("nginx", data)
    assert_ok(env.sc("start", "nginx"))
    master = int(pid.read_text())
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    assert_ok(env.sc("status", "nginx"))
    assert_ok(env.sc("stop", "nginx"))
    assert not alive(master)
    assert_ok(env.sc("status", "nginx"), 3)


def test_imported_redis_unit_runs(env: Env, shared: Path) -> None:
    need("redis-server")
    port = free_port()
    user = user_or_none("redis")
    data = _imported(env, "redis-server/redis-server.service")
    assert data["ready"] == "notify" and data["user"] == "redis"
    datadir = shared / "redis"
    datadir.mkdir()
    if user:
        shutil.chown(datadir, user)
    else:
        data.pop("user", None)
        data.pop("group", None)
    conf = shared / "redis.conf"
    conf.write_text(
        f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {datadir}\nlogfile ""\n'
    )
    conf.chmod(0o644)
    data["command"] = data["command"].replace("/etc/redis/redis.conf", str(conf))
    data["start_timeout"] = 20
    data.pop("limits", None)  # raising a hard limit needs CAP_SYS_RESOURCE, not in every container
    env.write("redis", data)
    assert_ok(env.sc("start", "redis"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(64) == b"+PONG\r\n"
    row = env.status_json("redis")["redis"]
    assert row["state"] == "running"
    assert_ok(env.sc("stop", "redis"))
    assert not alive(row["pid"])


def test_imported_memcached_runs(env: Env, shared: Path) -> None:
    need("memcached")
    if os.geteuid() != 0:
        pytest.skip("start-memcached runs only as root")
    port = free_port()
    data = _imported(env, "memcached/memcached")
    assert data["type"] == "forking" and data["pid_file"] == "/var/run/memcached.pid"
    user = user_or_none("memcache") or "nobody"
    conf = shared / "memcached.conf"
    conf.write_text(f"-p {port}\n-l 127.0.0.1\n-U 0\n-m 16\n-u {user}\nlogfile {shared}/mc.log\n")
    pid = env.run / "mc.pid"
    data["command"] = (
        data["command"]
        .replace("/etc/memcached.conf", str(conf))
        .replace("/var/run/memcached.pid", str(pid))
    )
    data["pid_file"] = str(pid)
    env.write("mc", data)
    assert_ok(env.sc("start", "mc"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"version\r\n")
        assert s.recv(64).startswith(b"VERSION")
    daemon = int(pid.read_text())
    assert_ok(env.sc("status", "mc"))
    assert_ok(env.sc("stop", "mc"))
    assert not alive(daemon)


def test_a_variable_set_nowhere_is_listed(tmp_path: Path) -> None:
    script = tmp_path / "svc"
    script.write_text(
        '#!/bin/sh\ncase "$1" in\n start)\n'
        "   start-stop-daemon --start --background --exec /usr/sbin/svcd -- -i $INSTANCE -v\n"
        "  ;;\nesac\n"
    )
    d = draft_for(str(script), script.read_text(), system=system(False))
    assert d.values["command"] == ["/usr/sbin/svcd", "-i", "-v"]
    assert any("$INSTANCE is set nowhere" in s for s in d.skipped)


def test_R_IMP_2_a_script_another_user_can_write_names_no_file_to_read(
    env: Env, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("PIDFILE=/run/the-secret-value.pid\n")
    secret.chmod(0o600)
    script = tmp_path / "svc"
    script.write_text(
        f'#!/bin/sh\nPIDFILE=$(. {secret} && echo $PIDFILE)\ncase "$1" in\n'
        " start) start-stop-daemon --start --pidfile $PIDFILE --exec /usr/sbin/svcd ;;\nesac\n"
    )
    script.chmod(0o644)
    trusted = assert_ok(env.sc("import", str(script)))
    assert "the-secret-value" in trusted.stdout  # its owner's own file: read
    script.chmod(0o666)  # now anyone could have written it
    res = assert_ok(env.sc("import", str(script)))
    assert "the-secret-value" not in res.stdout + res.stderr
    assert "could be written by another user" in res.stdout


def test_a_pid_file_the_script_writes_itself_is_listed(tmp_path: Path) -> None:
    """rpcbind's script writes the PID file after start: its daemon does not."""
    script = tmp_path / "rpcd"
    script.write_text(
        '#!/bin/sh\nPIDFILE=/run/rpcd.pid\ncase "$1" in\n start)\n'
        "   start-stop-daemon --start --exec /sbin/rpcd\n"
        '   pid=$( pidofproc /sbin/rpcd )\n   echo -n "$pid" >"$PIDFILE" ;;\n'
        " stop) start-stop-daemon --stop --exec /sbin/rpcd ;;\nesac\n"
    )
    d = draft_for(str(script), script.read_text(), system=system(False))
    assert (d.values["type"], d.values["pid_file"]) == ("forking", "/run/rpcd.pid")
    assert any("the script writes /run/rpcd.pid itself" in s for s in d.skipped)
