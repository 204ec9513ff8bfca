"""restart, try-restart and force-reload through the real CLI: what they say, and the services
around them (docs/commands.md: restart NAME restarts the running services that depend on NAME, as
stop NAME stops them, and starts NAME's stopped dependencies first, as start NAME does).
"""

from __future__ import annotations

import re

from conftest import Env, alive, assert_ok, tagged_pids
from faultkit import assert_clear


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def names_in_order(out: str) -> list[str]:
    return [line.split(":", 1)[0] for line in lines(out)]


def test_restart_of_a_stopped_service_says_it_started_it(env: Env) -> None:
    env.sleeper("web")
    res = assert_ok(env.sc("restart", "web"))
    pid = env.pid("web")
    assert res.stdout.strip() == f"web: started (pid {pid}; it was not running)"
    res = assert_ok(env.sc("restart", "web"))
    assert res.stdout.strip() == f"web: restarted (was pid {pid}, now pid {env.pid('web')})"
    assert_ok(env.sc("stop", "web"))


def test_force_reload_restarts_a_service_that_does_not_catch_its_reload_signal(env: Env) -> None:
    env.sleeper("nohup")  # HUP would kill it
    env.sleeper("usr1", reload_signal="USR1")
    assert_ok(env.sc("start", "nohup", "usr1"))
    for name, sig in (("nohup", "SIGHUP"), ("usr1", "SIGUSR1")):
        old = env.pid(name)
        res = assert_ok(env.sc("force-reload", name))
        new = env.pid(name)
        assert new != old and not alive(old) and alive(new)
        assert f"{name}: restarted (was pid {old}, now pid {new})" in res.stdout
        assert f"does not handle {sig}" in res.stdout and "instead of reloaded" in res.stdout
        # reload alone still refuses, and leaves it running.
        res = assert_ok(env.sc("reload", name), 1)
        assert_clear(res, f"does not handle {sig}")
        assert env.pid(name) == new and alive(new)
    # Not running: force-reload is reload's "not running" (7), and starts nothing.
    assert_ok(env.sc("stop", "nohup"))
    res = assert_ok(env.sc("force-reload", "nohup"), 7)
    assert "not running" in res.stderr and tagged_pids(env.tag) == [env.pid("usr1")]
    assert_ok(env.sc("stop", "usr1"))


def test_the_reload_message_quotes_the_command(env: Env) -> None:
    out = env.root / "with space"
    env.sleeper("web", reload_command=["sh", "-c", f"echo reloaded > '{out}'"])
    assert_ok(env.sc("start", "web"))
    res = assert_ok(env.sc("reload", "web"))
    assert f"""web: reloaded (sh -c 'echo reloaded > '"'"'{out}'"'"'')""" in res.stdout
    assert out.read_text() == "reloaded\n"
    env.sleeper("bad", reload_command=["sh", "-c", "exit 4"])
    assert_ok(env.sc("start", "bad"))
    res = assert_ok(env.sc("reload", "bad"), 1)
    assert "reload failed: sh -c 'exit 4' exited with status 4" in res.stderr
    assert_ok(env.sc("stop", "web", "bad"))


def test_restart_restarts_the_running_dependents(env: Env) -> None:
    """db <- app <- web, and db <- cron (stopped): restart db stops web then app, restarts db,
    and starts app then web again, each saying why; cron stays stopped."""
    env.sleeper("db")
    env.sleeper("app", depends=["db"])
    env.sleeper("web", depends=["app"])
    env.sleeper("cron", depends=["db"])
    env.sleeper("other")
    assert_ok(env.sc("start", "web", "other"))
    before = {n: env.pid(n) for n in ("db", "app", "web", "other")}
    res = assert_ok(env.sc("restart", "db"))
    assert_clear(res)
    assert names_in_order(res.stdout) == ["web", "app", "db", "app", "web"], res.stdout
    out = lines(res.stdout)
    assert re.match(r"web: stopped after TERM .*\(it depends on app\)$", out[0]), out
    assert re.match(r"app: stopped after TERM .*\(it depends on db\)$", out[1]), out
    assert out[2].startswith(f"db: restarted (was pid {before['db']}, now pid ")
    assert re.match(r"app: started \(pid \d+\) \(it depends on db\)$", out[3]), out
    assert re.match(r"web: started \(pid \d+\) \(it depends on app\)$", out[4]), out
    for name in ("db", "app", "web"):
        assert env.pid(name) != before[name] and alive(env.pid(name))
        assert not alive(before[name])
    assert env.pid("other") == before["other"]
    assert_ok(env.sc("status", "cron"), 3)
    # try-restart does the same for a running service, and nothing for a stopped one.
    res = assert_ok(env.sc("try-restart", "app"))
    assert names_in_order(res.stdout) == ["web", "app", "web"], res.stdout
    res = assert_ok(env.sc("try-restart", "cron"))
    assert res.stdout.strip() == "cron: not running; not started (try-restart)"
    assert_ok(env.sc("stopall"))


def test_restart_of_a_stopped_service_starts_its_stopped_dependencies(env: Env) -> None:
    env.sleeper("db")
    env.sleeper("cache")
    env.sleeper("app", depends=["db", "cache"])
    assert_ok(env.sc("start", "cache"))
    cache = env.pid("cache")
    res = assert_ok(env.sc("restart", "app"))
    assert names_in_order(res.stdout) == ["db", "app"], res.stdout  # cache runs: untouched
    assert lines(res.stdout)[1].endswith("it was not running)")
    assert env.pid("cache") == cache and alive(env.pid("db")) and alive(env.pid("app"))
    assert_ok(env.sc("stopall"))


def test_a_failed_restart_skips_the_dependents_it_stopped(env: Env) -> None:
    env.sleeper("db")
    env.sleeper("app", depends=["db"])
    assert_ok(env.sc("start", "app"))
    app = env.pid("app")
    env.write("db", {"command": "false", "start_grace": 0.3})  # now it dies at once
    res = assert_ok(env.sc("restart", "db"), 1)
    assert "app: stopped" in res.stdout and "(it depends on db)" in res.stdout
    assert "db: failed to start" in res.stderr
    assert "app: skipped: dependency db failed to start (it depends on db)" in res.stderr
    assert not alive(app) and tagged_pids(env.tag) == []


def test_a_restart_that_could_not_start_again_touches_nothing(env: Env) -> None:
    env.sleeper("db")
    env.sleeper("app", depends=["db"])
    assert_ok(env.sc("start", "app"))
    pids = {n: env.pid(n) for n in ("db", "app")}
    env.sleeper("db", working_directory=str(env.root / "gone"))
    res = assert_ok(env.sc("restart", "db"), 1)
    assert_clear(res, "working directory", "still running")
    assert res.stdout == ""
    assert {n: env.pid(n) for n in ("db", "app")} == pids and all(map(alive, pids.values()))
    env.sleeper("db")
    assert_ok(env.sc("stopall"))
