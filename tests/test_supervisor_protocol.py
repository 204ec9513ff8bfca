"""The supervisor as a long-lived daemon: it is the only actor on what it supervises (its state
table), speaks a versioned protocol (an upgraded servicectl makes it hand its services over
without restarting them), adopts what a killed supervisor left (started by the next command
that acts, or kept up by ``servicectl supervise``), and restarts a service whose health checks
fail. Real processes, real wheels installed in a venv of the test's own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import (
    DAEMONS,
    PY,
    ROOT,
    Env,
    alive,
    assert_ok,
    free_port,
    supervisor_pids,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

CRASHER = str(DAEMONS / "crasher.py")
HEALTH = str(DAEMONS / "health_server.py")


def supervised(env: Env, name: str, **extra: Any) -> None:
    spec: dict[str, Any] = {
        "command": [PY, CRASHER],
        "restart": "on-failure",
        "restart_delay": 0.1,
        "start_grace": 0.1,
        "environment": {"MARKER": str(env.root / f"{name}.marker")},
    }
    spec.update(extra)
    env.write(name, spec)


def the_supervisor(run: Path) -> int:
    # one: a second one may be starting up to find the first there, and leaving
    (pid,) = wait_for(lambda: (lambda p: p if len(p) == 1 else None)(supervisor_pids(run)), 30,
                      "one supervisor")  # fmt: skip
    return int(pid)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 10, f"{pid} to die")


def row(env: Env, name: str) -> dict[str, Any]:
    return env.status_json(name)[name]


def _supervisor_of(env: Env, name: str) -> int | None:
    """The PID of the supervisor that supervises ``name`` now (status says it), or None."""
    said = row(env, name).get("supervisor") or ""
    word = said.split()[1] if said.startswith("pid ") else ""
    return int(word) if word.isdigit() else None


def respawned(env: Env, name: str, old: int, timeout: float = 15) -> int:
    def new() -> int | None:
        r = row(env, name)
        ok = r["state"] == "running" and r["pid"] not in (None, old) and alive(r["pid"])
        return int(r["pid"]) if ok else None

    return int(wait_for(new, timeout, f"{name} to be respawned"))


def info(run: Path) -> dict[str, Any]:
    """What the supervisor says of itself (``info`` needs no hello)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(run / ".supervisor.sock"))
        s.sendall(b'{"op": "info"}\n')
        return dict(json.loads(s.makefile().readline()))


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield path, sock
    finally:
        sock.close()


def said(sock: socket.socket) -> str:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The state table: stop wins by construction


def test_no_entry_of_the_table_leads_from_stopping_to_a_respawn() -> None:
    """A stop moves the service to stopping before anything is signalled; stopping has no
    entry at all (only a job's end leaves it), and a respawn is due only from respawning."""
    from servicectl.supervisor import machine

    assert machine.TABLE[machine.STOPPING] == {}
    due = [state for state, row in machine.TABLE.items() if machine.DUE in row]
    assert due == [machine.RESPAWNING]
    for state, entries in machine.TABLE.items():
        assert set(entries) <= {
            *machine.REQUESTS.values(),
            machine.EXIT,
            machine.DUE,
            machine.UNHEALTHY,
        }, state
        if machine.STOP in entries:
            assert entries[machine.STOP] == "stop", state


# ---------------------------------------------------------------------------------------------
# A supervisor killed: adopted by the next one


def test_a_killed_supervisor_is_replaced_by_the_next_command_which_adopts(
    env: Env, syslog: tuple[Path, socket.socket]
) -> None:
    """kill -9 of the supervisor: status says the service is unsupervised and starts nothing;
    the next command that acts (here the start of another supervised service) starts a new
    supervisor, which adopts the first (syslog and status say so); the first, killed, is
    respawned (its exit status is unknown: it is not the new supervisor's child)."""
    path, sock = syslog
    on = {"SERVICECTL_SYSLOG_SOCKET": str(path)}
    supervised(env, "a")
    supervised(env, "b")
    assert_ok(env.sc("start", "a", extra_env=on))
    a = env.pid("a")
    old = the_supervisor(env.run)
    kill(old)
    res = env.sc("status", "--json", "a")
    (r,) = json.loads(res.stdout)
    assert res.returncode == 0 and r["pid"] == a and r["supervisor"].startswith("unsupervised")
    assert "adopts it" in " ".join(r["notes"])
    assert supervisor_pids(env.run) == []  # status only looks
    assert_ok(env.sc("start", "b", extra_env=on))
    new = the_supervisor(env.run)
    assert new != old
    wait_for(lambda: row(env, "a").get("adopted"), 30, "a to be adopted")
    r = row(env, "a")
    assert r["supervisor"].startswith(f"pid {new} ") and r["adopted"]["from"] == old
    assert "adopted at" in env.sc("status", "a").stdout
    text = said(sock)
    assert f"the supervisor (pid {old})" in text and "is gone" in text, text
    assert f"a: adopted by the supervisor (pid {new})" in text, text
    kill(a)
    respawned(env, "a", a)
    assert "unknown" in row(env, "a")["last_exit"]
    assert_ok(env.sc("stop", "a", "b"))


def test_a_service_killed_while_no_supervisor_ran_is_respawned_by_the_adopter(env: Env) -> None:
    """The supervisor killed, then the service: nobody sees that exit; the next command that
    acts (the start of an unsupervised service) starts a supervisor, which finds the record
    of a process that is gone and respawns it (an unknown status is a failure)."""
    supervised(env, "a")
    env.sleeper("plain")
    assert_ok(env.sc("start", "a"))
    a = env.pid("a")
    kill(the_supervisor(env.run))
    kill(a)
    assert row(env, "a")["state"] == "dead" and supervisor_pids(env.run) == []
    assert_ok(env.sc("start", "plain"))
    new = respawned(env, "a", a)
    r = row(env, "a")
    assert r["restarts"] == 1 and "no supervisor" in r["last_exit"]["unknown"]
    assert len((env.root / "a.marker").read_text().splitlines()) == 2
    assert_ok(env.sc("stop", "a", "plain"))
    assert not alive(new)


def test_supervise_in_the_foreground_takes_over_when_the_supervisor_dies(env: Env) -> None:
    """``servicectl supervise`` (what the boot files run) waits while a supervisor runs, takes
    over the moment it dies, and adopts its services; SIGTERM ends it and the services run on."""
    supervised(env, "a")
    assert_ok(env.sc("start", "a"))
    a, detached = env.pid("a"), the_supervisor(env.run)
    keeper = env.popen("supervise")
    wait_for(lambda: keeper.pid in supervisor_pids(env.run), 30, "the foreground supervisor")
    time.sleep(0.3)  # it waits for the lock: an absence is observed by waiting
    assert keeper.poll() is None and row(env, "a")["supervisor"].startswith(f"pid {detached} ")
    kill(detached)
    wait_for(lambda: row(env, "a")["supervisor"].startswith(f"pid {keeper.pid} "), 30, "takeover")
    kill(a)
    b = respawned(env, "a", a)
    keeper.send_signal(signal.SIGTERM)
    keeper.communicate(timeout=10)
    assert alive(b) and row(env, "a")["state"] == "running"
    assert_ok(env.sc("stop", "a"))


# ---------------------------------------------------------------------------------------------
# Health


def healthy_server(env: Env, name: str, port: int, **extra: Any) -> Path:
    flag = env.root / f"{name}.sick"
    spec: dict[str, Any] = {
        "command": [PY, HEALTH, str(port), str(flag)],
        "restart": "on-failure",
        "restart_delay": 0.3,
        "ready": {"tcp": f"127.0.0.1:{port}"},
        "start_timeout": 10,
        "health": {"http": f"http://127.0.0.1:{port}/health", "interval": 0.4, "retries": 3},
        "environment": {"MARKER": str(env.root / f"{name}.marker")},
    }
    spec.update(extra)
    env.write(name, spec)
    return flag


def test_a_service_whose_health_answers_500_is_restarted_in_time(env: Env) -> None:
    """interval 0.4 s, retries 3, restart_delay 0.3 s: once the health URL answers 500, the
    service is restarted within interval x retries + restart_delay (+ one interval for the
    probe under way, and a margin for the stop and the start); the cause is recorded."""
    port = free_port()
    flag = healthy_server(env, "web", port)
    assert_ok(env.sc("start", "web"))
    old = env.pid("web")
    wait_for(lambda: (row(env, "web").get("health") or {}).get("state") == "healthy", 30, "healthy")
    assert "Health: healthy" in env.sc("status", "web").stdout
    flag.write_text(f"{old}\n")  # this instance alone is sick: its successor is not
    t0 = time.monotonic()
    new = respawned(env, "web", old, timeout=20)
    took = time.monotonic() - t0
    assert took < 0.4 * 3 + 0.3 + 0.4 + 2.5, took
    r = row(env, "web")
    assert r["restarts"] == 1 and r["last_exit"]["code"] == 0  # it exits 0 on TERM
    assert (
        r["last_exit"]["cause"]
        == f"unhealthy: http http://127.0.0.1:{port}/health answered 500 three times"
    )
    log = (env.log / "web.log").read_text()
    assert "answered 500 three times; respawn in 0.3 s (1 of 5)" in log
    flag.unlink()
    wait_for(lambda: (row(env, "web").get("health") or {}).get("state") == "healthy", 30, "healthy")
    assert env.pid("web") == new
    assert_ok(env.sc("stop", "web"))


def test_status_says_unhealthy_since_when_with_the_last_probe(env: Env) -> None:
    """While the restart of an unhealthy service waits its restart_delay, status shows its
    health: unhealthy since when, and the last probe's result."""
    port = free_port()
    flag = healthy_server(env, "web", port, restart_delay=30)
    assert_ok(env.sc("start", "web"))
    flag.touch()
    wait_for(lambda: row(env, "web")["state"] == "dead", 15, "the health restart")
    block = env.sc("status", "web").stdout
    assert "Health: unhealthy since " in block and "answered 500" in block, block
    h = row(env, "web")["health"]
    assert h["state"] == "unhealthy" and h["failures"] == 3 and h["last"].endswith("answered 500")
    assert_ok(env.sc("stop", "web"))


@pytest.mark.parametrize(
    "health, words",
    [
        ({"http": "http://127.0.0.1:1/h"}, "health: needs a restart policy"),
        ({"https": "https://x/"}, "expected one of"),
        ({"http": "https://127.0.0.1/h"}, "an http:// URL"),
        ({"tcp": "127.0.0.1:80", "retries": 0}, "health.retries"),
        ({"tcp": "127.0.0.1:80", "interval": -1}, "health.interval"),
        ({"tcp": "nowhere"}, "health.tcp"),
    ],
)
def test_bad_health_is_refused_by_check(env: Env, health: dict[str, Any], words: str) -> None:
    spec: dict[str, Any] = {"command": "sleep 1", "health": health}
    if "needs a restart" not in words:
        spec["restart"] = "on-failure"
    env.write("web", spec)
    res = env.sc("check", "web")
    assert res.returncode == 6 and words in res.stderr, res.stderr


def test_a_command_probe_runs_as_the_service_and_counts(env: Env) -> None:
    """A command probe runs with the service's environment (MAINPID among it); its exit
    status is the verdict."""
    out = env.root / "probe.out"
    script = f'echo "$MAINPID $GREETING" >> {out}; test ! -e {env.root / "sick"}'
    supervised(
        env,
        "web",
        environment={"GREETING": "hi", "MARKER": str(env.root / "web.marker")},
        health={"command": ["/bin/sh", "-c", script], "interval": 0.3, "retries": 2},
        restart_delay=0.2,
    )
    assert_ok(env.sc("start", "web"))
    old = env.pid("web")
    wait_for(lambda: out.exists() and f"{old} hi" in out.read_text(), 30, "a probe")
    (env.root / "sick").touch()
    respawned(env, "web", old)
    assert "exited with status 1 twice" in row(env, "web")["last_exit"]["cause"]
    (env.root / "sick").unlink()
    assert_ok(env.sc("stop", "web"))


# ---------------------------------------------------------------------------------------------
# An upgrade under running services: the hand-over


def build_wheel(source: Path, out: Path, version: str) -> Path:
    """A wheel of the servicectl package under ``source`` (what a build puts in it: the
    package, its metadata, the console script's entry point)."""
    out.mkdir(parents=True, exist_ok=True)
    dist = f"servicectl-{version}.dist-info"
    wheel = out / f"servicectl-{version}-py3-none-any.whl"
    files = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: servicectl\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\nservicectl = servicectl.cli.main:main\n",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for path in sorted((source / "servicectl").rglob("*.py")):
            z.write(path, str(path.relative_to(source)))
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{dist}/RECORD", "".join(f"{n},,\n" for n in [*z.namelist(), f"{dist}/RECORD"]))
    return wheel


def newer_copy(tmp: Path) -> Path:
    """The repository's package, as its next version: a new version, and one more field in
    the definitions' schema."""
    copy = tmp / "next"
    shutil.copytree(
        ROOT / "servicectl", copy / "servicectl", ignore=shutil.ignore_patterns("__pycache__")
    )
    init = copy / "servicectl" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.'))
    schema = copy / "servicectl" / "definitions" / "schema.py"
    text = schema.read_text()
    last = "    dropins: tuple[str, ...] = ()\n"
    assert last in text
    schema.write_text(
        text.replace(last, last + "    upgraded: bool = False  # the next version's\n")
    )
    return copy


def venv(where: Path) -> Path:
    """A venv of the test's own (this interpreter; the dependencies seen from this one's)."""
    subprocess.run([PY, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    site = Path(sysconfig.get_paths(vars={"base": str(where), "platbase": str(where)})["purelib"])
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return where / "bin" / "python"


def install(python: Path, wheel: Path) -> None:
    res = subprocess.run(
        [
            PY,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--force-reinstall",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.timeout(300)
def test_an_upgrade_hands_the_services_over_without_restarting_them(
    env: Env, tmp_path: Path
) -> None:
    """servicectl installed from a wheel runs two supervised services; a newer wheel (another
    version, one more definition field) is installed over it; the next command finds the
    supervisor of the old code, which hands over: the same process executes the new code and
    keeps both services, same PIDs, not restarted, still its children (a crash afterwards is
    respawned, with its exit status)."""
    import servicectl

    python = venv(tmp_path / "venv")
    install(python, build_wheel(ROOT, tmp_path / "w1", servicectl.__version__))
    next_wheel = build_wheel(newer_copy(tmp_path), tmp_path / "w2", "9." + servicectl.__version__)
    exe = python.parent / "servicectl"
    sc = [str(exe), "-d", str(env.services), "--run-dir", str(env.run), "--log-dir", str(env.log)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run(
            [*sc, *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**environ, "NO_COLOR": "1"},
        )

    supervised(env, "a")
    supervised(env, "b")
    assert_ok(run("start", "a", "b"))
    pids = {n: env.pid(n) for n in ("a", "b")}
    sup = the_supervisor(env.run)
    before = info(env.run)
    assert before["version"] == servicectl.__version__
    install(python, next_wheel)  # no command: the supervisor sees its code change on disk
    wait_for(lambda: info(env.run)["version"] != before["version"], 15, "the hand-over")
    after = info(env.run)
    assert after["version"] == "9." + servicectl.__version__ and after["schema"] != before["schema"]
    res = assert_ok(run("start", "a"))
    assert f"already running (pid {pids['a']})" in res.stdout
    assert after["pid"] == sup and supervisor_pids(env.run) == [sup]
    assert {n: env.pid(n) for n in ("a", "b")} == pids
    assert sorted(after["units"]) == ["a", "b"]
    assert all(alive(p) for p in pids.values())
    for pid in pids.values():  # still its children: the exit status is known
        assert Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1] == str(sup)
    os.kill(pids["b"], signal.SIGKILL)
    new = respawned(env, "b", pids["b"])
    assert row(env, "b")["last_exit"]["signal"] == "KILL"
    assert "handed over" in (env.log / "a.log").read_text()
    log = (env.log / ".supervisor.log").read_text()
    assert "its code changed on disk" in log
    # The first version from another venv, the supervisor's code left as it is: the command's
    # hello finds another schema, and the supervisor hands over to the command's code.
    other = venv(tmp_path / "venv2")
    install(other, build_wheel(ROOT, tmp_path / "w3", servicectl.__version__))
    sc[0] = str(other.parent / "servicectl")
    assert_ok(run("start", "a", "b"))
    assert info(env.run)["version"] == servicectl.__version__
    assert env.pid("a") == pids["a"] and env.pid("b") == new
    assert "this command is " + servicectl.__version__ in (env.log / ".supervisor.log").read_text()
    assert_ok(run("stop", "a", "b"))
    assert not alive(new) and not alive(pids["a"])


# ---------------------------------------------------------------------------------------------
# The boot files keep the supervisor up


def test_the_init_script_keeps_the_supervisor_up(env: Env, tmp_path: Path) -> None:
    """The fleet's init script (``initd --boot``) starts ``servicectl supervise`` in a restart
    loop before startall: the supervisor killed, another one is up a second later and adopts
    the services; a crash afterwards is respawned; stop leaves nothing running."""
    if os.path.exists("/etc/default/servicectl"):
        pytest.skip("/etc/default/servicectl exists on this machine and would override the test")
    supervised(env, "a")
    out = tmp_path / "init.d"
    out.mkdir()
    assert_ok(env.sc("initd", "--boot", "--dir", str(out)))
    script = [str(out / "servicectl")]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECTL_")}
    environ["SERVICECTL_SYSLOG_SOCKET"] = os.environ["SERVICECTL_SYSLOG_SOCKET"]

    def sh(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", *script, action], capture_output=True, text=True, timeout=60, env=environ
        )

    try:
        assert_ok(sh("start"))
        a = env.pid("a")
        # The supervisor of "a": startall may start one before the keeper's listens; the
        # keeper's then waits for it to leave (two processes, one of them waiting).
        first = wait_for(lambda: _supervisor_of(env, "a"), 30, "a's supervisor")
        kill(first)
        wait_for(
            lambda: (
                row(env, "a")["supervisor"].startswith("pid ")
                and not row(env, "a")["supervisor"].startswith(f"pid {first} ")
            ),
            15,
            "the keeper's next supervisor",
        )
        kill(a)
        respawned(env, "a", a)
    finally:
        res = sh("stop")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: not supervisor_pids(env.run), 30, "the supervisor to leave")
    assert not (env.run / ".keeper.pid").exists() and not (env.run / "a.pid").exists()


def test_import_says_what_watchdogsec_becomes(env: Env, tmp_path: Path) -> None:
    """systemd's WatchdogSec= (sd_notify keep-alives) has no equivalent: import says so, with
    the health check to write instead (its interval from the watchdog's); off is silent."""
    unit = tmp_path / "wd.service"
    for value, said in (("30s", True), ("0", False), ("infinity", False)):
        unit.write_text(
            "[Service]\nExecStart=/bin/sleep 100\nRestart=on-failure\n"
            f"WatchdogSec={value}\n[Install]\nWantedBy=multi-user.target\n"
        )
        res = assert_ok(env.sc("import", str(unit)))
        if said:
            assert "WatchdogSec=30s: servicectl does not watch WATCHDOG=1" in res.stderr
            assert "health: {tcp: HOST:PORT, interval: 15, retries: 2}" in res.stdout
        else:
            assert "WatchdogSec" not in res.stderr + res.stdout


def test_every_record_of_a_respawn_carries_its_last_exit(env: Env) -> None:
    """A forking service killed: every state record written from then on (the exit, the
    launch of the respawn, its daemon found, confirmed) says how the last one exited, so that
    status never shows the respawned service without its last exit."""
    env.forking("fd", "--pidfile-delay", "0.2", restart="on-failure", restart_delay=0.1)
    assert_ok(env.sc("start", "fd"))
    old = int((env.run / "fd.daemon.pid").read_text())
    os.kill(old, signal.SIGKILL)
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            record = json.loads((env.run / "fd.state").read_text())
        except (OSError, ValueError):
            continue  # between two atomic writes: a rename
        if record["pid"] != old or record["phase"] != "running":
            seen.setdefault(record["phase"], record)
        if record["phase"] == "running" and record["pid"] != old:
            break
        time.sleep(0.001)
    assert {"respawning", "launching", "running"} <= set(seen), sorted(seen)
    for phase, record in seen.items():
        assert (record["last_exit"] or {}).get("signal") == "KILL", (phase, record)
    assert row(env, "fd")["last_exit"]["signal"] == "KILL"
    assert_ok(env.sc("stop", "fd"))


# ---------------------------------------------------------------------------------------------
# Rules (docs/security.md)


def test_R_SUP_4_a_kept_definition_anyone_else_could_write_is_not_adopted(env: Env) -> None:
    """The definition a supervisor keeps for a successor is 0600; one that is a symlink, or
    that others could read or write, is not adopted (the service stays unsupervised, said in
    the supervisor's log), so no one can have root run a command at the next respawn."""
    supervised(env, "a")
    assert_ok(env.sc("start", "a"))
    kept = env.run / ".a.definition"
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.stat().st_uid == os.geteuid()
    a = env.pid("a")
    kill(the_supervisor(env.run))
    kept.chmod(0o666)
    env.sleeper("plain")
    assert_ok(env.sc("start", "plain"))  # a new supervisor: it looks for what to adopt
    log = env.log / ".supervisor.log"
    wait_for(lambda: "cannot adopt a: its definition was not kept" in log.read_text(), 30, "it")
    assert row(env, "a")["supervisor"].startswith("unsupervised") and alive(a)
    assert_ok(env.sc("stop", "a", "plain"))


def test_R_SUP_5_a_hand_over_to_code_that_cannot_run_changes_nothing(env: Env) -> None:
    """A hello from other code whose interpreter cannot be executed: the supervisor stays as
    it was (listening, its services supervised), tries that code no more, and says why."""
    supervised(env, "a")
    assert_ok(env.sc("start", "a"))
    sup = the_supervisor(env.run)
    hello = {
        "op": "hello",
        "protocol": 999,
        "schema": "other",
        "version": "x",
        "python": str(env.root / "no-python"),
        "path": str(env.root),
    }
    for expected in ("handover", "refused"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(20)
            s.connect(str(env.run / ".supervisor.sock"))
            s.sendall(json.dumps(hello).encode() + b"\n")
            answer = json.loads(s.makefile().readline())
        if expected == "handover":
            assert answer.get("handover") is True, answer
            wait_for(
                lambda: "the hand-over failed" in (env.log / ".supervisor.log").read_text(),
                10,
                "the hand-over to fail",
            )
        else:
            assert answer["ok"] is False and "a hand-over to it failed" in answer["message"]
    assert supervisor_pids(env.run) == [sup] and info(env.run)["units"]["a"]["state"] == "running"
    a = env.pid("a")
    kill(a)
    respawned(env, "a", a)
    assert_ok(env.sc("stop", "a"))


def test_R_HEALTH_1_a_command_probe_runs_as_the_services_user(env: Env, user: Any) -> None:
    """A command probe of a ``user:`` service runs as that user, in its working directory."""
    from faultkit import reachable_dir

    with reachable_dir(owner=user) as theirs:
        out = theirs / "probe.out"
        supervised(
            env,
            "web",
            command=["sleep", "300"],
            user=user.name,
            working_directory=str(theirs),
            health={"command": ["/bin/sh", "-c", f"id -u >> {out}; pwd >> {out}"], "interval": 0.3},
        )
        assert_ok(env.sc("start", "web"))
        wait_for(lambda: out.exists() and len(out.read_text().split()) >= 2, 30, "a probe")
        uid, cwd = out.read_text().split()[:2]
        assert int(uid) == user.uid and cwd == str(theirs)
        assert_ok(env.sc("stop", "web"))
