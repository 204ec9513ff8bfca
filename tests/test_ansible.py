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
from conftest import DAEMONS, PY, ROOT, TAG_VAR, Env, alive, assert_ok, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest.importorskip("ansible", reason="ansible-core is not installed (pip install -e '.[test]')")

COLLECTION = ROOT / "contrib" / "ansible"
MODULE = "servicectl.servicectl.servicectl"
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
        # servicectl found on PATH, the way a pip-installed one is on a target
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
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
        self, tasks: list[dict[str, Any]], *flags: str, timeout: float = 180
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """One play on localhost; every task registers its ``register`` name, and a last task
        (run even in check mode) dumps them all to JSON."""
        self.runs += 1
        out = self.base / f"results-{self.runs}.json"
        names = [t["register"] for t in tasks if "register" in t]
        dump = ", ".join(f"'{n}': {n} | default(None)" for n in names)
        play = {
            "hosts": "all",
            "gather_facts": False,
            "module_defaults": {MODULE: self.defaults},
            "tasks": [
                *tasks,
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
        "command": [PY, str(DAEMONS / "sleeper.py"), *args],
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
    res = subprocess.run(
        [PY, "-m", "servicectl", "enable", "--help"], capture_output=True, timeout=60
    )
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
    book = Book(env, collections, executable=str(BIN / "servicectl"))
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
    book = Book(env, collections, executable=str(BIN / "servicectl"))
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
                definition=sleeper_spec(env, "--exit-code", "3", marker="crash.marker"),
                state="started",
                ignore_errors=True,
            ),
            task("link", name="link", definition=sleeper_spec(env), ignore_errors=True),
            task("badname", name="../etc/x", definition="command: x\n", ignore_errors=True),
        ]
    )
    typo_res = r["typo"]
    assert typo_res["failed"] is True and typo_res["rc"] == 6
    assert f"{web}: stop_timout" in typo_res["msg"]  # the real path, not the mirror's
    assert "servicectl-check-" not in typo_res["msg"] + typo_res["stderr"]
    assert typo_res["msg"] == typo_res["stderr"].strip()
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
    book = Book(env, collections, executable=str(BIN / "servicectl"))
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
        f'exec "{BIN / "servicectl"}" "$@"\n'
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


def test_rolling_playbook_of_the_docs_stops_at_the_first_failure(
    env: Env, collections: Path
) -> None:
    """docs/fleet.md's roll (serial 2, max_fail_percentage 0, any_errors_fatal) on three local
    hosts: host2 lacks the service web depends on, so check refuses web there and the roll
    stops (host3 untouched); once host2 has it, the roll goes through everywhere."""
    (play,) = doc_playbook("roll-web.yml")
    assert play["serial"] == 2 and play["max_fail_percentage"] == 0
    assert play["any_errors_fatal"] is True
    book = Book(env, collections)
    hosts = ["host1", "host2", "host3"]
    inventory = ["[web_servers]"]
    for host in hosts:
        root = env.root / host
        (root / "services.d").mkdir(parents=True)
        inventory.append(f"{host} ansible_connection=local sc_root={root}")
        if host != "host2":
            env.write(f"../{host}/services.d/db", sleeper_spec(env, marker=f"{host}.db"))
    (book.base / "inventory").write_text("\n".join(inventory) + "\n")
    (book.base / "services").mkdir()
    web_spec = sleeper_spec(env, marker="web.marker", depends=["db"])
    (book.base / "services" / "web.yaml").write_text(yaml.safe_dump(web_spec))
    # The play as documented; only the directories are this test's and no become.
    play["become"] = False
    play["module_defaults"] = {
        MODULE: {
            "services_dir": "{{ sc_root }}/services.d",
            "run_dir": "{{ sc_root }}/run",
            "log_dir": "{{ sc_root }}/log",
        }
    }
    res = book.playbook([play], "-i", str(book.base / "inventory"))
    assert res.returncode != 0, res.stdout
    assert "db: no such service" in res.stdout, res.stdout
    assert (env.root / "host1" / "services.d" / "web.yaml").exists()  # batch 1, before the stop
    assert not (env.root / "host2" / "services.d" / "web.yaml").exists()  # refused
    assert not (env.root / "host3" / "services.d" / "web.yaml").exists()  # never reached
    assert "host3" not in res.stdout
    assert not marker_pids(env, "started", "web.marker")  # the roll stopped before any start

    env.write("../host2/services.d/db", sleeper_spec(env, marker="host2.db"))
    res = book.playbook([play], "-i", str(book.base / "inventory"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(marker_pids(env, "started", "web.marker")) == 3
    for host in hosts:
        root = env.root / host
        out = subprocess.run(
            [*env.base_args()[:3], "-d", str(root / "services.d"), "--run-dir", str(root / "run")]
            + ["status", "--json", "web"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(out.stdout)[0]["state"] == "running", (host, out.stdout)


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
