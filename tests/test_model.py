"""Stateful model test: hypothesis drives random sequences of servicectl commands and sabotage
(kill -9, forged/deleted/truncated/garbage/symlinked PID files, concurrent and killed commands)
against real services, and checks the guarantees (docs/guarantees.md) against /proc after
every step.

Bounded for CI; ``SERVICECTL_LONG=1`` runs many more and longer sequences.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    DAEMONS,
    PY,
    TAG_VAR,
    USER_PYTHON,
    Env,
    alive,
    has_tag,
    kill_pids,
    live_processes,
    remove_cgroups,
    supervisor_pids,
    wait_for,
)
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from servicectl.system.proc import cmdline_of

LONG = os.environ.get("SERVICECTL_LONG") == "1"
SERVICES = ("simple", "forking", "stubborn", "parent", "crashy")
SUPERVISED = ("crashy",)  # restart: always; its supervisor respawns it after a crash
RESPAWN_DELAY = 0.1
DECOYS = ("python", "sleep", "nobody", "init", "pytest")
SVC_VAR = "MODEL_SVC"
STATUS_CODES = {"running": 0, "starting": 0, "dead": 1, "failed": 1, "stopped": 3}
CRASHES = st.one_of(
    st.integers(0, 3), st.sampled_from(("SIGKILL", "SIGSEGV", "SIGABRT", "SIGTERM", "SIGINT"))
)


def scan(tag: str) -> dict[int, tuple[str, int]]:
    """Live (non-zombie) processes of this world: PID -> (service, parent PID). The parent
    service's children (comm ``pwc-child``) are listed as service ``parent/child``."""
    out = {}
    prefix = f"{SVC_VAR}=".encode()
    for p in live_processes("environ", "comm"):
        if not has_tag(p, tag):
            continue
        environ = p.files["environ"].split(b"\0")
        svc = next((e[len(prefix) :].decode() for e in environ if e.startswith(prefix)), "")
        if p.files["comm"].strip() == b"pwc-child":
            svc += "/child"
        out[p.pid] = (svc, int(p.stat[1]))
    return out


def _ticks() -> int:
    with open("/proc/uptime") as fh:
        seconds, _, hundredths = fh.read().split()[0].partition(".")
    return int(seconds) * 100 + int(hundredths[:2].ljust(2, "0"))


def _starttime(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rpartition(b")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _children_of(tag: str, pid: int) -> int:
    return sum(1 for s, ppid in scan(tag).values() if s == "parent/child" and ppid == pid)


def settling(row: dict[str, Any]) -> bool:
    """Whether a supervised service is between an exit and what its supervisor does next."""
    notes = " ".join(row.get("notes") or [])
    return row["state"] == "starting" or any(
        s in notes for s in ("respawn is pending", "supervisor is handling the exit")
    )


def locks_held_by(pid: int) -> bool:
    with open("/proc/locks") as fh:
        return any(line.split()[4] == str(pid) for line in fh if len(line.split()) > 4)


class World:
    """One example's services, decoys and directories."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="servicectl-model-"))
        os.chmod(self.base, 0o755)
        self.env = Env(self.base / "w", uuid.uuid4().hex)
        self.env.services.mkdir(parents=True)
        self.env.run.mkdir()
        self.env.log.mkdir()
        self.children_file = self.base / "children"
        common = {"stop_timeout": 5}
        self.env.write(
            "simple",
            {
                "command": [PY, str(DAEMONS / "sleeper.py"), "--hup"],
                "start_grace": 0.05,
                "environment": {SVC_VAR: "simple"},
                **common,
            },
        )
        self.env.forking("forking", environment={SVC_VAR: "forking"}, start_grace=0, **common)
        self.env.write(
            "stubborn",
            {
                "command": [PY, str(DAEMONS / "stubborn.py")],
                "start_grace": 0,
                "stop_timeout": 0.3,
                "reload": False,
                "environment": {SVC_VAR: "stubborn"},
            },
        )
        self.env.write(
            "parent",
            {
                "command": [PY, str(DAEMONS / "parent_with_children.py"), "--children", "2"],
                # Ready once its children run: they are then proven its own (R-PROC-3), and
                # stop or start ends them after a kill -9 of the parent.
                "ready": "notify",
                "environment": {SVC_VAR: "parent", "CHILDREN_FILE": str(self.children_file)},
                **common,
            },
        )
        self.env.write(
            "crashy",
            {
                "command": [PY, str(DAEMONS / "crasher.py")],
                "start_grace": 0.05,
                "reload": False,
                "restart": "always",
                "restart_delay": RESPAWN_DELAY,
                "limits": {"core": 0},
                "environment": {SVC_VAR: "crashy", "CRASH_FILE": str(self.base / "crash")},
                **common,
            },
        )
        # Decoys: processes that are no service's, including ones with the services' own
        # executable and user (a python program run by root) and one of another user.
        self.decoy_procs: dict[str, subprocess.Popen[bytes]] = {}
        self.decoy_logs: dict[str, Path] = {}
        shared = self.base / "decoys"
        shared.mkdir()
        os.chmod(shared, 0o777)
        recorder = shared / "signal_recorder.py"  # where the user nobody can read it
        shutil.copy(DAEMONS / "signal_recorder.py", recorder)
        for name in ("python", "nobody"):
            if name == "nobody" and os.geteuid() != 0:
                continue
            log = shared / f"{name}.signals"
            self.decoy_procs[name] = subprocess.Popen(
                [PY if name == "python" else USER_PYTHON, str(recorder), str(log), "--stubborn"],
                env=dict(os.environ, **{TAG_VAR: self.env.tag, "MODEL_DECOY": name}),
                user=65534 if name == "nobody" else None,
                cwd="/",
            )
            self.decoy_logs[name] = log
            wait_for(lambda log=log: log.exists() and "ready" in log.read_text(), 10, name)
        self.decoy_procs["sleep"] = self.env.decoy()
        self.symlink_targets: dict[Path, bytes] = {}

    def decoy_pid(self, name: str) -> int:
        if name == "init":
            return 1
        if name == "pytest":
            return os.getpid()
        if name not in self.decoy_procs:
            name = "sleep"
        return self.decoy_procs[name].pid

    def pid_file(self, svc: str) -> Path:
        if svc == "forking":
            return self.env.run / "forking.daemon.pid"
        return self.env.run / f"{svc}.pid"

    def sc(self, *args: str) -> subprocess.CompletedProcess[str]:
        res = self.env.sc(*args, timeout=60)
        assert "Traceback" not in res.stderr, res.stderr
        return res

    def close(self) -> None:
        for p in self.decoy_procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
        for c in self.env.commands:
            if c.poll() is None:
                c.kill()
            c.communicate()
        kill_pids(supervisor_pids(self.env.run) + list(scan(self.env.tag)))
        remove_cgroups(self.env.run)
        shutil.rmtree(self.base, ignore_errors=True)


class ServiceModel(RuleBasedStateMachine):
    """The model: for each service, whether it must be running (and as which PID) or stopped;
    None when a step leaves it undetermined (concurrent or killed commands)."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.expect: dict[str, str | None] = dict.fromkeys(SERVICES, "stopped")
        self.pids: dict[str, int | None] = dict.fromkeys(SERVICES)
        self.trace: list[str] = []

    def teardown(self) -> None:
        self.world.close()

    # ------------------------------------------------------------------ reality

    def mains(self) -> dict[str, list[int]]:
        """Each service's main processes: live, of that service, not a child the parent
        service forked, and not started by another process of the same service."""
        procs = scan(self.world.env.tag)
        out: dict[str, list[int]] = {s: [] for s in SERVICES}
        for pid, (svc, ppid) in procs.items():
            if svc not in out:
                continue
            if procs.get(ppid, ("",))[0] == svc:
                continue  # a forking launcher's or daemon's own child, mid-start
            out[svc].append(pid)
        return out

    def status(self) -> dict[str, dict[str, Any]]:
        res = self.world.sc("status", "--json")
        return {row["name"]: row for row in json.loads(res.stdout)}

    def strays(self, svc: str, keep: int | None) -> list[int]:
        """Processes of ``svc`` (its children included) that are not its current main process
        or that process's children."""
        out = []
        for pid, (s, ppid) in scan(self.world.env.tag).items():
            if s.split("/")[0] == svc and pid != keep and not (keep is not None and ppid == keep):
                out.append(pid)
        return out

    def explain(self) -> str:
        """The steps so far and the world's processes, for an assertion message."""
        rows = [
            f"  {pid} ppid {ppid} {svc}: {' '.join(cmdline_of(pid))[:100]}"
            for pid, (svc, ppid) in sorted(scan(self.world.env.tag).items())
        ]
        files = sorted(p.name for p in self.world.env.run.iterdir())
        return (
            "\nsteps:\n  "
            + "\n  ".join(self.trace)
            + "\nprocesses:\n"
            + "\n".join(rows)
            + (f"\nrun dir: {files}")
        )

    # ------------------------------------------------------------------ commands

    def after_command(self, svc: str, res: subprocess.CompletedProcess[str], what: str) -> None:
        self.trace.append(f"{what} {svc} -> {res.returncode}: {res.stdout.strip()} {res.stderr}")

    @rule(svc=st.sampled_from(SERVICES))
    def start(self, svc: str) -> None:
        res = self.world.sc("start", svc)
        self.after_command(svc, res, "start")
        assert res.returncode == 0, res.stderr + self.explain()
        row = self.status()[svc]
        assert row["state"] == "running", f"{svc}: {row}{self.explain()}"
        self.expect[svc], self.pids[svc] = "running", row["pid"]
        assert not self.strays(svc, row["pid"]), f"{svc}: older processes left{self.explain()}"

    @rule(svc=st.sampled_from(SERVICES))
    def stop(self, svc: str) -> None:
        res = self.world.sc("stop", svc)
        self.after_command(svc, res, "stop")
        assert res.returncode == 0, res.stderr + self.explain()
        self.expect[svc], self.pids[svc] = "stopped", None
        left = self.strays(svc, None)
        assert not left, f"{svc}: processes left after stop: {left}{self.explain()}"
        if svc in SUPERVISED:  # nothing may appear after stop: no respawn in flight survived it
            deadline = time.monotonic() + RESPAWN_DELAY + 0.2
            while time.monotonic() < deadline:
                left = self.strays(svc, None)
                assert not left, f"{svc}: respawned after stop: {left}{self.explain()}"
                time.sleep(0.01)

    @rule(svc=st.sampled_from(SERVICES))
    def restart(self, svc: str) -> None:
        res = self.world.sc("restart", svc)
        self.after_command(svc, res, "restart")
        assert res.returncode == 0, res.stderr + self.explain()
        row = self.status()[svc]
        assert row["state"] == "running", f"{svc}: {row}{self.explain()}"
        assert row["pid"] != self.pids[svc], f"{svc}: same PID after restart{self.explain()}"
        self.expect[svc], self.pids[svc] = "running", row["pid"]
        assert not self.strays(svc, row["pid"]), f"{svc}: older processes left{self.explain()}"

    @rule(svc=st.sampled_from(SERVICES))
    def reload(self, svc: str) -> None:
        was = self.expect[svc]
        res = self.world.sc("reload", svc)
        self.after_command(svc, res, "reload")
        if svc in ("stubborn", "crashy"):
            expected = {3}  # reload: false
        elif was == "stopped":
            expected = {7}
        elif was == "running":
            expected = {1} if svc == "parent" else {0}  # parent: SIGHUP would kill it
        else:
            expected = {0, 1, 7}
        assert res.returncode in expected, (
            f"reload {svc}: {res.returncode} {res.stderr}{self.explain()}"
        )
        if was == "running":
            assert self.status()[svc]["pid"] == self.pids[svc], (
                f"reload changed the process{self.explain()}"
            )

    @rule(svc=st.sampled_from(SERVICES))
    def status_one(self, svc: str) -> None:
        res = self.world.sc("status", "--json", svc)
        (row,) = json.loads(res.stdout)
        assert res.returncode == STATUS_CODES[row["state"]], (
            f"{res.returncode} {row}{self.explain()}"
        )

    @rule(
        svc=st.sampled_from(SERVICES),
        first=st.sampled_from(("start", "stop", "restart", "status", "reload")),
        second=st.sampled_from(("start", "stop", "restart", "status", "reload")),
    )
    def concurrently(self, svc: str, first: str, second: str) -> None:
        procs = [self.world.env.popen(cmd, svc) for cmd in (first, second)]
        for cmd, p in zip((first, second), procs):
            out, err = p.communicate(timeout=60)
            assert "Traceback" not in err, err
            allowed = {"status": {0, 1, 3}, "reload": {0, 1, 3, 7}}.get(cmd, {0})
            assert p.returncode in allowed, f"{cmd} {svc}: {p.returncode} {err}{self.explain()}"
            self.trace.append(f"concurrent {cmd} {svc} -> {p.returncode}: {out.strip()} {err}")
        self.expect[svc] = None

    @rule(svc=st.sampled_from(SERVICES), during=st.sampled_from(("start", "stop")))
    def servicectl_killed(self, svc: str, during: str) -> None:
        """SIGKILL servicectl in the middle of a start or a stop; the next command recovers."""
        since = _ticks()
        p = self.world.env.popen(during, svc)

        def midway() -> bool:
            if p.poll() is not None:
                return True
            if during == "start":
                return bool(self.mains()[svc])
            return locks_held_by(p.pid)

        wait_for(midway, 30, f"servicectl {during} {svc} to be under way")
        p.kill()
        p.communicate()
        self.trace.append(f"servicectl {during} {svc} killed (rc {p.returncode})")
        self.expect[svc] = None

        def settled() -> bool:
            """What servicectl left has run its course: nothing of the service lives, or one
            main process that its PID file or record names (a forking launcher exits once the
            daemon has written it; a gated child that was never released exits at once)."""
            mains = self.mains()[svc]
            if not mains:
                return True
            if (
                svc == "parent"
                and _starttime(mains[0]) >= since
                and _children_of(self.world.env.tag, mains[0]) < 2
            ):
                return False  # a new parent: the next start sees it with its children

            named = set()
            try:
                named.add(int(self.world.pid_file(svc).read_text()))
            except (OSError, ValueError):
                pass
            try:  # a PID file deleted before the start: the record names it
                named.add(json.loads((self.world.env.run / f"{svc}.state").read_text())["pid"])
            except (OSError, ValueError, KeyError):
                pass
            return mains[0] in named

        try:
            wait_for(settled, 15, f"what the killed servicectl left of {svc} to settle")
        except AssertionError as exc:
            raise AssertionError(f"{exc}{self.explain()}") from None
        # The next command recovers: start finds (and records) what runs, or starts it. After
        # a stop killed once it had signalled, the process may still be on its way out (a
        # daemon that handles TERM): the stop is run again first, as an administrator would.
        if during == "stop":
            self.stop(svc)
        self.start(svc)

    # ------------------------------------------------------------------ sabotage

    @rule(svc=st.sampled_from(SERVICES))
    def kill9(self, svc: str) -> None:
        """SIGKILL the service's main process behind servicectl's back (if it runs)."""
        pid = self.pids[svc]
        if self.expect[svc] != "running" or pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), 10, f"{svc} ({pid}) to die")
        self.trace.append(f"kill -9 {svc} ({pid})")
        # A supervised service may be respawned (unless its supervisor is gone or gave up).
        self.expect[svc] = None if svc in SUPERVISED else "stopped"
        self.pids[svc] = None

    @rule(svc=st.sampled_from(SUPERVISED), how=CRASHES)
    def crash(self, svc: str, how: int | str) -> None:
        """The service ends by itself: an exit status, or a signal (SIGTERM: as its stop)."""
        pid = self.pids[svc]
        if self.expect[svc] != "running" or pid is None:
            return
        if isinstance(how, int):
            (self.world.base / "crash").write_text(str(how))
            os.kill(pid, signal.SIGUSR1)
        else:
            os.kill(pid, getattr(signal, how))
        wait_for(lambda: not alive(pid), 10, f"{svc} ({pid}) to end")
        self.trace.append(f"crash {svc} ({pid}): {how}")
        self.expect[svc], self.pids[svc] = None, None

    @rule()
    def kill_supervisor(self) -> None:
        """SIGKILL the run dir's supervisor: what runs stays running and tracked."""
        pids = supervisor_pids(self.world.env.run)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in pids), 10, "the supervisor to die")
        self.trace.append(f"kill -9 supervisor {pids}")
        for svc in SUPERVISED:
            if self.expect[svc] != "running":
                self.expect[svc] = None  # a respawn it had in hand will not come

    @rule()
    def kill_children(self) -> None:
        live = [p for p, (s, _) in scan(self.world.env.tag).items() if s == "parent/child"]
        for c in live:
            os.kill(c, signal.SIGKILL)
        wait_for(lambda: not any(alive(c) for c in live), 10, "children to die")
        self.trace.append(f"kill -9 children {live}")

    @rule(
        svc=st.sampled_from(SERVICES),
        how=st.sampled_from(("forge", "delete", "truncate", "garbage", "symlink")),
        decoy=st.sampled_from(DECOYS),
    )
    def tamper(self, svc: str, how: str, decoy: str) -> None:
        path = self.world.pid_file(svc)
        pid = self.world.decoy_pid(decoy)
        if path.is_symlink() or path.exists():
            path.unlink()
        if how == "forge":
            path.write_text(f"{pid}\n")
        elif how == "truncate":
            path.write_bytes(b"")
        elif how == "garbage":
            path.write_bytes(b"\x00\xff12 34 not-a-pid\n" * 3)
        elif how == "symlink":
            target = self.world.base / f"elsewhere-{svc}.pid"
            target.write_text(f"{pid}\n")
            self.world.symlink_targets[target] = target.read_bytes()
            path.symlink_to(target)
        self.trace.append(f"PID file of {svc}: {how} ({decoy} {pid})")

    # ------------------------------------------------------------------ invariants

    @invariant()
    def status_agrees_with_reality(self) -> None:
        def steady() -> tuple[dict[str, list[int]], dict[str, dict[str, Any]]] | None:
            """/proc before and after one status call, if nothing changed meanwhile (a killed
            servicectl's TERM may still be ending a process)."""
            before = self.mains()
            rows = self.status()
            if any(settling(rows[svc]) for svc in SUPERVISED):
                return None
            return (before, rows) if self.mains() == before else None

        mains, rows = wait_for(steady, 10, "a steady world")
        for svc in SERVICES:
            running = mains[svc]
            assert len(running) <= 1, f"{svc}: more than one instance: {running}{self.explain()}"
            row = rows[svc]
            if row["state"] in ("running", "starting"):
                assert running == [row["pid"]], f"{svc}: status {row} but {running}{self.explain()}"
            else:
                assert not running, f"{svc}: status {row} but {running} runs{self.explain()}"
            want = self.expect[svc]
            if want == "running":
                assert row["pid"] == self.pids[svc], (
                    f"{svc}: {row}, expected {self.pids[svc]}{self.explain()}"
                )
            elif want == "stopped":
                assert row["state"] in ("stopped", "dead", "failed"), (
                    f"{svc}: {row}{self.explain()}"
                )
            elif not running and svc in SUPERVISED and row["state"] == "dead":
                pass  # it died with its supervisor gone: the next supervisor (any acting
                # command starts one) adopts it and respawns it (restart: always)
            else:  # undetermined until now: reality decides
                self.expect[svc] = "running" if running else "stopped"
                self.pids[svc] = running[0] if running else None

    @invariant()
    def decoys_untouched(self) -> None:
        for name, p in self.world.decoy_procs.items():
            assert p.poll() is None, f"decoy {name} (pid {p.pid}) was killed{self.explain()}"
            log = self.world.decoy_logs.get(name)
            lines = log.read_text().splitlines() if log and log.exists() else []
            got = [x for x in lines if not x.startswith("ready ")]
            assert not got, f"decoy {name} got signals {got}{self.explain()}"
        for target, content in self.world.symlink_targets.items():
            assert target.read_bytes() == content, f"written through a symlink: {target}"


# CI: 6 sequences of up to 12 steps (about 20 s here); the deep run is SERVICECTL_LONG=1.
ServiceModel.TestCase.settings = settings(
    max_examples=60 if LONG else 6,
    stateful_step_count=40 if LONG else 12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # Shrinking real-process runs takes many minutes; the assertion messages carry the trace.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    report_multiple_bugs=True,
)


@pytest.mark.timeout(3600 if LONG else 240)
def test_service_model() -> None:
    ServiceModel.TestCase().runTest()
