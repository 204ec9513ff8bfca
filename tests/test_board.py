"""The board of many services (issue 29): the quick paths a status row takes give what the
full ones give (the definition compare, records and NamedTuples made by name, escaping,
cached definitions, the cgroup's memory files), and the board agrees with ``status NAME``."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest
from conftest import Env, assert_ok, rich_keys

from servicectl import text
from servicectl.definitions import cache, catalog, fingerprint
from servicectl.definitions.schema import Service
from servicectl.system import cgroup_limits
from servicectl.system.record import Record

if TYPE_CHECKING:
    from pathlib import Path


def _rich_service(env: Env) -> Service:
    env.sleeper("web", **rich_keys(env.root), health={"command": ["true"], "interval": 5})
    svc = catalog.load_catalog(env.dirs, use_cache=False).services["web"]
    assert isinstance(svc, Service)
    return svc


def _other(value: Any) -> list[Any]:
    """Values unlike ``value``: of its kind and of others."""
    return [None, "x", 7, 7.5, True, [], {}, ["x"], {"x": 1}, [value], {"burst": 9}]


def test_the_quick_definition_compare_agrees_with_the_full_one(env: Env) -> None:
    svc = _rich_service(env)
    parsed = json.loads(json.dumps(fingerprint.snapshot(svc)))  # as a record keeps it
    assert fingerprint.compare(svc, parsed, ()) == (False, [])
    now, defaults = fingerprint.snapshot(svc), svc._field_defaults
    for key in parsed:
        for value in _other(parsed[key]):
            if value == parsed[key]:
                continue
            changed = {**parsed, key: value}
            want = fingerprint.changes(changed, now, defaults)
            assert fingerprint.compare(svc, changed, ()) == (bool(want), want), (key, value)
        gone = {k: v for k, v in parsed.items() if k != key}  # a record of an older version
        want = fingerprint.changes(gone, now, defaults)
        assert fingerprint.compare(svc, gone, ()) == (bool(want), want), key


def test_records_and_tuples_made_by_name_as_by_position() -> None:
    values = {f: (None if f != "pid" else 12) for f in Record._fields}
    values.update(command=(), cgroups_v1=(), fingerprint=(), phase="running", cgroup="")
    by_name, by_place = Record(**values), Record(*[values[f] for f in Record._fields])
    assert by_name == by_place and by_name.pid == 12
    required = next(f for f in Record._fields if f not in Record._field_defaults)
    with pytest.raises(TypeError, match=required):
        Record(**{k: v for k, v in values.items() if k != required})
    with pytest.raises(TypeError, match="nonsense"):  # in the place of a missing one
        Record(**{k: v for k, v in values.items() if k != required}, nonsense=1)
    with pytest.raises(TypeError, match="nonsense"):
        Record(**values, nonsense=1)
    raw = json.dumps({**by_name._asdict(), "stop_signal": 15}).encode()  # another version's
    assert Record.from_json(raw) == by_name


def test_escape_skips_only_what_has_nothing_to_escape() -> None:
    samples = [chr(c) for c in range(0x100)] + ["plain text", "", "a\tb", "é", "\u202ex"]
    samples += ["x" * 50 + "\x1b[31m", "web\x7f", "\u2028"]
    for sample in samples:
        assert text.escape(sample) == sample.translate(text._ESCAPES), repr(sample)


def test_cached_definitions_are_made_as_before(env: Env) -> None:
    svc = _rich_service(env)
    types = catalog.record_types()
    assert cache.decode(cache.encode(svc), types) == svc
    with pytest.raises(KeyError):  # a type the caller did not name is never made
        cache.decode(["Popen", 1], types)
    with pytest.raises(KeyError):
        cache.decode(("a", ["Popen", 1]), types)


def _write(directory: Path, **files: str) -> str:
    directory.mkdir(parents=True)
    for name, body in files.items():
        (directory / name.replace("_", ".", 1)).write_text(body)
    return str(directory)


def test_memory_seen_opens_only_the_files_that_can_be_there(tmp_path: Path) -> None:
    v2 = _write(tmp_path / "v2", memory_current="1234\n", memory_events="low 0\noom_kill 2\n")
    assert cgroup_limits.memory_seen(v2, ()) == (1234, 2)
    assert cgroup_limits.memory_in_use((v2,)) == 1234 and cgroup_limits.oom_kills((v2,)) == 2
    # No memory.current: no memory controller there, so memory.events is not read either.
    bare = _write(tmp_path / "bare", memory_events="oom_kill 3\n")
    v1 = _write(tmp_path / "v1", memory_usage_in_bytes="99\n", memory_oom_control="oom_kill 1\n")
    pids = _write(tmp_path / "pids", pids_max="max\n")
    assert cgroup_limits.memory_seen(bare, (pids, v1)) == (99, 1)
    assert cgroup_limits.memory_seen("", (v1,)) == (99, 1)
    assert cgroup_limits.memory_seen(bare, ()) == (None, 0)


def test_the_board_agrees_with_status_of_each(env: Env) -> None:
    for name in ("a", "b", "c"):
        env.sleeper(name)
    env.write("off", {"command": ["/bin/true"], "enabled": False})
    assert_ok(env.sc("start", "a"))
    assert_ok(env.sc("start", "b"))
    assert_ok(env.sc("start", "c"))
    pid_c = int((env.run / "c.pid").read_text())
    os.kill(pid_c, 9)
    env.sleeper("b", "--changed")  # b's definition changes under it
    board = json.loads(env.sc("status", "--json").stdout)
    assert [r["name"] for r in board] == ["a", "b", "c", "off"]
    for row in board:
        alone = json.loads(env.sc("status", "--json", row["name"]).stdout)[0]
        for key in ("uptime_seconds", "cpu_percent", "memory_bytes"):
            row.pop(key), alone.pop(key)
        assert row == alone
    states = {r["name"]: r["state"] for r in board}
    assert states == {"a": "running", "b": "running", "c": "dead", "off": "stopped"}
    assert board[1]["definition_changed"] and board[1]["definition_changes"] == ["command"]
