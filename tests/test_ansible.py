"""The Ansible collection (contrib/ansible): real ansible-playbook runs, `-c local`, against this
test's private services/run/log dirs; results checked against servicectl itself."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import DAEMONS, ROOT, SERVICECTL, TAG_VAR, Env, alive, assert_ok, wait_for
from faultkit import USER_PYTHON, reachable_dir
from hypothesis import given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest.importorskip("ansible", reason="ansible-core is not installed (pip install -e '.[test]')")

COLLECTION = ROOT / "contrib" / "ansible"
MODULE = "servicectl.servicectl.servicectl"
FACTS = "servicectl.servicectl.servicectl_facts"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """An ansible command of this interpreter's installation (the venv), else from PATH."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, (
        f"ansible-core is importable but {name} is neither beside {sys.executable} nor on PATH"
    )
    return found


def ansible_env(base: Path, collections: Path) -> dict[str, str]:
    """Quiet, fast, self-contained ansible: no facts, no retry files, temp dirs under ``base``."""
    (base / "ansible.cfg").write_text("[defaults]\n")
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.update(
        ANSIBLE_CONFIG=str(base / "ansible.cfg"),
        ANSIBLE_HOME=str(base / "home"),
        ANSIBLE_LOCAL_TEMP=str(base / "local-tmp"),
        ANSIBLE_REMOTE_TEMP=str(base / "remote-tmp"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_GATHERING="explicit",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        NO_COLOR="1",
        # servicectl (the installed wheel) found on PATH, the way it is on a target
        PATH=os.pathsep.join(
            (str(Path(SERVICECTL).parent), str(BIN), os.environ.get("PATH", os.defpath))
        ),
    )
    return env


@pytest.fixture(scope="session")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built and installed as an administrator would: `ansible-galaxy
    collection build`, then `install` into a private collections path."""
    base = tmp_path_factory.mktemp("galaxy")
    env = ansible_env(base, base / "collections")
    galaxy = tool("ansible-galaxy")
    build = subprocess.run(
        [galaxy, "collection", "build", str(COLLECTION), "--output-path", str(base / "dist")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = (base / "dist").glob("servicectl-servicectl-*.tar.gz")
    install = subprocess.run(
        [galaxy, "collection", "install", "-p", str(base / "collections"), str(tarball)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed = base / "collections" / "ansible_collections" / "servicectl" / "servicectl"
    assert (installed / "plugins" / "modules" / "servicectl.py").is_file()
    return base / "collections"


class Book:
    """Runs playbooks against one test's Env; each run returns the registered results."""

    def __init__(self, env: Env, collections: Path, executable: str | None = None) -> None:
        self.env = env
        self.base = env.root / "ansible"
        self.base.mkdir(exist_ok=True)
        self.environ = ansible_env(self.base, collections)
        self.defaults: dict[str, Any] = {
            "services_dir": str(env.services),
            "run_dir": str(env.run),
            "log_dir": str(env.log),
        }
        if executable:
            self.defaults["executable"] = executable
        self.runs = 0

    def run(
        self,
        tasks: list[dict[str, Any]],
        *flags: str,
        timeout: float = 180,
        handlers: list[dict[str, Any]] | None = None,
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """One play on localhost; every task (and handler) registers its ``register`` name, and
        a last task (run even in check mode, after the handlers) dumps them all to JSON."""
        self.runs += 1
        out = self.base / f"results-{self.runs}.json"
        names = [t["register"] for t in [*tasks, *(handlers or [])] if "register" in t]
        dump = ", ".join(f"'{n}': {n} | default(None)" for n in names)
        play = {
            "hosts": "all",
            "gather_facts": False,
            "module_defaults": {MODULE: self.defaults, FACTS: self.defaults},
            "handlers": handlers or [],
            "tasks": [
                *tasks,
                {"ansible.builtin.meta": "flush_handlers"},
                {
                    "name": "dump results",
                    "ansible.builtin.copy": {
                        "content": "{{ {" + dump + "} | to_json }}",
                        "dest": str(out),
                        "mode": "0600",
                    },
                    "check_mode": False,
                    "diff": False,
                    "changed_when": False,
                },
            ],
        }
        res = self.playbook([play], "-i", "localhost,", "-c", "local", *flags, timeout=timeout)
        assert res.returncode == 0 and out.exists(), (
            f"ansible-playbook exit {res.returncode}\n{res.stdout}\n{res.stderr}"
        )
        return res, json.loads(out.read_text())

    def playbook(
        self, plays: list[dict[str, Any]], *args: str, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """ansible-playbook ARGS on these plays; never a traceback, whatever the outcome."""
        book = self.base / f"play-{self.runs}.yml"
        book.write_text(yaml.safe_dump(plays, sort_keys=False))
        res = subprocess.run(
            [tool("ansible-playbook"), *args, str(book)],
            capture_output=True,
            text=True,
            env=self.environ,
            cwd=self.base,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
        return res


def task(register: str, **params: Any) -> dict[str, Any]:
    extra = {k: params.pop(k) for k in ("ignore_errors", "check_mode") if k in params}
    return {"name": register, MODULE: params, "register": register, **extra}


def sleeper_spec(env: Env, *args: str, marker: str = "marker", **extra: Any) -> dict[str, Any]:
    """A definition (as a mapping) for tests/daemons/sleeper.py, tagged for teardown."""
    spec: dict[str, Any] = {
        "description": "sleeper under ansible",
        "command": [USER_PYTHON, str(DAEMONS / "sleeper.py"), *args],
        "start_grace": 0.2,
        "environment": {TAG_VAR: env.tag, "MARKER": str(env.root / marker)},
    }
    spec.update(extra)
    return spec


def marker_pids(env: Env, word: str, marker: str = "marker") -> list[int]:
    path = env.root / marker
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(line.split()[1]) for line in lines if line.split()[0] == word]


def listed(env: Env) -> dict[str, dict[str, Any]]:
    res = assert_ok(env.sc("list", "--json"))
    return {row["name"]: row for row in json.loads(res.stdout)}


def same_status(reported: dict[str, Any], actual: dict[str, Any]) -> None:
    for key in ("name", "state", "pid", "exit_code", "description"):
        assert reported[key] == actual[key], (key, reported, actual)


def has_enable_command() -> bool:
    res = subprocess.run([SERVICECTL, "enable", "--help"], capture_output=True, timeout=60)
    return res.returncode == 0


def clean_dirs(env: Env, *definitions: str) -> None:
    """Nothing left behind: no temporary files among the definitions; in the run dir nothing
    but servicectl's own files (the validation in a mirror directory left no cache there)."""
    own_cache = f".definitions-{zlib.crc32(str(env.services).encode()):08x}.cache"
    stray = [n for n in env.files() if n.startswith(".") and n != own_cache]
    assert stray == [], stray
    hidden = [p.name for p in env.services.iterdir() if p.name.startswith(".")]
    assert hidden == [], hidden
    names = sorted(p.name for p in env.services.iterdir() if p.suffix in (".yaml", ".yml"))
    assert names == sorted(definitions)


# ---------------------------------------------------------------------------------------------


def test_every_state_idempotent_and_matching_status(env: Env, collections: Path) -> None:
    """Found on PATH: install a definition (mapping) and start; start again (no change);
    restarted in check mode (changed, nothing done); reloaded and restarted (always changed);
    stopped twice; a status-only task."""
    spec = sleeper_spec(env, "--hup")
    book = Book(env, collections)
    started = time.monotonic()
    res, r = book.run(
        [
            task("install", name="web", definition=spec, state="started"),
            task("again", name="web", definition=spec, state="started"),
            task("would_restart", name="web", state="restarted", check_mode=True),
            task("reload", name="web", state="reloaded"),
            task("restart", name="web", state="restarted"),
            task("stop", name="web", state="stopped"),
            task("stop_again", name="web", state="stopped"),
            task("query", name="web"),
        ]
    )
    took = time.monotonic() - started
    first, second = wait_for(lambda: marker_pids(env, "started")[:2] or None, 5, "two starts")
    assert r["install"]["changed"] is True
    assert r["install"]["status"]["state"] == "running"
    assert r["install"]["status"]["pid"] == first
    assert r["install"]["actions"] == [f"write {env.services / 'web.yaml'}", "start"]
    assert "web: started" in r["install"]["msg"]
    assert r["again"]["changed"] is False and r["again"]["actions"] == []
    assert r["again"]["status"]["pid"] == first
    would = r["would_restart"]
    assert would["changed"] is True and would["actions"] == ["restart"]
    assert would["status"]["pid"] == first and "msg" in would and would["msg"] == ""
    assert r["reload"]["changed"] is True and r["reload"]["status"]["pid"] == first
    assert marker_pids(env, "reloaded") == [first]
    assert r["restart"]["changed"] is True
    assert r["restart"]["status"]["pid"] == second != first
    assert not alive(first)
    assert r["stop"]["changed"] is True and r["stop"]["status"]["state"] == "stopped"
    assert not alive(second)
    assert r["stop_again"]["changed"] is False
    assert r["query"]["changed"] is False and r["query"]["actions"] == []
    same_status(r["query"]["status"], env.status_json("web")["web"])
    # The mapping landed as YAML servicectl reads back as the same definition.
    path = env.services / "web.yaml"
    assert yaml.safe_load(path.read_text()) == spec
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert_ok(env.sc("check", "web"))
    clean_dirs(env, "web.yaml")
    assert [n for n in env.files() if not n.startswith(".")] == []
    print(f"8 tasks in one playbook: {took:.1f} s")  # noqa: T201 - shown with -s


def test_check_mode_diff_then_apply_then_no_change(env: Env, collections: Path) -> None:
    """--check --diff reports every change and makes none; the same play applies them; a
    third run reports no change."""
    env.write("web", sleeper_spec(env, marker="web.marker"))
    other = env.write("other", sleeper_spec(env, marker="other.marker"))
    assert_ok(env.sc("start", "other"))
    other_pid = env.pid("other")
    before = (env.services / "web.yaml").read_bytes()
    new_text = "# managed by ansible\n" + yaml.safe_dump(
        sleeper_spec(env, marker="web.marker", description="new web")
    )
    book = Book(env, collections, executable=SERVICECTL)
    tasks = [
        task("web", name="web", definition=new_text, enabled=False, state="started"),
        task("other", name="other", state="stopped"),
    ]

    res, r = book.run(tasks, "--check", "--diff")
    assert r["web"]["changed"] is True and r["other"]["changed"] is True
    assert r["web"]["actions"][0] == f"write {env.services / 'web.yaml'}"
    assert r["web"]["actions"][-1] == "start" and r["other"]["actions"] == ["stop"]
    assert f"--- before: {env.services / 'web.yaml'}" in res.stdout
    assert "+description: new web" in res.stdout
    assert "-description: sleeper under ansible" in res.stdout
    assert "+# managed by ansible" in res.stdout
    # Nothing changed: the file byte for byte, processes, enabled.
    assert (env.services / "web.yaml").read_bytes() == before
    assert env.status_json("web")["web"]["state"] == "stopped"
    assert env.status_json("other")["other"]["pid"] == other_pid and alive(other_pid)
    assert listed(env)["web"]["enabled"] is True
    same_status(r["other"]["status"], env.status_json("other")["other"])
    clean_dirs(env, "web.yaml", "other.yaml")

    res, r = book.run(tasks, "--diff")
    assert r["web"]["changed"] is True and r["other"]["changed"] is True
    assert "+description: new web" in res.stdout
    written = (env.services / "web.yaml").read_text()
    assert written.startswith(new_text)  # as given; an `enabled` line may follow (see below)
    assert listed(env)["web"]["enabled"] is False and r["web"]["enabled"] is False
    status = env.status_json("web", "other")
    same_status(r["web"]["status"], status["web"])
    same_status(r["other"]["status"], status["other"])
    assert status["web"]["state"] == "running" and status["other"]["state"] == "stopped"
    assert not alive(other_pid)
    assert other.read_bytes()  # untouched definition still there

    res, r = book.run(tasks, "--diff")
    assert r["web"]["changed"] is False and r["other"]["changed"] is False
    assert r["web"]["actions"] == [] and r["other"]["actions"] == []
    assert "changed=0" in res.stdout
    assert (env.services / "web.yaml").read_text() == written
    same_status(r["web"]["status"], env.status_json("web")["web"])
    clean_dirs(env, "web.yaml", "other.yaml")


def test_refused_definition_and_failures_carry_servicectl_message(
    env: Env, collections: Path
) -> None:
    """`check` judges a definition with its neighbours (depends, relative paths); a refused
    one fails with servicectl's message and exit code, and the old file stays byte for byte.
    Failing actions return servicectl's own message and LSB code."""
    env.write("db", sleeper_spec(env, marker="db.marker"))
    web = env.write("web", sleeper_spec(env, marker="web.marker"))
    original = web.read_bytes()
    (env.services / "www").mkdir()
    target = env.write("real", sleeper_spec(env))
    os.symlink(target.name, env.services / "link.yaml")
    good = sleeper_spec(env, marker="web.marker", depends=["db"], working_directory="www")
    typo = dict(sleeper_spec(env), stop_timout=3)
    book = Book(env, collections, executable=SERVICECTL)
    res, r = book.run(
        [
            task("typo", name="web", definition=typo, state="started", ignore_errors=True),
            task("nodep", name="web", definition=dict(good, depends=["nope"]), ignore_errors=True),
            task("good", name="web", definition=good),
            task("unknown", name="ghost", state="started", ignore_errors=True),
            task("not_running", name="db", state="reloaded", ignore_errors=True),
            task(
                "crash",
                name="crash",
                definition=sleeper_spec(
                    env, "--exit-code", "3", marker="crash.marker", start_grace=20
                ),
                state="started",
                ignore_errors=True,
            ),
            task("link", name="link", definition=sleeper_spec(env), ignore_errors=True),
            task("badname", name="../etc/x", definition="command: x\n", ignore_errors=True),
        ]
    )
    typo_res = r["typo"]
    assert typo_res["failed"] is True and typo_res["rc"] == 6
    # The real path, not the staging copy's, and said to be the rejected content, not the file
    # in place.
    assert f"{web} (new content; not installed): stop_timout" in typo_res["msg"]
    assert ".servicectl-staging-" not in typo_res["msg"] + typo_res["stderr"]
    assert typo_res["msg"].startswith(typo_res["stderr"].strip())
    assert typo_res["msg"].endswith(
        "web: refused; nothing was installed (the files in place are unchanged)"
    )
    assert "depends" in r["nodep"]["msg"] and "nope" in r["nodep"]["msg"]
    assert r["nodep"]["failed"] is True and r["nodep"]["rc"] == 6
    # The refused ones left the file alone; the accepted one (depends on db, relative
    # working directory) was written.
    assert r["good"]["changed"] is True
    assert yaml.safe_load(web.read_text()) == good
    assert web.read_bytes() != original
    assert r["unknown"]["failed"] is True and r["unknown"]["rc"] == 5
    assert "ghost" in r["unknown"]["msg"]
    unknown_direct = env.sc("check", "ghost")
    assert r["unknown"]["msg"] == unknown_direct.stderr.strip()
    assert r["not_running"]["failed"] is True and r["not_running"]["rc"] == 7
    assert r["not_running"]["status"]["state"] == "stopped"
    crash = r["crash"]
    assert crash["failed"] is True and crash["rc"] == 1, crash
    assert "crash" in crash["msg"] and crash["actions"][-1] == "start"
    assert crash["status"]["state"] == "failed"  # its start failed: failed until the next
    same_status(crash["status"], env.status_json("crash")["crash"])
    assert r["link"]["failed"] is True and "symlink" in r["link"]["msg"]
    assert os.readlink(env.services / "link.yaml") == target.name
    assert r["badname"]["failed"] is True and not (env.root / "etc").exists()
    clean_dirs(env, "db.yaml", "web.yaml", "real.yaml", "link.yaml", "crash.yaml")


def test_refused_definition_keeps_old_file_byte_for_byte(env: Env, collections: Path) -> None:
    """A refused definition text: the task fails with rc 6 and the file in place, comments and
    all, is not touched (not even its inode or mtime)."""
    web = env.write("web", "# hand written\n" + yaml.safe_dump(sleeper_spec(env)))
    before = web.read_bytes()
    st = web.stat()
    book = Book(env, collections, executable=SERVICECTL)
    broken = "command: [sleep, '1']\ntype: simpel\n"
    res, r = book.run(
        [
            task("broken", name="web", definition=broken, ignore_errors=True),
            task(
                "broken_check", name="web", definition=broken, ignore_errors=True, check_mode=True
            ),
        ]
    )
    for key in ("broken", "broken_check"):
        assert r[key]["failed"] is True and r[key]["rc"] == 6, r[key]
        assert "type" in r[key]["msg"] and str(web) in r[key]["msg"]
    assert web.read_bytes() == before
    after = web.stat()
    assert (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    clean_dirs(env, "web.yaml")


@pytest.fixture
def no_enable(env: Env) -> Iterator[Path]:
    """A servicectl without enable/disable (exit 2, usage), as older ones are."""
    wrapper = env.root / "old-servicectl"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *" enable "*|*" disable "*|enable*|disable*)\n'
        '  echo "Error: No such command." >&2; exit 2;;\n'
        "esac\n"
        f'exec "{SERVICECTL}" "$@"\n'
    )
    wrapper.chmod(0o755)
    yield wrapper


def test_enabled(env: Env, collections: Path, no_enable: Path) -> None:
    """enabled: false, again (no change), true; with this servicectl (its enable/disable when
    it has them), and with one that lacks them (the key in the definition file)."""
    env.write("a", sleeper_spec(env, marker="a.marker"))
    env.write("b", "# keep this comment\n" + yaml.safe_dump(sleeper_spec(env, marker="b.marker")))
    book = Book(env, collections)
    old = str(no_enable)
    res, r = book.run(
        [
            task("a_off", name="a", enabled=False),
            task("a_off_again", name="a", enabled=False),
            task("b_off", name="b", enabled=False, executable=old),
            task("b_off_again", name="b", enabled=False, executable=old),
        ]
    )
    assert r["a_off"]["changed"] is True and r["a_off"]["enabled"] is False
    assert r["a_off_again"]["changed"] is False
    assert r["b_off"]["changed"] is True and r["b_off"]["enabled"] is False
    assert r["b_off_again"]["changed"] is False
    rows = listed(env)
    assert rows["a"]["enabled"] is False and rows["b"]["enabled"] is False
    b_text = (env.services / "b.yaml").read_text()
    assert b_text.startswith("# keep this comment\n") and "enabled: false\n" in b_text
    if has_enable_command():
        assert r["a_off"]["actions"] == ["disable"]
    else:
        assert r["a_off"]["actions"] == [f"write {env.services / 'a.yaml'}"]
    res, r = book.run(
        [
            task("a_on", name="a", enabled=True),
            task("b_on", name="b", enabled=True, executable=old),
            task("b_on_again", name="b", enabled=True, executable=old),
            task("ghost", name="ghost", enabled=True, executable=old, ignore_errors=True),
        ]
    )
    assert r["a_on"]["changed"] is True and r["b_on"]["changed"] is True
    assert r["b_on_again"]["changed"] is False
    rows = listed(env)
    assert rows["a"]["enabled"] is True and rows["b"]["enabled"] is True
    assert (env.services / "b.yaml").read_text() == b_text.replace(
        "enabled: false\n", "enabled: true\n"
    )
    assert r["ghost"]["failed"] is True and r["ghost"]["rc"] == 5
    clean_dirs(env, "a.yaml", "b.yaml")


def doc_playbook(title: str) -> list[dict[str, Any]]:
    """The YAML block of docs/fleet.md whose first line is ``# TITLE...``."""
    text = (ROOT / "docs" / "fleet.md").read_text()
    for block in text.split("```yaml\n")[1:]:
        body = block.split("```")[0]
        if body.startswith(f"# {title}"):
            return yaml.safe_load(body)  # type: ignore[no-any-return]
    raise AssertionError(f"no YAML block starting with '# {title}' in docs/fleet.md")


def test_playbooks_of_the_docs_pass_syntax_check(env: Env, collections: Path) -> None:
    """docs/fleet.md's roll-web.yml and site.yml (run over ssh on three hosts by
    tests/test_fleet_hosts.py) are what they say: one host at a time, stopping at the first
    failure; the module, the facts module and the role resolve, and ansible accepts them."""
    (roll,) = doc_playbook("roll-web.yml")
    assert roll["serial"] == 1 and roll["max_fail_percentage"] == 0
    install = roll["tasks"][0][MODULE]
    assert install["state"] == "started" and "definition" in install
    assert FACTS in roll["tasks"][1]
    (site,) = doc_playbook("site.yml")
    assert site["roles"][0]["role"] == "servicectl.servicectl.servicectl"
    assert site["tasks"][0]["notify"] == "restart servicectl services"
    book = Book(env, collections)
    (book.base / "inventory").write_text("[web_servers]\nweb1 ansible_connection=local\n")
    for name, play in (("roll", roll), ("site", site)):
        res = book.playbook([play], "--syntax-check", "-i", str(book.base / "inventory"))
        assert res.returncode == 0, (name, res.stdout + res.stderr)


# ---------------------------------------------------------------------------------------------
# A definition lands only after its config test passed; a failed restart rolls back

CONF_OK = """\
import sys
try:
    ok = open(sys.argv[1]).read().strip() == "ok"
except OSError as exc:
    sys.exit(f"cannot read the configuration: {exc}")
sys.exit(0 if ok else "the configuration does not say ok")
"""


def conf_checked(env: Env, conf: Path, **extra: Any) -> dict[str, Any]:
    """A sleeper whose config test (run by servicectl before start, restart and reload, and by
    the module in its staging copy) passes only while ``conf`` says ok."""
    return sleeper_spec(
        env, marker="web.marker", check_command=[USER_PYTHON, "-c", CONF_OK, str(conf)], **extra
    )


def test_config_test_gates_the_definition_in_check_mode_too(env: Env, collections: Path) -> None:
    """A new definition whose config test fails is refused (rc 6) in check mode and in a real
    run, the file in place stays byte for byte and the old process keeps running; the config
    test runs as the service's user (one root would pass is refused for nobody)."""
    good, broken = env.root / "good.conf", env.root / "broken.conf"
    good.write_text("ok\n")
    broken.write_text("not ok\n")
    book = Book(env, collections)
    res, r = book.run([task("v1", name="web", definition=conf_checked(env, good), state="started")])
    assert r["v1"]["changed"] is True and r["v1"]["status"]["state"] == "running"
    web = env.services / "web.yaml"
    before, pid = web.read_bytes(), r["v1"]["status"]["pid"]
    v2 = conf_checked(env, broken, description="v2")
    as_nobody = conf_checked(env, good, description="v3", user="nobody")  # good.conf: root's
    res, r = book.run(
        [
            task(
                "dry",
                name="web",
                definition=v2,
                state="started",
                ignore_errors=True,
                check_mode=True,
            ),
            task("real", name="web", definition=v2, state="started", ignore_errors=True),
            task("user", name="web", definition=as_nobody, ignore_errors=True),
        ],
        "--diff",
    )
    for key in ("dry", "real", "user"):
        got = r[key]
        assert got["failed"] is True and got["rc"] == 6, (key, got)
        assert "web: config test failed" in got["msg"], got["msg"]
        assert got["msg"].endswith(
            "web: refused; nothing was installed (the files in place are unchanged)"
        )
        assert ".servicectl-staging-" not in got["msg"] + got["stderr"] + got["stdout"]
    assert web.read_bytes() == before
    assert env.status_json("web")["web"]["pid"] == pid and alive(pid)
    assert marker_pids(env, "started", "web.marker") == [pid]
    assert not list(env.services.glob("*~")), "a refused definition leaves no backup"
    clean_dirs(env, "web.yaml")


def test_failed_restart_rolls_back_and_a_rerun_tries_again(env: Env, collections: Path) -> None:
    """A definition that passes its check but whose process dies at start: the restart fails,
    the previous definition is put back (a timestamped backup kept), the old service runs again,
    and the task fails with servicectl's message and exit code and says it rolled back. The
    rerun fails the same way (never counted as done); the fixed definition goes through, and a
    second run of it changes nothing."""
    v1 = sleeper_spec(env, marker="web.marker", description="v1")
    # start_grace long enough for its crash to fall inside it on a slow machine too
    crashing = sleeper_spec(
        env, "--exit-code", "3", marker="web.marker", description="v2", start_grace=20
    )
    v2 = sleeper_spec(env, marker="web.marker", description="v2")
    book = Book(env, collections)
    res, r = book.run([task("v1", name="web", definition=v1, state="started")])
    web = env.services / "web.yaml"
    v1_bytes, first = web.read_bytes(), r["v1"]["status"]["pid"]
    assert "backup_file" not in r["v1"]  # nothing ran before: nothing to back up
    res, r = book.run(
        [
            task("bad", name="web", definition=crashing, state="started", ignore_errors=True),
            task("again", name="web", definition=crashing, state="started", ignore_errors=True),
        ]
    )
    for key in ("bad", "again"):
        got = r[key]
        assert got["failed"] is True and got["rc"] == 1 and got["rolled_back"] is True, got
        assert "web: failed to start" in got["msg"] or "exited" in got["msg"], got["msg"]
        assert (
            "web: the restart failed under the new definition, so it was rolled back" in got["msg"]
        )
        assert "the previous definition is back in place and the service runs it" in got["msg"]
        assert got["actions"] == [f"write {web}", "restart", "roll back", "start"], got["actions"]
        backup = Path(got["backup_file"])
        assert backup.parent == env.services and backup.name.startswith("web.yaml.")
        assert backup.name.endswith("~") and backup.read_bytes() == v1_bytes
        assert got["status"]["state"] == "running" and got["status"]["description"] == "v1"
    assert web.read_bytes() == v1_bytes
    row = env.status_json("web")["web"]
    assert row["state"] == "running" and row["definition_changed"] is False
    assert row["pid"] == r["again"]["status"]["pid"] != first and not alive(first)
    assert "web" in listed(env) and len(listed(env)) == 1  # servicectl ignores the backups

    res, r = book.run(
        [
            task("fixed", name="web", definition=v2, state="started"),
            task("idem", name="web", definition=v2, state="started"),
        ]
    )
    assert r["fixed"]["changed"] is True and r["fixed"]["actions"] == [f"write {web}", "restart"]
    assert r["fixed"]["status"]["description"] == "v2" and r["fixed"]["definition_changed"] is False
    assert r["idem"]["changed"] is False and r["idem"]["actions"] == []
    assert r["idem"]["status"]["pid"] == r["fixed"]["status"]["pid"]
    for backup in env.services.glob("web.yaml.*~"):
        backup.unlink()
    clean_dirs(env, "web.yaml")


def test_started_restarts_only_a_service_running_another_definition(
    env: Env, collections: Path
) -> None:
    """state=started restarts a running service whose parsed definition differs from the one on
    disk (and a handler can be notified on definition_changed); the same definition in another
    YAML style, and enable/disable, are no change and restart nothing."""
    spec = sleeper_spec(env, marker="web.marker")
    book = Book(env, collections)
    res, r = book.run([task("v1", name="web", definition=spec, state="started")])
    pid = r["v1"]["status"]["pid"]
    web = env.services / "web.yaml"
    web.write_text("# restyled by hand\n" + json.dumps(spec) + "\n")  # JSON is YAML too
    res, r = book.run(
        [
            task("restyled", name="web", state="started"),
            task("off", name="web", enabled=False, state="started"),
            task("on", name="web", enabled=True, state="started"),
        ]
    )
    for key in ("restyled", "off", "on"):
        assert r[key]["definition_changed"] is False, r[key]
        assert r[key]["status"]["pid"] == pid, r[key]
        assert "restart" not in r[key]["actions"]
    assert r["restyled"]["changed"] is False
    env.write("web", dict(spec, environment={**spec["environment"], "FOO": "bar"}), tag=False)
    handler = {
        "name": "restart web",
        MODULE: {"name": "web", "state": "restarted"},
        "register": "handled",
    }
    res, r = book.run(
        [
            {
                "name": "look",
                MODULE: {"name": "web"},
                "register": "look",
                "changed_when": "look.definition_changed",
                "notify": "restart web",
            },
        ],
        handlers=[handler],
    )
    assert r["look"]["definition_changed"] is True
    assert r["look"]["definition_changes"] == ["environment.FOO"]
    assert r["handled"]["changed"] is True and r["handled"]["definition_changed"] is False
    second = r["handled"]["status"]["pid"]
    assert second != pid and not alive(pid)
    env.write("web", dict(spec, description="edited"), tag=False)
    res, r = book.run([task("drifted", name="web", state="started")])
    assert r["drifted"]["changed"] is True and r["drifted"]["actions"] == ["restart"]
    assert r["drifted"]["status"]["description"] == "edited"
    assert r["drifted"]["status"]["pid"] != second
    clean_dirs(env, "web.yaml")


def test_dropins_are_validated_and_installed_with_the_definition(
    env: Env, collections: Path
) -> None:
    """dropins: written into NAME.d only after the staged whole passed its check, removed by
    null; a refused one names the drop-in as new content and installs nothing."""
    book = Book(env, collections)
    spec = sleeper_spec(env, marker="web.marker")
    env_dump = env.root / "env.json"
    res, r = book.run(
        [
            task(
                "add",
                name="web",
                definition=spec,
                dropins={"10-env": {"environment": {"FOO": "bar", "ENV_DUMP": str(env_dump)}}},
                state="started",
            ),
            task("bad", name="web", dropins={"20-typo": "stop_timout: 3\n"}, ignore_errors=True),
            task(
                "mine", name="web", dropins={"50-enabled": "enabled: false\n"}, ignore_errors=True
            ),
            task("bad_name", name="web", dropins={"../x": "a: 1\n"}, ignore_errors=True),
        ]
    )
    dropin = env.services / "web.d" / "10-env.yaml"
    assert r["add"]["changed"] is True
    assert r["add"]["actions"] == [f"write {env.services / 'web.yaml'}", f"write {dropin}", "start"]
    assert yaml.safe_load(dropin.read_text())["environment"]["FOO"] == "bar"
    pid = r["add"]["status"]["pid"]
    bad = r["bad"]
    assert bad["failed"] is True and bad["rc"] == 6
    typo = env.services / "web.d" / "20-typo.yaml"
    assert f"{typo} (new content; not installed): stop_timout" in bad["msg"], bad["msg"]
    assert not typo.exists()
    assert r["mine"]["failed"] is True and "enabled option" in r["mine"]["msg"]
    assert r["bad_name"]["failed"] is True and not (env.root / "x.yaml").exists()
    assert r["bad_name"]["rc"] == 2
    res, r = book.run([task("remove", name="web", dropins={"10-env": None}, state="started")])
    assert r["remove"]["actions"] == [f"remove {dropin}", "restart"]
    assert not dropin.exists() and r["remove"]["status"]["pid"] != pid
    shutil.rmtree(env.services / "web.d")
    clean_dirs(env, "web.yaml")


def test_absent_stops_and_removes_definition_and_dropins(env: Env, collections: Path) -> None:
    """state=absent: check mode changes nothing; then stop, the definition and NAME.d removed;
    again: no change. With backup, the files are kept under backup names servicectl ignores."""
    book = Book(env, collections)
    spec = sleeper_spec(env, marker="web.marker")
    res, r = book.run(
        [
            task(
                "web", name="web", definition=spec, dropins={"10-x": {"nice": 1}}, state="started"
            ),
            task(
                "db", name="db", definition=sleeper_spec(env, marker="db.marker"), state="started"
            ),
        ]
    )
    web_pid, db_pid = r["web"]["status"]["pid"], r["db"]["status"]["pid"]
    res, r = book.run([task("dry", name="web", state="absent", check_mode=True)], "--diff")
    assert r["dry"]["changed"] is True
    assert r["dry"]["actions"] == [
        "stop",
        f"remove {env.services / 'web.d'}",
        f"remove {env.services / 'web.yaml'}",
    ]
    assert alive(web_pid) and (env.services / "web.yaml").exists()
    res, r = book.run(
        [
            task("gone", name="web", state="absent"),
            task("again", name="web", state="absent"),
            task("db_gone", name="db", state="absent", backup=True),
            task("both", name="db", state="absent", definition=spec, ignore_errors=True),
        ]
    )
    assert r["gone"]["changed"] is True and r["gone"]["status"]["state"] == "unknown"
    assert not alive(web_pid)
    assert not (env.services / "web.yaml").exists() and not (env.services / "web.d").exists()
    assert r["again"]["changed"] is False and r["again"]["actions"] == []
    assert not alive(db_pid)
    kept = Path(r["db_gone"]["backup_file"])
    assert yaml.safe_load(kept.read_text()) == sleeper_spec(env, marker="db.marker")
    assert kept.name.startswith("db.yaml.") and kept.name.endswith("~")
    assert listed(env) == {}  # the backups are not definitions
    assert r["both"]["failed"] is True and "definition" in r["both"]["msg"]
    kept.unlink()
    clean_dirs(env)


def test_servicectl_facts_report_every_service(env: Env, collections: Path) -> None:
    """servicectl_facts: every service with state, pid, enabled (status as service_facts says
    it), supervised, definition_changed and health; changes nothing."""
    env.write("up", sleeper_spec(env, marker="up.marker"))
    env.write("down", sleeper_spec(env, marker="down.marker", enabled=False))
    env.write("sup", sleeper_spec(env, marker="sup.marker", restart="on-failure"))
    env.write("broken", "command: [sleep\n")
    assert_ok(env.sc("start", "up", "sup"))
    env.write("up", sleeper_spec(env, marker="up.marker", stop_timeout=9))
    book = Book(env, collections)
    res, r = book.run(
        [
            {
                "name": "theirs",
                "ansible.builtin.service_facts": {},
                "register": "theirs",
                "ignore_errors": True,
            },
            {"name": "facts", FACTS: {}, "register": "facts"},
            {
                "name": "merged",
                "ansible.builtin.set_fact": {"merged": "{{ ansible_facts.services }}"},
                "register": "merged",
            },
        ],
        "--check",
    )
    assert r["facts"]["changed"] is False
    # service_facts' own fact, with servicectl's services merged in (its others kept).
    merged = r["merged"]["ansible_facts"]["merged"]
    theirs = (r["theirs"].get("ansible_facts") or {}).get("services") or {}
    for name, entry in theirs.items():
        if name not in ("up", "down", "sup", "broken"):
            assert merged[name] == entry
    assert merged["up"] == {
        "name": "up",
        "state": "running",
        "status": "enabled",
        "source": "servicectl",
    }
    assert merged["down"]["status"] == "disabled" and merged["down"]["state"] == "stopped"
    facts = r["facts"]["ansible_facts"]["servicectl_services"]
    assert sorted(facts) == ["broken", "down", "sup", "up"]
    up, down, sup, broken = facts["up"], facts["down"], facts["sup"], facts["broken"]
    assert up["state"] == "running" and up["pid"] == env.pid("up") and up["source"] == "servicectl"
    assert up["status"] == "enabled" and up["enabled"] is True and up["supervised"] is False
    assert up["definition_changed"] is True and up["definition_changes"] == ["stop_timeout"]
    assert up["health"] == env.status_json("up")["up"].get("health")
    assert down["state"] == "stopped" and down["status"] == "disabled" and down["pid"] is None
    assert down["definition_changed"] is False and down["enabled"] is False
    assert sup["supervised"] is True and sup["state"] == "running"
    assert broken["state"] == "invalid" and broken["status"] == "unknown" and broken["error"]
    assert env.status_json("down")["down"]["state"] == "stopped"


# ---------------------------------------------------------------------------------------------
# R-ANS-2: the staging copy

PROBE = f"""#!{USER_PYTHON}
import json, os, sys
here = os.path.dirname(sys.argv[0])
st = os.stat(here)
info = {{"argv0": sys.argv[0], "uid": os.getuid(), "dir_uid": st.st_uid,
         "dir_mode": st.st_mode & 0o7777}}
try:
    info["listing"] = sorted(os.listdir(here))
except OSError as exc:
    info["listing"] = type(exc).__name__
staged = os.path.join(here, "web.yaml")
info["file_mode"] = os.stat(staged).st_mode & 0o7777
try:
    with open(staged) as fh:
        info["read"] = "ok" if fh.read() else "empty"
except OSError as exc:
    info["read"] = type(exc).__name__
with open(sys.argv[1], "w") as fh:
    json.dump(info, fh)
"""


def test_R_ANS_2_the_definition_is_judged_in_a_private_staging_copy(
    env: Env, collections: Path
) -> None:
    """The config test runs on the staged definition, in a hidden mkdtemp directory inside the
    services directory: root's, 0711, the staged file 0600. The service's user (nobody) runs
    the relative program through it but can neither list it nor read the staged definition.
    Nothing of it is left."""
    with reachable_dir() as top:
        services = top / "services.d"
        services.mkdir()
        services.chmod(0o755)
        out = top / "out"
        out.mkdir()
        out.chmod(0o777)
        probe = services / "probe.py"
        probe.write_text(PROBE)
        probe.chmod(0o755)
        book = Book(env, collections)
        book.defaults["services_dir"] = str(services)
        base = {
            "command": [USER_PYTHON, "-c", "import time; time.sleep(300)"],
            "environment": {TAG_VAR: env.tag, "SECRET": "only root reads this"},
        }
        as_root = dict(base, check_command=["./probe.py", str(out / "root.json")])
        as_nobody = dict(as_root, user="nobody", check_command=["./probe.py", str(out / "n.json")])
        res, r = book.run(
            [
                task("root", name="web", definition=as_root),
                task("nobody", name="web", definition=as_nobody),
            ]
        )
        assert r["root"]["changed"] is True and r["nobody"]["changed"] is True
        root = json.loads((out / "root.json").read_text())
        nobody = json.loads((out / "n.json").read_text())
        for seen in (root, nobody):
            staged_dir = Path(seen["argv0"]).parent
            assert staged_dir.parent == services, seen
            assert staged_dir.name.startswith(".servicectl-staging-"), seen
            assert seen["dir_uid"] == 0 and seen["dir_mode"] == 0o711, seen
            assert seen["file_mode"] == 0o600, seen
        assert root["uid"] == 0 and root["read"] == "ok" and "web.yaml" in root["listing"]
        assert nobody["uid"] != 0
        assert nobody["listing"] == "PermissionError" and nobody["read"] == "PermissionError"
        assert stat.S_IMODE((services / "web.yaml").stat().st_mode) == 0o644
        assert yaml.safe_load((services / "web.yaml").read_text()) == as_nobody
        assert sorted(p.name for p in services.iterdir()) == ["probe.py", "web.yaml"]


# ---------------------------------------------------------------------------------------------
# ansible-test sanity

# What runs here: validate-modules and the tests that need no virtual environment of their own
# (about 15 s). The full `ansible-test sanity` (pylint, pep8, yamllint, import, ansible-doc as
# well) takes about 90 s from scratch; its command is in docs/fleet.md.
SANITY_TESTS = [
    "validate-modules",
    "action-plugin-docs",
    "compile",
    "empty-init",
    "ignores",
    "line-endings",
    "no-assert",
    "no-get-exception",
    "no-illegal-filenames",
    "no-smart-quotes",
    "replace-urlopen",
    "shebang",
    "symlinks",
    "use-argspec-type-path",
    "use-compat-six",
]


# ansible-test creates a virtual environment per test and bootstraps pip in it with a script it
# downloads from its own CI file server; where that server cannot be reached, this stand-in in
# ~/.ansible/test/cache does the same from the interpreter's bundled pip (ensurepip) and the
# machine's package index.
GET_PIP = """\
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if any(not a.startswith("-") for a in args):
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *args])
"""


def pip_bootstrap_version() -> str:
    try:
        from types import SimpleNamespace

        from ansible_test._internal.python_requirements import get_venv_packages

        return str(get_venv_packages(SimpleNamespace(version="3.11"))["pip"])  # type: ignore[arg-type]
    except Exception:  # an internal API: fall back to the version of ansible-core 2.19
        return "24.2"


@pytest.mark.timeout(600)
def test_ansible_test_sanity(tmp_path: Path) -> None:
    pytest.importorskip("ansible_test", reason="ansible-test is not installed")
    home = tmp_path / "home"
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True)
    (cache / f"get_pip_{pip_bootstrap_version().replace('.', '_')}.py").write_text(GET_PIP)
    coll = tmp_path / "ansible_collections" / "servicectl" / "servicectl"
    shutil.copytree(COLLECTION, coll, ignore=shutil.ignore_patterns("output", "*.tar.gz"))
    env = ansible_env(tmp_path, tmp_path)
    env["HOME"] = str(home)  # ansible-test keeps its virtual environments under ~/.ansible
    flags = [f for name in SANITY_TESTS for f in ("--test", name)]
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    started = time.monotonic()
    res = subprocess.run(
        [tool("ansible-test"), "sanity", "--local", "--python", python, *flags],
        capture_output=True,
        text=True,
        env=env,
        cwd=coll,
        timeout=540,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-8000:]
    assert out.count('Running sanity test "') == len(SANITY_TESTS), out[-8000:]
    print(f"ansible-test sanity ({len(SANITY_TESTS)} tests): {time.monotonic() - started:.1f} s")


# ---------------------------------------------------------------------------------------------
# The YAML the module writes for a mapping (it has no YAML library on the target)


def definitions_util() -> Any:
    path = COLLECTION / "plugins" / "module_utils" / "definitions.py"
    spec = importlib.util.spec_from_file_location("servicectl_definitions", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), _values, max_size=6))
def test_mapping_written_as_yaml_reads_back_the_same(data: dict[str, Any]) -> None:
    text = definitions_util().to_yaml(data)
    assert yaml.safe_load(text) == data, text


def test_enabled_key_edited_in_place() -> None:
    set_enabled = definitions_util().set_enabled
    text = "# top\ncommand: [sleep, '9']  # enabled: no\n"
    assert set_enabled(text, True) == text  # absent means true
    off = set_enabled(text, False)
    assert off == text + "enabled: false\n"
    assert set_enabled(off, False) == off
    assert set_enabled(off, True) == text + "enabled: true\n"
    assert set_enabled("enabled: yes # keep\nx: 1", True) == "enabled: yes # keep\nx: 1"
    assert set_enabled("x: 1", False) == "x: 1\nenabled: false\n"
    for sample in (off, set_enabled(off, True)):
        assert yaml.safe_load(sample)["command"] == ["sleep", "9"]
