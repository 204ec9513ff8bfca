"""What a user installs is what the tests test: the wheel and the sdist ship every module under
servicectl/ (found by walking the tree, so a new subpackage cannot be left out), the servicectl
the tests spawn is that wheel installed into a venv (never the source tree), every command of
docs/commands.md runs from it, its version is the distribution's, the boot files it writes
work from a venv nobody activated, and nothing handed to another user is out of their reach.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import (
    DAEMONS,
    INSTALL,
    PY,
    ROOT,
    SERVICECTL,
    SYSTEM_DIRS,
    USER_PYTHON,
    Env,
    alive,
    assert_ok,
    find_tool,
    wait_for,
)
from installkit import DISTRIBUTION, unreachable_part

import servicectl
from servicectl.commands.grammar import COMMANDS

if TYPE_CHECKING:
    from faultkit import User

TEST_SYSLOG = os.environ["SERVICECTL_SYSLOG_SOCKET"]  # never the machine's /dev/log


def package_files() -> set[str]:
    """Every file of the servicectl package in the tree (modules and data), as a path under
    the package's parent: what the wheel and the sdist must carry."""
    out = set()
    for path in (ROOT / "servicectl").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            out.add(path.relative_to(ROOT).as_posix())
    return out


def test_the_wheel_ships_every_module_of_the_tree() -> None:
    tree = package_files()
    assert "servicectl/commands/importer/__init__.py" in tree  # the walk sees subpackages
    with zipfile.ZipFile(INSTALL.wheel) as wheel:
        names = wheel.namelist()
        shipped = {n for n in names if n.startswith("servicectl/")}
        [script] = [n for n in names if n.endswith(".data/scripts/servicectl")]
        command = wheel.read(script).decode()
        [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(meta).decode()
    assert tree - shipped == set(), "missing from the wheel (pyproject.toml, packages.find)"
    assert shipped - tree == set(), "in the wheel but not in the tree"
    # The command is bin/servicectl (pip rewrites "#!python"), not a generated wrapper that
    # imports re: its words are servicectl's own, and it imports nothing but sys and main.
    assert command.startswith("#!python\n") and "from servicectl.cli.main import main" in command
    imports = [ln for ln in command.splitlines() if ln.startswith(("import ", "from "))]
    assert imports == ["import sys", "from servicectl.cli.main import main"], imports
    assert f"\nName: {DISTRIBUTION}\n" in metadata
    assert f"\nVersion: {servicectl.__version__}\n" in metadata


def test_the_sdist_ships_every_module_and_builds_that_wheel() -> None:
    """python -m build made the wheel from the sdist: what the sdist lacks, the wheel lacks."""
    with tarfile.open(INSTALL.sdist) as sdist:
        top, *_ = sdist.getnames()[0].split("/")
        names = {n.partition("/")[2] for n in sdist.getnames()}
    assert top == f"servicectl_sysv-{servicectl.__version__}", top
    assert package_files() <= names, package_files() - names
    assert {"pyproject.toml", "README.md", "CHANGELOG.md"} <= names


def imported_servicectl_files(argv: list[str], cwd: Path) -> set[Path]:
    """The servicectl modules a process loaded (python -v), as files."""
    env = dict(os.environ, PYTHONVERBOSE="1", NO_COLOR="1")
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    loaded = re.findall(r"^# code object from '?(.+?)'?$", res.stderr, re.M)
    return {Path(p) for p in loaded if "/servicectl/" in p}


def test_the_servicectl_the_tests_spawn_is_the_installed_wheel(env: Env) -> None:
    site = INSTALL.site_packages()
    assert env.base_args()[0] == SERVICECTL
    assert ROOT not in Path(SERVICECTL).parents and ROOT not in Path(USER_PYTHON).parents
    for argv in ([SERVICECTL, "--version"], [SERVICECTL, *env.dir_args(), "list"]):
        files = imported_servicectl_files(argv, cwd=ROOT)  # the clone as the working directory
        assert files, "python -v named no module"
        assert all(site / "servicectl" in f.parents for f in files), files
    # The installed package is this tree's, file for file; nothing leads back to the tree.
    for rel in package_files():
        assert (site / rel).read_bytes() == (ROOT / rel).read_bytes(), rel
    for pth in site.glob("*.pth"):
        assert str(ROOT) not in pth.read_text(), pth
    cfg = (INSTALL.venv / "pyvenv.cfg").read_text()
    assert re.search(r"^include-system-site-packages = false$", cfg, re.M), cfg


def test_version_is_the_distributions_and_needs_no_typer(tmp_path: Path) -> None:
    res = subprocess.run([SERVICECTL, "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == f"servicectl {servicectl.__version__}\n"
    meta = INSTALL.site_packages() / f"servicectl_sysv-{servicectl.__version__}.dist-info"
    assert (meta / "METADATA").is_file()
    trace = subprocess.run(
        [USER_PYTHON, "-X", "importtime", SERVICECTL, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    imported = set(re.findall(r"\|\s+(typer|rich|click|yaml|psutil)$", trace.stderr, re.M))
    assert imported == set(), imported
    # It is the metadata's, not the constant's: a copy beside another version's metadata.
    site = tmp_path / "site"
    shutil.copytree(INSTALL.site_packages() / "servicectl", site / "servicectl")
    probe = [USER_PYTHON, "-S", "-c", "import servicectl; print(servicectl.version())"]
    for info, expected in ((None, servicectl.__version__), ("9.8.7", "9.8.7")):
        if info:
            (site / f"servicectl_sysv-{info}.dist-info").mkdir()
            (site / f"servicectl_sysv-{info}.dist-info" / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: servicectl-sysv\nVersion: {info}\n\nREADME\n"
            )
        env = {"PYTHONPATH": str(site)}
        res = subprocess.run(probe, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert res.stdout == f"{expected}\n", res.stderr
    # Through typer (an option before it), the same answer.
    res = subprocess.run(
        [SERVICECTL, "-d", str(tmp_path), "--version"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and res.stdout == f"servicectl {servicectl.__version__}\n"


UNIT = """\
[Unit]
Description=An imported worker

[Service]
ExecStart=/usr/bin/sleep 300
"""


def smoke_lines(env: Env, unit: Path) -> list[tuple[list[str], int]]:
    """A command line for every command of the table, in an order that makes sense, with the
    exit code it must give."""
    return [
        (["check", "web"], 0),
        (["list"], 0),
        (["cat", "web"], 0),
        (["start", "web"], 0),
        (["status", "web"], 0),
        (["metrics"], 0),
        (["reload", "web"], 0),
        (["force-reload", "web"], 0),
        (["action", "web", "probe"], 0),
        (["restart", "web"], 0),
        (["try-restart", "web"], 0),
        (["logs", "web", "-n", "3"], 0),
        (["disable", "web"], 0),
        (["enable", "web"], 0),
        (["edit", "web"], 0),
        (["initd", "web", "--stdout"], 0),
        (["unit", "web", "--stdout"], 0),
        (["initd", "--boot", "--stdout"], 0),
        (["unit", "--boot", "--stdout"], 0),
        (["import", str(unit)], 0),
        (["stop", "web"], 0),
        (["startall"], 0),
        (["stopall"], 0),
        (["status"], 3),
    ]


def test_every_command_of_the_docs_runs_from_the_install(env: Env, tmp_path: Path) -> None:
    documented = re.findall(r"^### (\S+)$", (ROOT / "docs" / "commands.md").read_text(), re.M)
    unit = tmp_path / "worker.service"
    unit.write_text(UNIT)
    env.sleeper("web", "--hup", actions={"probe": {"command": ["true"]}})
    lines = smoke_lines(env, unit)
    foreground = {"supervise"}  # runs until told to leave: below
    assert {argv[0] for argv, _ in lines} | foreground == set(COMMANDS)
    assert set(COMMANDS) == set(documented) - {"Global"}
    for argv, code in lines:
        res = env.sc(*argv, extra_env={"EDITOR": "true", "VISUAL": "true"})
        assert "Traceback" not in res.stdout + res.stderr, (argv, res.stderr)
        assert_ok(res, code)
    sup = env.popen("supervise")
    wait_for(lambda: (env.run / ".supervisor.sock").exists(), 30, "the supervisor to listen")
    sup.send_signal(signal.SIGTERM)
    _, err = sup.communicate(timeout=30)
    assert sup.returncode == 0 and "Traceback" not in err, err
    for flag in ("--version", "--help"):
        assert_ok(env.sc(flag))


# -- boot from a venv that nobody activated ------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """What init gives a boot script: next to nothing (env -i PATH=/usr/bin:/bin)."""
    return {"PATH": "/usr/bin:/bin", "SERVICECTL_SYSLOG_SOCKET": TEST_SYSLOG, **extra}


def run_clean(argv: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["env", "-i", *(f"{k}={v}" for k, v in clean_env(**extra).items()), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        stdin=subprocess.DEVNULL,
    )


def two_services(env: Env) -> None:
    env.sleeper("db")
    env.sleeper("web", depends=["db"])


def assert_up_then_down(env: Env, start: list[str], status: list[str], stop: list[str]) -> None:
    res = run_clean(start)
    assert res.returncode == 0, res.stdout + res.stderr
    pids = [env.pid("db"), env.pid("web")]
    assert all(alive(p) for p in pids)
    res = run_clean(status)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_clean(stop)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not any(alive(p) for p in pids)
    assert not [f for f in env.files() if f.endswith((".pid", ".state"))], env.files()


@pytest.fixture
def no_default_file() -> None:
    if os.path.exists("/etc/default/servicectl"):
        pytest.skip("/etc/default/servicectl exists on this machine and would override the test")


@pytest.mark.usefixtures("no_default_file")
def test_initd_boot_script_runs_the_venvs_servicectl_with_a_clean_environment(
    env: Env, tmp_path: Path
) -> None:
    two_services(env)
    # Called by its path in the venv, and through a link (/usr/local/sbin/servicectl, say):
    # the script names the executable as it was called, by absolute path.
    sbin = tmp_path / "sbin dir"
    sbin.mkdir()
    (sbin / "servicectl").symlink_to(SERVICECTL)
    for exe in (SERVICECTL, str(sbin / "servicectl")):
        res = assert_ok(
            subprocess.run(
                [exe, *env.dir_args(), "initd", "--boot", "--stdout"],
                capture_output=True,
                text=True,
                timeout=60,
                env=clean_env(),
            )
        )
        [line] = [ln for ln in res.stdout.splitlines() if ln.startswith("SERVICECTL=${")]
        named = subprocess.run(["sh", "-c", f'{line}\nprintf %s "$SERVICECTL"'], env=clean_env(),
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert named == exe
        script = tmp_path / "servicectl"
        script.write_text(res.stdout)
        script.chmod(0o755)
        assert_up_then_down(env, [str(script), "start"], [str(script), "status"],
                            [str(script), "stop"])  # fmt: skip


def doc_block(page: Path, after: str) -> str:
    """The first ```sh block of ``page`` after the line that contains ``after``."""
    text = page.read_text()
    rest = text[text.index(after) :]
    return rest.split("```sh\n", 1)[1].split("```", 1)[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: unshare -n takes the network away")
@pytest.mark.usefixtures("no_default_file")
def test_the_documented_offline_install_boots(env: Env, tmp_path: Path) -> None:
    """docs/boot.md, word for word but for /opt and /usr/local/sbin (here, under tmp_path): the
    wheelhouse made where there is network, the venv made and filled on a host with none (no
    network namespace, no pip configuration), then the boot script from its servicectl."""
    if subprocess.run(["/usr/bin/python3", "-c", "import ensurepip"]).returncode != 0:
        pytest.skip("python3 -m venv needs ensurepip: apt-get install python3-venv (docs/boot.md)")
    pins = INSTALL.top / "constraints.txt"
    assert_ok(subprocess.run(
        [PY, "-m", "pip", "wheel", "-q", "-w", str(tmp_path / "wheelhouse"), "-c", str(pins),
         str(INSTALL.wheel)], capture_output=True, text=True, timeout=300))  # fmt: skip
    opt, sbin = tmp_path / "opt" / "servicectl", tmp_path / "sbin"
    sbin.mkdir()
    block = doc_block(ROOT / "docs" / "boot.md", "**A venv under `/opt/servicectl`**")
    script = block.replace("/opt/servicectl", str(opt)).replace("/usr/local/sbin", str(sbin))
    offline = ["unshare", "-n", "env", "-i", f"PATH={sbin}:/usr/bin:/bin", f"HOME={tmp_path}",
               "PIP_CONFIG_FILE=/dev/null", "sh", "-ec", script]  # fmt: skip
    res = subprocess.run(offline, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.endswith(f"servicectl {servicectl.__version__}\n"), (
        res.stdout + res.stderr
    )
    two_services(env)
    out = tmp_path / "init.d"
    out.mkdir()
    assert_ok(run_clean([str(sbin / "servicectl"), *env.dir_args(), "initd", "--boot", "--dir",
                         str(out)]))  # fmt: skip
    script_path = str(out / "servicectl")
    assert_up_then_down(env, [script_path, "start"], [script_path, "status"],
                        [script_path, "stop"])  # fmt: skip


def unit_settings(text: str) -> tuple[list[str], list[str], dict[str, str]]:
    """ExecStart, ExecStop (as argv) and Environment= of a unit, the way systemd reads them
    (the first unit of what --boot prints: the fleet's; the supervisor's follows)."""
    text = text.split("# Generated by servicectl", 2)[1]
    lines = dict(ln.split("=", 1) for ln in text.splitlines() if re.match(r"^[A-Z]\w+=", ln))
    assignments = shlex.split(lines["Environment"])
    environment = dict(a.replace("%%", "%").split("=", 1) for a in assignments)
    return shlex.split(lines["ExecStart"]), shlex.split(lines["ExecStop"]), environment


def test_unit_boot_runs_the_venvs_servicectl_with_a_clean_environment(env: Env) -> None:
    two_services(env)
    res = assert_ok(env.sc("unit", "--boot", "--stdout"))
    start, stop, environment = unit_settings(res.stdout)
    assert start == [SERVICECTL, "startall"] and stop == [SERVICECTL, "stopall"]
    status = [SERVICECTL, "status"]
    with_dirs = [
        ["env", *(f"{k}={v}" for k, v in environment.items()), *argv]
        for argv in (start, status, stop)
    ]
    assert_up_then_down(env, *with_dirs)


# -- other users reach what they are given ---------------------------------------------------------


def handed_to_other_users() -> list[Path]:
    """Every kind of path the tests hand to another user: the install's servicectl and python,
    the installed package, the helper copies, a shared directory of faultkit, and one of
    tempfile (where tests make the directories they share with nobody)."""
    from faultkit import reachable_dir

    paths = [Path(SERVICECTL), Path(USER_PYTHON), INSTALL.site_packages() / "servicectl"]
    paths += sorted(DAEMONS.iterdir())
    with reachable_dir() as shared:
        paths.append(shared)
    paths.append(Path(tempfile.mkdtemp(prefix="reach-")))
    os.rmdir(paths[-1])
    return paths


def test_no_path_handed_to_another_user_is_out_of_their_reach(user: User) -> None:
    from faultkit import as_user

    for path in handed_to_other_users():
        assert unreachable_part(path) is None, f"{path}: {unreachable_part(path)} is not o+x"
        assert ROOT not in path.parents, f"{path} lies in the clone, whose parents may be 0700"
    # As that user, for real: the installed servicectl runs, and imports from the venv.
    code = "import servicectl, yaml, psutil, typer; print(servicectl.__file__)"
    res = as_user(user, USER_PYTHON, "-c", code, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip()).parent == INSTALL.site_packages() / "servicectl"
    res = as_user(user, SERVICECTL, "--version", cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0 and res.stdout == f"servicectl {servicectl.__version__}\n"
    for helper in DAEMONS.iterdir():
        assert as_user(user, "test", "-r", str(helper), cwd="/").returncode == 0, helper
    # And no test hands the clone to another user through PYTHONPATH or the system's python.
    for test in sorted((ROOT / "tests").glob("*.py")):
        text = test.read_text()
        assert not re.search(r"PYTHONPATH[^\n]*\bROOT\b", text), test.name
        assert test.name == Path(__file__).name or "SYSTEM_PY" not in text, test.name


def test_system_tools_are_found_outside_an_ordinary_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """useradd, runuser, setpriv and insserv live in sbin directories that an ordinary user's
    PATH (and a clean CI's) lacks: the tests look there too, or skip saying so."""
    monkeypatch.setenv("PATH", f"{Path(PY).parent}:/usr/local/bin:/usr/bin:/bin")
    for tool in ("useradd", "userdel", "groupdel", "runuser", "setpriv", "insserv"):
        installed = any(os.access(os.path.join(d, tool), os.X_OK) for d in SYSTEM_DIRS.split(":"))
        found = find_tool(tool)
        assert (found is not None) == installed, tool
        assert found is None or (os.path.isabs(found) and os.access(found, os.X_OK)), found
