"""The start mark: one line servicectl writes into a service's log each time it spawns the
service (a start, a restart, a supervisor's respawn), before the service can write anything:

    -- servicectl: starting web at 2026-06-01 12:00:03 +0200 --

So a log tells its runs apart: the failure message of a start and the ``status NAME`` block
show only what the last run wrote (and how many lines before it belong to earlier runs), and
``logs --since`` knows when each run began. Only regular files are marked (never a terminal,
a device or ``/dev/null``); a mark that cannot be written (a full disk) never stops a start.

A service can print a line that looks like a mark: that only changes how its own log is shown
(docs/security.md R-LOG-4).
"""

from __future__ import annotations

import os
import stat
import time

PREFIX = "-- servicectl: starting "
# A mark is PREFIX, the service's name (1-255 of NAME_CHARS), " at ", a time spelled as
# STAMP_SHAPE (d: an ASCII digit, s: + or -), " --". Read without ``re``: a status block reads
# marks, and ``re`` (with enum) costs a command 3-6 ms to import.
NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@:-")
STAMP_SHAPE = "dddd-dd-dd dd:dd:dd sdddd"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def mark_line(name: str, when: float | None = None) -> str:
    """The mark of a start of ``name`` at ``when`` (now), without its newline."""
    stamp = time.strftime(TIME_FORMAT, time.localtime(time.time() if when is None else when))
    return f"{PREFIX}{name} at {stamp} --"


def write_mark(fds: tuple[int, ...], name: str) -> None:
    """Append the mark to each of ``fds`` (opened O_APPEND) that is a regular file."""
    data = (mark_line(name) + "\n").encode()
    for fd in dict.fromkeys(fds):
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.write(fd, data)
        except OSError:
            pass  # a full disk: the start goes on, its lines just look like the last run's


def parse_mark(line: str) -> tuple[str, float] | None:
    """(service name, time) of a mark line, or None for any other line."""
    line = line.rstrip("\r")
    if not line.startswith(PREFIX) or not line.endswith(" --"):
        return None
    name, at, when = line[len(PREFIX) : -3].partition(" at ")
    if not at or not 1 <= len(name) <= 255 or not NAME_CHARS.issuperset(name):
        return None
    if len(when) != len(STAMP_SHAPE) or not all(map(_fits, when, STAMP_SHAPE)):
        return None
    return name, epoch_of(when)


def _fits(char: str, shape: str) -> bool:
    if shape == "d":
        return "0" <= char <= "9"
    return char in "+-" if shape == "s" else char == shape


def epoch_of(stamp: str) -> float:
    """The epoch seconds of a mark's ``YYYY-MM-DD HH:MM:SS +ZZZZ`` (no datetime import: a
    status block reads marks, and datetime costs it a millisecond and a half)."""
    day, clock, zone = stamp.split(" ")
    y, mo, d = (int(x) for x in day.split("-"))
    h, mi, s = (int(x) for x in clock.split(":"))
    offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (-1 if zone[0] == "-" else 1)
    return float(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset)


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def last_mark(data: bytes, name: str, cut: bool) -> tuple[int, float] | None:
    """The offset in ``data`` (a log's tail) of the last mark of ``name``, and its time; None
    if there is none. ``cut``: data begins in the middle of a line (not at the file's start),
    so a mark at offset 0 would be the end of a longer line. Matched by name, on whole lines."""
    key = f"{PREFIX}{name} at ".encode()
    end = len(data)
    while True:
        at = data.rfind(key, 0, end)
        if at < 0:
            return None
        if (at > 0 and data[at - 1 : at] == b"\n") or (at == 0 and not cut):
            stop = data.find(b"\n", at)
            line = data[at : stop if stop >= 0 else len(data)]
            mark = parse_mark(line.decode("utf-8", "replace"))
            if mark is not None and mark[0] == name:
                return at, mark[1]
        end = at
