"""The intermediate result of an import: the keys found, where each came from, and every line
that could not be carried over, with the reason. Readers fill it; the emitter writes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from servicectl.definitions.schema import LIMIT_NAMES, parse_signal, signal_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_COMMENT = 160  # characters of a source line quoted in a comment


def one_line(text: str, limit: int = MAX_COMMENT) -> str:
    """Source text fit for a one-line comment: whitespace runs collapsed, cut to ``limit``."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Draft:
    """What a reader made of one file, before it is checked against the schema and written."""

    name: str
    source: str  # the path as given
    kind: str  # "init.d script" or "systemd unit"
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # key -> "line 42: text"
    skipped: list[str] = field(default_factory=list)  # "line 30: text: why"
    notes: list[str] = field(default_factory=list)  # remarks that lose nothing
    fatal: str = ""  # why no definition could be made (exit 6)

    def set(self, key: str, value: Any, line: int | None, text: str = "") -> None:
        self.values[key] = value
        where = f"line {line}" if line else "the file"
        self.origins[key] = f"{where}: {one_line(text)}" if text else where

    def skip(self, line: int | None, text: str, why: str) -> None:
        where = f"line {line}: " if line else ""
        item = f"{where}{one_line(text, 100)}: {why}" if text else f"{where}{why}"
        if item not in self.skipped:
            self.skipped.append(item)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def sig(value: str) -> str | None:
    """``-USR1``, ``SIGHUP``, ``1`` or ``hup`` as servicectl's name (``USR1``, ``HUP``)."""
    number = parse_signal(value.strip().lstrip("-"))
    return None if number is None else signal_name(number)


def retry_schedule(value: str, signal: str | None) -> tuple[str | None, str]:
    """start-stop-daemon's ``--retry`` as a stop_schedule, or None and why not.

    ``--retry 5`` means ``TERM/5/KILL/5`` (the ``--signal`` given, else TERM)."""
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,6}", value):
        n = int(value)
        return f"{signal or 'TERM'}/{n}/KILL/{n}", ""
    items = value.split("/")
    out: list[str] = []
    for item in items:
        if item == "forever":
            return None, "'forever' repeats the schedule without end; servicectl's is finite"
        if re.fullmatch(r"[0-9]{1,6}", item):
            if not out or out[-1].isdigit():
                return None, f"a timeout {item} with no signal before it"
            out.append(str(int(item)))
            continue
        name = sig(item)
        if name is None:
            return None, f"{item!r} is not a signal"
        if out and not out[-1].isdigit():
            out.append("0")
        out.append(name)
    if not out:
        return None, "empty schedule"
    if not out[-1].isdigit():
        out.append("5")
    return "/".join(out), ""


def schedule_as_signal(schedule: str) -> tuple[str, float] | None:
    """``S/T/KILL/5`` (or ``S/T``) as stop_signal S and stop_timeout T: the same behaviour."""
    parts = schedule.split("/")
    if len(parts) == 4 and parts[2] == "KILL" and parts[3] == "5" or len(parts) == 2:
        return parts[0], float(parts[1])
    return None


_SIZE = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5, "E": 1024**6}
_TIME_UNITS = {
    "us": 1e-6,
    "usec": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
    "": 1,
}


def timespan(text: str) -> float | None:
    """A systemd time span (``90``, ``5min``, ``1min 30s``, ``1h``) in seconds; None if it is
    not one (``infinity`` included)."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    total = 0.0
    pos = 0
    for m in re.finditer(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)", text):
        if m.start() != pos or m.group(2) not in _TIME_UNITS:
            return None
        total += float(m.group(1)) * _TIME_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        return None
    return int(total) if total == int(total) else round(total, 3)


def limit_value(text: str, name: str) -> tuple[Any, str]:
    """A systemd ``Limit*=`` value (``4096``, ``1024:4096``, ``infinity``, ``8M``) for
    ``limits``; ``(None, why)`` if it cannot be."""
    if name not in LIMIT_NAMES:
        return None, f"servicectl has no limit {name!r}"
    parts = text.strip().split(":")
    if len(parts) > 2:
        return None, "expected N or SOFT:HARD"
    out: list[Any] = []
    for part in parts:
        part = part.strip()
        if part.lower() in ("infinity", "unlimited"):
            out.append("unlimited")
            continue
        if name == "cpu":
            secs = timespan(part)
            if secs is None:
                return None, f"{part!r} is not a number of seconds"
            out.append(int(secs))
            continue
        m = re.fullmatch(r"([0-9]{1,19})([KMGTPE]?)", part)
        if (
            not m
            or name not in ("as", "core", "data", "fsize", "memlock", "msgqueue", "rss", "stack")
            and m.group(2)
        ):
            return None, f"{part!r} is not a whole number"
        out.append(int(m.group(1)) * _SIZE[m.group(2)])
    if len(out) == 1:
        return out[0], ""
    if out[0] == out[1]:
        return out[0], ""
    return out, ""


# ulimit flag: (limit name, bytes per unit; 0 for a count). bash's units: -c and -f count
# 512-byte blocks, other sizes kilobytes.
ULIMIT_FLAGS = {
    "c": ("core", 512),
    "d": ("data", 1024),
    "e": ("nice", 0),
    "f": ("fsize", 512),
    "i": ("sigpending", 0),
    "l": ("memlock", 1024),
    "m": ("rss", 1024),
    "n": ("nofile", 0),
    "q": ("msgqueue", 1),
    "r": ("rtprio", 0),
    "s": ("stack", 1024),
    "t": ("cpu", 0),
    "u": ("nproc", 0),
    "v": ("as", 1024),
    "x": ("locks", 0),
}
