"""How each key of a service definition is read: the parsers that servicectl.schema declares
for its keys, the Reader they share, and the helpers and value types they need.

A parser takes (reader, key, value), where value is the key's declared default when the document
does not give it, and returns the Service field. On an error it records it on the reader and
returns something harmless: a definition with errors never becomes a Service.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicectl.definitions.names import expand, valid_name
from servicectl.definitions.schema import (
    LIMIT_NAMES,
    READY_KINDS,
    SECONDS,
    UNLIMITED,
    Key,
    Ready,
    StartLimit,
    parse_signal,
)
from servicectl.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from servicectl.paths import Dirs

ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
VERB_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}\Z")
LSB_VERBS = ("start", "stop", "restart", "try-restart", "reload", "force-reload", "status")
MAX_STEPS = 20
MAX_SECONDS = 7 * 24 * 3600  # a week: anything longer is a typo
MAX_ID = 2**32 - 2  # uid/gid 2**32 - 1 is -1, "no change", to setresuid/setgroups/Popen(group=)
MAX_ACCOUNT_NAME = 256  # LOGIN_NAME_MAX


# ---------------------------------------------------------------------------------------------
# Helpers


def show(value: Any) -> str:
    """A short rendering of a found value for an error message."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "nothing (null)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, list):
        text = "a list"
    elif isinstance(value, dict):
        text = "a mapping"
    else:
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def close_matches(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Did-you-mean candidates (difflib is imported only when a definition is parsed)."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=n, cutoff=cutoff)


def hint(word: str, choices: Iterable[str]) -> str:
    near = close_matches(word, choices)
    return f" (did you mean {near[0]}?)" if near else ""


DOTS_EXPECTED = "a path to which its {placeholders} add no . or .. component"


def dots_added(written: str, text: str) -> bool:
    """R-INST-2: whether replacing the placeholders of ``written`` gave ``text`` a . or ..
    component it did not have (a value that would turn a path into its parent's)."""

    def dots(path: str) -> int:
        return sum(part in (".", "..") for part in path.split("/"))

    return dots(text) > dots(written)


def resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


class Reader:
    """One parsed document being read: its data, where relative paths and placeholders point,
    the fields parsed so far, and every error found (reading goes on after an error)."""

    __slots__ = ("data", "file", "name", "dirs", "values", "errors", "instance", "template")

    def __init__(
        self,
        data: Mapping[Any, Any],
        file: str,
        name: str,
        dirs: Dirs,
        instance: str | None = None,
        template: bool = False,
    ) -> None:
        self.data = data
        self.file = file
        self.name = name
        self.dirs = dirs
        self.values: dict[str, Any] = {}
        self.errors: list[ConfigError] = []
        self.instance = instance  # replaces {instance} (a template's instance, or NAME@INSTANCE)
        self.template = template  # the document is a template (NAME@.yaml) or one of its instances

    def given(self, key: str) -> bool:
        """Whether the document gives ``key`` a value (not absent, null or empty)."""
        return self.data.get(key) not in (None, "")

    def error(self, key: str | None, problem: str) -> None:
        self.errors.append(ConfigError(self.file, key, problem))

    def wrong(self, key: str, value: Any, expected: str) -> None:
        self.error(key, f"found {show(value)}, expected {expected}")

    def expand(self, text: str) -> str:
        return expand(text, self.name, self.dirs, self.instance)


# ---------------------------------------------------------------------------------------------
# Parsers


def parse_text(r: Reader, k: Key, value: Any, one_line: bool = False) -> str | None:
    """A string (numbers are taken as written), placeholders replaced; null means the default."""
    if value is None:
        value = k.default
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        r.wrong(k.name, value, "a string")
        return None
    text = r.expand(str(value))
    if one_line and ("\n" in text or "\r" in text):
        r.error(k.name, "found several lines, expected one line")
        return None
    if "\0" in text:
        r.error(k.name, "contains a NUL character")
        return None
    return text


def parse_line(r: Reader, k: Key, value: Any) -> str:
    return parse_text(r, k, value, one_line=True) or ""


def parse_path(r: Reader, k: Key, value: Any) -> Path | None:
    """A path, relative to the services directory; null or empty means the default."""
    text = parse_text(r, k, value)
    written = k.default if value is None else value
    if not text and k.default:
        written, text = k.default, r.expand(str(k.default))
    if text and dots_added(str(written), text):
        r.wrong(k.name, written, DOTS_EXPECTED)
        return None
    return resolve(r.dirs.services, text) if text else None


def parse_output(r: Reader, k: Key, value: Any) -> Path | None:
    """A file to append output to; "null" (or /dev/null) discards it."""
    if value in ("null", "/dev/null"):
        return None
    return parse_path(r, k, value)


def parse_stderr(r: Reader, k: Key, value: Any) -> Path | None:
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
        parts[0] = str(resolve(r.dirs.services, parts[0]))
    return tuple(parts)


def parse_seconds(r: Reader, k: Key, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        r.wrong(k.name, value, "a number of seconds")
    elif (isinstance(value, float) and math.isnan(value)) or value < 0:
        r.wrong(k.name, value, "a number of seconds, 0 or more")
    elif value > MAX_SECONDS:
        r.wrong(k.name, value, f"at most {MAX_SECONDS} seconds (a week)")
    else:
        return float(value)
    return 0.0


BOOL_WORDS = ("true", "false")


def parse_bool(r: Reader, k: Key, value: Any) -> bool:
    if not isinstance(value, bool):
        word = {"yes": "true", "on": "true", "no": "false", "off": "false"}.get(
            str(value).strip().lower(), str(value).strip().lower()
        )
        unquoted = f" (unquoted: {word})" if isinstance(value, str) and word in BOOL_WORDS else ""
        r.wrong(k.name, value, "true or false" + unquoted)
        return False
    return value


def parse_choice(r: Reader, k: Key, value: Any) -> str:
    choices = k.type.split(" or ")
    if not isinstance(value, str) or value not in choices:
        r.wrong(k.name, value, " or ".join(choices))
        return str(k.default)
    return value


def parse_signal_key(r: Reader, k: Key, value: Any) -> int:
    number = parse_signal(value)
    if number is None:
        r.wrong(k.name, value, "a signal name such as TERM, SIGINT or HUP, or a number 1-64")
        return 0
    return number


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
        text = str(resolve(r.dirs.services, text))
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
