"""Times for ``logs --since``: reading the TIME a person writes, and finding where in a log
the lines written since then begin.

A service writes its log itself (servicectl is not in the pipe), so lines carry no time
servicectl gave them. What a log does carry: servicectl's start mark at each spawn
(system/logmark.py), and, in most daemons' output, a time at the start of each line (ISO 8601
as Python's logging and most daemons write it, nginx's ``2026/06/01 12:00:03``, syslog's
``Jun  1 12:00:03``, redis's and the common log format's ``01 Jun 2026 12:00:03``). A line
without a time of its own may have been written at any moment between the time before it and
the next time in the log (for the last lines: the file's last change), and is shown when that
moment may be TIME or later: a stretch of untimed lines before the first line known to be new
enough is shown with it, never hidden.

Parsed by hand, without datetime or dateutil: ``logs`` stays light.
"""

from __future__ import annotations

import os
import re
import time

from servicectl.system.logmark import days_from_civil, parse_mark

_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ t](\d\d):(\d\d)(?::(\d\d))?)?")
_CLOCK = re.compile(r"(\d\d?):(\d\d)(?::(\d\d))?")
SINCE_FORMS = "2026-06-01, 2026-06-01 12:00[:05], 12:00, today, yesterday, 10 min ago, -2h, @EPOCH"


def parse_since(text: str, now: float | None = None) -> float:
    """The epoch time ``text`` names (local time where no zone is given); ValueError saying
    which forms are understood."""
    now = time.time() if now is None else now
    word = " ".join(text.strip().lower().split())
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        return _midnight(now) - (86400 if word == "yesterday" else 0)
    if word.startswith("@"):
        try:
            return float(word[1:])
        except ValueError:
            raise ValueError(f"expected a number of seconds after @; {_forms()}") from None
    ago = _ago(word)
    if ago is not None:
        return now - ago
    m = _DATE.fullmatch(word)
    if m is not None:
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        return _local(y, mo, d, h, mi, s)
    m = _CLOCK.fullmatch(word)
    if m is not None:
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        if h < 24 and mi < 60 and s < 60:
            return _midnight(now) + h * 3600 + mi * 60 + s
    raise ValueError(_forms())


def _forms() -> str:
    return f"write a time such as {SINCE_FORMS}"


def _ago(word: str) -> float | None:
    """Seconds of ``10 min ago``, ``-10min``, ``1h 30m ago``, ``2 days``; None if not such."""
    body = word.removesuffix(" ago").removesuffix("ago").strip()
    body = body.removeprefix("-").strip()
    if not body or body == word.strip() and not word[0].isdigit():
        return None
    total, at = 0.0, 0
    for m in _SPAN.finditer(body):
        if body[at : m.start()].strip(" ,") or m.group(2) not in _UNITS:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        at = m.end()
    return total if at and not body[at:].strip() else None


def _midnight(now: float) -> float:
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def _local(y: int, mo: int, d: int, h: int, mi: int, s: int) -> float:
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        raise ValueError(f"no such date or time; {_forms()}")
    return time.mktime((y, mo, d, h, mi, s, 0, 0, -1))


# ---------------------------------------------------------------------------------------------
# Times written in lines

_MONTHS = {
    m.encode(): i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_ISO = re.compile(
    rb"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,]\d+)?"
    rb"(?: ?(Z|[+-]\d\d:?\d\d))?"
)
_DMY = re.compile(rb"(\d\d?)[ /]([A-Za-z]{3})[ /](\d{4})[ :](\d\d):(\d\d):(\d\d)(?: ([+-]\d{4}))?")
_SYSLOG = re.compile(rb"([A-Za-z]{3}) +(\d\d?) (\d\d):(\d\d):(\d\d)")
HEAD = 64  # a line's time is looked for in its first bytes only


def line_time(line: bytes, now: float) -> float | None:
    """The time written near the start of a log line, or None."""
    if line.startswith(b"-- servicectl: ") and len(line) < 400:
        mark = parse_mark(line.decode("utf-8", "replace"))
        if mark is not None:
            return mark[1]
    m = _ISO.search(line, 0, HEAD)
    if m is not None:
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        return _stamped(y, mo, d, h, mi, s, m.group(7))
    m = _DMY.search(line, 0, HEAD)
    if m is not None and m.group(2).lower() in _MONTHS:
        d, y, h, mi, s = (int(m.group(i)) for i in (1, 3, 4, 5, 6))
        return _stamped(y, _MONTHS[m.group(2).lower()], d, h, mi, s, m.group(7))
    m = _SYSLOG.search(line, 0, HEAD)
    if m is not None and m.group(1).lower() in _MONTHS:
        mo = _MONTHS[m.group(1).lower()]
        d, h, mi, s = (int(m.group(i)) for i in (2, 3, 4, 5))
        year = time.localtime(now).tm_year
        t = _stamped(year, mo, d, h, mi, s, None)
        if t is not None and t > now + 86400:  # December's lines read in January
            t = _stamped(year - 1, mo, d, h, mi, s, None)
        return t
    return None


def _stamped(y: int, mo: int, d: int, h: int, mi: int, s: int, zone: bytes | None) -> float | None:
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        return None
    if zone is None:
        return time.mktime((y, mo, d, h, mi, s, 0, 0, -1))
    z = zone.decode().replace(":", "")
    offset = 0 if z == "Z" else (int(z[1:3]) * 3600 + int(z[3:5]) * 60) * (-1 if z[0] == "-" else 1)
    return float(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset)


# ---------------------------------------------------------------------------------------------
# Where the lines since a time begin

BLOCK = 64 * 1024
SCAN_LIMIT = 64 * 1024 * 1024  # read at most this much backwards looking for an older line


def offset_since(fd: int, size: int, since: float, mtime: float) -> tuple[int, bool]:
    """The offset of the first line written at ``since`` or later, as far as the log tells
    (see the module's docstring), reading backwards from ``size``; and whether the search
    stopped at SCAN_LIMIT before finding a line older than ``since``. A log last changed
    before ``since`` has no such line (``size``)."""
    if mtime < since:
        return size, False
    now = time.time()
    end, carry = size, b""
    while end > 0:
        start = max(0, end - BLOCK)
        data = os.pread(fd, end - start, start) + carry
        lines = data.split(b"\n")
        carry = lines.pop(0) if start > 0 else b""  # a line begun before this block
        pos = start + len(carry) + (1 if start > 0 else 0)
        offsets = []
        for line in lines:
            offsets.append((pos, line))
            pos += len(line) + 1
        for at, line in reversed(offsets):
            t = line_time(line, now)
            if t is not None and t < since:
                return min(size, at + len(line) + 1), False
        end = start
        if size - end >= SCAN_LIMIT and end > 0:
            return end + len(carry) + 1, True
    return 0, False
