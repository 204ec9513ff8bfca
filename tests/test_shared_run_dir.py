"""Several services directories may share one run directory (docs/design.md): a state record names
the definition file its service was started from, and a record of another file is another
service of the same name. Through the real CLI.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from conftest import Env, alive, assert_ok, tagged_pids
from faultkit import assert_clear

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


def other(env: Env, copy: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """servicectl on the copy of the services directory, with the same run and log dirs."""
    res = env.sc("-d", str(copy), *args, timeout=60)
    assert_clear(res)
    return assert_ok(res, code)


def state(res: subprocess.CompletedProcess[str], name: str) -> dict[str, object]:
    row: dict[str, object] = {r["name"]: r for r in json.loads(res.stdout)}[name]
    return row


def test_a_copy_of_the_services_dir_leaves_the_others_services_alone(env: Env) -> None:
    env.sleeper("web")
    env.forking("fd")
    env.sleeper("idle")
    copy = env.root / "copy.d"
    shutil.copytree(env.services, copy)
    assert_ok(env.sc("start", "web", "fd"))
    web, fd = env.pid("web"), env.pid("fd", env.run / "fd.daemon.pid")
    # status from the copy: its own web is stopped, and the note names the file that runs.
    res = other(env, copy, "status", "--json", "web", code=3)
    row = state(res, "web")
    assert row["state"] == "stopped" and row["pid"] is None
    assert str(env.services / "web.yaml") in " ".join(row["notes"])  # type: ignore[arg-type]
    # stop, stopall, restart, start from the copy: the other's services keep running.
    other(env, copy, "stop", "web")
    res = other(env, copy, "stopall")
    assert "web: stopped" not in res.stdout and "fd: stopped" not in res.stdout
    res = other(env, copy, "start", "web", code=1)
    assert str(env.services / "web.yaml") in res.stderr and "--run-dir" in res.stderr
    other(env, copy, "restart", "fd", code=1)
    assert alive(web) and alive(fd)
    # A name no one has taken starts from the copy as usual, and the first dir sees it as the
    # copy's.
    other(env, copy, "start", "idle")
    res = assert_ok(env.sc("status", "--json", "idle"), 3)
    assert str(copy / "idle.yaml") in " ".join(state(res, "idle")["notes"])  # type: ignore[arg-type]
    assert_ok(env.sc("stop", "idle"))
    assert alive(env.pid("idle"))
    other(env, copy, "stop", "idle")
    # From its own directory, everything as before.
    assert state(assert_ok(env.sc("status", "--json", "web")), "web")["pid"] == web
    assert_ok(env.sc("stopall"))
    assert not alive(web) and not alive(fd)
    # The name is free again: the copy may start it.
    other(env, copy, "start", "web")
    other(env, copy, "stop", "web")
    assert tagged_pids(env.tag) == []


def test_a_record_without_its_definition_file_keeps_todays_behaviour(env: Env) -> None:
    """A record written before records named their definition file belongs to whoever reads it."""
    env.sleeper("web")
    copy = env.root / "copy.d"
    shutil.copytree(env.services, copy)
    assert_ok(env.sc("start", "web"))
    web = env.pid("web")
    path = env.run / "web.state"
    record = json.loads(path.read_text())
    del record["definition"]
    path.write_text(json.dumps(record))
    assert state(other(env, copy, "status", "--json", "web"), "web")["pid"] == web
    other(env, copy, "stop", "web")
    assert not alive(web)
