"""The attacker's moves against running services (docs/security.md), driven by hypothesis: root
runs servicectl while a real unprivileged user (made for the test), the user two of the services
run as, plants symlinks and FIFOs where it can write (its services' PID file, output file and
its parent directory, an env_file), forges its PID file, swaps files for symlinks in a loop
while commands run, and reuses a dead service's PID by a daemon's double fork (placed with
/proc/sys/kernel/ns_last_pid). Faults root's own tools could leave (symlinks and FIFOs as state
record, lock and log) are injected too.

After every step: no signal to a decoy (root's, the attacker's, PID 1, pytest), no root-owned file
changed, no hang (every command has a timeout), no traceback, the documented exit codes, and never
two instances of a service. Bounded for CI (about 20 s); ``SERVICECTL_LONG=1`` runs many more and
longer sequences.
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
    FORKINGD,
    TAG_VAR,
    Env,
    alive,
    has_tag,
    kill_pids,
    live_processes,
    remove_cgroups,
    wait_for,
)
from faultkit import (
    USER_PYTHON,
    Recorder,
    User,
    reap_adopted,
    spawn_with_pid,
    subreaper,
    unix_user,
)
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)

LONG = os.environ.get("SERVICECTL_LONG") == "1"
SVC_VAR = "ATTACK_SVC"  # the service a process belongs to
ROLE_VAR = "ATTACK_ROLE"  # set on what the attacker runs
SERVICES = ("web", "fd", "rt")  # web, fd: run as the attacker; rt: root's
THEIRS = ("web", "fd")
RECORDER = str(DAEMONS / "signal_recorder.py")

DOUBLE_FORK = """
import os, sys
os.setsid()
if os.fork() == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os._exit(0)
"""

# As the attacker: swap PATH between what it is and a symlink to TARGET until SECONDS passed.
SWAPPER = """
import os, sys, time
path, target, until = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
real, link = path + ".real", path + ".link"
n = 0
while time.monotonic() < until:
    try:
        os.rename(path, real)
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
        os.symlink(target, link)
        os.rename(link, path)
        os.rename(path, link)
        os.rename(real, path)
        n += 1
    except OSError:
        pass
print(n)
"""

# What start may answer while the attacker swaps a file under it: started, failed (1), refused
# (4), not a PID file (6).
RACING_CODES = {"start": {0, 1, 4, 6}, "stop": {0}, "status": {0, 1, 3}}


class World:
    """The services, the attacker's directory, root's precious files and the decoys."""

    def __init__(self, attacker: User) -> None:
        self.attacker = attacker
        self.top = Path(tempfile.mkdtemp(prefix="servicectl-attack-"))
        self.top.chmod(0o755)
        self.env = Env(self.top / "w", uuid.uuid4().hex)
        self.env.services.mkdir(parents=True)
        self.theirs = self.top / "theirs"  # the attacker's own directory
        (self.theirs / "web").mkdir(parents=True)
        for p in (self.theirs, self.theirs / "web"):
            os.chown(p, attacker.uid, attacker.gid)
        self.roots = self.top / "roots"  # root's: nothing here may ever change
        self.roots.mkdir()
        self.secret = self.roots / "shadow"
        self.secret.write_text("root:$6$SECRETHASH$abc:19000:0:99999:7:::\n")
        self.secret.chmod(0o600)
        (self.roots / "app.conf").write_text("listen 80;\n")
        self.precious = snapshot(self.roots)
        self._write_services()
        for d in (self.env.run, self.env.log, self.top / "decoys"):
            d.mkdir()
        self.decoys = [Recorder(self.top / "decoys", self.env.tag)]
        self.their_marker = self.theirs / "decoy.signals"
        self.their_decoy = self.as_attacker_popen([USER_PYTHON, RECORDER, str(self.their_marker)])
        wait_for(lambda: self.their_marker.exists(), what="the attacker's decoy")
        self.attacks: list[subprocess.Popen[bytes]] = []
        self.trace: list[str] = []

    def _write_services(self) -> None:
        user = self.attacker.name
        self.pid_file = self.theirs / "fd.pid"
        self.out = self.theirs / "web" / "out.log"
        common: dict[str, Any] = {"start_grace": 0.1, "stop_timeout": 5}
        self.write("web", {"command": "sleep 300", "user": user, "stdout": str(self.out), **common})
        self.write(
            "fd",
            {
                "type": "forking",
                "command": [str(FORKINGD), "--pidfile", str(self.pid_file)],
                "pid_file": str(self.pid_file),
                "user": user,
                "start_timeout": 5,
                **common,
            },
        )
        self.write("rt", {"command": "sleep 300", **common})
        self.env_file = self.theirs / "envd.env"
        self.write("envd", {"command": "sleep 300", "env_file": str(self.env_file), **common})

    def write(self, name: str, spec: dict[str, Any]) -> None:
        self.env.write(name, {**spec, "environment": {SVC_VAR: name}})

    # ------------------------------------------------------------------ acting

    def sc(self, *args: str, codes: set[int] | None = None) -> subprocess.CompletedProcess[str]:
        res = self.env.sc(*args, timeout=40)
        self.trace.append(f"servicectl {' '.join(args)} -> {res.returncode} {res.stderr.strip()}")
        assert "Traceback" not in res.stdout + res.stderr, res.stderr
        assert "SECRETHASH" not in res.stdout + res.stderr, res.stderr
        if codes is not None:
            assert res.returncode in codes, (
                f"{args}: {res.returncode} not in {codes}{self.explain()}"
            )
        return res

    def as_attacker_popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        env = {"PATH": "/usr/bin:/bin", TAG_VAR: self.env.tag, ROLE_VAR: "attacker"}
        return subprocess.Popen(
            argv,
            user=self.attacker.uid,
            group=self.attacker.gid,
            extra_groups=[],
            env=env,
            cwd="/",
            **kw,
        )

    def as_attacker(self, code: str, *args: str) -> None:
        p = self.as_attacker_popen([USER_PYTHON, "-c", code, *args], stderr=subprocess.PIPE)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err

    def processes(self) -> dict[str, list[int]]:
        """Live processes of each service (what the attacker ran aside), from /proc."""
        out: dict[str, list[int]] = {s: [] for s in ("web", "fd", "rt", "envd")}
        for pid, environ in tagged(self.env.tag).items():
            if f"{ROLE_VAR}=attacker" in environ:
                continue
            for s in out:
                if f"{SVC_VAR}={s}" in environ:
                    out[s].append(pid)
        return out

    def main_pid(self, svc: str) -> int | None:
        res = self.sc("status", "--json", svc, codes={0, 1, 3})
        row = json.loads(res.stdout)[0]
        return row["pid"] if row["state"] == "running" else None

    def explain(self) -> str:
        return "\nsteps:\n  " + "\n  ".join(self.trace[-30:])

    def close(self) -> None:
        for p in self.attacks + [self.their_decoy]:
            if p.poll() is None:
                p.kill()
            p.wait()
        for d in self.decoys:
            d.close()
        kill_pids(list(tagged(self.env.tag)))
        reap_adopted(set())
        remove_cgroups(self.env.run)
        shutil.rmtree(self.top, ignore_errors=True)


def tagged(tag: str) -> dict[int, set[str]]:
    """Live processes carrying the test's tag: PID -> its environment (as strings)."""
    return {
        p.pid: {e.decode(errors="replace") for e in p.files["environ"].split(b"\0")}
        for p in live_processes("environ")
        if has_tag(p, tag)
    }


def snapshot(directory: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Owner, mode, inode and content of every file in ``directory``."""
    out = {}
    for p in sorted(directory.iterdir()):
        st_ = os.lstat(p)
        out[p.name] = (st_.st_uid, st_.st_mode, st_.st_ino, p.read_bytes())
    return out


class AttackModel(RuleBasedStateMachine):
    attacker: User  # set by the test: one throwaway user for the whole run

    def __init__(self) -> None:
        super().__init__()
        self.world = World(self.attacker)

    def teardown(self) -> None:
        try:
            for svc in SERVICES:
                self.world.sc("stop", svc, codes={0})
        finally:
            self.world.close()

    # ------------------------------------------------------------------ the admin's commands

    @rule(svc=st.sampled_from(SERVICES))
    def start(self, svc: str) -> None:
        self.world.sc("start", svc, codes={0})
        running = self.world.processes()[svc]
        assert self.world.main_pid(svc) in running, self.world.explain()

    @rule(svc=st.sampled_from(SERVICES))
    def stop(self, svc: str) -> None:
        self.world.sc("stop", svc, codes={0})
        self.nothing_left(svc)

    @rule(svc=st.sampled_from(SERVICES))
    def restart(self, svc: str) -> None:
        self.world.sc("restart", svc, codes={0})

    @rule()
    def the_env_file_is_always_refused(self) -> None:
        """envd's env_file lies in the attacker's directory, whatever it is: never started
        (4: another user could have written it; a FIFO is no env_file at all: 6)."""
        for kind in ("file", "symlink", "fifo"):
            self.plant(self.world.env_file, kind, self.world.secret, text="A=1\n")
            codes = {6} if kind == "fifo" else {4}
            self.world.sc("start", "envd", codes=codes)
            self.world.sc("restart", "envd", codes=codes)
            assert self.world.processes()["envd"] == []
        self.unplant(self.world.env_file)

    @rule(svc=st.sampled_from(SERVICES))
    def kill9(self, svc: str) -> None:
        """The service dies behind servicectl's back (the attacker may kill its own)."""
        pid = self.world.main_pid(svc)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not alive(pid), what=f"{svc} to die")
            self.world.trace.append(f"kill -9 {svc} ({pid})")
            self.world.sc("status", svc, codes={1})

    # ------------------------------------------------------------------ the attacker's moves

    @rule(svc=st.sampled_from(THEIRS))
    def reuse_the_pid_of_a_dead_service(self, svc: str) -> None:
        """The attacker's service dies, and a daemon of the attacker's takes its PID by a
        double fork (pgid = sid = the old PID, same uid, newer start time)."""
        self.world.sc("start", svc, codes={0})
        old = self.world.main_pid(svc)
        assert old is not None
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: _reaped(old), what=f"{svc} ({old}) to be reaped")
        marker = self.world.theirs / f"reuse-{uuid.uuid4().hex[:6]}.signals"
        env = {"PATH": "/usr/bin:/bin", TAG_VAR: self.world.env.tag, ROLE_VAR: "attacker"}
        launcher = spawn_with_pid(
            old,
            [USER_PYTHON, "-c", DOUBLE_FORK, USER_PYTHON, RECORDER, str(marker)],
            env,
            user=self.world.attacker.uid,
            group=self.world.attacker.gid,
            extra_groups=[],
            cwd="/",
        )
        launcher.wait()
        wait_for(lambda: marker.exists() and "ready" in marker.read_text(), what="the daemon")
        daemon = int(marker.read_text().split()[1])
        self.world.trace.append(f"{svc} ({old}) killed; PID reused, daemon {daemon}")
        self.world.sc("status", svc, codes={1})
        for verb in ("start", "stop", "restart", "stop"):
            self.world.sc(verb, svc, codes={0})
        assert marker.read_text().splitlines() == [f"ready {daemon}"] and alive(daemon)
        kill_pids([daemon])

    @rule(
        decoy=st.sampled_from(("root", "attacker", "init", "pytest", "none", "garbage")),
        running=st.booleans(),
    )
    def forge_the_pid_file(self, decoy: str, running: bool) -> None:
        """The forking service's PID file lies in the attacker's directory: it names a decoy."""
        self.world.sc("start" if running else "stop", "fd", codes={0})
        real = self.world.main_pid("fd")
        target = {
            "root": str(self.world.decoys[0].pid),
            "attacker": str(self.world.their_decoy.pid),
            "init": "1",
            "pytest": str(os.getpid()),
            "none": "4194000",
            "garbage": "12 34 not-a-pid",
        }[decoy]
        self.as_attacker_write(self.world.pid_file, target + "\n")
        res = self.world.sc("status", "--json", "fd", codes={0} if running else {1})
        assert json.loads(res.stdout)[0]["pid"] == real
        self.world.sc("stop", "fd", codes={0})
        # What is not PID-file text is never removed (R-PID-2): start refuses it (6).
        self.world.sc("start", "fd", codes={6} if decoy == "garbage" else {0})
        self.unplant(self.world.pid_file) if decoy == "garbage" else None
        self.world.sc("stop", "fd", codes={0})
        self.nothing_left("fd")

    @rule(
        where=st.sampled_from(("pid_file", "stdout", "stdout_dir", "log", "state", "lock")),
        kind=st.sampled_from(("symlink_secret", "symlink_dir", "fifo")),
    )
    def plant_and_start(self, where: str, kind: str) -> None:
        """Something planted where a service's file goes, while it is stopped; the start that
        follows is refused or succeeds, and nothing it refers to is touched."""
        svc, path, root_fault = {
            "pid_file": ("fd", self.world.pid_file, False),
            "stdout": ("web", self.world.out, False),
            "stdout_dir": ("web", self.world.theirs / "web", False),
            "log": ("rt", self.world.env.log / "rt.log", True),
            "state": ("web", self.world.env.run / "web.state", True),
            "lock": ("rt", self.world.env.run / "rt.lock", True),
        }[where]
        self.world.sc("stop", svc, codes={0})
        target = self.world.secret if kind == "symlink_secret" else self.world.roots
        self.plant(path, "fifo" if kind == "fifo" else "symlink", target, as_root=root_fault)
        expected = {
            "pid_file": {0} if kind != "fifo" else {6},
            "stdout": {1} if kind == "fifo" else {4},
            "stdout_dir": {1, 4},
            "log": {1} if kind == "fifo" else {4},
            "state": {0},
            "lock": {4},
        }[where]
        t0 = time.monotonic()
        self.world.sc("start", svc, codes=expected)
        self.world.sc("status", svc, codes={0, 1, 3})
        self.world.sc("stop", svc, codes={4} if where == "lock" else {0})
        assert time.monotonic() - t0 < 30
        self.unplant(path, as_root=root_fault)
        if where == "stdout_dir":
            self.restore_their_dir()
        self.nothing_left(svc)

    @rule(
        where=st.sampled_from(("pid_file", "stdout", "stdout_dir")),
        to_secret=st.booleans(),
        seconds=st.sampled_from((0.5, 1.5)),
    )
    def swap_while_commands_run(self, where: str, to_secret: bool, seconds: float) -> None:
        """The attacker swaps a file of its service for a symlink and back, in a loop, while
        root runs start, status and stop: no outcome follows the link."""
        svc, path = {
            "pid_file": ("fd", self.world.pid_file),
            "stdout": ("web", self.world.out),
            "stdout_dir": ("web", self.world.theirs / "web"),
        }[where]
        if where == "stdout" and not path.exists():
            self.as_attacker_write(path, "")
        if where == "pid_file" and not path.exists():
            self.as_attacker_write(path, "")
        target = self.world.secret if to_secret else self.world.roots
        swapper = self.world.as_attacker_popen(
            [USER_PYTHON, "-c", SWAPPER, str(path), str(target), str(seconds)],
            stdout=subprocess.PIPE,
        )
        self.world.attacks.append(swapper)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for verb in ("start", "status", "stop"):
                self.world.sc(verb, svc, codes=RACING_CODES[verb])
        out, _ = swapper.communicate(timeout=30)
        self.world.trace.append(f"swapped {path} {out.decode().strip()} times")
        self.world.as_attacker(RESTORE, str(path))
        if where == "stdout_dir":
            self.restore_their_dir()
        self.world.sc("stop", svc, codes={0})
        self.nothing_left(svc)

    # ------------------------------------------------------------------ helpers

    def plant(
        self, path: Path, kind: str, target: Path, text: str = "", as_root: bool = False
    ) -> None:
        self.unplant(path, as_root)
        if as_root:
            if kind == "fifo":
                os.mkfifo(path)
            elif kind == "symlink":
                path.symlink_to(target)
            else:
                path.write_text(text)
        else:
            self.world.as_attacker(PLANT, str(path), kind, str(target), text)
        self.world.trace.append(f"planted {kind} at {path} ({target})")

    def unplant(self, path: Path, as_root: bool = False) -> None:
        if not (path.is_symlink() or path.exists()):
            return
        if as_root:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        else:
            self.world.as_attacker(UNPLANT, str(path))

    def as_attacker_write(self, path: Path, text: str) -> None:
        self.world.as_attacker(PLANT, str(path), "file", "", text)

    def restore_their_dir(self) -> None:
        """theirs/web is the attacker's directory again (servicectl may have made one, as root,
        while it was missing)."""
        web = self.world.theirs / "web"
        if web.is_symlink() or web.exists() and not web.is_dir():
            self.unplant(web)
        if web.is_dir() and os.lstat(web).st_uid == 0:
            shutil.rmtree(web)
        self.world.as_attacker(RESTORE, str(web))
        if not web.exists():
            self.world.as_attacker("import os, sys; os.mkdir(sys.argv[1])", str(web))

    def nothing_left(self, svc: str) -> None:
        left = self.world.processes()[svc]
        assert not left, f"{svc}: processes left after stop: {left}{self.world.explain()}"

    # ------------------------------------------------------------------ invariants

    @invariant()
    def no_decoy_signalled(self) -> None:
        for d in self.world.decoys:
            d.assert_untouched()
        lines = self.world.their_marker.read_text().splitlines()
        assert [x for x in lines if not x.startswith("ready")] == [], lines
        assert self.world.their_decoy.poll() is None

    @invariant()
    def no_root_file_changed(self) -> None:
        assert snapshot(self.world.roots) == self.world.precious, self.world.explain()

    @invariant()
    def one_instance_at_most(self) -> None:
        procs = self.world.processes()
        assert all(len(procs[s]) <= 1 for s in SERVICES), f"{procs}{self.world.explain()}"
        assert procs["envd"] == []

    @invariant()
    def adopted_orphans_are_reaped(self) -> None:
        keep = {self.world.their_decoy.pid, *(d.pid for d in self.world.decoys)}
        reap_adopted(keep | {p.pid for p in self.world.attacks})


PLANT = """
import os, sys
path, kind, target, text = sys.argv[1:5]
if kind == "fifo":
    os.mkfifo(path)
elif kind == "symlink":
    os.symlink(target, path)
else:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.rename(tmp, path)
"""

UNPLANT = """
import os, shutil, sys
path = sys.argv[1]
if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path)
else:
    os.unlink(path)
"""


# After a swapper: no symlink left at PATH, and what it moved aside is back.
RESTORE = """
import os, sys
path = sys.argv[1]
real, link = path + ".real", path + ".link"
if os.path.islink(link):
    os.unlink(link)
if os.path.islink(path):
    os.unlink(path)
if os.path.lexists(real) and not os.path.lexists(path):
    os.rename(real, path)
"""


def _reaped(pid: int) -> bool:
    """Reap ``pid`` if it is this process's (it is the subreaper); whether it is gone."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not os.path.exists(f"/proc/{pid}")


AttackModel.TestCase.settings = settings(
    max_examples=40 if LONG else 3,
    stateful_step_count=30 if LONG else 10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    report_multiple_bugs=True,
)


@pytest.mark.timeout(3600 if LONG else 300)
def test_attack_model() -> None:
    with unix_user() as attacker, subreaper():
        AttackModel.attacker = attacker
        AttackModel.TestCase().runTest()
