"""``servicectl metrics``: every service in the Prometheus text format, read back with
prometheus_client's own parser (as node_exporter's textfile collector reads it), checked against
what the kernel says of the running services."""

from __future__ import annotations

import os
import re
from typing import Any

from conftest import Env, assert_ok
from prometheus_client.parser import text_string_to_metric_families


def scrape(env: Env) -> dict[str, dict[str, Any]]:
    """``{family: {"type": ..., "help": ..., "samples": {labels-tuple: value}}}``."""
    res = assert_ok(env.sc("metrics"))
    assert res.stderr == ""
    out: dict[str, dict[str, Any]] = {}
    for fam in text_string_to_metric_families(res.stdout):
        samples = {tuple(sorted(s.labels.items())): s.value for s in fam.samples}
        out[fam.name] = {"type": fam.type, "help": fam.documentation, "samples": samples}
    return out


def value(m: dict[str, dict[str, Any]], family: str, service: str, **labels: str) -> Any:
    want = tuple(sorted({"service": service, **labels}.items()))
    for key, v in m[family]["samples"].items():
        if all(item in key for item in want):
            return v
    return None


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return int(fh.read().rpartition(b")")[2].split()[21]) * os.sysconf("SC_PAGE_SIZE")


def test_metrics_parse_with_prometheus_client(env: Env) -> None:
    env.sleeper("web", description='the "web" server, C:\\srv\\web')
    env.write(
        "workers",
        {"command": ["sh", "-c", "sleep 300 & sleep 300 & wait"], "start_grace": 0.2},
    )
    env.write("broken", {"command": ["sh", "-c", "exit 3"], "start_grace": 1})
    env.sleeper("idle")
    env.write("bad", "command: [unclosed\n")
    assert_ok(env.sc("start", "web", "workers"))
    assert_ok(env.sc("start", "broken"), 1)
    m = scrape(env)
    s = "servicectl_service_"
    assert m[s + "info"]["type"] == "gauge"
    assert m[s + "cpu_seconds"]["type"] == "counter"  # the parser drops _total from a counter
    info = [dict(k) for k in m[s + "info"]["samples"] if dict(k)["service"] == "web"][0]
    assert info["description"] == 'the "web" server, C:\\srv\\web' and info["type"] == "simple"
    for name, state in (
        ("web", "running"),
        ("workers", "running"),
        ("broken", "failed"),
        ("idle", "stopped"),
        ("bad", "invalid"),
    ):
        assert value(m, s + "state", name, state=state) == 1, name
        others = [
            v
            for k, v in m[s + "state"]["samples"].items()
            if dict(k)["service"] == name and dict(k)["state"] != state
        ]
        assert others and set(others) == {0}, name
    assert value(m, s + "up", "web") == 1 and value(m, s + "up", "idle") == 0
    assert value(m, s + "status_code", "broken") == 1 and value(m, s + "status_code", "idle") == 3
    assert value(m, s + "status_code", "bad") == 4
    assert value(m, s + "last_exit_code", "broken") == 3
    assert value(m, s + "last_exit_timestamp_seconds", "broken") > 0
    assert value(m, s + "restarts", "web") == 0
    # Memory and CPU: the service's own process group, as the kernel counts it.
    pid = env.pid("workers")
    members = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid]
    assert value(m, s + "processes", "workers") == len(members) == 3
    assert value(m, s + "memory_rss_bytes", "workers") > rss_of(pid)
    assert value(m, s + "cpu_seconds", "web") >= 0
    start = value(m, s + "start_time_seconds", "web")
    assert start is not None and abs(start - os.stat(f"/proc/{env.pid('web')}").st_mtime) < 5
    assert value(m, s + "memory_rss_bytes", "idle") is None  # nothing runs: no sample
    assert_ok(env.sc("stop", "web", "workers"))


def _pgid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rpartition(b")")[2].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def test_metrics_lines_follow_the_text_format(env: Env) -> None:
    """Each family: HELP, then TYPE, then its samples; label values escaped; one line each."""
    env.sleeper("web", description='quote " and backslash \\ here')
    out = assert_ok(env.sc("metrics")).stdout
    assert out.endswith("\n")
    seen: set[str] = set()
    current = ""
    for line in out.splitlines():
        if line.startswith("# HELP "):
            current = line.split()[2]
            assert current not in seen
            seen.add(current)
        elif line.startswith("# TYPE "):
            assert line.split()[2] == current and line.split()[3] in ("gauge", "counter")
        else:
            assert re.fullmatch(rf'{current}\{{service="web"[^\n]*\}} [0-9.e+-]+', line), line
    assert r'description="quote \" and backslash \\ here"' in out


def test_metrics_of_an_empty_or_missing_services_dir(env: Env) -> None:
    assert assert_ok(env.sc("metrics")).stdout == ""
    res = env.sc("-d", str(env.root / "nowhere"), "metrics")
    assert res.returncode == 6 and "nowhere" in res.stderr and res.stdout == ""


def test_metrics_of_a_hundred_services(env: Env) -> None:
    """100 services, 20 of them running: every one is there, the running ones with their
    memory (its cost is in docs/benchmarks.md)."""
    for i in range(100):
        env.write(f"s{i:03d}", {"command": ["sleep", "300"], "start_grace": 0})
    assert_ok(env.sc("start", *[f"s{i:03d}" for i in range(20)]))
    res = assert_ok(env.sc("metrics"))
    families = {fam.name: fam for fam in text_string_to_metric_families(res.stdout)}
    up = families["servicectl_service_up"].samples
    assert len(up) == 100 and sum(s.value for s in up) == 20
    assert len(families["servicectl_service_memory_rss_bytes"].samples) == 20
    assert_ok(env.sc("stopall"))
