"""Machine-readable drift: `status --json` says whether a running service's definition changed
on disk since its start (`definition_changed`) and which keys (`definition_changes`),
comparing the parsed definitions recorded at start and on disk, never their text."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from conftest import DAEMONS, PY, Env, alive, assert_ok, rich_keys, wait_for

from servicectl.definitions import fingerprint


def row(env: Env, name: str = "web") -> dict[str, Any]:
    return env.status_json(name)[name]


def drifted(env: Env, name: str = "web") -> tuple[bool, list[str] | None]:
    r = row(env, name)
    return r["definition_changed"], r["definition_changes"]


def test_same_keys_in_another_style_a_touch_or_a_comment_are_no_change(env: Env) -> None:
    path = env.sleeper("web", stop_signal="TERM", environment={"A": "1", "B": "2"})
    assert_ok(env.sc("start", "web"))
    assert drifted(env) == (False, [])
    spec = json.loads(json.dumps(__import__("yaml").safe_load(path.read_text())))
    spec["stop_signal"] = "SIGTERM"  # the same signal, written otherwise
    spec["environment"] = dict(reversed(list(spec["environment"].items())))
    path.write_text("# a comment\n" + json.dumps(spec) + "\n")  # flow style (JSON is YAML)
    os.utime(path, ns=(time.time_ns() + 5_000_000_000,) * 2)
    r = row(env)
    assert (r["definition_changed"], r["definition_changes"]) == (False, [])
    assert fingerprint.NOTE not in r["notes"]


def test_enable_and_disable_are_no_change(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    assert_ok(env.sc("disable", "web"))
    assert drifted(env) == (False, [])
    assert "changed on disk" not in assert_ok(env.sc("status", "web")).stdout
    assert_ok(env.sc("enable", "web"))
    assert drifted(env) == (False, [])


def test_what_changed_is_named_by_key_and_variable(env: Env) -> None:
    env.sleeper("web", description="first", environment={"KEEP": "1", "FOO": "a"})
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    env.sleeper(
        "web",
        "--hup",
        description="second",
        environment={"KEEP": "1", "FOO": "b", "NEW": "x"},
        stop_timeout=7,
    )
    r = row(env)
    assert r["definition_changed"] is True
    assert r["definition_changes"] == [
        "command",
        "description",
        "environment.FOO",
        "environment.NEW",
        "stop_timeout",
    ]
    assert r["description"] == "first"  # the running definition's, not the file's
    assert fingerprint.NOTE in r["notes"] and r["pid"] == pid
    assert_ok(env.sc("restart", "web"))
    r = row(env)
    assert (r["definition_changed"], r["definition_changes"], r["description"]) == (
        False,
        [],
        "second",
    )


def test_a_dropin_counts_and_a_variable_command_is_compared_as_written(env: Env) -> None:
    """$VARIABLES are expanded at start: the record keeps the definition as written, so the
    command is not a change after an unrelated edit; a drop-in that changes a key is one."""
    env.write(
        "web",
        {
            "command": [PY, str(DAEMONS / "sleeper.py"), "$EXTRA"],
            "environment": {"EXTRA": "--hup"},
            "start_grace": 0.2,
        },
    )
    assert_ok(env.sc("start", "web"))
    assert_ok(env.sc("disable", "web"))  # a drop-in file appears: the files differ
    assert drifted(env) == (False, [])
    dropins = env.services / "web.d"
    (dropins / "10-nice.yaml").write_text("nice: 3\n")
    assert drifted(env) == (True, ["nice"])
    (dropins / "10-nice.yaml").unlink()
    assert drifted(env) == (False, [])


def test_a_stopped_or_unknown_service_has_no_drift(env: Env) -> None:
    env.sleeper("web")
    r = row(env)
    assert r["state"] == "stopped" and (r["definition_changed"], r["definition_changes"]) == (
        False,
        [],
    )
    res = env.sc("status", "--json", "ghost")
    ghost = json.loads(res.stdout)[0]
    assert ghost["definition_changed"] is False and ghost["definition_changes"] == []


def test_a_record_without_the_parsed_definition_falls_back_to_the_files(env: Env) -> None:
    """A service started by a servicectl that kept only the files' fingerprint: that they
    changed is known, not what (definition_changes is null)."""
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    state = env.run / "web.state"
    record = json.loads(state.read_text())
    assert record["parsed"]["command"][0] == PY
    del record["parsed"]
    state.write_text(json.dumps(record))
    assert drifted(env) == (False, [])
    env.sleeper("web", stop_timeout=3)
    assert drifted(env) == (True, None)


def test_a_respawned_service_keeps_the_definition_it_runs(env: Env) -> None:
    """The supervisor respawns with the definition it holds: after an edit on disk and a
    crash, the respawned process still runs the old one, and status says so."""
    env.sleeper("web", restart="always", restart_delay=0.05)
    assert_ok(env.sc("start", "web"))
    first = env.pid("web")
    env.sleeper("web", restart="always", restart_delay=0.05, description="edited")
    os.kill(first, 9)
    wait_for(lambda: not alive(first) and row(env)["pid"] not in (None, first), 10, "respawn")
    r = row(env)
    assert r["definition_changed"] is True and r["definition_changes"] == ["description"]


def test_changes_compares_keys_newer_than_the_record_with_their_default() -> None:
    defaults = {"nice": None, "umask": 0o022}
    assert fingerprint.changes({"command": ["a"]}, {"command": ["a"], "nice": None}, defaults) == []
    assert fingerprint.changes({"command": ["a"]}, {"command": ["a"], "nice": 5}, defaults) == [
        "nice"
    ]
    assert fingerprint.changes({"command": ["a"], "gone": 1}, {"command": ["b"]}, defaults) == [
        "command"
    ]
    old = {"limits": {"nofile": [1, 2]}, "environment": {"A": "1"}}
    new = {"limits": {"nofile": [1, 3], "core": [0, 0]}, "environment": {}}
    assert fingerprint.changes(old, new, {}) == ["limits.nofile", "limits.core", "environment.A"]


def test_every_kind_of_key_survives_the_record_unchanged(env: Env) -> None:
    """Mappings, lists, signals, octal strings, paths, nested keys: what start records reads
    back equal to the definition it came from (no drift right after a start)."""
    env.sleeper("web", **rich_keys(env.root), depends=[])
    assert_ok(env.sc("start", "web"))
    assert drifted(env) == (False, [])
    env.sleeper(
        "web",
        umask="027",
        limits={"nofile": 8192, "core": 0},
        actions={"rotate": {"signal": "USR1"}},
        directories=[str(env.root / "d1"), {"path": str(env.root / "d2"), "mode": "0750"}],
        stop_schedule="TERM/5/KILL/2",
        ready={"command": ["true"]},
        reload_signal="USR2",
        restart="on-failure",
        start_limit={"burst": 3, "interval": 30},
        working_directory=str(env.root),
    )
    assert drifted(env) == (True, ["limits.nofile", "actions.test"])
