"""The keys that say when the service is started, ready, stopped and brought back: its
dependencies, readiness (``ready``), the respawn policy (``restart``, ``start_limit``), the
stop schedule, and the health checks the supervisor runs (``health``).
"""

from __future__ import annotations

import math
import re

from servicectl.definitions.names import valid_name
from servicectl.definitions.program_keys import command_line
from servicectl.definitions.reader import (
    DOTS_EXPECTED,
    MAX_SECONDS,
    Reader,
    dots_added,
    hint,
    parse_seconds,
    resolve,
    show,
)
from servicectl.definitions.schema import (
    READY_KINDS,
    SECONDS,
    Health,
    Key,
    Ready,
    StartLimit,
    parse_signal,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_STEPS = 20


def parse_depends(r: Reader, k: Key, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        r.wrong(k.name, value, "a list of service names")
        return ()
    items = [r.expand(item) for item in items]  # web@{instance} may depend on db@{instance}
    for item in items:
        if not valid_name(item):
            r.error(k.name, f"{item!r} is not a service name")
            return ()
    if r.name in items:
        r.error(k.name, f"{r.name} cannot depend on itself")
    return tuple(dict.fromkeys(items))


def _ready_target(
    r: Reader, kind: str, target: Any, timeout: float | None, where: str = "ready"
) -> Ready | None:
    key = f"{where}.{kind}"
    if kind == "notify":
        if target is not True:
            r.wrong(key, target, "true")
            return None
        return Ready("notify")
    if kind == "command":
        argv = command_line(r, key, target)
        return Ready("command", argv, timeout) if argv else None
    if not isinstance(target, (str, int)) or isinstance(target, bool):
        r.wrong(key, target, "a string")
        return None
    text = r.expand(str(target))
    if kind == "tcp":
        host, sep, port = text.rpartition(":")
        if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
            r.wrong(key, target, '"HOST:PORT" such as "127.0.0.1:8080"')
            return None
        if not host:
            text = "127.0.0.1:" + port
    elif kind == "http":
        if not re.match(r"^https?://[^/\s]+", text):
            r.wrong(key, target, 'a URL such as "http://127.0.0.1:8080/health"')
            return None
    else:  # unix, file
        if dots_added(str(target), text):
            r.wrong(key, target, DOTS_EXPECTED)
            return None
        text = resolve(r.dirs.services, text)
    return Ready(kind, text, timeout)


def parse_ready(r: Reader, k: Key, value: Any) -> Ready | None:
    if value is None:
        return None
    if value == "notify" or value == {"notify": True}:
        return Ready("notify")
    if not isinstance(value, dict) or len(value) not in (1, 2):
        forms = "{tcp: HOST:PORT}, {unix: PATH}, {file: PATH}, {http: URL}, {command: CMD}"
        r.wrong(k.name, value, f"notify, or one of {forms}")
        return None
    timeout = None
    kinds = [kind for kind in value if kind != "timeout"]
    if "timeout" in value:
        t = value["timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= MAX_SECONDS:
            r.wrong(f"{k.name}.timeout", t, "a number of seconds above 0")
            return None
        timeout = float(t)
    if len(kinds) != 1 or kinds[0] not in READY_KINDS:
        found = ", ".join(str(kind) for kind in kinds) or "nothing"
        near = hint(str(kinds[0]), READY_KINDS) if kinds else ""
        r.error(k.name, f"found {found}{near}, expected one of {', '.join(READY_KINDS)}")
        return None
    return _ready_target(r, kinds[0], value[kinds[0]], timeout)


RESTART_CHOICES = ("no", "on-failure", "always")


def parse_restart(r: Reader, k: Key, value: Any) -> str:
    """``"no"``, ``on-failure`` or ``always``; a bare ``no`` (YAML 1.1 reads it as false) is
    taken as "no"."""
    if value is False:
        return "no"
    if not isinstance(value, str) or value not in RESTART_CHOICES:
        near = hint(value, RESTART_CHOICES) if isinstance(value, str) else ""
        r.wrong(k.name, value, f'"no", on-failure or always{near}')
        return "no"
    return value


def parse_start_limit(r: Reader, k: Key, value: Any) -> StartLimit:
    """{burst: N, interval: SECONDS}; a key left out keeps its default."""
    if value is None:
        return StartLimit()
    if not isinstance(value, dict):
        r.wrong(k.name, value, "a mapping such as {burst: 5, interval: 60}")
        return StartLimit()
    for key in value:
        if key not in ("burst", "interval"):
            r.error(f"{k.name}.{key}", f"unknown key{hint(str(key), ('burst', 'interval'))}")
    burst = value.get("burst", StartLimit().burst)
    if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= 10_000:
        r.wrong(f"{k.name}.burst", burst, "a whole number from 1 to 10000")
        burst = StartLimit().burst
    where = Key(f"{k.name}.interval", SECONDS, None, "seconds", "", "")
    interval = parse_seconds(r, where, value.get("interval", StartLimit().interval))
    return StartLimit(burst, interval)


def parse_stop_schedule(r: Reader, k: Key, value: Any) -> tuple[tuple[int, float], ...]:
    """``SIG/SECS/SIG/SECS...`` as start-stop-daemon's --retry (a bare N: TERM/N/KILL/N), or a
    list of the same items, as (signal, seconds) steps."""
    if value is None or value == "":
        return ()
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SECONDS:
        value = f"TERM/{value}/KILL/{value}"
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,7}\s*", value):
        value = f"TERM/{value.strip()}/KILL/{value.strip()}"
    items = value.split("/") if isinstance(value, str) else value
    expected = f'at most {MAX_STEPS} SIG/SECS pairs such as "QUIT/5/TERM/5/KILL/5"'
    if not isinstance(items, list) or not items or len(items) % 2 or len(items) > 2 * MAX_STEPS:
        r.wrong(k.name, value, expected)
        return ()
    if "forever" in items:
        r.error(k.name, "'forever' repeats the schedule without end; give a finite schedule")
        return ()
    steps = []
    for i in range(0, len(items), 2):
        sig, secs = parse_signal(items[i]), _number(items[i + 1])
        if sig is None:
            r.error(k.name, f"step {i // 2 + 1}: found {show(items[i])}, expected a signal")
            return ()
        if secs is None or not 0 <= secs <= MAX_SECONDS:
            expected = f"a number of seconds from 0 to {MAX_SECONDS}"
            r.error(k.name, f"step {i // 2 + 1}: found {show(items[i + 1])}, expected {expected}")
            return ()
        steps.append((sig, secs))
    return tuple(steps)


def _number(v: Any) -> float | None:
    if isinstance(v, str) and re.fullmatch(r"\s*[0-9]{1,7}(\.[0-9]{1,6})?\s*", v):
        return float(v)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)
    return float(v) if ok else None


HEALTH_KINDS = ("tcp", "unix", "http", "command")


HEALTH_NUMBERS = {"interval": 10.0, "timeout": 5.0, "retries": 3}


def parse_health(r: Reader, k: Key, value: Any) -> Health | None:
    """One probe in a form of ``ready`` (tcp, unix, http, command), with interval, timeout
    (seconds) and retries; only for a service with a restart policy (the supervisor acts on
    the verdict)."""
    if value is None:
        return None
    forms = "{tcp: HOST:PORT}, {unix: PATH}, {http: URL} or {command: CMD}"
    if not isinstance(value, dict):
        r.wrong(k.name, value, f"a mapping: one of {forms}, with interval, timeout, retries")
        return None
    kinds = [key for key in value if key not in HEALTH_NUMBERS]
    if len(kinds) != 1 or kinds[0] not in HEALTH_KINDS:
        found = ", ".join(str(kind) for kind in kinds) or "no probe"
        near = hint(str(kinds[0]), (*HEALTH_KINDS, *HEALTH_NUMBERS)) if kinds else ""
        r.error(k.name, f"found {found}{near}, expected one of {forms}")
        return None
    numbers = {key: _health_number(r, key, value.get(key, d)) for key, d in HEALTH_NUMBERS.items()}
    kind = kinds[0]
    if kind == "http" and str(value[kind]).startswith("https:"):
        r.wrong(
            f"{k.name}.http",
            value[kind],
            "an http:// URL (https is not probed: use a command such as [curl, -fsS, URL])",
        )
        return None
    probe = _ready_target(r, kind, value[kind], None, k.name)
    if probe is None or any(n is None for n in numbers.values()):
        return None
    if r.values.get("restart", "no") == "no":
        r.error(
            k.name,
            "needs a restart policy (restart: on-failure or always): the supervisor restarts "
            "an unhealthy service, and without a policy nothing supervises it",
        )
        return None
    return Health(kind, probe.target, **numbers)  # type: ignore[arg-type]


def _health_number(r: Reader, key: str, value: Any) -> float | int | None:
    where = f"health.{key}"
    if key == "retries":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            r.wrong(where, value, "a whole number from 1 to 100")
            return None
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        r.wrong(where, value, "a number of seconds")
        return None
    if not 0 < value <= MAX_SECONDS:
        r.wrong(where, value, "a number of seconds above 0")
        return None
    return float(value)
