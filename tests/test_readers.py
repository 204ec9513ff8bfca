"""Anyone may look (guarantee 8, docs/security.md R-RUN-2): the real CLI run as ``nobody`` against
services root started (simple, forking, and with ``user:``) sees them as they are, and says
"unknown" (4) where it truly cannot tell, never a guess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import FORKINGD, SERVICECTL, TAG_VAR, Env, alive, assert_ok, wait_for
from faultkit import User, assert_clear, reachable_dir, unix_user

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: root's services, read by nobody"
)

NOBODY = 65534


@dataclass
class Tree:
    """A services/run/log tree every user can reach, and the services root runs from it."""

    env: Env
    top: Path
    user: User

    @property
    def services(self) -> Path:
        return self.top / "services.d"

    @property
    def run(self) -> Path:
        return self.top / "run"

    def args(self) -> list[str]:
        return [
            "-d",
            str(self.services),
            "--run-dir",
            str(self.run),
            "--log-dir",
            str(self.top / "log"),
        ]

    def write(self, name: str, spec: dict[str, Any]) -> None:
        spec = {**spec, "environment": {TAG_VAR: self.env.tag}}
        (self.services / f"{name}.yaml").write_text(yaml.safe_dump(spec))

    def root(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        res = self.env.sc(*self.args(), *args, timeout=60)
        assert_clear(res)
        return assert_ok(res, code)

    def nobody(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [SERVICECTL, *self.args(), *args],  # the installed one, reachable by nobody
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            env={"PATH": os.environ["PATH"], "NO_COLOR": "1"},
        )
        assert_clear(res)
        return res if code is None else assert_ok(res, code)

    def pid(self, pid_file: str) -> int:
        return int((self.run / pid_file).read_text())


@pytest.fixture
def tree(env: Env) -> Iterator[Tree]:
    with unix_user() as user, reachable_dir() as top:
        t = Tree(env, top, user)
        t.services.mkdir()
        (top / "out").mkdir()
        t.write(
            "web", {"command": "sleep 300", "start_grace": 0.1, "stdout": str(top / "out/web.log")}
        )
        t.write("usr", {"command": "sleep 300", "start_grace": 0.1, "user": user.name})
        t.write(
            "fd",
            {
                "type": "forking",
                "command": [str(FORKINGD), "--pidfile", "{run_dir}/fd.daemon.pid"],
                "pid_file": "{run_dir}/fd.daemon.pid",
                "start_grace": 0.1,
            },
        )
        t.write("off", {"command": "sleep 300", "enabled": False})
        try:
            yield t
        finally:
            t.root("stopall")


def rows(res: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in json.loads(res.stdout)}


def test_nobody_sees_roots_services_as_they_are(tree: Tree) -> None:
    tree.root("startall")
    pids = {"web": tree.pid("web.pid"), "usr": tree.pid("usr.pid"), "fd": tree.pid("fd.daemon.pid")}
    seen = rows(tree.nobody("status", "--json", "web", "usr", "fd"))
    for name, pid in pids.items():
        assert (seen[name]["state"], seen[name]["pid"]) == ("running", pid), seen[name]
    board = tree.nobody("status", code=3).stdout  # "off" is stopped: the highest code
    for name, pid in pids.items():
        assert f"{name} " in board and str(pid) in board
    for name in pids:
        tree.nobody("status", name)
    tree.nobody("status", "off", code=3)
    tree.nobody("list")
    tree.nobody("check")
    (tree.top / "out/web.log").chmod(0o644)  # made readable by its admin
    tree.nobody("logs", "web")
    res = tree.nobody("logs", "usr", code=None)  # the log dir is root's, 0750
    assert res.returncode != 0 and "usr" in res.stderr


def test_nobody_says_dead_and_unknown_where_it_must(tree: Tree) -> None:
    tree.root("start", "web", "usr")
    web, usr = tree.pid("web.pid"), tree.pid("usr.pid")
    # Dead: the recorded process is gone, as nobody can see.
    os.kill(usr, signal.SIGKILL)
    wait_for(lambda: not alive(usr), what="usr to die")
    assert rows(tree.nobody("status", "--json", "usr", code=1))["usr"]["state"] == "dead"
    # No record: root identifies the process by its PID file, user and executable; nobody
    # cannot read a root process's executable, so it cannot tell (4), and never says dead.
    (tree.run / "web.state").unlink()
    tree.root("status", "web")
    res = tree.nobody("status", "--json", "web", code=4)
    assert rows(res)["web"]["state"] == "unknown"
    assert "cannot tell" in " ".join(rows(res)["web"]["notes"])
    assert alive(web)
    # Nothing that nobody ran changed anything.
    assert rows(tree.nobody("status", "--json", "web", code=4))["web"]["pid"] is None
    tree.root("start", "web")  # records it again
    assert rows(tree.nobody("status", "--json", "web"))["web"]["pid"] == web


def test_nobody_cannot_act_and_says_so(tree: Tree) -> None:
    tree.root("start", "web")
    web = tree.pid("web.pid")
    for args in (("stop", "web"), ("start", "off"), ("restart", "web")):
        res = tree.nobody(*args, code=None)
        assert res.returncode == 4, (args, res.stderr)
    assert alive(web)
    assert rows(tree.nobody("status", "--json", "web"))["web"]["pid"] == web
