"""The fleet through the real CLI: dependency order, parallel levels, skipped dependents, exit
codes, and nothing left after stopall. Services record when they start and stop."""

from __future__ import annotations

import json
import os
import signal

from conftest import DAEMONS, PY, Env, alive, assert_ok, tagged_pids, wait_for


def marker_service(env: Env, name: str, depends: list[str] | None = None, **extra: object) -> None:
    env.write(
        name,
        {
            "command": [PY, str(DAEMONS / "sleeper.py")],
            "environment": {"MARKER": str(env.root / f"{name}.marks")},
            "depends": depends or [],
            "start_grace": 0.3,
            **extra,
        },
    )


def order_of(res_stdout: str) -> list[str]:
    return [line.split(":", 1)[0] for line in res_stdout.splitlines() if ": " in line]


def test_diamond_startall_order_and_parallel_level(env: Env) -> None:
    # a <- b, a <- c, (b, c) <- d
    marker_service(env, "a")
    marker_service(env, "b", ["a"])
    marker_service(env, "c", ["a"])
    marker_service(env, "d", ["b", "c"])
    res = assert_ok(env.sc("startall"))
    order = order_of(res.stdout)
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("a") < order.index("c") < order.index("d")
    assert "4 services: 4 started/ok, 0 failed" in res.stdout
    pids = {n: env.pid(n) for n in "abcd"}
    # b and c ran in parallel: each one's grace (0.3 s) overlapped the other's.
    start_b = (env.root / "b.marks").stat().st_mtime
    start_c = (env.root / "c.marks").stat().st_mtime
    assert abs(start_b - start_c) < 0.25
    # every start line carries its time
    assert all("[" in line and " s]" in line for line in res.stdout.splitlines()[:4])

    res = assert_ok(env.sc("startall"))
    assert res.stdout.count("already running") == 4

    res = assert_ok(env.sc("stopall"))
    order = order_of(res.stdout)
    assert order.index("d") < order.index("b") < order.index("a")
    assert order.index("d") < order.index("c") < order.index("a")
    assert not any(alive(p) for p in pids.values())
    assert tagged_pids(env.tag) == [] and env.files() == []
    for n in "abcd":
        marks = (env.root / f"{n}.marks").read_text()
        assert "started" in marks and "stopped" in marks


def test_failed_service_skips_dependents_only(env: Env) -> None:
    marker_service(env, "ok")
    env.write(
        "f", {"command": [PY, str(DAEMONS / "sleeper.py"), "--exit-code", "1"], "start_grace": 20}
    )
    marker_service(env, "e", ["f"])
    marker_service(env, "g", ["e"])
    marker_service(env, "off", enabled=False)
    res = env.sc("startall")
    assert res.returncode == 1
    assert "servicectl: e: skipped: dependency f failed to start" in res.stderr
    assert "servicectl: g: skipped: dependency e was skipped" in res.stderr
    assert "ok: started" in res.stdout
    assert "off" not in res.stdout + res.stderr  # disabled: not started
    assert alive(env.pid("ok"))
    assert_ok(env.sc("status", "off"), 3)
    assert_ok(env.sc("stopall"))
    assert tagged_pids(env.tag) == []


def test_start_starts_dependencies_first_stop_stops_dependents_first(env: Env) -> None:
    marker_service(env, "db")
    marker_service(env, "web", ["db"])
    marker_service(env, "other")
    res = assert_ok(env.sc("start", "web"))
    assert order_of(res.stdout) == ["db", "web"]
    assert_ok(env.sc("status", "other"), 3)
    res = assert_ok(env.sc("stop", "db"))
    assert order_of(res.stdout) == ["web", "db"]
    assert "web: stopped" in res.stdout and "(it depends on db)" in res.stdout
    assert_ok(env.sc("status", "web"), 3)


def test_stopall_stops_disabled_running_services(env: Env) -> None:
    marker_service(env, "off", enabled=False)
    assert_ok(env.sc("start", "off"))
    pid = env.pid("off")
    res = assert_ok(env.sc("stopall"))
    assert "off: stopped" in res.stdout and not alive(pid)


def test_stopall_orders_through_a_stopped_service_and_names_only_running_ones(env: Env) -> None:
    # top -> mid -> base; mid has died, top and base run. The workers look whether each one
    # runs (no serial pass first), in the order of all the dependencies: top before base.
    marker_service(env, "base")
    marker_service(env, "mid", ["base"])
    marker_service(env, "top", ["mid"])
    marker_service(env, "idle")
    assert_ok(env.sc("start", "top"))
    pids = {n: env.pid(n) for n in ("base", "mid", "top")}
    os.kill(pids["mid"], signal.SIGKILL)
    wait_for(lambda: not alive(pids["mid"]), what="mid gone")
    res = assert_ok(env.sc("stopall"))
    assert order_of(res.stdout)[:2] == ["top", "base"]
    assert "mid" not in res.stdout and "idle" not in res.stdout
    assert "2 services: 2 stopped/ok" in res.stdout
    assert not alive(pids["top"]) and not alive(pids["base"])
    assert tagged_pids(env.tag) == []


def test_invalid_dependency_is_reported(env: Env) -> None:
    env.write("db", "command: [oops\n", tag=False)
    marker_service(env, "web", ["db"])
    res = env.sc("start", "web")
    assert res.returncode == 6
    assert "web: skipped: dependency db is invalid" in res.stderr


def test_many_services_status_board(env: Env) -> None:
    for i in range(30):
        env.write(f"s{i:02d}", {"command": [PY, str(DAEMONS / "sleeper.py")], "start_grace": 0.1})
    res = assert_ok(env.sc("startall", "--jobs", "8"))
    assert "30 services: 30 started/ok" in res.stdout
    rows = json.loads(assert_ok(env.sc("status", "--json")).stdout)
    assert len(rows) == 30 and all(r["state"] == "running" for r in rows)
    assert all(r["cpu_percent"] is not None for r in rows)
    assert_ok(env.sc("stopall"))
    assert tagged_pids(env.tag) == []


def test_late_forking_service_does_not_hold_up_other_forking_starts(env: Env) -> None:
    """Forking launches are serialized only briefly: one whose PID file never comes costs the
    others at most a short settle window, not its whole start_timeout, and leaves nothing."""
    import re

    env.forking("nopid", "--no-pidfile", start_timeout=8)
    env.forking("good")
    res = env.sc("startall")
    assert res.returncode == 1
    assert "nopid: failed to start: no live daemon" in res.stderr
    took = float(re.search(r"good: started \(pid \d+\) \[([0-9.]+) s\]", res.stdout).group(1))
    assert took < 5, f"good waited {took} s behind nopid"
    good = env.pid("good", env.run / "good.daemon.pid")
    assert alive(good)
    assert_ok(env.sc("stopall"))
    assert tagged_pids(env.tag) == []


def test_startall_graces_overlap_although_few_workers_act_at_once(env: Env) -> None:
    """As many workers act at once as there are CPUs (servicectl/system/turns.py), but a
    worker gives its turn back while it waits: twelve start_grace waits of 1 s overlap."""
    for i in range(12):
        env.write(f"g{i:02d}", {"command": ["sleep", "100000"], "start_grace": 1})
    res = assert_ok(env.sc("startall"))
    assert "12 services: 12 started/ok, 0 failed" in res.stdout
    marks = [float(line.rsplit("[", 1)[1].split(" s]")[0]) for line in res.stdout.splitlines()[:12]]
    assert all(1.0 <= m < 4.0 for m in marks)
    took = float(res.stdout.rsplit(" in ", 1)[1].split(" s")[0])
    assert took < 5.0  # 12 s if the graces ran one after another
    pids = [env.pid(f"g{i:02d}") for i in range(12)]
    assert all(alive(p) for p in pids)
    assert_ok(env.sc("stopall"))
    assert not any(alive(p) for p in pids)
    assert tagged_pids(env.tag) == [] and env.files() == []


def test_stop_finds_every_dependent_from_the_definition_cache_and_past_edits(env: Env) -> None:
    """A stop makes only the definitions it needs: which service depends on which is read
    from the definition cache's index (a thousand installed: no thousand definitions made),
    and a definition edited, a drop-in added or a file written since that cache was made is
    read from its files. Every running dependent is stopped first, through a stopped middle
    one; a service that depends on none of them is not touched (nor made)."""
    import time

    from servicectl.definitions import cache
    from servicectl.definitions.catalog import load_catalog
    from servicectl.fleet.order import dependents_closure

    marker_service(env, "base")
    marker_service(env, "mid", ["base"])
    marker_service(env, "top", ["mid"])
    marker_service(env, "late")
    marker_service(env, "drop")
    marker_service(env, "other")
    env.run.mkdir(exist_ok=True)
    newest = max(p.stat().st_ctime for p in env.services.glob("*.yaml"))
    wait_for(lambda: time.time() - newest > cache.RACY_NS / 1e9 + 0.2, what="cacheable files")
    assert_ok(env.sc("status"), 3)  # the installed servicectl's cache, every entry in it
    assert load_catalog(env.dirs).services  # and this process's own
    # since the caches were made: an edit, a drop-in, a new file, each depending on base
    marker_service(env, "late", ["base"])
    (env.services / "drop.d").mkdir()
    (env.services / "drop.d" / "override.yaml").write_text("depends: [base]\n")
    marker_service(env, "new", ["base"])

    partial = load_catalog(env.dirs, dependents=["base"])
    full = load_catalog(env.dirs)
    assert dependents_closure(partial, ["base"]) == dependents_closure(full, ["base"])
    assert dependents_closure(full, ["base"]) == {"base", "mid", "top", "late", "drop", "new"}
    assert "other" not in partial.services and "other" in full.services

    assert_ok(env.sc("start", "top", "late", "drop", "new", "other"))
    mid = env.pid("mid")
    os.kill(mid, signal.SIGKILL)  # the middle one dies: top still depends on base through it
    wait_for(lambda: not alive(mid), what="mid gone")
    pids = {n: env.pid(n) for n in ("base", "top", "late", "drop", "new", "other")}
    res = assert_ok(env.sc("stop", "base"))
    order = order_of(res.stdout)
    assert order[-1] == "base" and set(order) >= {"top", "late", "drop", "new"}, res.stdout
    for name in ("late", "drop", "new"):
        assert f"{name}: stopped" in res.stdout
    assert "top: stopped" in res.stdout and "(it depends on mid)" in res.stdout
    assert "other" not in res.stdout and alive(pids["other"])
    assert not any(alive(pids[n]) for n in ("base", "top", "late", "drop", "new"))
    assert_ok(env.sc("stop", "other"))
    assert tagged_pids(env.tag) == []
