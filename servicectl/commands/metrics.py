"""``servicectl metrics``: every service's state, restarts, last exit, health, memory and CPU in
the Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector
reads it: a HELP and a TYPE line per family, then one sample per service, labels escaped
(a backslash, a double quote and a newline in a description are written ``\\``, ``\"``,
``\n``).

Cheap enough to run every 15 s: the same observation as the board of ``status`` (no lock, no
psutil), and one scan of /proc for the memory and CPU of every running service's own process
group (one read of /proc/PID/stat per process, not one per service).
"""

from __future__ import annotations

import os

from servicectl.commands.resolve import catalog_for, no_services_dir
from servicectl.errors import Exit, StatusCode
from servicectl.output.face import face
from servicectl.states import DEAD, FAILED, INVALID, RUNNING, STARTING, STOPPED, UNKNOWN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.service.status_row import Status

STATES = (RUNNING, STARTING, STOPPED, DEAD, FAILED, INVALID, UNKNOWN)
PREFIX = "servicectl_service_"

# name, type, help
FAMILIES = (
    ("info", "gauge", "Always 1; the service's description and type as labels."),
    ("state", "gauge", "1 for the state the service is in, 0 for the others."),
    ("up", "gauge", "1 if the service is running (or starting), else 0."),
    (
        "status_code",
        "gauge",
        "What servicectl status NAME exits with (LSB: 0 running, 1 dead or "
        "failed, 3 stopped, 4 unknown or invalid).",
    ),
    ("restarts_total", "counter", "Respawns by its supervisor since its last start."),
    ("last_exit_code", "gauge", "Exit status of its last exit seen (supervised services)."),
    ("last_exit_signal", "gauge", "Signal number that ended it last (supervised services)."),
    ("last_exit_timestamp_seconds", "gauge", "When it last exited (supervised services)."),
    ("healthy", "gauge", "1 if its health check passes, 0 if not (services with health:)."),
    ("start_time_seconds", "gauge", "When its running main process started (Unix time)."),
    ("processes", "gauge", "Processes in its own process group (its main process if none)."),
    ("memory_rss_bytes", "gauge", "Resident memory of those processes."),
    (
        "cpu_seconds_total",
        "counter",
        "CPU time (user and system) of those processes, and of "
        "the children its main process reaped.",
    ),
)


def escape_label(value: str) -> str:
    """A label value as the text format writes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics() -> int:
    from servicectl.paths import run_dir_problem
    from servicectl.service import status_row
    from servicectl.service.status_row import Status

    catalog = catalog_for()
    if no_services_dir(catalog):
        return Exit.NOT_CONFIGURED
    problem = run_dir_problem(catalog.dirs.run)
    rows: list[Status] = []
    types: dict[str, str] = {}
    for name in catalog.names():
        svc = catalog.services.get(name)
        if svc is None:
            rows.append(Status(name, INVALID, StatusCode.UNKNOWN))
            continue
        types[name] = svc.type
        if problem is not None:
            rows.append(Status(name, UNKNOWN, StatusCode.UNKNOWN, svc.description))
        else:
            rows.append(status_row.status(svc, catalog.dirs, resources=False))
    usage = _usage(rows)
    samples: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
    for row in rows:
        _samples(row, types.get(row.name, ""), usage.get(row.name), samples)
    out = []
    for name, kind, text in FAMILIES:
        if samples[name]:
            out += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} {kind}"]
            out += samples[name]
    face.out("".join(line + "\n" for line in out))
    return Exit.OK


def _samples(row: Status, kind: str, used: Usage | None, samples: dict[str, list[str]]) -> None:
    """The samples of one service, added to each family's list."""
    label = f'service="{escape_label(row.name)}"'

    def add(family: str, value: float, extra: str = "") -> None:
        samples[family].append(f"{PREFIX}{family}{{{label}{extra}}} {_number(value)}")

    add("info", 1, f',description="{escape_label(row.description)}",type="{escape_label(kind)}"')
    for state in dict.fromkeys((*STATES, row.state)):
        add("state", 1 if row.state == state else 0, f',state="{escape_label(state)}"')
    add("up", 1 if row.state in (RUNNING, STARTING) else 0)
    add("status_code", int(row.code))
    add("restarts_total", row.restarts or 0)
    _last_exit(row.last_exit, add)
    healthy = _healthy(getattr(row, "health", None))
    if healthy is not None:
        add("healthy", healthy)
    if row.since is not None:
        add("start_time_seconds", round(row.since, 3))
    if used is not None:
        add("processes", used.processes)
        add("memory_rss_bytes", used.rss)
        add("cpu_seconds_total", round(used.cpu_ticks / _CLK_TCK, 2))


def _last_exit(last: dict[str, Any] | None, add: Any) -> None:
    import signal

    if not last:
        return
    if isinstance(last.get("code"), int):
        add("last_exit_code", last["code"])
    elif isinstance(last.get("signal"), str):
        try:
            add("last_exit_signal", int(signal.Signals["SIG" + last["signal"]]))
        except KeyError:
            pass
    if isinstance(last.get("at"), (int, float)):
        add("last_exit_timestamp_seconds", round(last["at"], 3))


def _healthy(health: Any) -> int | None:
    """1/0 from a status row's ``health`` (a word, or a mapping with a state), None if the
    service has no health check (or says nothing servicectl can read as one)."""
    if isinstance(health, dict):
        for key in ("state", "status", "healthy"):
            if key in health:
                health = health[key]
                break
    if isinstance(health, bool):
        return int(health)
    if isinstance(health, str) and health.lower() in ("healthy", "unhealthy"):
        return int(health.lower() == "healthy")
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ---------------------------------------------------------------------------------------------
# Memory and CPU, from one scan of /proc

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class Usage:
    __slots__ = ("processes", "rss", "cpu_ticks")

    def __init__(self) -> None:
        self.processes = 0
        self.rss = 0
        self.cpu_ticks = 0


def _usage(rows: list[Status]) -> dict[str, Usage]:
    """What each running service's processes use: its own process group's members (or its
    main process alone when it has none), read in one pass over /proc."""
    by_group = {r.pgid: r.name for r in rows if r.pid is not None and r.pgid > 1}
    by_pid = {r.pid: r.name for r in rows if r.pid is not None}
    if not by_pid:
        return {}
    out: dict[str, Usage] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rpartition(b")")[2].split()
            pid, pgid = int(entry.name), int(fields[2])
            if fields[0] in (b"Z", b"X"):
                continue
            name = by_group.get(pgid) or by_pid.get(pid)
            if name is None:
                continue
            used = out.setdefault(name, Usage())
            used.processes += 1
            used.rss += int(fields[21]) * _PAGE
            used.cpu_ticks += int(fields[11]) + int(fields[12])
            if pid in by_pid:  # the children it reaped
                used.cpu_ticks += int(fields[13]) + int(fields[14])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return out
