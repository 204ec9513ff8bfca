"""The keys that say how the program runs: its command line, the account (user, group),
umask, environment, nice, the rlimits (``limits``), where its output goes, and the cgroup
limits (``memory_max``, ``pids_max``, ``cpu_weight``).
"""

from __future__ import annotations

import re
import shlex

from servicectl.definitions.reader import Reader, hint, parse_path, resolve, show
from servicectl.definitions.schema import (
    LIMIT_NAMES,
    UNLIMITED,
    Key,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


MAX_ID = 2**32 - 2  # uid/gid 2**32 - 1 is -1, "no change", to setresuid/setgroups/Popen(group=)


MAX_ACCOUNT_NAME = 256  # LOGIN_NAME_MAX


def parse_output(r: Reader, k: Key, value: Any) -> str | None:
    """A file to append output to; "null" (or /dev/null) discards it."""
    if value in ("null", "/dev/null"):
        return None
    return parse_path(r, k, value)


def parse_stderr(r: Reader, k: Key, value: Any) -> str | None:
    if not r.given(k.name):
        return r.values.get("stdout")  # the same file as stdout
    return parse_output(r, k, value)


def parse_argv(r: Reader, k: Key, value: Any) -> tuple[str, ...] | None:
    """A command line: a string split like a shell (no shell runs it) or a list; a program
    containing a / is relative to the services directory."""
    if value is None:
        if k.required:
            r.error(k.name, "missing: every service needs the program to run")
        return None
    return command_line(r, k.name, value)


def command_line(r: Reader, key: str, value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            r.error(key, f"cannot be split like a shell command: {exc}")
            return None
    elif isinstance(value, list) and all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        parts = [str(v) for v in value]
    else:
        r.wrong(key, value, "a command line (a string, or a list of strings)")
        return None
    parts = [r.expand(p) for p in parts]
    if not parts or not parts[0]:
        r.wrong(key, value, "a non-empty command line")
        return None
    if any("\0" in p for p in parts):
        r.error(key, "contains a NUL character")
        return None
    if "/" in parts[0]:
        parts[0] = resolve(r.dirs.services, parts[0])
    return tuple(parts)


def parse_account(r: Reader, k: Key, value: Any, kind: str = "") -> str | None:
    """A user or group (``kind``, default the key's name): a plausible name, or a numeric ID
    the kernel takes as one."""
    if value is None:
        return None
    kind = kind or k.name
    what = "uid" if kind == "user" else "gid"
    expected = f"a {kind} name, or a {what} from 0 to {MAX_ID}"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        r.wrong(k.name, value, expected)
        return None
    text = r.expand(str(value))
    if text.isdigit() or re.fullmatch(r"[-+][0-9]+", text):  # a number (spawn takes isdigit())
        if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_ID:
            r.wrong(k.name, value, expected)
            return None
        return text
    if (
        not text
        or len(text) > MAX_ACCOUNT_NAME
        or text[0] in "-+"
        or not text.isprintable()
        or any(c.isspace() or c in ":/" for c in text)
    ):
        rule = (
            "a name: up to 256 characters, no spaces, control characters, : or /, no - or + first"
        )
        r.wrong(k.name, value, f"{expected} ({rule})")
        return None
    return text


def parse_umask(r: Reader, k: Key, value: Any) -> int:
    expected = 'an octal string such as "022"'
    if isinstance(value, bool):
        r.wrong(k.name, value, expected)
        return 0o022
    if isinstance(value, int):
        number = value  # YAML 1.1 reads an unquoted 022 as octal already
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{1,4}", value.strip()):
        number = int(value.strip(), 8)
    else:
        r.wrong(k.name, value, expected)
        return 0o022
    if not 0 <= number <= 0o777:
        r.wrong(k.name, value, 'an octal string from "000" to "777"')
        return 0o022
    return number


def parse_environment(r: Reader, k: Key, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        r.wrong(k.name, value, "a mapping of NAME: value")
        return ()
    pairs = []
    for key, val in value.items():
        if not isinstance(key, str) or not ENV_KEY_RE.match(key):
            r.error(k.name, f"{show(key)} is not a variable name (letters, digits, _)")
            continue
        where = f"{k.name}.{key}"
        if isinstance(val, bool):
            word = show(val)  # YAML's own word (true/false), never Python's True
            r.error(
                where,
                f'found {word}, expected a string: quote it, as in "{word}" (YAML reads '
                f"yes, no, on, off, true and false unquoted as booleans)",
            )
        elif val is None or not isinstance(val, (str, int, float)):
            r.wrong(where, val, "a string")
        elif "\0" in str(val):
            r.error(where, "contains a NUL character")
        else:
            pairs.append((key, str(val)))
    return tuple(pairs)


def _limit_value(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and 0 <= v < 2**63:
        return v
    if isinstance(v, str) and v.strip().lower() in ("infinity", "unlimited"):
        return UNLIMITED
    return None


def parse_limits(r: Reader, k: Key, value: Any) -> tuple[tuple[str, int, int], ...]:
    """(name, soft, hard) triples; -1 is unlimited."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        r.wrong(k.name, value, "a mapping such as {nofile: 4096, core: 0}")
        return ()
    out = []
    for key, v in value.items():
        where = f"{k.name}.{key}"
        if key not in LIMIT_NAMES:
            known = ", ".join(LIMIT_NAMES)
            r.error(where, f"unknown limit{hint(str(key), LIMIT_NAMES)}; known: {known}")
            continue
        if isinstance(v, list) and len(v) == 2:
            soft, hard = _limit_value(v[0]), _limit_value(v[1])
        else:
            soft = hard = _limit_value(v)
        if soft is None or hard is None:
            r.wrong(where, v, 'a whole number, "unlimited", or [soft, hard]')
        elif hard != UNLIMITED and (soft == UNLIMITED or soft > hard):
            r.error(where, "the soft limit is above the hard limit")
        else:
            out.append((str(key), soft, hard))
    return tuple(out)


def parse_nice(r: Reader, k: Key, value: Any) -> int | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not -20 <= value <= 19
    ):
        r.wrong(k.name, value, "a whole number from -20 to 19")
        return None
    return value


UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


MIN_MEMORY = 1 << 20  # less is surely a unit forgotten: "memory_max: 512" meant 512M


MAX_PIDS = 4194304  # the kernel's highest pid_max


def parse_bytes(r: Reader, k: Key, value: Any) -> int | None:
    """``512M``, ``1.5G``, ``65536``: a number of bytes (K, M, G, T are 1024-based)."""
    if value is None:
        return None
    expected = "a number of bytes, with K, M or G (1024-based), such as 512M, at least 1M"
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    match = re.fullmatch(r"([0-9]{1,15})(\.[0-9]{1,3})?\s*([KMGTkmgt]?)[Bb]?", text)
    if isinstance(value, bool) or match is None:
        r.wrong(k.name, value, expected)
        return None
    number = float(match.group(1) + (match.group(2) or ""))
    size = int(number * UNITS[match.group(3).upper()])
    if size < MIN_MEMORY:
        unit = "" if match.group(3) else f" (did you mean {match.group(1)}M?)"
        r.error(k.name, f"found {show(value)}: {size} bytes is less than 1M{unit}")
        return None
    if size >= 1 << 62:
        r.wrong(k.name, value, expected)
        return None
    return size


def _whole(r: Reader, k: Key, value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,8}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        r.wrong(k.name, value, f"a whole number from {low} to {high}")
        return None
    return value


def parse_pids_max(r: Reader, k: Key, value: Any) -> int | None:
    return _whole(r, k, value, 1, MAX_PIDS)


def parse_cpu_weight(r: Reader, k: Key, value: Any) -> int | None:
    return _whole(r, k, value, 1, 10000)
