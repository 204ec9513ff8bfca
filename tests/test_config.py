"""Service definitions: every key parsed into the typed model, and every error naming the file,
the key, what was found and what was expected (through the real `check`, `list`, `status`)."""

from __future__ import annotations

import json
import os
import pwd
import signal
import time
from pathlib import Path

import pytest
from conftest import Env, assert_ok, dirs_for, tagged_pids, wait_for

from servicectl.definitions.catalog import load_catalog
from servicectl.definitions.schema import Service
from servicectl.paths import resolve_dirs


def test_minimal_definition_and_defaults(env: Env) -> None:
    env.write("web", "command: sleep 10\n")
    cat = load_catalog(dirs_for(env))
    svc = cat.services["web"]
    assert svc.command == ("sleep", "10")
    assert svc.type == "simple" and svc.kill_mode == "group" and svc.enabled
    assert svc.stop_signal == signal.SIGTERM and svc.stop_timeout == 30.0
    assert svc.start_grace == 0.5 and svc.ready is None and svc.reload
    assert svc.pid_file == str(env.run / "web.pid")  # paths are strings (no pathlib at start-up)
    assert svc.stdout == svc.stderr == str(env.log / "web.log")
    assert svc.working_directory == "/" and svc.umask == 0o022
    with pytest.raises(AttributeError):
        svc.name = "x"  # type: ignore[misc]  # frozen


def test_every_key(env: Env) -> None:
    env.write(
        "web",
        """
description: Web server
command: [bin/web, --port, "8080"]
type: forking
working_directory: www
user: root
group: root
umask: "027"
environment: {A: "1", B: 2}
env_file: web.env
stdout: out/web.out
stderr: "null"
pid_file: "{run_dir}/web-daemon.pid"
stop_signal: SIGINT
stop_timeout: 5
kill_mode: process
reload_command: "bin/web --reload"
start_timeout: 7.5
start_grace: 0
ready: {tcp: "127.0.0.1:8080"}
depends: [db]
enabled: false
nice: 5
limits: {nofile: 4096, core: [0, unlimited]}
""",
    )
    env.write("db", "command: sleep 1\n")
    svc: Service = load_catalog(dirs_for(env)).services["web"]
    s = env.services
    assert svc.command == (str(s / "bin/web"), "--port", "8080")
    assert svc.type == "forking" and svc.working_directory == str(s / "www")
    assert (svc.user, svc.group, svc.umask) == ("root", "root", 0o027)
    assert svc.env == {"A": "1", "B": "2"} and svc.env_file == str(s / "web.env")
    assert svc.stdout == str(s / "out/web.out") and svc.stderr is None
    assert svc.pid_file == str(env.run / "web-daemon.pid")
    assert svc.stop_signal == signal.SIGINT and svc.stop_timeout == 5.0
    assert svc.kill_mode == "process" and svc.reload_command == (str(s / "bin/web"), "--reload")
    assert (svc.start_timeout, svc.start_grace) == (7.5, 0.0)
    assert svc.ready is not None and (svc.ready.kind, svc.ready.target) == ("tcp", "127.0.0.1:8080")
    assert svc.depends == ("db",) and not svc.enabled and svc.nice == 5
    assert svc.limits == (("nofile", 4096, 4096), ("core", 0, -1))


@pytest.mark.parametrize(
    ("yaml_text", "key", "words"),
    [
        ("command: x\nstop_timout: 3\n", "stop_timout", "did you mean stop_timeout?"),
        ("command: x\nstop_timeout: -1\n", "stop_timeout", "found -1, expected"),
        ("command: x\nstop_timeout: soon\n", "stop_timeout", "found 'soon', expected a number"),
        ("command: x\nstop_signal: FOO\n", "stop_signal", "expected a signal name"),
        ("command: x\nkill_mode: all\n", "kill_mode", "expected group or process"),
        ("command: x\ntype: daemon\n", "type", "expected simple or forking or oneshot"),
        ("command: x\ntype: forking\n", "pid_file", "forking service"),
        ("description: no command\n", "command", "missing"),
        ("command: []\n", "command", "non-empty"),
        ("command: x\nenabled: yes please\n", "enabled", "true or false"),
        ("command: x\numask: 999\n", "umask", "octal"),
        ("command: x\nnice: 40\n", "nice", "-20 to 19"),
        ("command: x\nlimits: {nofiles: 10}\n", "limits.nofiles", "did you mean nofile?"),
        ("command: x\nready: {tcp: nope}\n", "ready.tcp", "HOST:PORT"),
        ("command: x\nready: {htp: x}\n", "ready", "did you mean http?"),
        ("command: x\nenvironment: {DEBUG: true}\n", "environment.DEBUG", "quote it"),
        ("command: x\nreload_signal: HUP\nreload_command: y\n", "reload_command", "not both"),
        ("command: x\ndepends: [ghost]\n", "depends", "ghost: no such service"),
        ("command: 'unclosed\n", None, "not valid YAML"),
        ("command: x\ncommand: y\n", None, "duplicate key"),
        ("- just\n- a list\n", None, "expected a mapping"),
        ("", None, "empty"),
    ],
)
def test_errors_name_file_key_found_expected(
    env: Env, yaml_text: str, key: str | None, words: str
) -> None:
    env.write("web", yaml_text)
    res = assert_ok(env.sc("check", "web"), 6)
    prefix = f"servicectl: {env.services / 'web.yaml'}: " + (f"{key}: " if key else "")
    assert prefix in res.stderr, res.stderr
    assert words in res.stderr, res.stderr


def test_cycle_names_the_services(env: Env) -> None:
    env.write("a", "command: x\ndepends: [b]\n")
    env.write("b", "command: x\ndepends: [c]\n")
    env.write("c", "command: x\ndepends: [a]\n")
    env.write("d", "command: x\ndepends: [a]\n")
    res = assert_ok(env.sc("check"), 6)
    assert "dependency cycle: a -> b -> c -> a" in res.stderr
    assert "d: ok" in res.stdout  # depends on a broken service, but is itself valid


def test_broken_file_does_not_block_others(env: Env) -> None:
    env.write("bad", "command: [unclosed\n", tag=False)
    env.write("bin", b"\xff\xfe\x00junk".decode("latin-1"), tag=False)
    env.sleeper("good")
    assert_ok(env.sc("start", "good"))
    assert_ok(env.sc("status", "good"), 0)
    rows = {r["name"]: r for r in json.loads(env.sc("status", "--json").stdout)}
    assert rows["bad"]["state"] == "invalid" and rows["bad"]["exit_code"] == 4
    assert "not valid YAML" in rows["bad"]["error"]
    assert_ok(env.sc("start", "bad"), 6)
    assert_ok(env.sc("stop", "good"))


def test_ignored_files_and_yml(env: Env) -> None:
    for name in (
        ".hidden.yaml",
        "web.yaml~",
        "web.yaml.bak",
        "web.yaml.dpkg-old",
        "web.yaml.dpkg-dist",
        "notes.txt",
    ):
        (env.services / name).write_text("this is: [not valid\n")
    env.write("web", "command: x\n")
    (env.services / "db.yml").write_text("command: y\n")
    res = assert_ok(env.sc("check"))
    assert res.stdout.splitlines() == [
        f"db: ok ({env.services / 'db.yml'})",
        f"web: ok ({env.services / 'web.yaml'})",
    ]


def test_list_json(env: Env) -> None:
    env.write("web", "command: x\ndescription: The web\ndepends: [db]\n")
    env.write("db", "command: y\nenabled: false\ntype: forking\npid_file: /tmp/db.pid\n")
    items = json.loads(assert_ok(env.sc("list", "--json")).stdout)
    assert [
        (i["name"], i["type"], i["enabled"], i["depends"], i["description"]) for i in items
    ] == [("db", "forking", False, [], ""), ("web", "simple", True, ["db"], "The web")]
    text = assert_ok(env.sc("list")).stdout
    assert "web" in text and "The web" in text


def test_unknown_service_and_missing_directory(env: Env, tmp_path: Path) -> None:
    res = assert_ok(env.sc("start", "nope"), 5)
    assert "no such service" in res.stderr
    res = env.sc("-d", str(tmp_path / "missing"), "status")
    assert res.returncode == 4 and "does not exist" in res.stderr  # status unknown


def test_directory_resolution(tmp_path: Path) -> None:
    d = resolve_dirs(
        environ={
            "SERVICECTL_SERVICES_DIR": "/x",
            "SERVICECTL_RUN_DIR": "/r",
            "SERVICECTL_LOG_DIR": "/l",
        },
        euid=1000,
    )
    assert (d.services, d.run, d.log) == ("/x", "/r", "/l")
    assert d.run_given and d.log_given
    d = resolve_dirs(services=tmp_path, environ={"SERVICECTL_SERVICES_DIR": "/x"}, euid=0)
    assert d.services == str(tmp_path) and d.run == "/run/servicectl"
    assert d.log == "/var/log/servicectl" and not d.run_given
    d = resolve_dirs(environ={"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u"}, euid=1000)
    assert d.run == "/run/user/1000/servicectl"
    assert d.log == "/home/u/.local/state/servicectl/log"
    d = resolve_dirs(environ={"HOME": "/home/u"}, euid=1000)
    assert d.run == "/home/u/.local/state/servicectl/run"


def test_signal_spellings(env: Env) -> None:
    from servicectl.definitions.schema import parse_signal

    assert parse_signal("TERM") == parse_signal("SIGTERM") == parse_signal("sigterm") == 15
    assert parse_signal(9) == parse_signal("9") == 9
    assert (
        parse_signal("SIG_IGN") is None and parse_signal(0) is None and parse_signal(True) is None
    )


def test_definition_cache_sees_every_edit(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validated definitions are cached by file identity and reused; any edit is seen at once,
    and a damaged cache is ignored."""
    from servicectl.definitions import cache, catalog

    monkeypatch.setattr(cache, "RACY_NS", 0)  # files here are seconds old at most
    env.run.mkdir()
    dirs = dirs_for(env)
    path = env.write("web", "command: sleep 1\nstop_timeout: 5\n")
    assert load_catalog(dirs).services["web"].stop_timeout == 5
    assert list(env.run.glob(".definitions-*.cache"))
    real_load_file = catalog.load_file

    def must_not_parse(*args: object) -> None:
        raise AssertionError("parsed although the cache was valid")

    monkeypatch.setattr(catalog, "load_file", must_not_parse)
    assert load_catalog(dirs).services["web"].stop_timeout == 5  # from the cache
    monkeypatch.setattr(catalog, "load_file", real_load_file)
    path.write_text("command: sleep 1\nstop_timout: 5\n")  # same size, a typo
    cat = load_catalog(dirs)
    assert "stop_timout" in cat.invalid["web"].first_error.message
    path.write_text("command: sleep 1\nstop_timeout: 7\n")
    assert load_catalog(dirs).services["web"].stop_timeout == 7
    for damaged in env.run.glob(".definitions-*.cache"):
        damaged.write_bytes(b"garbage")
    assert load_catalog(dirs).services["web"].stop_timeout == 7
    assert_ok(env.sc("status", "web"), 3)


def test_two_installations_sharing_a_run_dir_keep_their_own_caches(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process's servicectl (the source tree) and the installed one (env.sc) share a run
    directory: each keeps its own definition cache, and neither throws the other's away (one
    file for both made each parse every definition again after the other's command)."""
    from servicectl.definitions import cache, catalog

    env.run.mkdir()
    dirs = dirs_for(env)
    path = env.write("web", "command: sleep 1\nstop_timeout: 5\n")
    changed = os.stat(path).st_ctime
    wait_for(lambda: time.time() - changed > cache.RACY_NS / 1e9 + 0.2, what="a cacheable file")
    assert load_catalog(dirs).services["web"].stop_timeout == 5  # this one's cache made
    assert_ok(env.sc("status", "web"), 3)  # the installed one's
    assert len(list(env.run.glob(".definitions-*.cache"))) == 2

    def must_not_parse(*args: object) -> None:
        raise AssertionError("parsed again: the other installation's command replaced the cache")

    monkeypatch.setattr(catalog, "load_file", must_not_parse)
    assert load_catalog(dirs).services["web"].stop_timeout == 5
    before = {p.name: p.stat().st_ino for p in env.run.glob(".definitions-*.cache")}
    assert_ok(env.sc("status", "web"), 3)
    after = {p.name: p.stat().st_ino for p in env.run.glob(".definitions-*.cache")}
    assert after == before  # the installed one read its own, and rewrote nothing


def test_an_upgrade_leaves_no_cache_of_the_old_naming(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache of servicectl 0.2.0 (named by the services directory alone) is removed when
    this one's is written: an upgrade leaves no stale file in the run directory."""
    from servicectl.definitions import cache

    monkeypatch.setattr(cache, "RACY_NS", 0)
    env.run.mkdir()
    legacy = env.run / f".definitions-{cache._fnv1a(os.fsencode(str(env.services)))}.cache"
    legacy.write_bytes(b"an old cache")
    env.write("web", "command: sleep 1\n")
    assert "web" in load_catalog(dirs_for(env)).services
    assert not legacy.exists()
    assert [p.name for p in env.run.glob(".definitions-*.cache")] == [
        os.path.basename(cache._cache_path(str(env.run), str(env.services)))
    ]


# ---------------------------------------------------------------------------------------------
# One schema: every key declared once, and what is derived from the declarations


def test_service_fields_are_the_declared_keys() -> None:
    """Service has a field per declared key, in order, whose default is the declared default as
    parsed (but for those that depend on the service's name and directories); besides them
    only name, file, what is derived from two keys and the drop-ins merged in."""
    from servicectl.definitions import schema

    fields = Service._fields
    assert fields[:2] == ("name", "file")
    assert fields[2 : 2 + len(schema.KEYS)] == schema.KNOWN_KEYS
    assert fields[2 + len(schema.KEYS) :] == ("stderr_same", "pid_file_given", "dropins")
    from servicectl.definitions import build

    defaults = build.parsed_defaults()
    contextual = {k.name for k in schema.KEYS if "{" in str(k.default)} | {"stderr"}
    assert contextual == {"stdout", "stderr", "pid_file"}
    for k in schema.KEYS:
        if not k.required and k.name not in contextual:
            assert Service._field_defaults[k.name] == defaults[k.name], k.name
        assert k.doc and "\n" not in k.doc and k.example and k.type, k.name
    assert defaults["pid_file"] == "/run/servicectl/NAME.pid"
    assert defaults["stdout"] == defaults["stderr"] == "/var/log/servicectl/NAME.log"


def test_every_example_is_valid(env: Env) -> None:
    """The example of each key, as the reference shows it, is accepted by check."""
    from servicectl.definitions import schema

    (env.services / "web.env").write_text("GREETING=hello\n")  # the env_file example
    for k in schema.KEYS:
        extra = {
            "type": "pid_file: /run/x.pid\n",
            "stop_command": "type: oneshot\n",
            "health": "restart: on-failure\n",
        }.get(k.name, "")
        command = "" if k.name == "command" else "command: x\n"
        name = "web@" if k.name == "instances" else "web"  # only a template lists instances
        env.write(name, f"{command}{k.name}: {k.example}\n{extra}")
        env.write("db", "command: y\n")
        assert_ok(env.sc("check", name))


def test_reference_is_generated_from_the_schema() -> None:
    """docs/configuration.md holds what the declarations generate (regenerate it with
    python -m servicectl.definitions.schema_doc --write docs/configuration.md)."""
    from servicectl.definitions import schema, schema_doc

    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    start, end = text.index(schema_doc.BEGIN), text.index(schema_doc.END) + len(schema_doc.END) + 1
    assert text[start:end] == schema_doc.markdown(), (
        "docs/configuration.md is out of date: python -m servicectl.definitions.schema_doc --write "
        "docs/configuration.md"
    )
    for k in schema.KEYS:
        assert f"### {k.name}\n" in text


def test_schema_hash_keys_the_cache(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is keyed by the schema (its key, and the hash a supervisor's hello carries):
    the same in every process, and a cache written under another schema is never served."""
    import subprocess
    import sys

    from servicectl.definitions import cache, catalog, digest

    probe = "from servicectl.definitions.digest import schema_hash as h, schema_key as k; "
    probe += "print(h(), len(k()))"
    runs = {subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout}
    runs.add(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout)
    assert runs == {f"{digest.schema_hash()} {len(digest.schema_key())}\n"}

    monkeypatch.setattr(cache, "RACY_NS", 0)
    env.run.mkdir()
    env.write("web", "command: sleep 1\n")
    assert load_catalog(env.dirs).services["web"]
    assert cache.load(env.dirs)  # cached
    monkeypatch.setattr(digest, "_KEY", "another schema")
    assert cache.load(env.dirs) == {}
    parsed = []
    real = catalog.load_file
    monkeypatch.setattr(catalog, "load_file", lambda *a: parsed.append(a) or real(*a))
    assert load_catalog(env.dirs).services["web"] and len(parsed) == 1


# ---------------------------------------------------------------------------------------------
# Papercuts: tabs, numeric users and groups


@pytest.mark.parametrize(
    ("text", "key", "where"),
    [
        ("command: x\nenvironment:\n\tA: b\n", "environment", "line 3, column 1"),
        ("\tcommand: x\n", "command", "line 1, column 1"),
        ("command: x\nlimits:\n  nofile: 1\n\t core: 0\n", "limits", "line 4, column 1"),
        ("command:\n\t- sleep\n\t- 1\n", "command", "line 2, column 1"),
    ],
)
def test_a_tab_is_named(env: Env, text: str, key: str, where: str) -> None:
    env.write("web", text)
    res = assert_ok(env.sc("check", "web"), 6)
    assert "Traceback" not in res.stderr
    prefix = f"servicectl: {env.services / 'web.yaml'}: {key}: "
    assert f"{prefix}not valid YAML: a tab character at {where}" in res.stderr, res.stderr
    assert "indents with spaces" in res.stderr


@pytest.mark.parametrize("key", ["user", "group"])
@pytest.mark.parametrize(
    "value",
    ['"4294967295"', "4294967295", '"4294967296"', "-1", '"-1"', '"+5"', '"²"', '"99999999999"'],
)
def test_numeric_ids_out_of_range_are_refused_by_check(env: Env, key: str, value: str) -> None:
    """2**32 - 1 is -1, "no change", to setresgid/setgroups: a service would keep root's
    group. It and anything that is no ID are refused by check, naming file and key."""
    env.write("web", f"command: sleep 1\n{key}: {value}\n")
    res = assert_ok(env.sc("check", "web"), 6)
    assert "Traceback" not in res.stderr
    assert f"servicectl: {env.services / 'web.yaml'}: {key}: found " in res.stderr
    assert "from 0 to 4294967294" in res.stderr


@pytest.mark.parametrize("key", ["user", "group"])
@pytest.mark.parametrize(
    "value", ['"a\\nb"', '"a\\0b"', '"a b"', '""', '"x:y"', "[root]", "1.5", "-foo", '"x\\u0085"']
)
def test_implausible_account_names_are_refused_by_check(env: Env, key: str, value: str) -> None:
    env.write("web", f"command: sleep 1\n{key}: {value}\n")
    res = assert_ok(env.sc("check", "web"), 6)
    assert "Traceback" not in res.stderr
    assert f"servicectl: {env.services / 'web.yaml'}: {key}: found " in res.stderr


@pytest.mark.parametrize(
    "value", ["www-data", "_apt", "1abc", "Debian-exim", "0", '"65534"', "4294967294"]
)
def test_plausible_accounts_pass_check(env: Env, value: str) -> None:
    env.write("web", f"command: sleep 1\nuser: {value}\ngroup: {value}\n")
    assert_ok(env.sc("check", "web"))


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user and group needs root")
def test_numeric_ids_at_start(env: Env) -> None:
    """As root with user nobody: group 4294967295 or 4294967296 is exit 6 at start, nothing
    runs; numeric IDs in range are used as given."""
    nobody = pwd.getpwnam("nobody")
    for group in ("4294967295", "4294967296"):
        env.write("web", {"command": ["sleep", "300"], "user": "nobody", "group": group})
        res = assert_ok(env.sc("start", "web"), 6)
        assert "Traceback" not in res.stderr
        assert f"{env.services / 'web.yaml'}: group: found '{group}'" in res.stderr
        assert tagged_pids(env.tag) == [] and env.files() == []
    spec = {"command": ["sleep", "300"], "user": str(nobody.pw_uid), "group": "4294967294"}
    env.write("web", spec)
    assert_ok(env.sc("start", "web"))
    status = Path(f"/proc/{env.pid('web')}/status").read_text()
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines()}
    assert ids["Uid"] == [str(nobody.pw_uid)] * 4 and ids["Gid"] == ["4294967294"] * 4
    assert_ok(env.sc("stop", "web"))


def test_a_final_newline_makes_no_name(env: Env) -> None:
    """A service name, a dependency or a variable name ending in a newline is refused (a regex
    "$" matches before a final newline)."""
    (env.services / "web\n.yaml").write_text("command: sleep 1\n")
    env.write("db", 'command: sleep 1\ndepends: ["web\\n"]\n')
    env.write("env", 'command: sleep 1\nenvironment: {"A\\n": x}\n')
    res = assert_ok(env.sc("check"), 6)
    assert "Traceback" not in res.stderr
    assert "is not a valid service name" in res.stderr
    assert f"{env.services / 'db.yaml'}: depends: 'web\\n' is not a service name" in res.stderr
    assert f"{env.services / 'env.yaml'}: environment: 'A\\n' is not a variable name" in res.stderr


def test_atomic_write_lets_an_interruption_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal handled just after the rename of a PID file, state record or definition cache
    is reported as the interruption it is, not as "No such file or directory" (the cleanup
    tried to remove the temp file the rename had consumed)."""
    from servicectl.files import atomic

    real_rename = os.rename

    def rename_then_interrupted(src: str, dst: str, **dir_fds: int) -> None:
        real_rename(src, dst, **dir_fds)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "rename", rename_then_interrupted)
    target = tmp_path / "web.pid"
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(target, b"42\n")
    assert target.read_bytes() == b"42\n" and os.listdir(tmp_path) == ["web.pid"]


def test_a_load_of_a_few_names_finds_each_file_as_the_listing_does(env: Env) -> None:
    """``status NAME`` or ``start NAME`` looks its definition up by name (NamedFiles), not by
    listing the directory: every name resolves to the file the listing gives (NAME.yaml over
    NAME.yml, a .yml alone, a template, an instance's own file, a dangling link), and a name
    the listing cannot give (hidden, a package manager's leftover, one with a slash that
    would reach another directory) resolves to nothing; such a status says "no such
    service", and nothing outside the services directory is read."""
    from servicectl.definitions.catalog import NamedFiles, definition_files

    svc = env.services
    svc.mkdir(exist_ok=True)
    (svc.parent / "outside.yaml").write_text("command: [/bin/true]\ndescription: OUTSIDE\n")
    (svc / "sub").mkdir()
    (svc / "sub" / "inner.yaml").write_text("command: [/bin/true]\n")
    for name in ("web.yaml", "web.yml", "only.yml", "tpl@.yaml", "tpl@1.yaml", ".hidden.yaml"):
        (svc / name).write_text("command: [/bin/true]\n")
    (svc / "old.dpkg-old.yaml").write_text("command: [/bin/true]\n")
    (svc / "dangling.yaml").symlink_to(svc / "nowhere.yaml")
    listed = definition_files(str(svc))
    named = NamedFiles(str(svc))
    asked = ["web", "only", "tpl@", "tpl@1", "dangling", "missing", ".hidden", "old.dpkg-old"]
    asked += ["../outside", "sub/inner", "", "sub", "web.yaml"]
    for name in asked:
        assert named.get(name) == listed.get(name), name
        assert (name in named) == (name in listed), name
    assert dict(named.items()) == listed and sorted(named) == sorted(listed)
    res = env.sc("status", "../outside")
    assert res.returncode == 4 and "OUTSIDE" not in res.stdout + res.stderr, res.stdout
    catalog = load_catalog(env.dirs, ["../outside", "sub/inner", "web"])
    assert set(catalog.services) == {"web"} and catalog.services["web"].file == str(
        svc / "web.yaml"
    )
