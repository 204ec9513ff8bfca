"""``initd --boot`` and ``unit --boot``: the boot files of the whole fleet, written by
servicectl itself (a ``pip install`` alone sets up boot), checked with sh -n, shellcheck and
systemd-analyze, run for real, and identical to contrib/ but for the executable and the
directories."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from typing import TYPE_CHECKING

import pytest
from conftest import ROOT, SERVICECTL, Env, alive, assert_ok
from test_shims import _script_env, _sh, _systemd_verify, lsb_headers, read_unit, shellcheck

from servicectl.commands import boot, shims
from servicectl.paths import Dirs

if TYPE_CHECKING:
    from pathlib import Path

CONTRIB = ROOT / "contrib"
ODD = "odd dir 'single' \"double\" $HOME %n back\\slash"


def bare(
    cwd: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """servicectl with exactly these arguments, no SERVICECTL_* from the test run."""
    return subprocess.run(
        [SERVICECTL, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=dict(_script_env(), **(extra or {})),
        stdin=subprocess.DEVNULL,
    )


def exe() -> str:
    """What the installed servicectl names itself in the files it writes."""
    return SERVICECTL


def test_contrib_is_the_generated_output() -> None:
    """contrib/ holds what --boot writes for /usr/local/sbin/servicectl and the default
    directories (regenerate with: python -m servicectl.commands.boot contrib)."""
    for rel, f in boot.contrib_files().items():
        path = CONTRIB / rel
        assert path.read_text() == f.content, f"contrib/{rel} is stale"
        assert stat.S_IMODE(path.stat().st_mode) == f.mode


@pytest.mark.parametrize(
    "kind, rel", [("initd", "init.d/servicectl"), ("unit", "systemd/servicectl.service")]
)
def test_boot_stdout_is_contrib_but_for_the_executable_and_dirs(
    tmp_path: Path, kind: str, rel: str
) -> None:
    services = tmp_path / "services.d"
    services.mkdir()
    res = assert_ok(bare(tmp_path, "-d", str(services), kind, "--boot", "--stdout"))
    program = shims.exe_argv(exe())
    assert len(program) == 1, "the test expects the console script of this interpreter"
    text = res.stdout.replace(program[0], boot.CONTRIB_EXE)
    text = text.replace(str(services), str(boot.CONTRIB_DIRS.services))
    files = [rel, "systemd/servicectl-supervisor.service"] if kind == "unit" else [rel]
    assert text == "".join((CONTRIB / f).read_text() for f in files)


def test_initd_boot_written_checked_and_run(env: Env, tmp_path: Path) -> None:
    env.sleeper("db")
    env.sleeper("web", depends=["db"])
    env.sleeper("off", enabled=False)
    out = tmp_path / "init.d"
    out.mkdir()
    res = assert_ok(env.sc("initd", "--boot", "--dir", str(out)))
    script = out / "servicectl"
    assert res.stdout.strip() == f"servicectl: wrote {script}"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    text = script.read_text()
    assert text.splitlines()[1].startswith(shims.MARKER)
    assert lsb_headers(text)["Provides"] == "servicectl"
    assert _sh("-n", script).returncode == 0
    shellcheck(script)
    res = assert_ok(env.sc("initd", "--boot", "--dir", str(out)))
    assert "unchanged" in res.stdout

    if os.path.exists("/etc/default/servicectl"):
        pytest.skip("/etc/default/servicectl exists on this machine and would override the test")
    # The directories given at generation are passed on: no environment needed.
    res = _sh(script, "start")
    assert res.returncode == 0, res.stderr
    pids = {n: env.pid(n) for n in ("db", "web")}
    assert all(alive(p) for p in pids.values()) and not (env.run / "off.pid").exists()
    assert _sh(script, "status").returncode == 3  # "off" is stopped
    assert _sh(script, "bogus").returncode == 2
    res = _sh(script, "stop")
    assert res.returncode == 0, res.stderr
    assert not any(alive(p) for p in pids.values())


def test_unit_boot_written_and_verified(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "system"
    out.mkdir()
    assert_ok(env.sc("unit", "--boot", "--dir", str(out)))
    path = out / "servicectl.service"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    u = read_unit(path)
    program = shlex.join(shims.exe_argv(exe()))
    assert u["Service"]["Type"] == "oneshot" and u["Service"]["RemainAfterExit"] == "yes"
    assert u["Service"]["ExecStart"] == f"{program} startall"
    assert u["Service"]["ExecStop"] == f"{program} stopall"
    assert shlex.split(u["Service"]["Environment"]) == [
        f"SERVICECTL_SERVICES_DIR={env.services}",
        f"SERVICECTL_RUN_DIR={env.run}",
        f"SERVICECTL_LOG_DIR={env.log}",
    ]
    assert u["Service"]["EnvironmentFile"] == "-/etc/default/servicectl"
    assert u["Install"]["WantedBy"] == "multi-user.target"
    assert u["Unit"]["Wants"] == "servicectl-supervisor.service"
    keeper = out / "servicectl-supervisor.service"
    k = read_unit(keeper)
    assert k["Service"]["ExecStart"] == f"{program} supervise"
    assert k["Service"]["Restart"] == "always" and k["Service"]["KillMode"] == "process"
    assert k["Service"]["Type"] == "notify"
    _systemd_verify([path, keeper])


def test_boot_files_quote_odd_directories(tmp_path: Path) -> None:
    services = tmp_path / ODD
    dirs = Dirs(str(services), str(tmp_path / "run"), str(tmp_path / "log"))
    script = tmp_path / "servicectl"
    script.write_text(boot.initd_file(dirs, "/usr/bin/servicectl").content)
    assert _sh("-n", script).returncode == 0
    shellcheck(script)
    # The script sees the directory exactly (a fake servicectl prints its environment).
    fake = tmp_path / "fake"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$SERVICECTL_SERVICES_DIR" "$1"\n')
    fake.chmod(0o755)
    if os.path.exists("/etc/default/servicectl"):
        pytest.skip("/etc/default/servicectl exists on this machine and would override it")
    res = _sh(script, "status", env=dict(_script_env(), SERVICECTL=str(fake)))
    assert res.stdout.splitlines() == [str(services), "status"], res.stderr
    unit = boot.unit_file(dirs, "/usr/bin/servicectl").content
    [env_line] = [ln for ln in unit.splitlines() if ln.startswith("Environment=")]
    [assignment] = shlex.split(env_line.removeprefix("Environment="))
    assert assignment.replace("%%", "%") == f"SERVICECTL_SERVICES_DIR={services}"
    with pytest.raises(Exception, match="control character"):
        boot.unit_file(
            Dirs(str(tmp_path / "a\nb"), str(tmp_path), str(tmp_path)), "/usr/bin/servicectl"
        )


@pytest.mark.parametrize("kind, name", [("initd", "servicectl"), ("unit", "servicectl.service")])
def test_boot_never_overwrites_a_foreign_file(
    env: Env, tmp_path: Path, kind: str, name: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mine = out / name
    mine.write_text("#!/bin/sh\necho hand-written\n")
    res = env.sc(kind, "--boot", "--dir", str(out))
    assert res.returncode == 1
    assert "not written by servicectl" in res.stderr and "--force" in res.stderr
    assert mine.read_text() == "#!/bin/sh\necho hand-written\n"
    also = ["servicectl-supervisor.service"] if kind == "unit" else []  # written beside it
    assert sorted(p.name for p in out.iterdir()) == sorted([name, *also])  # no temporary file
    res = assert_ok(env.sc(kind, "--boot", "--dir", str(out), "--force"))
    assert "wrote" in res.stdout and shims.MARKER in mine.read_text()


def test_boot_refuses_names_with_it(env: Env) -> None:
    env.sleeper("web")
    for kind in ("initd", "unit"):
        for extra in (["web"], ["--all"]):
            res = env.sc(kind, "--boot", *extra, "--stdout")
            assert res.returncode == 2 and "only one" in res.stderr
